//! The peer the echo rows of `scripts/compare.sh` measure us against: the echo server anyone
//! would write with tokio, on a `current_thread` runtime (one thread, like our reactor).
//!
//! One task per TCP connection with a 64 KiB buffer, `read` then `write_all`; one task for UDP,
//! `recv_from` then `send_to`. `TCP_NODELAY` is set, as our server sets it. It is written to be
//! fair, not to be slow: this is the code the tokio tutorial teaches, on the runtime flavour
//! that matches ours. The same server, started in-process, is the baseline of
//! `benches/loopback.rs`.
//!
//! ```text
//! cargo run --release --example tokio_echo -- 127.0.0.1:28010 127.0.0.1:28010
//! #                                           TCP address      UDP address (optional)
//! ```
//!
//! It runs until killed (SIGTERM or Ctrl-C end it with the default action).

use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: tokio_echo TCP_ADDR [UDP_ADDR]";
    let tcp: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let udp: Option<SocketAddr> = args.next().map(|a| a.parse()).transpose()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(tcp).await?;
        eprintln!("tokio_echo: TCP echo on {}", listener.local_addr()?);
        if let Some(udp) = udp {
            let socket = tokio::net::UdpSocket::bind(udp).await?;
            eprintln!("tokio_echo: UDP echo on {}", socket.local_addr()?);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                    let _ = socket.send_to(&buf[..n], from).await;
                }
            });
        }
        loop {
            let (mut stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                // Out of descriptors and the like: that connection is lost, the server is not.
                Err(e) => {
                    eprintln!("tokio_echo: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let mut buf = vec![0u8; 65_536];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
}
