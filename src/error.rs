//! The library's error type: what can stop a reactor from starting or running.
//!
//! Errors on one connection never appear here: they close that connection and are logged.
//! These are the errors that concern the whole server, each carrying the address or step it
//! is about, so the CLI can print one clear line.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A server-wide failure.
#[derive(Debug)]
pub enum Error {
    /// Creating the `Poll` (epoll instance), waker or signal source failed.
    Setup(&'static str, io::Error),
    /// Binding a listener or UDP socket failed (address in use, permission, …).
    Bind(SocketAddr, io::Error),
    /// Registering a socket with the poller failed.
    Register(io::Error),
    /// `epoll_wait` itself failed.
    Poll(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Setup(what, e) => write!(f, "cannot set up {what}: {e}"),
            Error::Bind(addr, e) if e.kind() == io::ErrorKind::AddrInUse => {
                write!(f, "cannot listen on {addr}: address already in use")
            }
            Error::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            Error::Register(e) => write!(f, "cannot register a socket with the poller: {e}"),
            Error::Poll(e) => write!(f, "polling for events failed: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Setup(_, e) | Error::Bind(_, e) | Error::Register(e) | Error::Poll(e) => Some(e),
        }
    }
}
