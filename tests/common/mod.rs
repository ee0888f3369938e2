//! Shared helpers for the integration tests: start a reactor in-process on port 0, or the
//! real `reactor` binary, and small blocking-socket utilities.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reactor::reactor::{Config, Handle, Reactor};
use reactor::service::echo::{Echo, UdpEcho};

/// An in-process reactor serving TCP and UDP echo, stopped when dropped.
pub struct Server {
    pub tcp: SocketAddr,
    pub udp: SocketAddr,
    pub handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Runs a reactor a test set up itself (for services other than echo) on its own thread;
    /// `tcp` is the address the test will mostly talk to.
    pub fn run(reactor: Reactor, tcp: SocketAddr) -> Server {
        let handle = reactor.handle();
        let thread = std::thread::spawn(move || {
            reactor.run().expect("reactor run");
        });
        Server { tcp, udp: tcp, handle, thread: Some(thread) }
    }

    /// Waits for the reactor thread to return (after `handle.shutdown()`), with a deadline.
    pub fn join(mut self, within: Duration) {
        join_within(self.thread.take().expect("joined once"), within);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.stop();
            let _ = thread.join();
        }
    }
}

/// Starts TCP and UDP echo on 127.0.0.1:0 with `config`.
pub fn echo_server(config: Config) -> Server {
    let mut reactor = Reactor::new(config).expect("reactor");
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let tcp = reactor.serve(any, Echo).expect("bind tcp");
    let udp = reactor.serve_datagrams(any, UdpEcho).expect("bind udp");
    let mut server = Server::run(reactor, tcp);
    server.udp = udp;
    server
}

/// A client socket with timeouts, so a broken server fails a test instead of hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

/// Reads exactly `n` bytes.
pub fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).expect("read_exact");
    buf
}

/// Deterministic pseudo-random bytes (xorshift), so failures are reproducible.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The `reactor` binary started with `args`, its bound addresses read from its stdout.
pub struct Binary {
    pub child: Child,
    pub addrs: Vec<(String, SocketAddr)>,
}

impl Binary {
    pub fn start(args: &[&str]) -> Binary {
        Binary::start_with(args, |_| {})
    }

    /// [`Binary::start`], with `configure` applied to the command last (another `RUST_LOG`,
    /// stderr to a file).
    pub fn start_with(args: &[&str], configure: impl FnOnce(&mut Command)) -> Binary {
        let mut command = Command::new(env!("CARGO_BIN_EXE_reactor"));
        command.args(args).env("RUST_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::piped());
        configure(&mut command);
        let mut child = command.spawn().expect("spawn reactor");
        // Read stdout on a thread so that a binary that never prints fails the test after a
        // while instead of blocking it forever.
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut addrs = Vec::new();
        // One line per bound socket: "NAME listening on SCHEME://ADDR". Read until we have as
        // many as the args asked for (or at least one when none were named).
        let expected = args.iter().filter(|a| a.starts_with("--") && is_listener_flag(a)).count().max(1);
        while addrs.len() < expected {
            let line = rx.recv_timeout(CLIENT_LIMIT).expect("reactor exited or hung before binding");
            let (name, rest) = line.split_once(' ').expect("name");
            let url = rest.rsplit(' ').next().expect("url");
            let addr = url.split("://").nth(1).expect("scheme").parse().expect("addr");
            addrs.push((format!("{}:{}", name, url.split("://").next().unwrap()), addr));
        }
        Binary { child, addrs }
    }

    /// The address printed for `name:scheme` (e.g. "echo:tcp").
    pub fn addr(&self, key: &str) -> SocketAddr {
        self.addrs.iter().find(|(k, _)| k == key).map(|(_, a)| *a).expect("no such socket")
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill").args([sig, &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Waits for exit with a deadline; returns the status code.
    pub fn wait(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "reactor did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident set size of the server process in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

fn is_listener_flag(arg: &str) -> bool {
    matches!(arg, "--echo" | "--udp-echo" | "--chat" | "--http" | "--kv")
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a client program a test runs may take before the test fails.
pub const CLIENT_LIMIT: Duration = Duration::from_secs(60);

/// Runs `cmd` to the end and returns what it printed, like [`Command::output`], but kills it
/// and fails the test if it has not exited within [`CLIENT_LIMIT`]: a client that hangs must
/// not hang CI with it (the test harness waits forever for a test that never returns).
pub fn output(cmd: &mut Command) -> Output {
    output_with_input(cmd, &[])
}

/// [`output`], with `input` written to the program's standard input and then closed.
pub fn output_with_input(cmd: &mut Command, input: &[u8]) -> Output {
    let within = CLIENT_LIMIT;
    let mut child = cmd
        .stdin(if input.is_empty() { Stdio::null() } else { Stdio::piped() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        // On a thread: a program that answers before it has read everything would otherwise
        // deadlock with us on full pipes.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    // Read both pipes on threads so a child that fills one cannot block on it while we wait.
    let stdout = read_all_on_a_thread(child.stdout.take());
    let stderr = read_all_on_a_thread(child.stderr.take());
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let (out, err) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
            panic!(
                "{cmd:?} did not exit within {within:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Reads `pipe` to its end on a thread of its own; the thread returns the bytes.
fn read_all_on_a_thread<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// Joins `thread`, failing the test if it has not finished `within`.
pub fn join_within<T>(thread: JoinHandle<T>, within: Duration) -> T {
    let deadline = Instant::now() + within;
    while !thread.is_finished() {
        assert!(Instant::now() < deadline, "a test thread did not finish within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    match thread.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Whether `program` is installed. Tests of third-party clients skip (saying so) when it is
/// not; `.ci/run` installs them.
pub fn have(program: &str) -> bool {
    let found = std::process::Command::new("sh").args(["-c", &format!("command -v {program}")]).output();
    let ok = found.is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("note: {program} is not installed; skipping (CI installs it)");
    }
    ok
}

/// A RESP2 request: a multibulk array of bulk strings, as redis-cli sends it.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut r = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        r.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        r.extend_from_slice(a);
        r.extend_from_slice(b"\r\n");
    }
    r
}
