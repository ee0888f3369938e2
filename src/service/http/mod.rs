//! HTTP/1.1: an origin server for a handful of routes, as a sans-I/O state machine.
//!
//! The reactor delivers bytes; this module finds requests in them and writes responses. It
//! follows the message syntax of RFC 9112 (HTTP/1.1) and the semantics of RFC 9110 that an
//! origin server needs: persistent connections, pipelining, `Content-Length` and chunked
//! request bodies, `Expect: 100-continue`, `HEAD`, and a clear error for every malformed input.
//!
//! ```text
//!  bytes from the reactor
//!    │
//!    ▼
//!  request.rs   is there a whole head? (cheap scan) ─ no ─▶ wait (deadline: head_timeout)
//!    │          parse it (httparse), decide framing and persistence, or reject
//!    ▼
//!  routes.rs    method + path ─▶ Route
//!    │
//!    ▼
//!  chunked.rs   read the body, if any (Content-Length: wait for it whole; chunked: decode)
//!    │
//!    ▼
//!  response.rs  serialise the reply into cx.out() (GET / is one memcpy of a canned reply)
//!    │
//!    ▼
//!  keep-alive? ─ yes ─▶ next request in the same input, if any ─ no ─▶ cx.close()
//! ```
//!
//! Each connection's [`Session`] is one explicit state (see `State` and the diagram in
//! `docs/http.md`); with `RUST_LOG=debug` every transition is logged.
//!
//! What it leaves out, on purpose: HTTP/2 and upgrades, response compression, range requests,
//! conditional requests, and streaming bodies (a body is read whole, up to
//! [`HttpConfig::max_body`], before it is answered).

mod chunked;
mod request;
mod response;
mod routes;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant, SystemTime};

use self::chunked::{ChunkedDecoder, Progress};
use self::request::{Framing, Limits, Method, Version};
use self::response::{Canned, ConnectionField, DateCache, Reply, Status};
pub use self::routes::Counters as HttpCounters;
use self::routes::{Counters, Route};
use super::{CloseReason, ConnId, Cx, Service};
use crate::stats::Board;

/// Limits and timeouts of the HTTP service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Largest request head (request line and header fields) in bytes; larger gets 431.
    pub max_head: usize,
    /// Largest request body in bytes; larger gets 413.
    pub max_body: usize,
    /// How long a request head may take to arrive, counted from its first byte; a head that
    /// is still incomplete then gets 408. This is the defence against slowloris, which keeps
    /// many connections open by sending a header line every few seconds.
    pub head_timeout: Duration,
    /// How long a request body may go without a byte arriving; then `408`. The same attack
    /// as slowloris, aimed at the body ("R-U-Dead-Yet": a large `Content-Length`, then a
    /// byte now and then) would otherwise hold a connection for as long as each byte comes
    /// within the idle timeout. Measured between reads, as nginx's `client_body_timeout` is,
    /// so a slow but steady upload is never cut off.
    pub body_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_head: 8 * 1024,
            max_body: 1024 * 1024,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// The body of `GET /`.
const HELLO: &[u8] = b"Hello, World!\n";

/// A session keeps its chunked-body buffer between requests only up to this capacity, so a
/// connection that once posted a large body does not hold its memory while idle.
const KEEP_BODY_CAPACITY: usize = 64 * 1024;

/// The HTTP service: one per listener, shared by all its connections.
#[derive(Debug)]
pub struct Http {
    config: HttpConfig,
    /// The `Date` value, reformatted once per second.
    date: DateCache,
    /// The whole `GET /` reply for each value of the `Connection` field, with the date patched
    /// in when it changes: indexed by [`hello_index`].
    hello: [Canned; 3],
    counters: Counters,
    /// With several reactors, where this reactor's `Http` publishes its counters and reads
    /// the others', so that `/stats` and `/metrics` count every request the process answered
    /// (as the reactor counters beside them do), not only this reactor's.
    board: Option<(Board<Counters>, usize)>,
    /// Reused buffer for documents built per request (`/stats`, `/metrics`).
    scratch: Vec<u8>,
}

