//! What a run found, and the three ways of printing it: text laid out like `wrk`'s, one JSON
//! object, or one CSV header and row. `docs/load.md` explains every field.
//!
//! The machine-readable records come from one place: [`Report::record`] lists every field
//! once, as `(name, value)`; JSON and CSV are two spellings of that list, so they can never
//! disagree about what a run measured. The text is laid out for people and reads the same
//! fields.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use super::tally::{Reasons, Tally};
use super::{LoadConfig, Service, Stop};
use crate::fdlimit::FdLimit;

/// The percentiles every report shows.
pub const PERCENTILES: [f64; 5] = [50.0, 90.0, 99.0, 99.9, 99.99];

/// Record field names of the two histograms: one per percentile, then the maximum.
const HISTOGRAM_FIELDS: [[&str; 6]; 2] = [
    [
        "latency_p50_us",
        "latency_p90_us",
        "latency_p99_us",
        "latency_p99_9_us",
        "latency_p99_99_us",
        "latency_max_us",
    ],
    [
        "uncorrected_p50_us",
        "uncorrected_p90_us",
        "uncorrected_p99_us",
        "uncorrected_p99_9_us",
        "uncorrected_p99_99_us",
        "uncorrected_max_us",
    ],
];

/// Everything a run measured, with the settings it ran with.
#[derive(Debug)]
pub struct Report {
    /// The settings.
    pub config: LoadConfig,
    /// Wall-clock start and end of the whole run (connects and warm-up included).
    pub started: SystemTime,
    /// See `started`.
    pub ended: SystemTime,
    /// The measured window: from the end of the warm-up to the deadline (`--duration`), or
    /// from the first measured request to the last measured reply (`--requests`).
    pub window: Duration,
    /// The counts. `tally.latency` is from intended send time (the corrected one with
    /// `--rate`); `tally.uncorrected` from actual send time.
    pub tally: Tally,
    /// The file-descriptor limit during the run.
    pub fd: FdLimit,
}

/// One value of a machine-readable record.
#[derive(Debug, Clone)]
pub enum Value {
    /// A string.
    Str(String),
    /// A yes or no (JSON `true`/`false`, so `jq -e .verified` fails on a failed run).
    Bool(bool),
    /// A count.
    Int(u64),
    /// A measurement.
    Float(f64),
    /// Not applicable (JSON `null`, CSV empty).
    Null,
    /// Counts by reason (JSON object, CSV `reason: n; reason: n`).
    Reasons(Reasons),
}

impl Report {
    /// Builds the report; adds the warnings a reader must not miss.
    pub fn new(
        config: &LoadConfig,
        mut tally: Tally,
        started: SystemTime,
        ended: SystemTime,
        window: Duration,
        fd: FdLimit,
    ) -> Self {
        let opened = tally.conns_opened;
        if opened < config.conns as u64 {
            tally.warn(format!(
                "ONLY {opened} OF {} CONNECTIONS OPENED: the load was lighter than asked (see connect errors)",
                config.conns
            ));
        }
        // (An interrupted run says so itself: nothing closed, it was stopped.)
        let interrupted = config.interrupted();
        if let Stop::Requests(asked) = config.stop
            && tally.sent < asked
            && !interrupted
        {
            tally.warn(format!(
                "ONLY {} OF {asked} REQUESTS WERE SENT: every connection had closed before the rest could go \
                 (see the errors)",
                tally.sent
            ));
        }
        let mut report = Report { config: config.clone(), started, ended, window, tally, fd };
        if let Some(target) = config.rate {
            // The rate at which requests actually went out, first to last, and how many that
            // were due never did: completions ÷ window would also miss the requests still on
            // their way when the window closed, and warn on a short run against a server
            // that kept up.
            // Slow means 1% under the target *and* at least one whole request behind it: at
            // 3 per second, the last of three sends 13 ms late is 2% slow, and no request late.
            let unsent = report.tally.unsent_at_end;
            let slow = report.tally.send_rate().is_some_and(|achieved| achieved < target * 0.99)
                && report.tally.behind(target).is_some_and(|behind| behind >= 1.0);
            if slow || unsent > 0 {
                let went = match report.tally.send_rate() {
                    Some(rate) => format!("requests went out at {rate:.1} of {target:.1} per second"),
                    None => format!("only {} request(s) went out", report.tally.sent),
                };
                let never = if unsent > 0 {
                    format!(", and {unsent} that were due never did")
                } else {
                    String::new()
                };
                report.tally.warn(format!(
                    "target rate not reached: {went}{never}; the corrected latencies show what the \
                     missing requests waited"
                ));
            }
        }
        report
    }

