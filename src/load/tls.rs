//! `reactor load --tls`: a rustls client session inside each connection, driven by the same
//! non-blocking loop as plain TCP.
//!
//! rustls is sans-I/O: it never touches the socket. The loop in [`super::tcp`] moves the
//! bytes, and these functions are the two places where it hands them over:
//!
//! ```text
//!   Conn::out ──plaintext──▶ writer() ─▶ (encrypt) ─▶ write_tls ──ciphertext──▶ socket   [send]
//!   socket ──ciphertext──▶ read_tls ─▶ process_new_packets ─▶ reader() ──plaintext──▶ Conn::input  [receive]
//! ```
//!
//! The handshake runs through the same two functions: on connect, [`send`] with nothing to
//! send writes the ClientHello; each readable edge [`receive`]s the server's flight, and
//! [`send`] writes the answer. The connection is *Handshaking* until `is_handshaking()` turns
//! false; only then may it send requests, so handshake time is never in the latency figures.
//!
//! Partial writes need no bookkeeping of ours: `write_tls` hands the socket what it will take
//! and keeps the rest queued inside rustls; `wants_write()` says whether any is left, and the
//! next WRITABLE edge sends it.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::ClientConnection;
use rustls::pki_types::ServerName;

/// How to speak TLS to the server: whom to trust (`tls::client_config`) and the name to
/// check its certificate against (and to send as SNI).
#[derive(Debug, Clone)]
pub struct TlsClient {
    /// The client configuration, shared by every connection.
    pub config: Arc<rustls::ClientConfig>,
    /// The server's name: the host part of `--addr`.
    pub name: ServerName<'static>,
}

/// A new client session; nothing is sent until the first [`send`].
pub fn session(client: &TlsClient) -> Result<Box<ClientConnection>, rustls::Error> {
    Ok(Box::new(ClientConnection::new(Arc::clone(&client.config), client.name.clone())?))
}

/// Hands the plaintext `out[*written..]` to rustls (advancing `written` by what it took) and
/// writes ciphertext to `socket` until rustls has none left or the socket would block; then
/// the next WRITABLE edge calls it again. Before the handshake is done no plaintext is taken
/// (the loop sends none then anyway): only handshake messages go out.
pub fn send(
    tls: &mut ClientConnection,
    socket: &mut impl Write,
    out: &[u8],
    written: &mut usize,
) -> io::Result<()> {
    loop {
        // rustls takes plaintext until its outgoing buffer is full (64 KiB by default), so a
        // large pipelined batch goes in several rounds of encrypt-then-write.
        if *written < out.len() && !tls.is_handshaking() {
            *written += tls.writer().write(&out[*written..])?;
        }
        if !tls.wants_write() {
            return Ok(());
        }
        while tls.wants_write() {
            match tls.write_tls(socket) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// What the server's bytes amounted to.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Plaintext (perhaps none: a handshake message, a session ticket) was appended.
    Data,
    /// The server sent `close_notify`: it will send nothing more.
    Closed,
}

/// Feeds the ciphertext `bytes` to rustls, processes every complete record and appends the
/// plaintext to `input`. An error is the server breaking TLS (a bad certificate, a failed
/// MAC…); rustls has then queued an alert, which a last [`send`] can deliver.
pub fn receive(
    tls: &mut ClientConnection,
    mut bytes: &[u8],
    input: &mut Vec<u8>,
) -> Result<Received, String> {
    let mut chunk = [0u8; 16 * 1024];
    while !bytes.is_empty() {
        // read_tls takes at most one buffer's worth; loop until the read's bytes are all in.
        match tls.read_tls(&mut bytes) {
            Ok(0) => return Err("TLS: rustls took no bytes".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("TLS: {e}")),
        }
        tls.process_new_packets().map_err(|e| format!("TLS: {e}"))?;
        loop {
            match tls.reader().read(&mut chunk) {
                Ok(0) => return Ok(Received::Closed),
                Ok(n) => input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("TLS: {e}")),
            }
        }
    }
    Ok(Received::Data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{Identity, server_config};

    /// A client and a server session talking through two in-memory "sockets" that accept at
    /// most `room` bytes per write, so every partial-write path is taken.
    #[test]
    fn handshake_and_data_through_tiny_writes() {
        let id = Identity::self_signed(&["localhost"]).unwrap();
        let server_cfg = server_config(&id, &[]).unwrap();
        let dir = std::env::temp_dir().join(format!("reactor-load-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cert.pem");
        id.write_cert(&path).unwrap();
        let client = TlsClient {
            config: crate::tls::client_config(Some(&path), false).unwrap(),
            name: ServerName::try_from("localhost").unwrap(),
        };
        std::fs::remove_dir_all(&dir).unwrap();
        let mut c = session(&client).unwrap();
        let mut s = rustls::ServerConnection::new(server_cfg).unwrap();

        /// A socket that takes at most 100 bytes per write and then says WouldBlock once.
        struct Tiny(Vec<u8>, bool);
        impl Write for Tiny {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.1 = !self.1;
                if !self.1 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let n = buf.len().min(100);
                self.0.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let request = vec![7u8; 50_000];
        let (mut written, mut wire, mut got) = (0, Tiny(Vec::new(), false), Vec::new());
        for _ in 0..10_000 {
            send(&mut c, &mut wire, &request, &mut written).unwrap();
            // The "server side": absorb the wire, answer the handshake.
            let mut bytes = &wire.0[..];
            while !bytes.is_empty() {
                s.read_tls(&mut bytes).unwrap();
                s.process_new_packets().unwrap();
            }
            wire.0.clear();
            let _ = s.reader().read_to_end(&mut got);
            let mut back = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut back).unwrap();
            }
            assert_eq!(receive(&mut c, &back, &mut Vec::new()), Ok(Received::Data));
            if written == request.len() && !c.wants_write() && got.len() == request.len() {
                break;
            }
        }
        assert_eq!(got, request);
    }
}
