//! Workloads: what a load-generator connection sends, and how it checks what comes back.
//!
//! The client loops ([`super::tcp`], [`super::udp`]) know sockets, time and bookkeeping; they
//! know nothing of any protocol. A [`Workload`] knows the protocol and nothing of sockets: it
//! writes request `k` of connection `conn` into a buffer ([`Workload::encode`]) and judges the
//! bytes a connection has received so far ([`Workload::parse`]). The split is the server's
//! sans-I/O split (`crate::service`) seen from the other side of the wire.
//!
//! Parsing follows the two-step pattern of `mini-redis`: a reply that is not all there yet is
//! [`Verdict::Incomplete`] (the loop keeps the bytes and asks again after the next read); a
//! complete one is [`Verdict::Ok`] with its length and the request it answers; anything that
//! cannot be the right reply is [`Verdict::Mismatch`], as early as the first wrong byte.
//!
//! # Adding a workload
//!
//! One file here, one arm in [`for_config`], one variant in [`super::Service`]. The four:
//!
//! * **echo** — [`echo`]: self-describing messages, checked byte by byte (TCP and UDP).
//! * **chat** — [`chat`]: fan-out; a line must reach every other member, in order.
//! * **http** — [`http`]: `GET /` (or `POST /echo`) with keep-alive; the reply's status line and
//!   `Content-Length` frame it ([`Verdict::Incomplete`] until the whole body is in); a non-2xx
//!   status is [`Verdict::Refused`], a wrong body a [`Verdict::Mismatch`].
//! * **kv** — [`kv`]: RESP2 `SET`/`GET` pairs over keys each connection owns, so every `GET`'s
//!   value is known exactly; `-ERR …` is [`Verdict::Refused`]. Replies come in order and do
//!   not name their request, so it answers [`Answer::Oldest`], like http, and counts replies
//!   per connection to know which request the next one answers.

pub mod chat;
pub mod echo;
pub mod http;
pub mod kv;

use super::{LoadConfig, Service};

/// Which request a complete reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The oldest request still in flight on the connection that received the reply: the
    /// rule for in-order protocols whose replies do not name their request (HTTP/1.1, RESP).
    Oldest,
    /// Request `k` sent by connection `conn`: the reply names it (echo's sequence header, a
    /// chat line's sender and number). The loop checks that this request is really in flight
    /// and, on a stream, that it is the one due next.
    Request {
        /// The connection that sent the request.
        conn: usize,
        /// Its sequence number on that connection.
        k: u64,
    },
}

/// Who receives the replies to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Request/reply: one reply, on the connection that sent the request, in order.
    Sender,
    /// Fan-out (chat): one copy on every *other* open connection; complete when all have it.
    Others,
}

impl Audience {
    /// How many replies complete one request when `members` connections are open.
    pub fn fanout(self, members: usize) -> usize {
        match self {
            Audience::Sender => 1,
            Audience::Others => members.saturating_sub(1),
        }
    }
}

/// The judgement of [`Workload::parse`] on the front of a connection's received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not a whole reply yet, and nothing wrong so far: read more.
    Incomplete,
    /// A correct reply of `len` bytes.
    Ok {
        /// Bytes consumed from the front of the input.
        len: usize,
        /// The request it answers.
        answers: Answer,
    },
    /// A well-formed reply in which the server declined (HTTP non-2xx, RESP `-ERR`). It
    /// completes its request but is counted apart from successes.
    Refused {
        /// Bytes consumed.
        len: usize,
        /// The request it answers.
        answers: Answer,
        /// What the server said (status line, error text), for the report.
        why: String,
    },
    /// `len` bytes that answer no request (a chat notice such as `*** guest-3 joined`):
    /// consumed and not counted.
    Skip(usize),
    /// These bytes cannot be the right reply. The connection's stream can no longer be
    /// trusted, so the loop counts it and closes the connection.
    Mismatch(String),
}

/// A protocol as the load generator drives it. See the module documentation.
pub trait Workload {
    /// The service's name as given on the command line.
    fn name(&self) -> &'static str;

    /// Writes request `k` (0, 1, 2, … per connection) of connection `conn` to the end of `out`.
    fn encode(&mut self, conn: usize, k: u64, out: &mut Vec<u8>);

    /// Judges the front of `input`, the bytes connection `conn` received and nothing has
    /// consumed yet. Called repeatedly until it answers [`Verdict::Incomplete`].
    fn parse(&mut self, conn: usize, input: &[u8]) -> Verdict;

    /// Who answers a request: the connection that sent it, or everyone else.
    fn audience(&self) -> Audience {
        Audience::Sender
    }

    /// Bytes to send first on connection `conn` each time it opens, before any request (kv
    /// with `--password`: `AUTH`). Their reply is the workload's to consume in `parse` (as
    /// [`Verdict::Skip`]), and `ready` says no until it has.
    fn preamble(&mut self, _conn: usize, _out: &mut Vec<u8>) {}

    /// Whether connection `conn` may send requests yet (chat: once the server welcomed it).
    fn ready(&self, _conn: usize) -> bool {
        true
    }

    /// What the server said to connection `conn` instead of letting it in, if anything (chat:
    /// `*** the room is full …`), for the report of its close.
    fn turned_away(&self, _conn: usize) -> Option<&str> {
        None
    }

    /// True when no connection may send before every open connection is [`Workload::ready`]
    /// (chat: a message sent before everyone joined would not reach everyone).
    fn start_together(&self) -> bool {
        false
    }

    /// Whether the reply just judged on `conn` said the server will close the connection
    /// after it (HTTP `Connection: close`); asking clears it. The client then reopens the
    /// connection, as a browser or `wrk` would, instead of waiting for the close.
    fn take_close(&mut self, _conn: usize) -> bool {
        false
    }

    /// Whether connection `conn`, closed by the server after its requests `0..next_k` were
    /// sent, may be opened again and carry on with request `next_k`. Yes for stateless
    /// request/reply protocols; a workload that tracks what the server holds must be sure
    /// nothing was lost on the way.
    fn can_reopen(&self, _conn: usize, _next_k: u64) -> bool {
        true
    }

    /// Fan-out ([`Audience::Others`]): how many of `sender`'s requests `receiver` has heard
    /// so far, which is the number of the next one it expects. When a member leaves, the
    /// requests it had not heard yet need one reply fewer.
    fn heard(&self, _receiver: usize, _sender: usize) -> u64 {
        0
    }
}

/// The workload a run's settings ask for.
pub fn for_config(config: &LoadConfig) -> Box<dyn Workload> {
    match config.service {
        Service::Echo | Service::Udp => Box::new(echo::EchoLoad::new(config.size)),
        Service::Chat => Box::new(chat::ChatLoad::new(config.size, config.conns)),
        Service::Http if config.post => {
            Box::new(http::HttpLoad::post(&config.addr.to_string(), &config.path, config.size))
        }
        Service::Http => Box::new(http::HttpLoad::new(&config.addr.to_string(), &config.path)),
        Service::Kv => Box::new(
            kv::KvLoad::new(config.keys, config.value_size, config.conns)
                .with_password(config.password.clone()),
        ),
    }
}
