//! What each path answers: the route table, and the `/stats` and `/metrics` documents.
//!
//! This is the middle of the HTTP data path. A parsed head (`request.rs`) is routed here by
//! method and path to a [`Route`], once, when the head arrives; after the body (if any) has been
//! read, `mod.rs` turns the route into a reply (`response.rs`). Routing is a `match` on the path:
//! with four paths, a table type would only hide how little there is.
//!
//! `/stats` (JSON) and `/metrics` (Prometheus text exposition format) show the same numbers,
//! taken from one list, [`metrics`], so the two documents cannot drift apart.

use std::time::Instant;

use super::request::Method;
use super::response::{Status, push_decimal};
use crate::stats::Stats;

/// What a request will be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// `GET /`: the precomputed "Hello, World!" reply.
    Hello,
    /// `POST /echo`: the request body comes back.
    Echo,
    /// `GET /stats`: counters as JSON.
    Stats,
    /// `GET /metrics`: counters as Prometheus text.
    Metrics,
    /// `OPTIONS`: 200 with no content and the `Allow` field (RFC 9110 §9.3.7), for a path or
    /// for the server as a whole (`OPTIONS *`).
    Options { allow: &'static str },
    /// No such path: 404.
    NotFound,
    /// A known path, but not this method: 405, with the methods it does allow.
    MethodNotAllowed { allow: &'static str },
    /// A method this server does not know at all: 501 (RFC 9110 §9.1).
    NotImplemented,
}

/// Routes a request. `HEAD` is allowed wherever `GET` is (RFC 9110 §9.3.2: a server SHOULD
/// answer HEAD with the same fields as GET); the caller drops the content. `OPTIONS` is
/// answered everywhere a path exists.
pub(super) fn route(method: Method, path: &[u8]) -> Route {
    const READ_ONLY: &str = "GET, HEAD, OPTIONS";
    if method == Method::Unknown {
        return Route::NotImplemented;
    }
    let (route, allow) = match path {
        b"/" => (Route::Hello, READ_ONLY),
        b"/stats" => (Route::Stats, READ_ONLY),
        b"/metrics" => (Route::Metrics, READ_ONLY),
        b"/echo" => (Route::Echo, "POST, OPTIONS"),
        // Only OPTIONS gets this far with `*` (the parser refuses the rest).
        b"*" => return Route::Options { allow: "GET, HEAD, POST, OPTIONS" },
        // Another spelling of one of the paths above? Asked only here, so the paths people
        // actually send cost nothing more.
        _ => match normalize(path) {
            Some(normal) if normal != path => return route(method, &normal),
            _ => return Route::NotFound,
        },
    };
    let allowed = match route {
        Route::Echo => method == Method::Post,
        _ => matches!(method, Method::Get | Method::Head),
    };
    match method {
        _ if allowed => route,
        Method::Options => Route::Options { allow },
        _ => Route::MethodNotAllowed { allow },
    }
}

/// `path` in the form routes are written in, or `None` if it cannot be one of them (too long,
/// or a `%` not followed by two hex digits).
///
/// Equivalent spellings of a path (RFC 3986 §6.2.2) route alike, as they do in nginx: a
/// percent-encoded unreserved character is that character (`/%65cho` is `/echo`; other
/// escapes, such as `%2F`, stay escaped, as they are data and not a `/`), runs of `/` count
/// as one, and `.` and `..` segments are removed (§5.2.4: `/x/../stats` is `/stats`, and `..`
/// does not climb above the root).
fn normalize(path: &[u8]) -> Option<Vec<u8>> {
    // Longer than any route, even spelled out in escapes and dot segments.
    if path.len() > 256 {
        return None;
    }
    let mut decoded = Vec::with_capacity(path.len());
    let mut rest = path;
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        if b != b'%' {
            decoded.push(b);
            continue;
        }
        let hex = |d: u8| (d as char).to_digit(16);
        let byte = match rest {
            [hi, lo, ..] => hex(*hi)? * 16 + hex(*lo)?,
            _ => return None,
        } as u8;
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            decoded.push(byte);
        } else {
            decoded.extend_from_slice(&path[path.len() - rest.len() - 1..][..3]);
        }
        rest = &rest[2..];
    }
    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let mut normal = Vec::with_capacity(decoded.len());
    for segment in &segments {
        normal.push(b'/');
        normal.extend_from_slice(segment);
    }
    // A trailing `/`, `/.` or `/..` names a directory: keep its slash (`/echo/` is not `/echo`).
    let dir = decoded.ends_with(b"/") || decoded.ends_with(b"/.") || decoded.ends_with(b"/..");
    if normal.is_empty() || dir {
        normal.push(b'/');
    }
    Some(normal)
}