/// How often an `Http` sharing a board publishes its counters, so that a reactor serving no
/// `/stats` request is still counted by the others.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

impl Http {
    /// A service with the given limits.
    pub fn new(config: HttpConfig) -> Self {
        let hello =
            [ConnectionField::None, ConnectionField::KeepAlive, ConnectionField::Close].map(|connection| {
                Canned::new(&Reply {
                    status: Status::Ok,
                    connection,
                    content_type: b"text/plain",
                    allow: None,
                    body: HELLO,
                    head_only: false,
                })
            });
        Http {
            config,
            date: DateCache::new(),
            hello,
            counters: Counters::default(),
            board: None,
            scratch: Vec::new(),
        }
    }

    /// Joins `board` as reactor `index` (of `reactor serve --reactors N`): `/stats` and
    /// `/metrics` then report the requests and responses of every reactor's `Http` on the
    /// board, not only this one's.
    pub fn shared(mut self, board: Board<HttpCounters>, index: usize) -> Self {
        self.board = Some((board, index));
        self
    }

    /// The counters `/stats` and `/metrics` report: this service's, plus the other reactors'.
    fn counters_total(&self) -> Counters {
        match &self.board {
            Some((board, index)) => board.total(*index, &self.counters),
            None => self.counters.clone(),
        }
    }

    fn limits(&self) -> Limits {
        Limits { max_head: self.config.max_head, max_body: self.config.max_body }
    }
}

impl Default for Http {
    fn default() -> Self {
        Http::new(HttpConfig::default())
    }
}

fn hello_index(connection: ConnectionField) -> usize {
    match connection {
        ConnectionField::None => 0,
        ConnectionField::KeepAlive => 1,
        ConnectionField::Close => 2,
    }
}

/// Per-connection state: where the connection is in its request/response cycle.
#[derive(Debug)]
pub struct Session {
    state: State,
    /// The `Content-Type` of the request being read, for `/echo` (copied, because the head's
    /// bytes are consumed before the body arrives). Reused across requests.
    content_type: Vec<u8>,
    /// A chunked body being decoded. Reused across requests, up to [`KEEP_BODY_CAPACITY`].
    body: Vec<u8>,
}

/// A connection's lifecycle. Writing needs no state of its own: a reply is written whole into
/// the output buffer the moment its request is complete, and the reactor sends it.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Between requests (keep-alive), nothing buffered. The reactor's idle timer applies.
    Idle,
    /// Some bytes of a head have arrived. `scanned` bytes of it were already searched for the
    /// end of the head; `deadline` is when its first byte came plus `head_timeout`;
    /// `head_only`: it is a `HEAD` so far, so a `408` for it carries no content.
    Head { deadline: Instant, scanned: usize, head_only: bool },
    /// The head was answered by a route; its body is being read. `deadline`: the last time
    /// bytes came plus `body_timeout`.
    Body { request: Pending, framing: BodyFraming, deadline: Instant },
    /// A final reply was written with `Connection: close`; no more input is read.
    Closed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Head { .. } => "reading head",
            State::Body { .. } => "reading body",
            State::Closed => "closed",
        }
    }
}

/// What is known about a request once its head is parsed: enough to answer it after the body.
#[derive(Debug, Clone, Copy)]
struct Pending {
    route: Route,
    head_only: bool,
    connection: ConnectionField,
}

impl Pending {
    /// During a graceful shutdown every reply is the last one: it says `Connection: close`
    /// and the connection closes after it, so keep-alive clients go elsewhere in time.
    fn last_if(self, draining: bool) -> Pending {
        if draining { Pending { connection: ConnectionField::Close, ..self } } else { self }
    }
}

/// How the body being read ends.
#[derive(Debug, Clone, Copy)]
enum BodyFraming {
    /// After exactly this many bytes, which are left in the reactor's input buffer until all
    /// have arrived and are then echoed straight from it.
    Length(usize),
    /// At the last chunk; see `chunked.rs`.
    Chunked(ChunkedDecoder),
}

/// Moves a session to `to`, logging the transition when the kind of state changes.
fn enter(session: &mut Session, to: State, id: ConnId) {
    if session.state.name() != to.name() {
        log::debug!("{id}: {} -> {}", session.state.name(), to.name());
    }
    session.state = to;
}

