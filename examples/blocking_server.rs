//! Step 1: the article's Python server, line for line, in Rust with `std::net`.
//!
//! It binds `localhost:12345`, waits for ONE client, prints its address, reads one message of at
//! most 1024 bytes, prints it and exits. Every call blocks: while `accept` waits, the program
//! can do nothing else, which is why the next examples move to non-blocking sockets.
//!
//! What it adds over the Python: the article's first best practice, error handling. Each
//! fallible call says what it was doing when it failed ("cannot bind localhost:12345: Address
//! already in use"), and the program exits non-zero instead of crashing with a trace.
//!
//! Run it in two terminals:
//!
//! ```text
//! terminal 1: cargo run --example blocking_server          # or: ... blocking_server -- 4000
//! terminal 2: cargo run --example blocking_client          # or: nc localhost 12345
//! ```

use std::io::{self, Read};
use std::net::TcpListener;
use std::process::ExitCode;

fn main() -> ExitCode {
    // `main` could return `io::Result<()>`, but Rust would then print the error with `{:?}`
    // (`Os { code: 98, kind: AddrInUse, .. }`). Printing it ourselves gives one clear line.
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blocking_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    // Define the host and port (the port may be given as the first argument).
    let host = "localhost";
    let port: u16 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("bad port {arg:?}")))?,
        None => 12345,
    };

    // Create the socket, bind it and listen: `socket()`, `bind()` and `listen()` in one call.
    // std chooses the backlog (128 on Linux) where the article asks for 5; the backlog is only
    // how many finished handshakes the kernel queues until we call `accept`.
    let listener =
        TcpListener::bind((host, port)).map_err(|e| context(e, format!("cannot bind {host}:{port}")))?;
    println!("Server listening on {host}:{port}");

    // Accept a connection from a client. This blocks until one arrives.
    let (mut client, address) = listener.accept().map_err(|e| context(e, "accept failed".to_owned()))?;
    println!("Connection from {address} has been established.");

    // Receive the message: one `read` of at most 1024 bytes, like `recv(1024)`. TCP is a byte
    // stream, not a message stream, so one read may return only part of what the client sent;
    // the article's code has the same limit, and the later examples read in a loop.
    let mut buf = [0u8; 1024];
    let n = client.read(&mut buf).map_err(|e| context(e, format!("reading from {address} failed")))?;
    // Python's `.decode()` would raise on invalid UTF-8; showing it as U+FFFD is friendlier.
    println!("Received message: {}", String::from_utf8_lossy(&buf[..n]));

    // Close the connections. Dropping a socket closes it; the explicit drops just mirror the
    // article's `close()` calls.
    drop(client);
    drop(listener);
    Ok(())
}

/// Adds what we were doing to an I/O error, keeping its kind.
fn context(e: io::Error, doing: String) -> io::Error {
    io::Error::new(e.kind(), format!("{doing}: {e}"))
}
