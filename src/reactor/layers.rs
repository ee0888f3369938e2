//! What may stand between the socket and the service: a PROXY protocol header naming the real
//! client (read first), and a TLS session (driven sans-I/O through `reactor/tls.rs`).
//!
//! ```text
//!   socket ─▶ proxy_input (until the header is complete) ─▶ tls_input ─▶ call_service
//! ```
//!
//! Both leave the connection's buffers, limits and write path exactly as they are for a
//! plain connection: see `docs/tls.md` and `docs/deploy.md`.

use super::conn::State;
use super::write::transmit;
use super::{Call, READ_CHUNK, Reactor, tls};
use crate::service::CloseReason;

impl Reactor {
    /// `n` bytes arrived before the PROXY protocol header was complete: collect them until it
    /// is, then take the client's address from it, open the service (behind TLS, that waits
    /// for the handshake), and pass on what came after the header (a TLS ClientHello, a
    /// request) as if it had just been read.
    pub(super) fn proxy_input(&mut self, key: usize, n: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        conn.input.extend_from_slice(&self.rbuf[..n]);
        self.stats.input_buffered += n as u64;
        match crate::proxy::parse(&conn.input) {
            Ok(crate::proxy::Parsed::Incomplete) => {}
            Ok(crate::proxy::Parsed::Done { header_len, source, .. }) => {
                self.stats.input_buffered -= conn.input.len() as u64;
                let rest = conn.input.split_off(header_len);
                conn.input = Vec::new();
                conn.awaiting_proxy = false;
                if let Some(client) = source {
                    log::info!("Connection from {client} (via {})", conn.peer);
                    log::debug!("{} {}: PROXY header: the client is {client}", conn.id, conn.peer);
                    conn.peer = client;
                } else {
                    log::debug!(
                        "{} {}: PROXY header without addresses (a health check?)",
                        conn.id,
                        conn.peer
                    );
                }
                if conn.tls.is_none() {
                    self.open_session(key); // with TLS, once the handshake is done
                }
                for chunk in rest.chunks(READ_CHUNK) {
                    if !self.conns.get(key).is_some_and(|c| c.state == State::Open) {
                        break;
                    }
                    self.rbuf[..chunk.len()].copy_from_slice(chunk);
                    self.on_bytes(key, chunk.len());
                }
            }
            Err(e) => {
                log::info!(
                    "{} {}: no valid PROXY protocol header, which this listener requires ({e}); closing",
                    conn.id,
                    conn.peer
                );
                self.close_now(key, CloseReason::Error);
            }
        }
    }

    /// The first bytes on a TLS connection (`rbuf[..n]`) failed as TLS: if they read as the
    /// service's protocol in plaintext, answer in plaintext (`Service::plaintext_on_tls`) and
    /// close gracefully, so the reply is not lost to a reset. Returns whether it did.
    fn plaintext_on_tls(&mut self, key: usize, n: usize) -> bool {
        let Some(conn) = self.conns.get_mut(key) else { return false };
        let service = &mut self.services[conn.service];
        self.out.clear();
        if !service.plaintext_on_tls(&self.rbuf[..n], self.wall, &mut self.out) {
            return false;
        }
        log::debug!(
            "{} {}: plaintext {} on a TLS port: answered in plaintext",
            conn.id,
            conn.peer,
            service.name()
        );
        // Past the TLS session: it never began, and the peer could not read its records.
        conn.tls = None;
        match transmit(conn, &self.out, &mut self.cipher, self.poll.registry(), &mut self.stats) {
            Ok(()) => {
                self.begin_close(key, CloseReason::Error);
                self.settle(key);
            }
            Err(_) => self.close_now(key, CloseReason::Error),
        }
        true
    }

    /// `n` bytes of ciphertext are in the read buffer: feed them to the TLS session, send
    /// what the handshake wants sent, and hand the plaintext to the service.
    pub(super) fn tls_input(&mut self, key: usize, n: usize) {
        let mut offset = 0;
        while offset < n {
            let Some(tls) = self.conns.get_mut(key).and_then(|c| c.tls.as_deref_mut()) else {
                return;
            };
            let first_record = offset == 0 && tls.is_handshaking();
            let mut input = &self.rbuf[offset..n];
            let result = tls::absorb(tls, &mut input);
            offset = n - input.len();
            if let Err(e) = result {
                if let Some(conn) = self.conns.get(key) {
                    log::debug!("{} {}: TLS: {e}", conn.id, conn.peer);
                }
                if first_record && self.plaintext_on_tls(key, n) {
                    return;
                }
                self.send_out_empty(key); // the alert rustls queued, best effort
                return self.close_now(key, CloseReason::Error);
            }
            // Handshake messages.
            self.send_out_empty(key);
            // The handshake is done: only now does the service meet this peer, so a chat room
            // never announces, and kv never lists, one that fails or abandons its handshake,
            // and a greeting that closes (a full room) is sent where the peer can read it.
            if let Some(conn) = self.conns.get(key)
                && conn.state == State::Open
                && conn.session.is_none()
                && conn.tls.as_deref().is_some_and(|tls| !tls.is_handshaking())
            {
                self.open_session(key);
            }
            loop {
                let Some(conn) = self.conns.get_mut(key) else { return };
                if conn.state != State::Open {
                    return;
                }
                let Some(tls) = conn.tls.as_deref_mut() else { return };
                match tls::plaintext(tls, &mut self.plain) {
                    Ok(tls::Plain::Data(k)) if conn.held => {
                        // Held at the output limit by an earlier record of this read: keep the
                        // rest for when the held requests are offered again, rather than a call
                        // per record, each free to queue another limit's worth.
                        conn.input.extend_from_slice(&self.plain[..k]);
                        self.stats.input_buffered += k as u64;
                    }
                    Ok(tls::Plain::Data(k)) => self.call_service(key, Call::Plain(k)),
                    Ok(tls::Plain::Closed) => return self.on_eof(key),
                    Ok(tls::Plain::Empty) => break,
                    Err(e) => {
                        log::debug!("{} {}: TLS: {e}", conn.id, conn.peer);
                        return self.close_now(key, CloseReason::Error);
                    }
                }
            }
        }
    }
}
