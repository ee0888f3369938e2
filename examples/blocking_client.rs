//! Step 2: the article's Python client in Rust: connect to `localhost:12345`, send
//! "Hello, Server!", close.
//!
//! What it adds over the Python: errors are handled. With nothing listening, `connect` fails
//! with "connection refused"; the client says so in one line, with a hint, and exits non-zero.
//! And it sends with `write_all`: Python's `send` (like the `write` system call) may send only
//! part of the buffer and return how much it sent; `write_all` loops until everything is
//! handed to the kernel (Python's `sendall`).
//!
//! Run it in two terminals:
//!
//! ```text
//! terminal 1: cargo run --example blocking_server
//! terminal 2: cargo run --example blocking_client          # or: ... blocking_client -- 127.0.0.1:4000
//! ```
//!
//! Run the client alone to see the error handling: `blocking_client: cannot connect to
//! localhost:12345: Connection refused (os error 111) (is the server running?)`.

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blocking_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    // The server's address; `localhost` may resolve to both ::1 and 127.0.0.1, and `connect`
    // tries each in turn until one answers.
    let addr = std::env::args().nth(1).unwrap_or_else(|| "localhost:12345".to_owned());

    // Create the socket and connect it: `socket()` and `connect()` in one call.
    let mut stream = TcpStream::connect(&addr).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::ConnectionRefused => " (is the server running?)",
            _ => "",
        };
        io::Error::new(e.kind(), format!("cannot connect to {addr}: {e}{hint}"))
    })?;

    // Send the message. `write_all` retries short writes until every byte is sent.
    let message = "Hello, Server!";
    stream
        .write_all(message.as_bytes())
        .map_err(|e| io::Error::new(e.kind(), format!("sending to {addr} failed: {e}")))?;
    println!("Sent {message:?} to {addr}");

    // Close the connection. `shutdown(Write)` sends FIN now and reports an error if there is
    // one; a plain drop would close too, but silently.
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| io::Error::new(e.kind(), format!("closing the connection failed: {e}")))?;
    Ok(())
}