    /// Completed requests per second of the measured window.
    pub fn requests_per_sec(&self) -> f64 {
        per_sec(self.tally.completed, self.window)
    }

    /// Megabytes (10^6 bytes) received per second.
    pub fn mb_in_per_sec(&self) -> f64 {
        per_sec(self.tally.bytes_in, self.window) / 1e6
    }

    /// Megabytes sent per second.
    pub fn mb_out_per_sec(&self) -> f64 {
        per_sec(self.tally.bytes_out, self.window) / 1e6
    }

    /// True when at least one reply came and every reply was right. Timeouts and errors are
    /// reported but do not make a run fail: a server under overload may time out honestly; it
    /// may never answer wrongly. A run that completed nothing verified nothing, and says so.
    pub fn verified(&self) -> bool {
        self.tally.mismatches == 0 && self.tally.completed > 0
    }

    /// The report as text, laid out like `wrk`'s.
    pub fn render_text(&self) -> String {
        let c = &self.config;
        let t = &self.tally;
        let mut s = String::new();
        let stop = match c.stop {
            Stop::Duration(d) => format!("{:.2}s", d.as_secs_f64()),
            Stop::Requests(n) => format!("{n}-request"),
        };
        let tls = if c.tls.is_some() { " over TLS" } else { "" };
        let _ = writeln!(s, "Running {stop} {} test @ {}{tls}", c.service.name(), c.addr);
        let mode = match c.rate {
            Some(r) => format!("open loop at {r} requests/s"),
            None => "closed loop".into(),
        };
        let warm = if c.warmup.is_zero() {
            String::new()
        } else {
            format!(", {:.1}s warm-up", c.warmup.as_secs_f64())
        };
        let what = match c.service {
            Service::Kv => {
                // Each connection owns whole keys: say how many were used when that is not
                // exactly --keys (1000 over 7 connections is 7 × 142 = 994).
                let per = super::workload::kv::keys_per_conn(c.keys, c.conns);
                match per * c.conns {
                    used if used == c.keys => {
                        format!("SET/GET of {}-byte values over {used} keys", c.value_size)
                    }
                    used => format!(
                        "SET/GET of {}-byte values over {used} keys ({per} per connection, of --keys {})",
                        c.value_size, c.keys
                    ),
                }
            }
            Service::Http if c.post => format!("POST {} of {}-byte bodies", c.path, c.size),
            Service::Http => format!("GET {}", c.path),
            _ => format!("{}-byte requests", c.size),
        };
        let reopened = if t.reconnects > 0 {
            format!(", reopened {} times after a close or a timeout", t.reconnects)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  {} connections ({} opened{reopened}), depth {}, {what}, {mode}{warm}",
            c.conns, t.conns_opened, c.depth
        );
        let lat = &t.latency;
        // No reply, no latency: "n/a" rather than a 0us that reads as a perfect result.
        let measured = |h: &Histogram<u64>, v: f64| if h.is_empty() { "n/a".to_string() } else { us(v) };
        let _ = writeln!(s, "  Latency     {:>10} {:>10} {:>10}", "Avg", "Stdev", "Max");
        let _ = writeln!(
            s,
            "              {:>10} {:>10} {:>10}",
            measured(lat, lat.mean()),
            measured(lat, lat.stdev()),
            measured(lat, lat.max() as f64)
        );
        let open = c.rate.is_some();
        if open {
            let _ = writeln!(s, "  Latency Distribution  {:>12} {:>12}", "corrected", "uncorrected");
        } else {
            let _ = writeln!(s, "  Latency Distribution");
        }
        for p in PERCENTILES.iter().copied().chain([100.0]) {
            let label = if p == 100.0 { "  max".to_string() } else { format!("{p:>6}%") };
            let v = |h: &Histogram<u64>| if p == 100.0 { h.max() } else { h.value_at_quantile(p / 100.0) };
            if open {
                let _ = writeln!(
                    s,
                    "    {label:<9}        {:>12} {:>12}",
                    measured(lat, v(lat) as f64),
                    measured(&t.uncorrected, v(&t.uncorrected) as f64)
                );
            } else {
                let _ = writeln!(s, "    {label:<9} {:>10}", measured(lat, v(lat) as f64));
            }
        }
        let _ = writeln!(
            s,
            "  {} requests in {:.2}s, {} sent, {} received",
            t.completed,
            self.window.as_secs_f64(),
            bytes(t.bytes_out),
            bytes(t.bytes_in)
        );
        let _ = writeln!(s, "Requests/sec: {:>12.2}", self.requests_per_sec());
        let _ = writeln!(
            s,
            "Transfer/sec: {:>10.2}MB in, {:.2}MB out",
            self.mb_in_per_sec(),
            self.mb_out_per_sec()
        );
        if let Some(target) = c.rate {
            let sent = self.tally.send_rate().unwrap_or(0.0);
            let _ = writeln!(
                s,
                "Target rate:  {target:>12.2} (sent at {sent:.2}, completed at {:.2})",
                self.requests_per_sec()
            );
        }
        let sum = |r: &Reasons| r.values().sum::<u64>();
        let refused = sum(&t.refused);
        let _ = writeln!(
            s,
            "Errors: connect {}, read {}, write {}, timeouts {}, mismatches {}, refused {}",
            sum(&t.connect_errors),
            sum(&t.read_errors),
            sum(&t.write_errors),
            t.timeouts,
            t.mismatches,
            refused
        );
        let _ = writeln!(
            s,
            "Unfinished: {} in flight at the end, {}{} abandoned with their connection{}",
            t.in_flight_at_end,
            if c.rate.is_some() {
                format!("{} due but never sent, ", t.unsent_at_end)
            } else {
                String::new()
            },
            t.abandoned,
            if t.late > 0 { format!(", {} late replies", t.late) } else { String::new() }
        );
        for (what, reasons) in [
            ("connect error", &t.connect_errors),
            ("read error", &t.read_errors),
            ("write error", &t.write_errors),
            ("refused", &t.refused),
        ] {
            for (why, n) in reasons {
                let _ = writeln!(s, "  {what}: {why} (×{n})");
            }
        }
        for m in &t.mismatch_examples {
            let _ = writeln!(s, "  MISMATCH {m}");
        }
        for w in &t.warnings {
            let _ = writeln!(s, "WARNING: {w}");
        }
        s
    }

