//! What a sleep costs a readiness loop on this machine: one connection, one byte back and
//! forth, served twice, first by a loop that sleeps in `epoll_wait` between messages, then by
//! one that never sleeps.
//!
//! A loop with nothing to do waits in `poll` (`epoll_wait`), and the thread sleeps. When the
//! client's byte arrives, the kernel must wake it: from the client's core, an inter-processor
//! interrupt to the server's idle core, which leaves its idle state and switches the server's
//! thread back in. `--busy-poll` (see `Reactor::wait`) trades that wake-up for spinning. How
//! much a sleep really costs decides which is cheaper, and it differs a lot between machines:
//! a few microseconds on bare metal, much more in some virtual machines, where the idle core
//! halts the virtual CPU and the interrupt goes through the hypervisor. This example measures
//! it, per round trip:
//!
//! * **sleep**: `poll(None)` before every read: every message finds the loop asleep;
//! * **spin**: `poll(Some(0))` until something is ready: the loop never sleeps, and every
//!   microsecond of waiting is CPU spent.
//!
//! It prints the wall time of a round trip and the server thread's CPU time (user + system,
//! from `/proc/self/stat`, in clock ticks of 10 ms: use enough rounds). The sleeping loop's CPU
//! per round trip, less the work itself (the `epoll_wait`, a `read` that takes the byte, a
//! `read` that finds the socket empty, a `write`: a few microseconds, about what the spinning
//! loop spends on a message when the client is quick), is the price of one sleep.
//! `docs/benchmarks.md` ("What one sleep costs here") has this machine's figures.
//!
//! Run it with the server and the client on different cores, as the benchmarks are run (the
//! client is a child process; it is pinned to core 1 with `taskset` when that is installed):
//!
//! ```text
//! taskset -c 0 cargo run --release --example wake_cost            # 50,000 round trips each
//! taskset -c 0 cargo run --release --example wake_cost -- 200000
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("--client") => client(&args[2..]),
        rounds => server(rounds.map_or(Ok(50_000), str::parse).unwrap_or(0)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wake_cost: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The child: `rounds` times, send one byte and wait (blocking) for it to come back.
fn client(args: &[String]) -> io::Result<()> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("bad {what}"));
    let addr: SocketAddr = args.first().and_then(|a| a.parse().ok()).ok_or_else(|| bad("address"))?;
    let rounds: u64 = args.get(1).and_then(|a| a.parse().ok()).ok_or_else(|| bad("round count"))?;
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut byte = [0u8; 1];
    for _ in 0..rounds {
        stream.write_all(&byte)?;
        stream.read_exact(&mut byte)?;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum Wait {
    Sleep,
    Spin,
}

fn server(rounds: u64) -> io::Result<()> {
    if rounds == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "usage: wake_cost [ROUNDS > 0]"));
    }
    println!("{rounds} round trips of 1 byte each way, one connection; server pinned where you ran it");
    for wait in [Wait::Sleep, Wait::Spin] {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let mut child = spawn_client(listener.local_addr()?, rounds)?;
        let (stream, _) = listener.accept()?;
        let measured = serve(stream, rounds, wait);
        let status = child.wait()?;
        let (wall, cpu) = measured?;
        if !status.success() {
            return Err(io::Error::other(format!("the client failed: {status}")));
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / rounds as f64;
        println!(
            "{:<5}  round trip {:>6.1} µs   server CPU per round trip {:>5.1} µs",
            format!("{wait:?}").to_lowercase(),
            per(wall),
            per(cpu)
        );
    }
    Ok(())
}

/// The client as a child process of this same program, on core 1 if `taskset` is there.
fn spawn_client(addr: SocketAddr, rounds: u64) -> io::Result<Child> {
    let me = std::env::current_exe()?;
    let args = [me.to_string_lossy().into_owned(), "--client".into(), addr.to_string(), rounds.to_string()];
    let pinned = Command::new("taskset").arg("-c").arg("1").args(&args).spawn();
    match pinned {
        Ok(child) => Ok(child),
        Err(_) => Command::new(&args[0]).args(&args[1..]).spawn(),
    }
}

/// Echoes `rounds` bytes, waiting for each as `wait` says. Returns wall time and CPU time.
fn serve(stream: TcpStream, rounds: u64, wait: Wait) -> io::Result<(Duration, Duration)> {
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    let mut stream = MioStream::from_std(stream);
    let mut poll = Poll::new()?;
    poll.registry().register(&mut stream, Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(8);
    let mut buf = [0u8; 64];
    let (start, cpu_start) = (Instant::now(), cpu_time()?);
    let mut echoed = 0;
    while echoed < rounds {
        match wait {
            Wait::Sleep => poll.poll(&mut events, None)?,
            Wait::Spin => poll.poll(&mut events, Some(Duration::ZERO))?,
        }
        if events.is_empty() {
            continue;
        }
        // Edge-triggered: read until the socket says it is empty.
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "client left early")),
                Ok(n) => {
                    stream.write_all(&buf[..n])?;
                    echoed += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok((start.elapsed(), cpu_time()? - cpu_start))
}

/// This process's CPU time so far (user + system), from `/proc/self/stat` (Linux; clock ticks,
/// taken as the usual 100 a second).
fn cpu_time() -> io::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line; the state, field 3, is index 0 here.
    Ok(Duration::from_millis((tick(11) + tick(12)) * 10))
}
