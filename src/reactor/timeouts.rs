//! What the reactor does when a deadline comes, one method per [`TimerKind`]: idle checks,
//! service timers, handshake deadlines, lingering closes, ticks, accept resumes, counter
//! exchange, the `--stats` line and the end of the grace period; and keeping the heap small.
//! `Reactor::fire_timers` (`mod.rs`) calls them; the heap itself is `timer.rs`.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use super::call::panic_message;
use super::conn::State;
use super::timer::{self, IdleCheck, TimerKind};
use super::{Call, PUBLISH_EVERY, Phase, Reactor};
use crate::service::{CloseReason, ConnId};

impl Reactor {
    /// Drops timer entries of connections that are gone, once the heap holds more than 64
    /// entries plus 4 per open connection (so most of them must be stale).
    /// Entries are never removed when a connection closes (that would be an O(n) search);
    /// without this, a server with much connection churn would carry an idle-timer entry for
    /// every connection closed in the last `idle_timeout`, and keep the heap's capacity after.
    pub(super) fn compact_timers(&mut self) {
        if self.timers.len() <= 64 + 4 * self.conns.len() {
            return;
        }
        let conns = &self.conns;
        self.timers.retain(|kind| match kind {
            TimerKind::Idle(id)
            | TimerKind::Service(id)
            | TimerKind::Linger(id)
            | TimerKind::Handshake(id) => {
                conns.get(id.index()).is_some_and(|c| c.id == *id && c.state != State::Closed)
            }
            _ => true,
        });
    }

    /// A TLS handshake or PROXY header still not done `handshake_timeout` after accept: cut.
    pub(super) fn on_handshake_timer(&mut self, id: ConnId) {
        if let Some(conn) = self.live(id)
            && (conn.awaiting_proxy || conn.tls.as_ref().is_some_and(|tls| tls.is_handshaking()))
        {
            log::debug!("{} {}: PROXY header or TLS handshake not done in time", conn.id, conn.peer);
            self.close_now(id.index(), CloseReason::Error);
        }
    }

    /// We sent FIN `linger` ago and the peer has not closed: stop waiting for it.
    pub(super) fn on_linger_timer(&mut self, id: ConnId) {
        if self.live(id).is_some_and(|c| c.state == State::Lingering) {
            self.close_now(id.index(), CloseReason::Service);
        }
    }

    /// Accepting paused on `EMFILE` (`listener.rs`): try again.
    pub(super) fn on_accept_resume(&mut self, i: usize) {
        if let Some(Some(listener)) = self.listeners.get_mut(i) {
            listener.paused = false;
            self.accept(i);
        }
    }

    /// With several reactors: publish our counters for the others (`StatsBoard`), and again
    /// later.
    pub(super) fn on_publish(&mut self) {
        if let Some((board, index)) = &self.board {
            board.publish(*index, &self.stats);
            self.timers.add(self.now + PUBLISH_EVERY, TimerKind::Publish);
        }
    }

    /// `--stats SECS`: the counters line, and again later.
    pub(super) fn on_stats_timer(&mut self) {
        self.log_stats();
        if let Some(every) = self.config.stats_interval {
            self.timers.add(self.now + every, TimerKind::Stats);
        }
    }

    /// The shutdown's grace period has ended: the loop stops, closing what is still open.
    pub(super) fn on_grace_over(&mut self) {
        if self.phase == Phase::Draining {
            log::info!("grace period over: closing {} connections", self.conns.len());
            self.phase = Phase::Stopped;
        }
    }

    /// Service-wide periodic work. A panicking tick is logged and retried a second later.
    pub(super) fn tick(&mut self, i: usize) {
        let (service, now) = (&mut self.services[i], self.now);
        match std::panic::catch_unwind(AssertUnwindSafe(|| service.tick(now))) {
            Ok(Some(next)) => self.timers.add(next, TimerKind::Tick(i)),
            Ok(None) => {}
            Err(payload) => {
                log::error!("{} service panicked in tick: {}", service.name(), panic_message(&*payload));
                self.stats.service_panics += 1;
                self.timers.add(now + Duration::from_secs(1), TimerKind::Tick(i));
            }
        }
    }