    /// Every field of the run, in a fixed order: the single source of JSON and CSV output.
    pub fn record(&self) -> Vec<(&'static str, Value)> {
        use Value::*;
        let c = &self.config;
        let t = &self.tally;
        let (duration, requests) = match c.stop {
            Stop::Duration(d) => (Float(d.as_secs_f64()), Null),
            Stop::Requests(n) => (Null, Int(n)),
        };
        let mut r = vec![
            ("service", Str(c.service.name().into())),
            ("addr", Str(c.addr.to_string())),
            ("conns", Int(c.conns as u64)),
            ("depth", Int(c.depth as u64)),
            ("size", Int(c.size as u64)),
            ("keys", Int(c.keys as u64)),
            ("value_size", Int(c.value_size as u64)),
            ("path", Str(c.path.clone())),
            ("tls", Bool(c.tls.is_some())),
            ("duration_s", duration),
            ("requests_asked", requests),
            ("warmup_s", Float(c.warmup.as_secs_f64())),
            ("rate_target", c.rate.map_or(Null, Float)),
            ("timeout_s", Float(c.timeout.as_secs_f64())),
            ("started", Str(rfc3339(self.started))),
            ("ended", Str(rfc3339(self.ended))),
            ("started_unix", Float(unix(self.started))),
            ("ended_unix", Float(unix(self.ended))),
            ("window_s", Float(self.window.as_secs_f64())),
            ("conns_opened", Int(t.conns_opened)),
            ("reconnects", Int(t.reconnects)),
            ("sent", Int(t.sent)),
            ("completed", Int(t.completed)),
            ("requests_per_sec", Float(self.requests_per_sec())),
            ("mb_in_per_sec", Float(self.mb_in_per_sec())),
            ("mb_out_per_sec", Float(self.mb_out_per_sec())),
            ("bytes_in", Int(t.bytes_in)),
            ("bytes_out", Int(t.bytes_out)),
        ];
        // No reply, no latency: `null`, not a 0 that reads as a perfect result.
        let (lat, none) = (&t.latency, t.latency.is_empty());
        let float = |v: f64| if none { Null } else { Float(v) };
        r.extend([("latency_mean_us", float(lat.mean())), ("latency_stdev_us", float(lat.stdev()))]);
        for (keys, h) in HISTOGRAM_FIELDS.iter().zip([&t.latency, &t.uncorrected]) {
            let int = |v: u64| if h.is_empty() { Null } else { Int(v) };
            for (key, p) in keys.iter().zip(PERCENTILES) {
                r.push((key, int(h.value_at_quantile(p / 100.0))));
            }
            r.push((keys[PERCENTILES.len()], int(h.max())));
        }
        r.extend([
            ("mismatches", Int(t.mismatches)),
            ("timeouts", Int(t.timeouts)),
            ("late", Int(t.late)),
            ("abandoned", Int(t.abandoned)),
            ("in_flight_at_end", Int(t.in_flight_at_end)),
            ("unsent_at_end", Int(t.unsent_at_end)),
            ("connect_errors", Reasons(t.connect_errors.clone())),
            ("read_errors", Reasons(t.read_errors.clone())),
            ("write_errors", Reasons(t.write_errors.clone())),
            ("refused", Reasons(t.refused.clone())),
            ("mismatch_examples", Str(t.mismatch_examples.join(" | "))),
            ("warnings", Str(t.warnings.join(" | "))),
            ("fd_soft_limit", Int(self.fd.soft)),
            ("fd_hard_limit", Int(self.fd.hard)),
            ("verified", Bool(self.verified())),
            // Last: added after the rest, so that scripts that read the CSV by column number
            // still find every older column where it was.
            ("post", Bool(c.post)),
            // With `--rate`: the rate requests actually went out at (the text's "sent at").
            ("send_rate", c.rate.and(t.send_rate()).map_or(Null, Float)),
        ]);
        r
    }

