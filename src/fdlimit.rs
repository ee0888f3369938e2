//! The file-descriptor limit: each connection is one descriptor, and the soft limit
//! (`ulimit -n`, often 1024) is far below what a load test wants.
//!
//! A process may raise its soft limit up to its hard limit without privileges, so both
//! `reactor serve` and `reactor load` do that at start (Redis sizes `maxclients` the same
//! way: [`max_conns_for`] is our version). Past
//! the hard limit only root can go (`ulimit -Hn`, `/etc/security/limits.conf`, systemd's
//! `LimitNOFILE=`), and past `fs.nr_open` not even root: when `--conns` does not fit, the
//! message names the limit in the way.

/// The soft and hard `RLIMIT_NOFILE` after trying to raise the soft one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The limit in force now.
    pub soft: u64,
    /// The ceiling an unprivileged process can raise `soft` to.
    pub hard: u64,
}

/// Descriptors the process needs besides its connections: stdio, the poller, a few spare.
pub const RESERVED_FDS: u64 = 16;

/// Descriptors each reactor holds besides its sockets: its epoll instance, its waker (an
/// eventfd) and its signal pipe (a socket pair). [`RESERVED_FDS`] has room for one reactor's;
/// with `--reactors N`, the other N - 1 need theirs counted too.
pub const FDS_PER_REACTOR: u64 = 4;

/// Raises the soft limit to the hard one and returns both (zeros if they cannot be read).
pub fn raise_nofile() -> FdLimit {
    use rlimit::Resource;
    let (_, hard) = Resource::NOFILE.get().unwrap_or((0, 0));
    // `increase_nofile_limit` also respects macOS's extra cap; on Linux it is setrlimit(soft=hard).
    let soft = rlimit::increase_nofile_limit(hard).unwrap_or_else(|e| {
        log::warn!("could not raise the file-descriptor limit: {e}");
        Resource::NOFILE.get().map(|(soft, _)| soft).unwrap_or(0)
    });
    FdLimit { soft, hard }
}

/// A warning when `conns` connections cannot all be open at once under `limit`.
pub fn check_conns(conns: usize, limit: &FdLimit) -> Option<String> {
    let need = conns as u64 + RESERVED_FDS;
    (limit.soft > 0 && need > limit.soft).then(|| {
        format!(
            "--conns {conns} needs about {need} file descriptors but the limit is {} (hard limit {}, \
             already raised to it). Only root can raise the hard limit: `ulimit -Hn`, \
             /etc/security/limits.conf or systemd's LimitNOFILE=. Expect connect errors \
             \"Too many open files\" beyond about {} connections.",
            limit.soft,
            limit.hard,
            limit.soft.saturating_sub(RESERVED_FDS)
        )
    })
}

/// The connection limit a server can keep under `limit`: `wanted`, or less when the
/// descriptors are not there (keeping [`RESERVED_FDS`] plus `listeners`, one per listening
/// socket or other descriptor the server holds, spare, so the server can still accept and
/// refuse politely instead of failing with `EMFILE`).
pub fn max_conns_for(wanted: usize, listeners: usize, limit: &FdLimit) -> usize {
    if limit.soft == 0 {
        return wanted; // unknown: trust the caller
    }
    let spare = RESERVED_FDS + listeners as u64;
    let fits = usize::try_from(limit.soft.saturating_sub(spare)).unwrap_or(usize::MAX);
    wanted.min(fits.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_limit_shrinks_to_fit_the_descriptors() {
        let limit = FdLimit { soft: 1024, hard: 4096 };
        assert_eq!(max_conns_for(10_000, 4, &limit), 1024 - 16 - 4);
        assert_eq!(max_conns_for(100, 4, &limit), 100);
        assert_eq!(max_conns_for(10_000, 4, &FdLimit { soft: 0, hard: 0 }), 10_000);
        assert_eq!(max_conns_for(10_000, 4, &FdLimit { soft: 8, hard: 8 }), 1);
    }

    #[test]
    fn warns_when_conns_do_not_fit() {
        let limit = FdLimit { soft: 1024, hard: 1024 };
        assert!(check_conns(100, &limit).is_none());
        let warning = check_conns(5000, &limit).unwrap();
        assert!(warning.contains("LimitNOFILE"), "{warning}");
    }
}
