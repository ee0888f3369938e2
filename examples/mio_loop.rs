//! Step 4: a readiness loop with mio. The kernel tells us which sockets are ready, so one
//! thread serves many clients without the busy-polling of step 3.
//!
//! `Poll::poll` sleeps until at least one registered socket is ready (epoll on Linux) and
//! returns only those: an idle server makes no system calls at all, and a message is handled
//! as soon as it arrives. The pieces, each the seed of a part of `src/reactor/`:
//!
//! - **Non-blocking from birth.** mio's `bind` and `accept` create sockets that are already
//!   non-blocking (`accept4` with `SOCK_NONBLOCK`), so step 3's `set_nonblocking` calls are gone.
//! - **Tokens.** Each registered socket carries a `Token` (a `usize`). The listener has a fixed
//!   one; each connection's token is its key in a [`slab::Slab`], a `Vec` with a free list, so
//!   an event finds its connection by index, and freed slots are reused.
//! - **Edge-triggered readiness.** mio reports a socket when it *becomes* ready, not while it
//!   stays ready. So on each event we read (and accept) until `WouldBlock`; stopping earlier
//!   would leave bytes no new event will announce.
//! - **Partial writes.** A non-blocking `write` may take only part of the buffer. The rest stays
//!   in the connection's output buffer.
//! - **WRITABLE only while output is pending.** We write right after reading. Only when the
//!   kernel refuses part of it do we ask for `WRITABLE` events, and we drop that interest once
//!   the buffer is empty; otherwise we would be woken for every writable socket, all the time.
//! - **Backpressure.** While a client has too much unsent output, we stop reading from it;
//!   TCP's flow control then slows the client down.
//!
//! ```text
//! terminal 1: cargo run --example mio_loop                 # or: ... mio_loop -- 127.0.0.1:4000
//! terminal 2: nc 127.0.0.1 12345        (type lines; they come back)
//! terminal 3: nc 127.0.0.1 12345        (and another)
//! ```
//!
//! Stop it with Ctrl-C. The real reactor adds what this leaves out: timers, per-turn budgets,
//! limits, graceful shutdown, and services instead of a hard-coded echo.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

/// The listener's token. Connections use their slab keys, which start at 0, so the listener
/// takes the other end of the range.
const LISTENER: Token = Token(usize::MAX);

/// Stop reading from a client while this much of its echo is still unsent.
const MAX_PENDING: usize = 64 * 1024;

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes read but not yet written back.
    out: Vec<u8>,
    /// Whether we asked for WRITABLE events (true exactly while `out` is not empty).
    wants_write: bool,
    /// The client closed its side; we close ours once `out` is sent.
    read_closed: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mio_loop: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("bad address {arg:?}")))?,
        None => SocketAddr::from(([127, 0, 0, 1], 12345)),
    };

    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(256);
    let mut listener =
        TcpListener::bind(addr).map_err(|e| io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: Slab<Conn> = Slab::new();
    println!("Echo server on {addr} (mio readiness loop)");

    loop {
        // Sleep until something is ready. EINTR (a signal arrived) is not an error: poll again.
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => accept_all(&poll, &listener, &mut conns),
                token => {
                    // The slot may be empty (the connection closed earlier in this batch of
                    // events) or even reused by a newer connection. Driving a connection that
                    // has nothing to do is harmless: its loops stop at the first WouldBlock.
                    // (The reactor's ConnId carries a serial number to tell them apart.)
                    let Some(conn) = conns.get_mut(token.0) else {
                        continue;
                    };
                    // Whatever the event says, drive the connection as far as it goes: the
                    // read and write loops find out for themselves what is possible.
                    let result = drive(conn).and_then(|keep| {
                        if keep {
                            update_interest(&poll, conn, token)?;
                        }
                        Ok(keep)
                    });
                    let keep = match result {
                        Ok(keep) => keep,
                        Err(e) => {
                            println!("{}: {e}", conn.peer);
                            false
                        }
                    };
                    if !keep {
                        // Dropping the stream closes the socket, which also removes it from
                        // epoll; removing it from the slab frees the token for reuse.
                        let conn = conns.remove(token.0);
                        println!("{} disconnected", conn.peer);
                    }
                }
            }
        }
    }
}

/// Accepts until the backlog is empty (edge-triggered: one event may stand for many clients).
fn accept_all(poll: &Poll, listener: &TcpListener, conns: &mut Slab<Conn>) {
    loop {
        let (mut stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Out of file descriptors, for example. Keep serving the clients we have; the
            // listener will be reported again. (The reactor pauses accepting for a moment here
            // instead, so a full backlog cannot make it spin.)
            Err(e) => {
                println!("accept failed: {e}");
                return;
            }
        };
        let entry = conns.vacant_entry();
        let token = Token(entry.key());
        if let Err(e) = poll.registry().register(&mut stream, token, Interest::READABLE) {
            println!("{peer}: cannot register: {e}");
            continue; // the stream is dropped, and closed, here
        }
        println!("Connection from {peer} has been established.");
        entry.insert(Conn { stream, peer, out: Vec::new(), wants_write: false, read_closed: false });
    }
}

/// Reads and echoes until the socket would block. Returns false when the connection is done.
fn drive(conn: &mut Conn) -> io::Result<bool> {
    loop {
        let paused = read_available(conn)?;
        write_pending(conn)?;
        if conn.read_closed && conn.out.is_empty() {
            return Ok(false); // everything echoed, and the client has nothing more to say
        }
        // Reading stopped for backpressure, and writing has since emptied the buffer: read
        // again now. The unread bytes are already in the socket, and no new edge will
        // announce them. (If the buffer is not empty, the WRITABLE event brings us back.)
        if !(paused && conn.out.is_empty()) {
            return Ok(true);
        }
    }
}

/// Reads into the output buffer (an echo's reply is its input) until WouldBlock or end of
/// stream. Returns true if it stopped early for backpressure, with bytes maybe still unread.
fn read_available(conn: &mut Conn) -> io::Result<bool> {
    let mut buf = [0u8; 4096];
    while !conn.read_closed {
        if conn.out.len() >= MAX_PENDING {
            return Ok(true);
        }
        match conn.stream.read(&mut buf) {
            Ok(0) => conn.read_closed = true,
            Ok(n) => conn.out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Writes the output buffer until it is empty or the kernel's send buffer is full. What the
/// kernel does not take stays at the front of `out` for the next WRITABLE event.
fn write_pending(conn: &mut Conn) -> io::Result<()> {
    while !conn.out.is_empty() {
        match conn.stream.write(&conn.out) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                conn.out.drain(..n); // a partial write keeps the tail
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Asks for WRITABLE events exactly while output is pending.
fn update_interest(poll: &Poll, conn: &mut Conn, token: Token) -> io::Result<()> {
    let wants_write = !conn.out.is_empty();
    if wants_write != conn.wants_write {
        let interest = if wants_write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        poll.registry().reregister(&mut conn.stream, token, interest)?;
        conn.wants_write = wants_write;
    }
    Ok(())
}