    /// The record as one JSON object on one line.
    pub fn to_json(&self) -> String {
        let fields: Vec<String> =
            self.record().into_iter().map(|(k, v)| format!("{}:{}", json_str(k), v.json())).collect();
        format!("{{{}}}", fields.join(","))
    }

    /// The record as a CSV header line and one data line (RFC 4180 quoting).
    pub fn to_csv(&self) -> String {
        let record = self.record();
        let header: Vec<&str> = record.iter().map(|(k, _)| *k).collect();
        let row: Vec<String> = record.iter().map(|(_, v)| v.csv()).collect();
        format!("{}\n{}\n", header.join(","), row.join(","))
    }
}

impl Value {
    fn json(&self) -> String {
        match self {
            Value::Str(s) => json_str(s),
            Value::Bool(b) => b.to_string(),
            Value::Int(n) => n.to_string(),
            Value::Float(f) if f.is_finite() => format!("{f}"),
            Value::Float(_) | Value::Null => "null".into(),
            Value::Reasons(r) => {
                let items: Vec<String> = r.iter().map(|(k, n)| format!("{}:{n}", json_str(k))).collect();
                format!("{{{}}}", items.join(","))
            }
        }
    }

    fn csv(&self) -> String {
        let text = match self {
            Value::Str(s) => s.clone(),
            Value::Null => String::new(),
            Value::Reasons(r) => r.iter().map(|(k, n)| format!("{k}: {n}")).collect::<Vec<_>>().join("; "),
            other => other.json(),
        };
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    }
}

