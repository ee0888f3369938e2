//! The client side of the article: connect, send "Hello, Server!", print the reply.
//!
//! `reactor send` is deliberately plain blocking `std::net` code with timeouts: a client that
//! talks to one server has nothing to multiplex, and blocking code is the clearest way to
//! show the exchange. What it adds over the article's client is the error handling the
//! article recommends: every failure is a typed [`ClientError`] with one clear line, and no
//! operation can hang forever.
//!
//! Over TCP the client sends its message, then shuts down its sending side (FIN) and reads
//! until the server closes: that is how it knows it has the *whole* reply, however the
//! server's writes were split. Over UDP one datagram goes out and one is awaited.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

/// Why a `send` failed.
#[derive(Debug)]
pub enum ClientError {
    /// The address did not resolve.
    Resolve(String, io::Error),
    /// Nothing accepted the connection (or it timed out).
    Connect(String, io::Error),
    /// The exchange failed after connecting.
    Io(SocketAddr, io::Error),
    /// No reply within the timeout.
    Timeout(SocketAddr, Duration),
    /// The TLS handshake or session failed (for example an untrusted certificate).
    Tls(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Resolve(addr, e) => write!(f, "cannot resolve {addr}: {e}"),
            ClientError::Connect(addr, e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                write!(f, "cannot connect to {addr}: connection refused (is the server running?)")
            }
            ClientError::Connect(addr, e) => write!(f, "cannot connect to {addr}: {e}"),
            ClientError::Io(addr, e) => write!(f, "talking to {addr}: {e}"),
            ClientError::Timeout(addr, t) => write!(f, "no reply from {addr} within {t:?}"),
            ClientError::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

fn resolve(addr: &str) -> Result<Vec<SocketAddr>, ClientError> {
    let addrs: Vec<SocketAddr> =
        addr.to_socket_addrs().map_err(|e| ClientError::Resolve(addr.to_string(), e))?.collect();
    if addrs.is_empty() {
        let e = io::Error::new(io::ErrorKind::NotFound, "no addresses");
        return Err(ClientError::Resolve(addr.to_string(), e));
    }
    Ok(addrs)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Sends `message` over TCP to `addr` and returns everything the server sent back before it
/// closed the connection.
pub fn send_tcp(addr: &str, message: &[u8], timeout: Duration) -> Result<Vec<u8>, ClientError> {
    let mut last = None;
    for candidate in resolve(addr)? {
        match TcpStream::connect_timeout(&candidate, timeout) {
            Ok(stream) => return exchange_tcp(stream, candidate, message, timeout),
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no addresses"));
    Err(ClientError::Connect(addr.to_string(), e))
}

fn exchange_tcp(
    mut stream: TcpStream,
    peer: SocketAddr,
    message: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ClientError> {
    let io_err = |e: io::Error| {
        if is_timeout(&e) { ClientError::Timeout(peer, timeout) } else { ClientError::Io(peer, e) }
    };
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
    stream.write_all(message).map_err(io_err)?;
    // FIN: "that was all". The server answers, then closes, and EOF tells us the reply is whole.
    stream.shutdown(Shutdown::Write).map_err(io_err)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).map_err(io_err)?;
    Ok(reply)
}

/// Sends `message` over TLS to `addr` and returns everything the server sent before it
/// closed the session. The end of our message is signalled with `close_notify` (TLS's FIN),
/// and the server's `close_notify` tells us its reply is whole.
pub fn send_tls(
    addr: &str,
    message: &[u8],
    timeout: Duration,
    config: Arc<rustls::ClientConfig>,
) -> Result<Vec<u8>, ClientError> {
    let name = crate::tls::server_name(addr).map_err(|e| ClientError::Tls(e.to_string()))?;
    let mut last = None;
    for candidate in resolve(addr)? {
        let stream = match TcpStream::connect_timeout(&candidate, timeout) {
            Ok(stream) => stream,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        let io_err = |e: io::Error| match e.kind() {
            _ if is_timeout(&e) => ClientError::Timeout(candidate, timeout),
            io::ErrorKind::InvalidData => ClientError::Tls(e.to_string()),
            _ => ClientError::Io(candidate, e),
        };
        stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
        stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
        let session =
            rustls::ClientConnection::new(config, name).map_err(|e| ClientError::Tls(e.to_string()))?;
        let mut tls = rustls::StreamOwned::new(session, stream);
        tls.write_all(message).map_err(io_err)?;
        tls.conn.send_close_notify();
        tls.flush().map_err(io_err)?;
        let mut reply = Vec::new();
        tls.read_to_end(&mut reply).map_err(io_err)?;
        return Ok(reply);
    }
    let e = last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no addresses"));
    Err(ClientError::Connect(addr.to_string(), e))
}

/// Sends `message` as one UDP datagram to `addr` and returns the first datagram that comes
/// back from it.
pub fn send_udp(addr: &str, message: &[u8], timeout: Duration) -> Result<Vec<u8>, ClientError> {
    let target = resolve(addr)?[0];
    let local: SocketAddr =
        if target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let io_err = |e: io::Error| {
        if is_timeout(&e) { ClientError::Timeout(target, timeout) } else { ClientError::Io(target, e) }
    };
    let socket = UdpSocket::bind(local).map_err(io_err)?;
    // connect() filters out datagrams from anyone else and turns ICMP "port unreachable" into
    // an error on recv, so "nothing listening" is reported instead of waiting for the timeout.
    socket.connect(target).map_err(|e| ClientError::Connect(addr.to_string(), e))?;
    socket.set_read_timeout(Some(timeout)).map_err(io_err)?;
    socket.send(message).map_err(io_err)?;
    let mut buf = vec![0; 65_536];
    let n = socket.recv(&mut buf).map_err(|e| {
        if e.kind() == io::ErrorKind::ConnectionRefused {
            ClientError::Connect(addr.to_string(), e)
        } else {
            io_err(e)
        }
    })?;
    buf.truncate(n);
    Ok(buf)
}