    /// The `--stats` line. With several reactors, reactor 0 logs the process's totals.
    pub(super) fn log_stats(&self) {
        match &self.board {
            None => log::info!("{}", self.stats.summary(self.now)),
            Some((board, 0)) => log::info!("all reactors: {}", board.total(0, &self.stats).summary(self.now)),
            Some(_) => {} // reactor 0 speaks for everyone
        }
    }

    /// Idle check, once per idle period per connection. Busy connections never touch the
    /// heap: they only update `last_active`, and this timer, when it fires early, just re-arms
    /// itself at the real deadline. Every live connection has exactly one `Idle` entry, so
    /// every outcome that keeps the connection adds it back: busy since (re-arm at the real
    /// deadline); exempt and still open (look again one period on: the exemption may end,
    /// and nothing else would arm the check then); open (polite close, hard close one period
    /// later if the peer ignores it); closing already (hard close). Only an open connection
    /// can be exempt: a closing one's service has been told the end and vouches for nothing.
    pub(super) fn on_idle_timer(&mut self, id: ConnId) {
        let Some(idle) = self.config.idle_timeout else {
            return;
        };
        let now = self.now;
        let Some(conn) = self.live(id) else { return };
        if let IdleCheck::Rearm(due) = timer::idle_check(conn.last_active, idle, now) {
            self.timers.add(due, TimerKind::Idle(id));
            return;
        }
        if conn.idle_exempt && conn.state == State::Open {
            // Its service vouches for the silence (a subscriber waiting for messages): look
            // again one period on, in case the exemption ends.
            self.timers.add(now + idle, TimerKind::Idle(id));
            return;
        }
        log::debug!("{} {}: idle for {:?}", conn.id, conn.peer, idle);
        let open = conn.state == State::Open;
        if open {
            conn.last_active = now;
        }
        if !conn.idled {
            // Once per connection: a polite close that the peer ignores is followed by a hard
            // one at the next check, and that is the same idle connection.
            conn.idled = true;
            self.stats.conns_idle_closed += 1;
        }
        if open {
            // Say goodbye politely; if the peer does not even read that, the next idle check
            // closes it hard.
            self.begin_close(id.index(), CloseReason::Idle);
            self.timers.add(now + idle, TimerKind::Idle(id));
            self.settle(id.index());
        } else {
            self.close_now(id.index(), CloseReason::Idle);
        }
    }

    /// Arms a service timer without a heap entry per call: moving the deadline later costs
    /// nothing (the entry already armed fires early and re-arms, `on_service_timer`); only
    /// moving it earlier than the armed one adds an entry.
    pub(super) fn arm_service_timer(&mut self, key: usize, at: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.service_timer = Some(at);
        if conn.service_timer_armed.is_none_or(|armed| at < armed) {
            conn.service_timer_armed = Some(at);
            self.timers.add(at, TimerKind::Service(conn.id));
        }
    }

    pub(super) fn on_service_timer(&mut self, id: ConnId, fired: Instant) {
        let now = self.now;
        let Some(conn) = self.live(id) else { return };
        if conn.service_timer_armed == Some(fired) {
            conn.service_timer_armed = None;
        }
        match conn.service_timer {
            Some(at) if at <= now => {
                conn.service_timer = None;
                if conn.state == State::Open {
                    self.call_service(id.index(), Call::Timer);
                    self.settle(id.index());
                }
            }
            Some(at) if conn.service_timer_armed.is_none() => {
                conn.service_timer_armed = Some(at);
                self.timers.add(at, TimerKind::Service(id));
            }
            _ => {}
        }
    }
}