/// A JSON string literal (RFC 8259 §7).
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn per_sec(n: u64, window: Duration) -> f64 {
    if window.is_zero() { 0.0 } else { n as f64 / window.as_secs_f64() }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// `2024-05-01T12:34:56.789Z`. Days to a civil date by Howard Hinnant's `civil_from_days`.
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Microseconds in the unit that reads best: `87us`, `1.25ms`, `2.10s`.
fn us(v: f64) -> String {
    if v < 1_000.0 {
        format!("{v:.0}us")
    } else if v < 1_000_000.0 {
        format!("{:.2}ms", v / 1e3)
    } else {
        format!("{:.2}s", v / 1e6)
    }
}

fn bytes(n: u64) -> String {
    if n < 1_000_000 { format!("{:.1}KB", n as f64 / 1e3) } else { format!("{:.1}MB", n as f64 / 1e6) }
}

/// The once-a-second progress line (only when stdout is a terminal: see `cli`).
pub struct Live {
    next: Instant,
    last_completed: u64,
    measure_start: Instant,
}

impl Live {
    /// A live line that starts printing one second from now.
    pub fn new(measure_start: Instant) -> Self {
        Live { next: Instant::now() + Duration::from_secs(1), last_completed: 0, measure_start }
    }

    /// Prints a line when a second has passed.
    pub fn tick(&mut self, now: Instant, tally: &Tally) {
        if now < self.next {
            return;
        }
        self.next += Duration::from_secs(1);
        let mut out = std::io::stdout().lock();
        if now < self.measure_start {
            // Nothing of the warm-up is counted, so there is no rate or latency to show: a
            // "0 req/s" here read as a server that was not answering.
            let _ = writeln!(
                out,
                "  [warm-up]   (not measured)  conns {}  failures {}",
                tally.conns_opened,
                tally.failures()
            );
        } else {
            let done = tally.completed - self.last_completed;
            self.last_completed = tally.completed;
            let _ = writeln!(
                out,
                "  [measuring] {done:>9} req/s  p99 {:>8}  conns {}  failures {}",
                us(tally.latency.value_at_quantile(0.99) as f64),
                tally.conns_opened,
                tally.failures()
            );
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An open-loop run is "slow" only when its sending fell a whole request behind the target,
    /// not when a scheduling hiccup of a few milliseconds moved its last send (a slow CI
    /// machine did that to a run of three requests at 3 per second).
    #[test]
    fn a_rate_is_missed_only_by_a_whole_request() {
        let addr = "127.0.0.1:1".parse().unwrap();
        let config = LoadConfig { rate: Some(3.0), ..LoadConfig::new(crate::load::Service::Echo, addr) };
        let report = |sent: u64, span: Duration| {
            let mut tally = Tally::new(&config);
            tally.conns_opened = config.conns as u64;
            let first = std::time::Instant::now();
            tally.send_span = Some((first, first + span));
            tally.sent = sent;
            let now = SystemTime::now();
            let fd = crate::fdlimit::FdLimit { soft: 1024, hard: 1024 };
            Report::new(&config, tally, now, now, Duration::from_secs(1), fd)
        };
        // Three sends over 0.680 s instead of 0.667 (the last 13 ms late): 2.94 per second,
        // 2% under the target, but 0.04 requests behind.
        assert!(report(3, Duration::from_millis(680)).tally.warnings.is_empty());
        // Twenty sends over 10 s at a target of 3 per second: 11 requests behind.
        let slow = report(20, Duration::from_secs(10));
        assert!(
            slow.tally.warnings.iter().any(|w| w.contains("target rate not reached")),
            "{:?}",
            slow.tally.warnings
        );
    }

    #[test]
    fn dates_and_strings_are_spelled_by_the_standards() {
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_250)), "2000-02-29T00:00:00.250Z");
        assert_eq!(json_str("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
        assert_eq!(Value::Str("x,\"y\"".into()).csv(), r#""x,""y""""#);
    }
}
