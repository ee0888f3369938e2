//! The other peer of the echo rows of `scripts/compare.sh`: the blocking server from the
//! first chapter, grown up just enough to serve many clients: one OS thread per connection,
//! `std::net` only.
//!
//! Each connection's thread blocks in `read`, then `write_all`s what it got. A 64 KiB buffer,
//! `TCP_NODELAY` as in our server. UDP (optional) is one thread: `recv_from`, `send_to`.
//! It is the design every event loop is measured against: simple, and fast while the number of
//! connections is small, since the kernel's scheduler *is* the event loop. Its costs are a
//! stack and a context switch per connection and per message.
//!
//! ```text
//! cargo run --release --example threaded_echo -- 127.0.0.1:28012 [127.0.0.1:28012]
//! ```
//!
//! It runs until killed (SIGTERM or Ctrl-C end it with the default action).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("threaded_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: threaded_echo TCP_ADDR [UDP_ADDR]";
    let tcp: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let udp: Option<SocketAddr> = args.next().map(|a| a.parse()).transpose()?;
    let listener = TcpListener::bind(tcp)?;
    eprintln!("threaded_echo: TCP echo on {}", listener.local_addr()?);
    if let Some(udp) = udp {
        let socket = UdpSocket::bind(udp)?;
        eprintln!("threaded_echo: UDP echo on {}", socket.local_addr()?);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&buf[..n], from);
            }
        });
    }
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                // A thread that cannot be spawned loses its connection, not the server.
                if let Err(e) = std::thread::Builder::new().spawn(move || echo(stream)) {
                    eprintln!("threaded_echo: spawn: {e}");
                }
            }
            Err(e) => {
                eprintln!("threaded_echo: accept: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
    Ok(())
}

/// Echoes one connection until the client closes it or an error ends it.
fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 65_536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}
