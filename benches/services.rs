//! Micro benches of the sans-I/O services: requests per second through the protocol layer
//! alone, no sockets, no syscalls. What these measure is the ceiling the reactor's own code
//! could reach if the kernel were free; `benches/loopback.rs` measures what it does reach.
//!
//! One group per service: echo, chat (fan-out), HTTP (`GET /`, one and sixteen pipelined),
//! kv (a RESP `SET` + `GET`, one and sixteen pipelined).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reactor::service::chat::{Chat, ChatConfig};
use reactor::service::echo::Echo;
use reactor::service::http::{Http, HttpConfig};
use reactor::service::kv::{Kv, KvConfig};
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

fn http(c: &mut Criterion) {
    let mut group = c.benchmark_group("service/http");
    for pipelined in [1usize, 16] {
        let batch = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\n\r\n".repeat(pipelined);
        group.throughput(Throughput::Elements(pipelined as u64));
        group.bench_function(format!("get_root_x{pipelined}"), |b| {
            let mut h = Harness::new(Http::new(HttpConfig::default()));
            let conn = h.open();
            b.iter(|| {
                h.input(conn, black_box(&batch));
                black_box(h.take_output(conn));
            });
        });
    }
    group.finish();
}

fn kv(c: &mut Criterion) {
    let mut group = c.benchmark_group("service/kv");
    for pipelined in [1usize, 16] {
        let pair = b"*3\r\n$3\r\nSET\r\n$8\r\nkey:0042\r\n$16\r\nvalue-0123456789\r\n*2\r\n$3\r\nGET\r\n$8\r\nkey:0042\r\n";
        let batch = pair.repeat(pipelined);
        group.throughput(Throughput::Elements(2 * pipelined as u64));
        group.bench_function(format!("set_get_x{pipelined}"), |b| {
            let mut h = Harness::new(Kv::new(KvConfig::default()));
            let conn = h.open();
            b.iter(|| {
                h.input(conn, black_box(&batch));
                black_box(h.take_output(conn));
            });
        });
    }
    group.finish();
}

fn config() -> Criterion {
    // Short runs: the machine is shared and these are stable within a few percent anyway.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! { name = benches; config = config(); targets = echo, chat, http, kv }
criterion_main!(benches);
