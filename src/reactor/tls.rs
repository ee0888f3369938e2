//! The TLS layer of a connection: rustls as a sans-I/O session between the socket and the
//! service.
//!
//! ```text
//!   socket ──ciphertext──▶ read_tls ─▶ process_new_packets ─▶ reader() ──plaintext──▶ service
//!   socket ◀─ciphertext─── Conn::send ◀─ write_tls ◀──────────── writer() ◀─plaintext── service
//! ```
//!
//! rustls never touches the socket here. The reactor reads ciphertext into its shared buffer
//! as for any connection and feeds it in ([`absorb`]); plaintext comes out ([`plaintext`]) and
//! goes to the service exactly as a plain connection's bytes would. Whatever rustls wants to
//! send — handshake messages, alerts, encrypted replies, `close_notify` — is drained at once
//! into a scratch buffer ([`encrypt`]) and handed to the connection's ordinary write path.
//!
//! That choice is what keeps TLS out of the rest of the loop: rustls holds no ciphertext
//! between turns, so `wants_write()` is false whenever the reactor looks, and the connection's
//! own output buffer — with its WRITABLE interest, its `max_output` backpressure and its
//! too-slow limit — covers ciphertext exactly as it covers plaintext. `wants_read()` is always
//! true for a live session, so READABLE stays registered as for any connection. The price is
//! one copy of each encrypted record into the scratch buffer.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

/// A new server session. rustls's own limit on buffered outgoing data is lifted, because we
/// drain it after every write and bound the connection's output buffer ourselves.
pub fn session(config: &Arc<ServerConfig>) -> Result<Box<ServerConnection>, rustls::Error> {
    let mut tls = ServerConnection::new(Arc::clone(config))?;
    tls.set_buffer_limit(None);
    Ok(Box::new(tls))
}

/// Feeds ciphertext from the front of `input` (advancing it) and processes the records that
/// are complete. An error means the peer broke the protocol (plaintext sent to a TLS port, a
/// bad ClientHello, a failed MAC…); rustls has then queued the alert to send.
pub fn absorb(tls: &mut ServerConnection, input: &mut &[u8]) -> Result<(), rustls::Error> {
    // `read_tls` only fails when rustls's buffer of received-but-unread plaintext is full;
    // we drain plaintext after every call, so that would be a bug here, reported as such.
    tls.read_tls(input).map_err(|e| rustls::Error::General(format!("read_tls: {e}")))?;
    tls.process_new_packets().map(|_| ())
}

/// What [`plaintext`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Plain {
    /// `n` bytes of plaintext are at the front of the buffer.
    Data(usize),
    /// The peer sent `close_notify`: it will send nothing more.
    Closed,
    /// Nothing (more) to read now.
    Empty,
}

/// Takes decrypted bytes out of the session into `buf`.
pub fn plaintext(tls: &mut ServerConnection, buf: &mut [u8]) -> io::Result<Plain> {
    match tls.reader().read(buf) {
        Ok(0) => Ok(Plain::Closed),
        Ok(n) => Ok(Plain::Data(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Plain::Empty),
        Err(e) => Err(e),
    }
}

/// Encrypts `bytes` (if any) and drains everything rustls has to send into `out` (cleared
/// first). Mid-handshake, application bytes wait inside rustls until the handshake is done.
pub fn encrypt(tls: &mut ServerConnection, bytes: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    if !bytes.is_empty() {
        tls.writer().write_all(bytes)?;
    }
    out.clear();
    while tls.wants_write() {
        tls.write_tls(out)?;
    }
    Ok(())
}
