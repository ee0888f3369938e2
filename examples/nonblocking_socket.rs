//! Step 3: non-blocking sockets, and why they are not enough on their own.
//!
//! The blocking server (step 1) can serve one client: while it waits in `accept` or `read` it
//! can do nothing else. Here every socket is switched to non-blocking with
//! `set_nonblocking(true)`: a call that would have waited returns at once with
//! [`io::ErrorKind::WouldBlock`] ("nothing yet, try later"). One thread can then serve several
//! clients, as an echo server, by asking each socket in turn.
//!
//! But *when* to ask again? This example does the naive thing, a busy-poll loop: try every
//! socket, and if none had anything, sleep 10 ms and try again. That costs on both sides:
//! - **CPU**: with 10,000 idle clients, every turn makes 10,000 system calls that all answer
//!   "nothing", about 100 turns a second, to find the one client that spoke;
//! - **latency**: a message that arrives just after a check waits for the sleep to end.
//!
//! The statistics printed at the end show how many turns found nothing to do. The fix is to
//! let the kernel say which sockets are ready: readiness notification (epoll on Linux, kqueue
//! on BSD and macOS), which `mio` wraps. That is step 4, `mio_loop.rs`.
//!
//! The server stops by itself after a while (30 s by default) so it cannot be left spinning.
//!
//! ```text
//! terminal 1: cargo run --example nonblocking_socket           # or: ... -- PORT SECONDS
//! terminal 2: nc 127.0.0.1 12345        (type lines; they come back)
//! terminal 3: nc 127.0.0.1 12345        (a second client, served at the same time)
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

/// How long one idle turn sleeps. Shorter: more wasted system calls. Longer: slower replies.
const IDLE_SLEEP: Duration = Duration::from_millis(10);

/// A client and the bytes it sent that we could not send back yet (the kernel's send buffer
/// was full: a non-blocking `write` may take only part of what it is given).
struct Client {
    stream: TcpStream,
    peer: SocketAddr,
    pending: Vec<u8>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nonblocking_socket: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = parse_arg(args.next(), 12345, "port")?;
    let seconds: u64 = parse_arg(args.next(), 30, "seconds")?;

    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind 127.0.0.1:{port}: {e}")))?;
    // From now on `accept` returns WouldBlock instead of waiting for a client.
    listener.set_nonblocking(true)?;
    println!("Echo server on 127.0.0.1:{port}, busy-polling for {seconds} s");

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut clients: Vec<Client> = Vec::new();
    let (mut turns, mut idle_turns) = (0u64, 0u64);

    while Instant::now() < deadline {
        turns += 1;
        let mut progress = accept_all(&listener, &mut clients);
        // Serve each client; drop those that closed or failed. One bad client must not take
        // the server down, so its error is printed, not returned.
        clients.retain_mut(|client| match serve(client) {
            Ok(Some(moved)) => {
                progress |= moved;
                true
            }
            Ok(None) => {
                println!("{} closed the connection", client.peer);
                progress = true;
                false
            }
            Err(e) => {
                println!("{}: {e}; dropping it", client.peer);
                false
            }
        });
        if !progress {
            // Nothing happened on any socket. We cannot know when something will, so guess.
            idle_turns += 1;
            thread::sleep(IDLE_SLEEP);
        }
    }

    println!(
        "Time is up. {turns} turns, {idle_turns} of them found nothing to do ({:.1}%), \
         each asking every socket.",
        100.0 * idle_turns as f64 / turns.max(1) as f64
    );
    Ok(())
}

/// Accepts every connection waiting in the backlog. Returns true if there was one.
fn accept_all(listener: &TcpListener, clients: &mut Vec<Client>) -> bool {
    let mut accepted = false;
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                // On Linux an accepted socket never inherits O_NONBLOCK from the listener (the
                // BSDs and macOS do): without this, the first read from a quiet client would
                // block every other client.
                if let Err(e) = stream.set_nonblocking(true) {
                    println!("{peer}: cannot make it non-blocking: {e}");
                    continue;
                }
                println!("Connection from {peer} has been established.");
                clients.push(Client { stream, peer, pending: Vec::new() });
                accepted = true;
            }
            // The backlog is empty: the non-blocking "not now".
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return accepted,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Out of file descriptors and the like: try again next turn, keep serving.
            Err(e) => {
                println!("accept failed: {e}");
                return accepted;
            }
        }
    }
}

/// Reads what the client sent and echoes it. Returns whether anything moved, or `None` once
/// the client closed and everything was echoed.
fn serve(client: &mut Client) -> io::Result<Option<bool>> {
    let mut moved = false;
    let mut buf = [0u8; 4096];
    let mut eof = false;
    // Read until WouldBlock, but hold back while 64 KiB are still unsent: a client that sends
    // without reading its echoes must not make us buffer without limit.
    while client.pending.len() < 64 * 1024 {
        match client.stream.read(&mut buf) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => {
                client.pending.extend_from_slice(&buf[..n]);
                moved = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // Write until done or WouldBlock; keep what the kernel did not take for the next turn.
    while !client.pending.is_empty() {
        match client.stream.write(&client.pending) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                client.pending.drain(..n);
                moved = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // A peer that closed its side may still be reading: finish echoing before we let go.
    Ok(if eof && client.pending.is_empty() { None } else { Some(moved) })
}

fn parse_arg<T: std::str::FromStr>(arg: Option<String>, default: T, what: &str) -> io::Result<T> {
    match arg {
        None => Ok(default),
        Some(s) => {
            s.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("bad {what} {s:?}")))
        }
    }
}