/// The HTTP service's own counters, shown next to the reactor's.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Request heads parsed (whether or not they were then answered with an error).
    pub requests: u64,
    /// Responses sent by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub responses: [u64; 5],
}

impl crate::stats::Tally for Counters {
    fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        for (mine, theirs) in self.responses.iter_mut().zip(other.responses) {
            *mine += theirs;
        }
    }
}

impl Counters {
    /// Counts one response (interim 100s included).
    pub(super) fn count(&mut self, status: Status) {
        let class = usize::from(status.code() / 100).clamp(1, 5) - 1;
        self.responses[class] += 1;
    }
}

/// Whether a Prometheus sample goes up only, or up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// One number, with its names in both documents and its help text.
struct Metric {
    json: &'static str,
    prometheus: &'static str,
    kind: Kind,
    help: &'static str,
    value: u64,
}

/// Every reactor number, in the order both documents list them.
fn metrics(stats: &Stats, now: Instant) -> [Metric; 15] {
    use Kind::{Counter, Gauge};
    let m = |json, prometheus, kind, help, value| Metric { json, prometheus, kind, help, value };
    [
        m(
            "uptime_seconds",
            "reactor_uptime_seconds",
            Gauge,
            "Seconds since the reactor started.",
            stats.uptime(now).as_secs(),
        ),
        m(
            "conns_open",
            "reactor_connections_open",
            Gauge,
            "TCP connections open right now.",
            stats.conns_open,
        ),
        m(
            "conns_total",
            "reactor_connections_accepted_total",
            Counter,
            "TCP connections accepted, refused ones included.",
            stats.conns_total,
        ),
        m(
            "conns_refused",
            "reactor_connections_refused_total",
            Counter,
            "Connections turned away at the connection limit.",
            stats.conns_refused,
        ),
        m(
            "conns_idle_closed",
            "reactor_connections_idle_closed_total",
            Counter,
            "Connections closed by the idle timeout.",
            stats.conns_idle_closed,
        ),
        m(
            "conns_slow_closed",
            "reactor_connections_slow_closed_total",
            Counter,
            "Connections closed because their output buffer passed the hard limit.",
            stats.conns_slow_closed,
        ),
        m("bytes_in", "reactor_read_bytes_total", Counter, "Bytes read from TCP peers.", stats.bytes_in),
        m(
            "bytes_out",
            "reactor_written_bytes_total",
            Counter,
            "Bytes written to TCP peers.",
            stats.bytes_out,
        ),
        m("reads", "reactor_reads_total", Counter, "Reads that delivered bytes to a service.", stats.reads),
        m(
            "input_buffered",
            "reactor_input_buffered_bytes",
            Gauge,
            "Bytes held in connection input buffers.",
            stats.input_buffered,
        ),
        m(
            "output_buffered",
            "reactor_output_buffered_bytes",
            Gauge,
            "Bytes held in connection output buffers.",
            stats.output_buffered,
        ),
        m(
            "datagrams_in",
            "reactor_datagrams_received_total",
            Counter,
            "Datagrams received.",
            stats.datagrams_in,
        ),
        m("datagrams_out", "reactor_datagrams_sent_total", Counter, "Datagrams sent.", stats.datagrams_out),
        m(
            "datagrams_dropped",
            "reactor_datagrams_dropped_total",
            Counter,
            "Datagram replies dropped because the send queue was full.",
            stats.datagrams_dropped,
        ),
        m(
            "accept_pauses",
            "reactor_accept_pauses_total",
            Counter,
            "Times accepting paused because file descriptors ran out.",
            stats.accept_pauses,
        ),
    ]
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Appends the `/stats` document:
/// `{"reactor":{"uptime_seconds":…,…},"http":{"requests":…,"responses":{"1xx":…,…}}}`.
/// Every key is a fixed identifier, so no escaping is needed.
pub(super) fn stats_json(out: &mut Vec<u8>, stats: &Stats, now: Instant, http: &Counters) {
    out.extend_from_slice(b"{\"reactor\":{");
    for (i, metric) in metrics(stats, now).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_pair(out, metric.json, metric.value);
    }
    out.extend_from_slice(b"},\"http\":{");
    json_pair(out, "requests", http.requests);
    out.extend_from_slice(b",\"responses\":{");
    for (i, (class, n)) in CLASSES.iter().zip(http.responses).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_pair(out, class, n);
    }
    out.extend_from_slice(b"}}}\n");
}