impl Service for Http {
    type Session = Session;

    fn name(&self) -> &'static str {
        "http"
    }

    /// A whole head plus a whole `Content-Length` body may wait in the input buffer; chunked
    /// bodies are consumed as they are decoded and never need more than a head's room.
    fn max_input(&self) -> usize {
        self.config.max_head.saturating_add(self.config.max_body)
    }

    /// With a board, publishes the counters a few times a second (see [`Http::shared`]).
    fn tick(&mut self, now: Instant) -> Option<Instant> {
        let (board, index) = self.board.as_ref()?;
        board.publish(*index, &self.counters);
        Some(now + PUBLISH_EVERY)
    }

    fn open(&mut self, cx: &mut Cx<'_>) -> Session {
        log::debug!("{}: open, idle", cx.id());
        Session { state: State::Idle, content_type: Vec::new(), body: Vec::new() }
    }

    /// Answers every complete request in `input`, in order, and returns the bytes they used.
    /// Pipelined requests are all answered in this one call, so their replies leave in one
    /// write. Every step either consumes bytes, waits for more, or closes: nothing can loop.
    fn input(&mut self, session: &mut Session, input: &[u8], cx: &mut Cx<'_>) -> usize {
        let mut used = 0;
        if let State::Body { deadline, .. } = &mut session.state {
            // Bytes came (or were held back on our side and are offered again): the body is
            // moving, so its clock starts over.
            *deadline = cx.now() + self.config.body_timeout;
        }
        loop {
            // A reply can be far bigger than its request (`GET /metrics` is ~30 bytes in and
            // kilobytes out): between requests, stop at the output limit and leave the rest
            // of a pipeline until the peer has read (`Cx::output_room`).
            if used > 0 && matches!(session.state, State::Idle) && cx.output_room() == 0 {
                break;
            }
            let rest = &input[used..];
            let step = match session.state {
                State::Closed => break,
                State::Idle | State::Head { .. } => self.read_head(session, rest, cx),
                State::Body { request, framing, deadline } => {
                    self.read_body(session, request, framing, deadline, rest, cx)
                }
            };
            match step {
                Some(n) if n > 0 => used += n,
                _ => break,
            }
        }
        if let State::Body { deadline, .. } = session.state {
            // A body still waits for bytes. (Asked only now, so a body that came whole with
            // its head costs no timer; asking again for a later deadline is cheap: the
            // reactor keeps one per connection and re-arms when the earlier one fires.)
            cx.set_timer(deadline);
        }
        if let State::Closed = session.state {
            // Nothing after a closing reply will be read; say all of it was used, so the
            // reactor's input limit cannot trip on bytes we are ignoring anyway.
            input.len()
        } else {
            used
        }
    }

    fn timer(&mut self, session: &mut Session, cx: &mut Cx<'_>) {
        // Only the current head's or body's deadline counts (checked, though the reactor calls
        // only for the latest deadline asked for: a cheap safeguard).
        let (deadline, period, what, head_only) = match &mut session.state {
            State::Head { deadline, head_only, .. } => {
                (deadline, self.config.head_timeout, "head", *head_only)
            }
            State::Body { deadline, request, .. } => {
                // Bytes that came since the last `input` count as the body moving too: on
                // TLS, a record's ciphertext arrives piece by piece and reaches `input` only
                // once it is whole (up to 16 KiB), so an upload slower than a record per
                // period would otherwise be cut off while it keeps coming.
                if let Some(heard) = cx.last_read() {
                    *deadline = (*deadline).max(heard + self.config.body_timeout);
                }
                (deadline, self.config.body_timeout, "body", request.head_only)
            }
            State::Idle | State::Closed => return,
        };
        if cx.now() < *deadline {
            cx.set_timer(*deadline);
        } else if cx.reads_paused() {
            // The reactor stopped reading this peer (it is not reading our replies): the rest
            // of this request can be waiting unread on our side, and the delay is then our
            // doing. Give it another full period. While reads are paused nothing the peer
            // sends counts as life, so one that never reads meets the idle timeout.
            *deadline = cx.now() + period;
            cx.set_timer(*deadline);
        } else {
            log::debug!("{}: request {what} timed out", cx.id());
            self.reject(session, Status::RequestTimeout, head_only, cx);
        }
    }

    /// Shutdown: an idle keep-alive connection is closed now (a server may close an idle
    /// persistent connection at any time, and clients retry on a fresh one: RFC 9112 §9.6);
    /// one with a request in progress gets its reply with `Connection: close`.
    /// (Not while replies are owed or reads are paused: requests may then be waiting unread,
    /// and they are answered, the last with `Connection: close`.)
    fn drain(&mut self, session: &mut Session, cx: &mut Cx<'_>) {
        if let State::Idle = session.state
            && cx.pending_output() == 0
            && !cx.reads_paused()
        {
            log::debug!("{}: shutting down, closing the idle keep-alive connection", cx.id());
            cx.close();
            enter(session, State::Closed, cx.id());
        }
    }

    fn close(&mut self, session: Session, reason: CloseReason, cx: &mut Cx<'_>) {
        log::debug!("{}: {} -> gone ({reason:?})", cx.id(), session.state.name());
    }

    /// A plain HTTP request to an HTTPS port: nginx's answer, in words the user can act on,
    /// for a first read that starts with a request line's method and a space (so a PROXY
    /// header sent to a `tls://` listener, say, still just gets the alert).
    fn plaintext_on_tls(&mut self, first: &[u8], wall: SystemTime, out: &mut Vec<u8>) -> bool {
        let Some(space) = first.iter().take(8).position(|&b| b == b' ') else {
            return false;
        };
        let method = Method::from_token(&first[..space]);
        if method == Method::Unknown {
            return false;
        }
        self.refresh_date(wall);
        let status = Status::BadRequest;
        self.counters.count(status);
        let reply = Reply {
            status,
            connection: ConnectionField::Close,
            content_type: b"text/plain",
            allow: None,
            body: b"This port speaks HTTPS: a plain HTTP request was sent to it.\n",
            head_only: method == Method::Head,
        };
        reply.write_to(out, self.date.text());
        true
    }

    /// Over the connection limit the peer still gets an HTTP answer it can understand. A 5xx
    /// reply may omit `Date` (RFC 9110 §6.6.1), which lets it be a constant.
    fn refusal(&self) -> &[u8] {
        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n\
          Content-Length: 20\r\n\r\nServer busy, sorry.\n"
    }
}

