//! Per-command statistics, for `INFO commandstats`: how often each command and subcommand ran
//! (`calls`), was refused before running (`rejected_calls`: unknown subcommand aside, a wrong
//! arity, no password, pub/sub mode, a full keyspace) and answered an error when it ran
//! (`failed_calls`: `INCR` of a non-integer, `EXEC` without `MULTI`), counted as Redis counts
//! them.
//!
//! Each command has a slot in one vector: a command its row's index in the table, a
//! subcommand a slot after all of them. Counting is an increment at an index the dispatch
//! already holds, no lookup by name, since the `GET`/`SET` path is the one benchmarked.
//!
//! `usec` and `usec_per_call` are always 0. Redis reads its clock before and after every
//! command; this service is sans-I/O and never reads a clock (the reactor reads one per turn
//! and passes it in, so every command of a turn sees the same instant, and timing with it
//! would give 0 too). Timing each command would cost two clock reads, about 40 ns, on a `GET`
//! that costs about a microsecond in all; sampling would make replies depend on timing, which
//! the fuzz and property checks rule out (the same input must give the same bytes). So the
//! fields are there, in Redis's format, for the tools that parse them, and say nothing.

use std::fmt::Write as _;

use super::COMMANDS;

/// What one command's slot counts.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    calls: u64,
    rejected: u64,
    failed: u64,
}

/// Counts for every command and subcommand (see the module docs).
#[derive(Debug)]
pub struct CommandStats {
    counts: Vec<Counts>,
    /// For each command's row, the slot of its first subcommand.
    first_sub: Vec<usize>,
}

impl CommandStats {
    pub(crate) fn new() -> CommandStats {
        let mut first_sub = Vec::with_capacity(COMMANDS.len());
        let mut next = COMMANDS.len();
        for command in COMMANDS {
            first_sub.push(next);
            next += command.subs.len();
        }
        CommandStats { counts: vec![Counts::default(); next], first_sub }
    }

    /// The slot of the `sub`-th subcommand of the command at row `index`.
    pub(super) fn sub_slot(&self, index: usize, sub: usize) -> usize {
        self.first_sub[index] + sub
    }

    /// The command at `slot` ran; its reply was an error if `failed`.
    pub(super) fn called(&mut self, slot: usize, failed: bool) {
        let counts = &mut self.counts[slot];
        counts.calls += 1;
        counts.failed += u64::from(failed);
    }

    /// The command at `slot` was refused before it could run.
    pub(super) fn rejected(&mut self, slot: usize) {
        self.counts[slot].rejected += 1;
    }

    /// `CONFIG RESETSTAT`.
    pub(super) fn reset(&mut self) {
        self.counts.fill(Counts::default());
    }

    /// The lines of `INFO commandstats`, one for each command counted at all, in the table's
    /// order, a container's subcommands after it (Redis's order is its hash table's).
    pub(super) fn write_info(&self, text: &mut String) {
        for (index, command) in COMMANDS.iter().enumerate() {
            let subs = command.subs.iter().enumerate().map(|(j, sub)| (self.sub_slot(index, j), sub.name));
            for (slot, name) in std::iter::once((index, command.name)).chain(subs) {
                let Counts { calls, rejected, failed } = self.counts[slot];
                if calls + rejected + failed > 0 {
                    // Writing to a String cannot fail.
                    let _ = write!(
                        text,
                        "cmdstat_{name}:calls={calls},usec=0,usec_per_call=0.00,\
                         rejected_calls={rejected},failed_calls={failed}\r\n"
                    );
                }
            }
        }
    }
}