fn json_pair(out: &mut Vec<u8>, key: &str, value: u64) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    push_decimal(out, value);
}

/// Appends the `/metrics` document in the Prometheus text exposition format (version 0.0.4):
/// for each metric a `# HELP` line, a `# TYPE` line, then its samples.
pub(super) fn metrics_text(out: &mut Vec<u8>, stats: &Stats, now: Instant, http: &Counters) {
    for metric in metrics(stats, now) {
        describe(out, metric.prometheus, metric.kind, metric.help);
        sample(out, metric.prometheus, None, metric.value);
    }
    describe(out, "http_requests_total", Kind::Counter, "HTTP request heads parsed.");
    sample(out, "http_requests_total", None, http.requests);
    describe(out, "http_responses_total", Kind::Counter, "HTTP responses sent, by status class.");
    for (class, n) in CLASSES.iter().zip(http.responses) {
        sample(out, "http_responses_total", Some(("class", class)), n);
    }
}

fn describe(out: &mut Vec<u8>, name: &str, kind: Kind, help: &str) {
    for part in ["# HELP ", name, " ", help, "\n# TYPE ", name] {
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(match kind {
        Kind::Counter => b" counter\n",
        Kind::Gauge => b" gauge\n",
    });
}

fn sample(out: &mut Vec<u8>, name: &str, label: Option<(&str, &str)>, value: u64) {
    out.extend_from_slice(name.as_bytes());
    if let Some((key, val)) = label {
        for part in ["{", key, "=\"", val, "\"}"] {
            out.extend_from_slice(part.as_bytes());
        }
    }
    out.push(b' ');
    push_decimal(out, value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_path_then_method() {
        assert_eq!(route(Method::Get, b"/"), Route::Hello);
        assert_eq!(route(Method::Head, b"/"), Route::Hello);
        assert_eq!(route(Method::Post, b"/echo"), Route::Echo);
        assert_eq!(route(Method::Get, b"/nope"), Route::NotFound);
        assert_eq!(route(Method::Get, b"/echo"), Route::MethodNotAllowed { allow: "POST, OPTIONS" });
        assert_eq!(
            route(Method::Other, b"/metrics"),
            Route::MethodNotAllowed { allow: "GET, HEAD, OPTIONS" }
        );
        assert_eq!(route(Method::Options, b"/stats"), Route::Options { allow: "GET, HEAD, OPTIONS" });
        assert_eq!(route(Method::Options, b"*"), Route::Options { allow: "GET, HEAD, POST, OPTIONS" });
        // A method nobody defined is 501 wherever it goes, even where no path is.
        assert_eq!(route(Method::Unknown, b"/nope"), Route::NotImplemented);
    }

    #[test]
    fn other_spellings_of_a_path_route_alike() {
        for (path, normal) in [
            (&b"/%65cho"[..], &b"/echo"[..]),
            (b"/%65%63%68%6F", b"/echo"),
            (b"//stats", b"/stats"),
            (b"/x/../stats", b"/stats"),
            (b"/./metrics", b"/metrics"),
            (b"/../../stats", b"/stats"),
            (b"/stats/.", b"/stats/"),
            (b"/x/..", b"/"),
            (b"/%2Fstats", b"/%2Fstats"),
            (b"/echo/", b"/echo/"),
        ] {
            assert_eq!(normalize(path).as_deref(), Some(normal), "{}", String::from_utf8_lossy(path));
        }
        assert_eq!(normalize(b"/%6"), None);
        assert_eq!(normalize(b"/%zz"), None);
        assert_eq!(route(Method::Post, b"/%65cho"), Route::Echo);
        assert_eq!(route(Method::Get, b"/x/../stats"), Route::Stats);
        assert_eq!(route(Method::Get, b"/a/.."), Route::Hello);
        // Not another spelling: an escaped `/` is data, and a directory is not the file.
        assert_eq!(route(Method::Get, b"/%2Fstats"), Route::NotFound);
        assert_eq!(route(Method::Get, b"/stats/"), Route::NotFound);
        assert_eq!(route(Method::Get, b"/nope"), Route::NotFound);
    }

    #[test]
    fn counts_by_class() {
        let mut c = Counters::default();
        c.count(Status::Continue);
        c.count(Status::Ok);
        c.count(Status::NotFound);
        c.count(Status::VersionNotSupported);
        assert_eq!(c.responses, [1, 1, 0, 1, 1]);
    }
}
