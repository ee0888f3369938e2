//! How a `mio::Token` says which socket an event is for.
//!
//! `epoll` hands back one `usize` per event and nothing else, so every socket the reactor
//! registers needs a token it can decode without a lookup table:
//!
//! ```text
//!   0 ..= LISTENER_BASE-1        a connection: the token *is* its slab key
//!   LISTENER_BASE + i            TCP listener number i
//!   DATAGRAM_BASE + i            UDP socket number i
//!   SIGNALS                      SIGINT / SIGTERM (signal-hook's self-pipe)
//!   WAKER                        another thread asked this reactor to stop (`Handle`)
//! ```
//!
//! Slab keys are small (a freed slot is reused before the slab grows, so a key never exceeds
//! the most connections ever open at once), so they never reach the fixed ranges at the top
//! of the `usize` space.
//!
//! **Stale events.** Because a connection's token is its slab key, one key names different
//! connections over time. A batch of events may hold an event for a connection that an
//! earlier event of the same batch closed; were its slot freed at once, an accept later in
//! the batch could reuse it, and the stale event would reach a stranger. So
//! `Reactor::close_now` leaves a `State::Closed` tombstone in the slot, and the slot is freed
//! at the end of the turn (`Reactor::reap`). Work that outlives a turn (the ready queue,
//! timers) names connections by `ConnId`, whose serial never repeats (`Reactor::live`).

use mio::Token;

/// First token of the listener range.
const LISTENER_BASE: usize = usize::MAX / 2;
/// First token of the datagram-socket range.
const DATAGRAM_BASE: usize = LISTENER_BASE + (1 << 20);
/// The signal source.
pub const SIGNALS: Token = Token(usize::MAX - 1);
/// The waker used by `Handle`.
pub const WAKER: Token = Token(usize::MAX);

/// What a token refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A connection, by slab key.
    Conn(usize),
    /// A TCP listener, by index.
    Listener(usize),
    /// A UDP socket, by index.
    Datagram(usize),
    /// The signal source.
    Signals,
    /// The waker.
    Waker,
}

/// Token of TCP listener `i`.
pub fn listener(i: usize) -> Token {
    Token(LISTENER_BASE + i)
}

/// Token of UDP socket `i`.
pub fn datagram(i: usize) -> Token {
    Token(DATAGRAM_BASE + i)
}

/// Decodes a token.
pub fn target(token: Token) -> Target {
    match token {
        WAKER => Target::Waker,
        SIGNALS => Target::Signals,
        Token(t) if t >= DATAGRAM_BASE => Target::Datagram(t - DATAGRAM_BASE),
        Token(t) if t >= LISTENER_BASE => Target::Listener(t - LISTENER_BASE),
        Token(t) => Target::Conn(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        assert_eq!(target(Token(0)), Target::Conn(0));
        assert_eq!(target(Token(12_345)), Target::Conn(12_345));
        assert_eq!(target(listener(0)), Target::Listener(0));
        assert_eq!(target(listener(7)), Target::Listener(7));
        assert_eq!(target(datagram(3)), Target::Datagram(3));
        assert_eq!(target(SIGNALS), Target::Signals);
        assert_eq!(target(WAKER), Target::Waker);
    }
}