impl Http {
    /// In `Idle` or `Head`: looks for a complete head at the front of `rest`. Returns the bytes
    /// used, or `None` to wait for more.
    fn read_head(&mut self, session: &mut Session, rest: &[u8], cx: &mut Cx<'_>) -> Option<usize> {
        if rest.is_empty() {
            return None;
        }
        let (deadline, scanned) = match session.state {
            State::Head { deadline, scanned, .. } => (deadline, scanned),
            // The first byte of a request: the head's clock starts now.
            _ => (cx.now() + self.config.head_timeout, 0),
        };
        // Run the parser on the first bytes of a head (so garbage is answered at once), and
        // after that only when new bytes might have ended it.
        let parsed = if scanned == 0 || request::head_may_be_complete(rest, scanned.saturating_sub(2)) {
            request::parse_head(rest, self.limits())
        } else {
            Ok(None)
        };
        // A refused `HEAD` still gets no content: the method is the first thing on the line.
        // (Asked only where a head is refused or waits, not on the path of a whole request.)
        let head_only = || rest.starts_with(b"HEAD ");
        match parsed {
            Err(status) => {
                self.reject(session, status, head_only(), cx);
                Some(rest.len())
            }
            Ok(None) if rest.len() >= self.config.max_head => {
                // A head we will not buffer any further: 414 or 431, as the request line
                // alone or the fields are what is too long.
                self.reject(session, request::over_limit(rest, self.config.max_head), head_only(), cx);
                Some(rest.len())
            }
            Ok(None) => {
                // Arm the timer only now that a head really waits: a request that arrives
                // whole (the common case) costs the reactor no timer at all.
                if scanned == 0 {
                    cx.set_timer(deadline);
                }
                let scanned = rest.len();
                enter(session, State::Head { deadline, scanned, head_only: head_only() }, cx.id());
                None
            }
            Ok(Some(head)) => Some(self.start_request(session, head, rest, cx)),
        }
    }

