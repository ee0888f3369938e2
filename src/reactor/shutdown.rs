//! Stopping a reactor: from a signal, or from another thread through a [`Handle`].
//!
//! A reactor thread sleeps in `epoll_wait`; another thread cannot just set a flag, because the
//! reactor would not look at it until some socket woke it up. mio's `Waker` is the doorbell:
//! an eventfd registered in the same `Poll`, so ringing it makes `poll` return with the
//! `WAKER` token, and the reactor then reads what was asked in an atomic.
//!
//! Signals take the same road: `signal-hook-mio` turns SIGINT/SIGTERM into readiness on the
//! `SIGNALS` token (a self-pipe written from the signal handler), so the signal is handled in
//! the loop, between events, where any state may be touched safely.
//!
//! Both ask for one of two things. The first request is a graceful stop (close the listeners,
//! keep serving accepted connections until they finish or the grace period ends); a second
//! request, or [`Handle::stop`], stops at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use mio::Waker;

use super::conn::State;
use super::timer::TimerKind;
use super::{Call, Phase, Ready};
use crate::service::CloseReason;

/// Nothing asked.
pub(crate) const NONE: u8 = 0;
/// Graceful shutdown asked.
pub(crate) const GRACEFUL: u8 = 1;
/// Immediate stop asked.
pub(crate) const IMMEDIATE: u8 = 2;

/// A signal repeated this soon after the one that began a graceful stop is taken as the same
/// request delivered twice, not as "stop now": `timeout(1)` and some supervisors signal both
/// the process and its group, and a terminal's Ctrl-C reaches every process in the group.
/// A person who means "now" presses again after reading the shutdown line.
pub(crate) const REPEAT: std::time::Duration = std::time::Duration::from_millis(500);

/// Lets another thread stop a running reactor. Cheap to clone.
#[derive(Clone)]
pub struct Handle {
    pub(crate) waker: Arc<Waker>,
    pub(crate) request: Arc<AtomicU8>,
}

impl Handle {
    /// Graceful shutdown: stop accepting, let accepted connections finish (up to the grace
    /// period), then return from `Reactor::run`.
    pub fn shutdown(&self) {
        self.ask(GRACEFUL);
    }

    /// Stop at once: close every connection and return from `Reactor::run`.
    pub fn stop(&self) {
        self.ask(IMMEDIATE);
    }

    fn ask(&self, what: u8) {
        self.request.fetch_max(what, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            log::error!("could not wake the reactor: {e}");
        }
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("request", &self.request.load(Ordering::Relaxed)).finish()
    }
}

// The reactor's side: turning a signal or a handle's request into a stop.
impl super::Reactor {
    pub(super) fn on_signal(&mut self) {
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        let count = signals.pending().count();
        let now = std::time::Instant::now();
        for _ in 0..count {
            log::info!("signal received");
            if self.stopping_since.is_some_and(|since| now.duration_since(since) < REPEAT) {
                log::info!("the same stop request again, within {REPEAT:?}: still stopping gracefully");
                continue;
            }
            self.request_stop(if self.phase == Phase::Running { GRACEFUL } else { IMMEDIATE });
        }
    }

    pub(super) fn on_wake(&mut self) {
        let asked = self.request.swap(NONE, Ordering::SeqCst);
        if asked != NONE {
            self.request_stop(asked);
        }
    }

    pub(super) fn request_stop(&mut self, how: u8) {
        if how == IMMEDIATE || self.phase != Phase::Running {
            log::info!("stopping now");
            self.phase = Phase::Stopped;
            return;
        }
        let open = self.conns.len();
        log::info!(
            "shutting down: listeners closed; {open} connection{} open, given up to {:?} to finish",
            if open == 1 { "" } else { "s" },
            self.config.shutdown_grace
        );
        let registry = self.poll.registry();
        for slot in self.listeners.iter_mut() {
            if let Some(mut listener) = slot.take() {
                let _ = registry.deregister(&mut listener.socket);
            }
        }
        for slot in self.datagrams.iter_mut() {
            if let Some(mut dgram) = slot.take() {
                let _ = registry.deregister(&mut dgram.socket);
            }
        }
        self.ready.retain(|r| matches!(r, Ready::Conn(_)));
        self.phase = Phase::Draining;
        self.stopping_since = Some(std::time::Instant::now());
        self.timers.add(self.now + self.config.shutdown_grace, TimerKind::Grace);
        // Tell every service session, so those with nothing in progress can close now
        // instead of holding the shutdown for the whole grace period.
        let open: Vec<usize> =
            self.conns.iter().filter(|(_, c)| c.state == State::Open).map(|(key, _)| key).collect();
        for key in open {
            self.call_service(key, Call::Drain);
            self.settle(key);
        }
    }

    /// Closes every remaining connection, after one last attempt to flush what it is owed.
    pub(super) fn close_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.flush(key);
            self.close_now(key, CloseReason::Shutdown);
        }
        self.conns.clear();
    }
}
