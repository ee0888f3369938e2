//! # reactor
//!
//! A single-threaded, non-blocking event-loop server built on `mio`, written to be read.
//! One thread, one `epoll` instance, any number of listeners: TCP and UDP echo, and the
//! services that plug into the same loop.
//!
//! ## The data path
//!
//! ```text
//!   peer ──bytes──▶ socket ──readable──▶ epoll ──event(Token)──▶ Reactor::run
//!                                                                    │
//!          ┌─────────────── token::target(token) ────────────────────┘
//!          ▼
//!   Conn (State: Open → HalfClosed → Closed, or Open → Closing → Lingering → Closed)
//!          │ read into the shared 64 KiB buffer (drain; budget per event)
//!          ▼
//!   Service::input(session, bytes, cx) ── sans-I/O: parses, decides, never blocks
//!          │ cx.write(reply) · cx.send_to(other, bytes) · cx.close() · cx.set_timer(t)
//!          ▼
//!   write at once (write-before-sleep) ──▶ socket ──bytes──▶ peer
//!          │ the kernel took only part of it?
//!          ▼
//!   Conn output buffer + WRITABLE interest ── owes > max_output? stop reading (backpressure)
//! ```
//!
//! ## A map of the modules
//!
//! * [`reactor`] — the loop and everything that touches a socket: [`reactor::token`],
//!   [`reactor::conn`], [`reactor::listener`], [`reactor::datagram`], [`reactor::timer`],
//!   [`reactor::tls`] (the TLS session layer), [`reactor::shutdown`].
//! * [`service`] — the sans-I/O interface ([`service::Service`]) and the protocols:
//!   [`service::echo`], [`service::chat`], [`service::http`], [`service::kv`];
//!   [`service::testing`] drives any service without a socket.
//! * [`proxy`] — the PROXY protocol parser (v1, v2), read before TLS and the service.
//! * [`tls`] — certificates and rustls configurations (the session itself is in the loop).
//! * [`stats`] — the counters behind `--stats`, `/stats`, `/metrics` and `INFO`.
//! * [`fdlimit`] — raising the file-descriptor limit and fitting the connection limit to it.
//! * [`cli`], [`client`] — the command line; the blocking client behind `reactor send`.
//! * [`load`] — `reactor load`: the load generator, its own mio client loop, verifying every
//!   reply ([`load::run`] from Rust).
//! * [`error`] — server-wide errors.
//!
//! ## Embedding
//!
//! ```no_run
//! use reactor::reactor::{Config, Reactor};
//! use reactor::service::echo::{Echo, UdpEcho};
//!
//! let mut reactor = Reactor::new(Config::default())?;
//! let tcp = reactor.serve("127.0.0.1:0".parse().unwrap(), Echo)?;
//! let udp = reactor.serve_datagrams("127.0.0.1:0".parse().unwrap(), UdpEcho)?;
//! println!("echo on tcp://{tcp} and udp://{udp}");
//! let handle = reactor.handle(); // handle.shutdown() from another thread stops it
//! reactor.run()?;
//! # Ok::<(), reactor::error::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod error;
pub mod fdlimit;
pub mod load;
pub mod proxy;
// What every service must keep for any input, shared by `fuzz/`, `tests/fuzz_corpus.rs` and
// `tests/properties.rs`. Not part of the API, so hidden from the docs.
#[doc(hidden)]
pub mod fuzzing;
pub mod reactor;
pub mod service;
pub mod stats;
pub mod tls;
