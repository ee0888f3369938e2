//! Step 5: plug your own protocol into the reactor — without touching the loop.
//!
//! Step 4 (`mio_loop`) hard-wired echo into the event loop. The real reactor turns that
//! inside out: the loop owns every socket and every syscall, and a protocol is a *service*,
//! a state machine that gets bytes and returns bytes (see `src/service/mod.rs`). This file
//! writes a new one, a line-based "shout" service that answers each line in upper case and
//! counts lines per connection, and serves it next to the built-in echo on one loop.
//!
//! What to notice:
//! - `input` returns how many bytes it used. An incomplete line is left unconsumed; the
//!   reactor keeps it and offers it again with the next bytes. No buffering code here.
//! - There is no socket, no `read`, no `write`, no clock (`cx.now()` comes from the reactor).
//!   That is why the service can be tested with `Harness` in memory, as `main` does first.
//! - Over-long lines are the service's own limit: it answers with an error and closes.
//!
//! ```text
//! terminal 1: cargo run --example custom_service          # shout on 12347, echo on 12348
//! terminal 2: nc 127.0.0.1 12347        (type "hello" -> "1 HELLO")
//! ```
//! Stop it with Ctrl-C (a graceful shutdown: SIGINT is handled by the reactor).

use std::net::SocketAddr;

use reactor::reactor::{Config, Reactor};
use reactor::service::echo::Echo;
use reactor::service::testing::Harness;
use reactor::service::{Cx, Service};

/// Upper-cases every line; the longest line it accepts is `max_line` bytes.
struct Shout {
    max_line: usize,
}

/// Per-connection state: how many lines this peer sent.
struct Lines(u64);

impl Service for Shout {
    type Session = Lines;

    fn name(&self) -> &'static str {
        "shout"
    }

    fn open(&mut self, cx: &mut Cx<'_>) -> Lines {
        cx.write(b"shout: every line comes back in upper case\n");
        Lines(0)
    }

    fn input(&mut self, lines: &mut Lines, input: &[u8], cx: &mut Cx<'_>) -> usize {
        let mut used = 0;
        // Answer every complete line; leave a trailing partial line for next time.
        while let Some(end) = input[used..].iter().position(|&b| b == b'\n') {
            let line = &input[used..used + end];
            lines.0 += 1;
            let reply = format!("{} {}\n", lines.0, String::from_utf8_lossy(line).trim_end().to_uppercase());
            cx.write(reply.as_bytes());
            used += end + 1;
        }
        if input.len() - used > self.max_line {
            cx.write(b"error: line too long\n");
            cx.close(); // flushed first, then closed by the reactor
            return input.len();
        }
        used
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    // First, the service on its own, in memory: split input, partial lines, the limit.
    let mut h = Harness::new(Shout { max_line: 16 });
    let c = h.open();
    h.take_output(c);
    h.input(c, b"hel");
    h.input(c, b"lo\nwor");
    assert_eq!(h.take_text(c), "1 HELLO\n");
    h.input(c, b"ld\n");
    assert_eq!(h.take_text(c), "2 WORLD\n");
    h.input(c, &[b'x'; 20]);
    assert!(h.is_closing(c));
    println!("harness checks passed");

    // Then the same value behind real sockets, beside echo, in one loop.
    let config = Config { handle_signals: true, ..Config::default() };
    let mut reactor = Reactor::new(config)?;
    let shout: SocketAddr = "127.0.0.1:12347".parse()?;
    let echo: SocketAddr = "127.0.0.1:12348".parse()?;
    println!("shout on tcp://{}", reactor.serve(shout, Shout { max_line: 1024 })?);
    println!("echo  on tcp://{}", reactor.serve(echo, Echo)?);
    reactor.run()?;
    Ok(())
}
