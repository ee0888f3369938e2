//! Micro benches of the sans-I/O services: requests per second through the protocol layer
//! alone, no sockets, no syscalls. What these measure is the ceiling the reactor's own code
//! could reach if the kernel were free; `benches/loopback.rs` measures what it does reach.
//!
//! Echo and chat now. HTTP and kv: add a group each when those services land (parse one
//! `GET /` / one RESP `SET` + `GET` per iteration through `Harness`, the same way).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reactor::service::chat::{Chat, ChatConfig};
use reactor::service::echo::Echo;
use reactor::service::testing::Harness;

fn echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("service/echo");
    for size in [64usize, 16 * 1024] {
        let message = vec![b'x'; size];
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{size}B"), |b| {
            let mut h = Harness::new(Echo);
            let conn = h.open();
            b.iter(|| {
                h.input(conn, black_box(&message));
                black_box(h.take_output(conn));
            });
        });
    }
    group.finish();
}

fn chat(c: &mut Criterion) {
    let mut group = c.benchmark_group("service/chat");
    // One line from one member of eight, formatted once and queued for the seven others.
    group.throughput(Throughput::Elements(1));
    group.bench_function("line_to_7_members", |b| {
        let mut h = Harness::new(Chat::new(ChatConfig::default()));
        let members: Vec<_> = (0..8).map(|_| h.open()).collect();
        for &m in &members {
            h.take_output(m);
        }
        let line = b"hello, everybody in the room\n";
        b.iter(|| {
            h.input(members[0], black_box(line));
            for &m in &members[1..] {
                black_box(h.take_output(m));
            }
        });
    });
    group.finish();
}

fn config() -> Criterion {
    // Short runs: the machine is shared and these are stable within a few percent anyway.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! { name = benches; config = config(); targets = echo, chat }
criterion_main!(benches);
