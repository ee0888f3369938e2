//! The chat room over real sockets: several clients, one room, one loop. Checks what a user
//! of `nc 127.0.0.1 12346` would see, and that a member who stops reading is cut off
//! without slowing anyone else.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use reactor::reactor::{Config, Reactor};
use reactor::service::chat::{Chat, ChatConfig};

struct Member {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Member {
    fn join(addr: SocketAddr) -> Member {
        let stream = common::connect(addr);
        let writer = stream.try_clone().unwrap();
        let mut m = Member { reader: BufReader::new(stream), writer };
        assert!(m.line().starts_with("*** welcome, you are guest-"));
        m
    }
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read line");
        line
    }
    fn say(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
    }
}

fn room(max_output: usize) -> (SocketAddr, common::Server) {
    let mut reactor = Reactor::new(Config { max_output, ..Config::default() }).unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let addr = reactor.serve(any, Chat::new(ChatConfig::default())).unwrap();
    (addr, common::Server::run(reactor, addr))
}

#[test]
fn three_members_join_talk_rename_and_leave() {
    let (addr, _server) = room(1 << 20);
    let mut a = Member::join(addr);
    let mut b = Member::join(addr);
    assert_eq!(a.line(), "*** guest-2 joined\n");
    let mut c = Member::join(addr);
    assert_eq!(a.line(), "*** guest-3 joined\n");
    assert_eq!(b.line(), "*** guest-3 joined\n");

    a.say("/nick alice\n");
    assert_eq!(a.line(), "*** you are now alice\n");
    assert_eq!(b.line(), "*** guest-1 is now alice\n");
    assert_eq!(c.line(), "*** guest-1 is now alice\n");

    a.say("Hello, Server!\r\n");
    assert_eq!(b.line(), "alice: Hello, Server!\n");
    assert_eq!(c.line(), "alice: Hello, Server!\n");

    b.say("/me waves\n");
    assert_eq!(a.line(), "* guest-2 waves\n");
    assert_eq!(c.line(), "* guest-2 waves\n");

    c.say("/who\n");
    assert!(c.line().starts_with("*** 3 members: alice guest-2 guest-3"));

    b.say("/quit\n");
    assert_eq!(b.line(), "*** bye, guest-2\n");
    assert_eq!(b.line(), "", "connection closed after /quit");
    assert_eq!(a.line(), "*** guest-2 left\n");
    assert_eq!(c.line(), "*** guest-2 left\n");
}

#[test]
fn lines_from_one_sender_arrive_in_order() {
    let (addr, _server) = room(1 << 20);
    let mut a = Member::join(addr);
    let mut b = Member::join(addr);
    assert_eq!(a.line(), "*** guest-2 joined\n");
    let batch: String = (0..500).map(|i| format!("line {i}\n")).collect();
    b.say(&batch);
    for i in 0..500 {
        assert_eq!(a.line(), format!("guest-2: line {i}\n"));
    }
}

#[test]
fn long_lines_are_rejected_and_the_sender_stays() {
    let (addr, _server) = room(1 << 20);
    let mut a = Member::join(addr);
    let mut b = Member::join(addr);
    assert_eq!(a.line(), "*** guest-2 joined\n");
    b.say(&format!("{}\n", "x".repeat(10_000)));
    assert!(b.line().starts_with("*** error: line too long"));
    b.say("short one\n");
    assert_eq!(a.line(), "guest-2: short one\n", "the long line was not relayed");
}

/// Field `i` of `/proc/sys/net/ipv4/NAME` (min, initial, max), or 16 MiB if it cannot be read.
fn tcp_buffer(name: &str, i: usize) -> usize {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(i).and_then(|v| v.parse().ok()))
        .unwrap_or(16 << 20)
}

#[test]
fn a_member_who_never_reads_is_disconnected_and_the_rest_keep_chatting() {
    let (addr, _server) = room(64 * 1024);
    let mut talker = Member::join(addr);
    let mut listener = Member::join(addr);
    assert_eq!(talker.line(), "*** guest-2 joined\n");
    let sleeper = Member::join(addr); // reads its welcome, then nothing ever again
    assert_eq!(talker.line(), "*** guest-3 joined\n");
    assert_eq!(listener.line(), "*** guest-3 joined\n");
    sleeper.writer.set_nodelay(true).unwrap();

    // Chat until the sleeper is dropped, and give up only far beyond what can be buffered for
    // it: its 64 KiB output limit, plus the kernel's send buffer on our side (which grows up
    // to tcp_wmem's maximum, 4 MiB by default) and its receive buffer (tcp_rmem's initial
    // size: it never reads, so the buffer never grows).
    let text = "y".repeat(1000);
    let most = 2 * (tcp_buffer("tcp_wmem", 2) + tcp_buffer("tcp_rmem", 1)) + 64 * 1024;
    let mut sent = 0;
    let mut dropped_notice = false;
    while sent < most / text.len() && !dropped_notice {
        talker.say(&format!("{text}\n"));
        sent += 1;
        // The listener keeps up and sees every line; the sleeper's leave notice shows up
        // among them at some point.
        loop {
            let line = listener.line();
            if line == "*** guest-3 was disconnected (too slow)\n" {
                dropped_notice = true;
                continue;
            }
            assert_eq!(line, format!("guest-1: {text}\n"));
            break;
        }
    }
    assert!(dropped_notice, "the slow member was never disconnected");
    assert_eq!(talker.line(), "*** guest-3 was disconnected (too slow)\n");
    talker.say("still here\n");
    assert_eq!(listener.line(), "guest-1: still here\n");
    drop(sleeper);
    std::thread::sleep(Duration::from_millis(10));
}

/// A member who pastes thousands of lines in one write is served a limit's worth per turn
/// (the reactor stops reading it while its fan-out waits, then offers the rest again):
/// everyone who reads gets every line, in order, and a FIN right after the paste does not
/// cut the held lines off.
#[test]
fn a_flood_from_one_member_reaches_everyone_whole_and_in_order() {
    let (addr, _server) = room(8 * 1024);
    let mut flooder = Member::join(addr);
    let mut a = Member::join(addr);
    assert_eq!(flooder.line(), "*** guest-2 joined\n");
    let mut b = Member::join(addr);
    assert_eq!(flooder.line(), "*** guest-3 joined\n");
    assert_eq!(a.line(), "*** guest-3 joined\n");
    let lines = 5_000;
    let paste: String = (0..lines).map(|i| format!("line {i}\n")).collect();
    flooder.say(&paste);
    flooder.writer.shutdown(std::net::Shutdown::Write).unwrap();
    for (name, member) in [("a", &mut a), ("b", &mut b)] {
        for i in 0..lines {
            assert_eq!(member.line(), format!("guest-1: line {i}\n"), "member {name}");
        }
        assert_eq!(member.line(), "*** guest-1 left\n", "member {name}");
    }
}
