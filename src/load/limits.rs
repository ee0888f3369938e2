//! The file-descriptor limit: each connection is one descriptor, and the soft limit
//! (`ulimit -n`, often 1024) is far below what a load test wants.
//!
//! A process may raise its soft limit up to its hard limit without privileges, so the load
//! generator does that at start, as servers do (Redis sizes `maxclients` the same way). Past
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