    /// A head is complete: route it, then answer at once (no body) or go on to read the body.
    /// Returns the head's length.
    fn start_request(
        &mut self,
        session: &mut Session,
        head: request::Head<'_>,
        rest: &[u8],
        cx: &mut Cx<'_>,
    ) -> usize {
        self.counters.requests += 1;
        let request = Pending {
            route: routes::route(head.method, head.path),
            head_only: head.method == Method::Head,
            connection: match (head.keep_alive, head.version) {
                (false, _) => ConnectionField::Close,
                (true, Version::Http10) => ConnectionField::KeepAlive,
                (true, Version::Http11) => ConnectionField::None,
            },
        };
        log::debug!(
            "{}: {} {} {} -> route {:?}",
            cx.id(),
            head.method.name(),
            String::from_utf8_lossy(head.path),
            head.version.name(),
            request.route
        );
        // Only `POST /echo` uses it: the reply says what the echoed body is.
        let content_type = head.content_type.unwrap_or(b"application/octet-stream");
        let framing = match head.framing {
            Framing::None => {
                let request = request.last_if(cx.draining());
                self.respond(request, content_type, b"", cx);
                self.finish(session, request, cx);
                return head.len;
            }
            Framing::Length(n) => BodyFraming::Length(n),
            Framing::Chunked => BodyFraming::Chunked(ChunkedDecoder::new()),
        };
        if request.route == Route::Echo {
            session.content_type.clear();
            session.content_type.extend_from_slice(content_type);
        } else if head.expect_continue {
            // RFC 9110 §10.1.1: a server may send the final status instead of 100 (Continue).
            // Only `/echo` reads a body, so the others answer now and close, rather than invite
            // a megabyte to throw away; the lingering close discards whatever is sent anyway.
            // (Whether body bytes came with the head or not: the answer must not depend on how
            // the bytes were split into reads, which the fuzz check holds us to.)
            let request = Pending { connection: ConnectionField::Close, ..request };
            self.respond(request, content_type, b"", cx);
            self.finish(session, request, cx);
            return head.len;
        }
        // RFC 9110 §10.1.1: the client waits for 100 (Continue) before sending the body. We
        // may skip it if body bytes already came; a body that is too large was refused with
        // 413 by the head parser, so the client never sends what we would not read.
        if head.expect_continue && rest.len() == head.len {
            self.counters.count(Status::Continue);
            cx.write(response::CONTINUE);
        }
        let deadline = cx.now() + self.config.body_timeout;
        enter(session, State::Body { request, framing, deadline }, cx.id());
        head.len
    }

    /// In `Body`: reads the body from the front of `rest`; answers the request once it is whole.
    fn read_body(
        &mut self,
        session: &mut Session,
        request: Pending,
        framing: BodyFraming,
        deadline: Instant,
        rest: &[u8],
        cx: &mut Cx<'_>,
    ) -> Option<usize> {
        match framing {
            BodyFraming::Length(n) => {
                // Until all of it is here, leave it in the reactor's buffer (consume nothing).
                let body = rest.get(..n)?;
                let request = request.last_if(cx.draining());
                self.respond(request, &session.content_type, body, cx);
                self.finish(session, request, cx);
                Some(n)
            }
            BodyFraming::Chunked(mut decoder) => {
                let mut body = std::mem::take(&mut session.body);
                let limits = self.limits();
                let step = match decoder.decode(rest, &mut body, limits.max_body, limits.max_head) {
                    Ok(Progress::More(n)) => {
                        session.state =
                            State::Body { request, framing: BodyFraming::Chunked(decoder), deadline };
                        session.body = body;
                        return Some(n);
                    }
                    Ok(Progress::Done(n)) => {
                        let request = request.last_if(cx.draining());
                        self.respond(request, &session.content_type, &body, cx);
                        self.finish(session, request, cx);
                        Some(n)
                    }
                    Err(status) => {
                        self.reject(session, status, request.head_only, cx);
                        Some(rest.len())
                    }
                };
                body.clear();
                if body.capacity() > KEEP_BODY_CAPACITY {
                    body = Vec::new();
                }
                session.body = body;
                step
            }
        }
    }

    /// Writes the reply to a complete request.
    fn respond(&mut self, request: Pending, content_type: &[u8], body: &[u8], cx: &mut Cx<'_>) {
        self.refresh_date(cx.wall());
        let head_only = request.head_only;
        let reply = |status, content_type, body| Reply {
            status,
            connection: request.connection,
            content_type,
            allow: None,
            body,
            head_only,
        };
        match request.route {
            Route::Hello => {
                // The benchmark path: one copy of a precomputed reply, no formatting at all.
                self.counters.count(Status::Ok);
                let canned = &self.hello[hello_index(request.connection)];
                cx.write(canned.bytes(head_only));
            }
            Route::Echo => self.send(reply(Status::Ok, content_type, body), cx),
            Route::Stats | Route::Metrics => {
                let mut doc = std::mem::take(&mut self.scratch);
                doc.clear();
                let counters = self.counters_total();
                let content_type: &[u8] = if request.route == Route::Stats {
                    routes::stats_json(&mut doc, &cx.stats_total(), cx.now(), &counters);
                    b"application/json"
                } else {
                    routes::metrics_text(&mut doc, &cx.stats_total(), cx.now(), &counters);
                    b"text/plain; version=0.0.4; charset=utf-8"
                };
                self.send(reply(Status::Ok, content_type, &doc), cx);
                self.scratch = doc;
            }
            Route::NotFound => {
                let status = Status::NotFound;
                self.send(reply(status, b"text/plain", status.text()), cx);
            }
            Route::MethodNotAllowed { allow } => {
                let status = Status::MethodNotAllowed;
                let reply = Reply { allow: Some(allow), ..reply(status, b"text/plain", status.text()) };
                self.send(reply, cx);
            }
            Route::Options { allow } => {
                // RFC 9110 §9.3.7: no content, so `Content-Length: 0`, and what is allowed.
                let reply = Reply { allow: Some(allow), ..reply(Status::Ok, b"text/plain", b"") };
                self.send(reply, cx);
            }
            Route::NotImplemented => {
                let status = Status::NotImplemented;
                self.send(reply(status, b"text/plain", status.text()), cx);
            }
        }
    }

    /// After a reply: wait for the next request, or close if this was the last one.
    fn finish(&mut self, session: &mut Session, request: Pending, cx: &mut Cx<'_>) {
        if request.connection == ConnectionField::Close {
            cx.close();
            enter(session, State::Closed, cx.id());
        } else {
            enter(session, State::Idle, cx.id());
        }
    }

    /// Answers bad input with `status` and closes the connection once the reply is sent: after
    /// a framing error we cannot know where the next request would start (RFC 9112 §6.3,
    /// §9.6), and for every other refusal closing is the only safe way to skip what follows.
    ///
    /// `head_only`: the request was a `HEAD`, whose reply carries no content even when it is
    /// an error (RFC 9110 §9.3.2).
    fn reject(&mut self, session: &mut Session, status: Status, head_only: bool, cx: &mut Cx<'_>) {
        log::debug!("{}: rejecting with {}", cx.id(), status.code());
        self.refresh_date(cx.wall());
        self.send(
            Reply {
                status,
                connection: ConnectionField::Close,
                content_type: b"text/plain",
                allow: None,
                body: status.text(),
                head_only,
            },
            cx,
        );
        cx.close();
        enter(session, State::Closed, cx.id());
    }

    fn send(&mut self, reply: Reply<'_>, cx: &mut Cx<'_>) {
        self.counters.count(reply.status);
        reply.write_to(cx.out(), self.date.text());
    }

    /// Reformats the date if the second changed, and restamps the canned replies with it.
    fn refresh_date(&mut self, wall: SystemTime) {
        if self.date.refresh(wall) {
            for canned in &mut self.hello {
                canned.stamp(self.date.text());
            }
        }
    }
}
