//! Chat unit tests: raw protocol bytes in, exact lines out, driven by the in-memory
//! [`Harness`] (no sockets).

use super::*;
use crate::service::testing::Harness;

fn room() -> Harness<Chat> {
    Harness::new(Chat::new(ChatConfig::default()))
}

/// Opens `n` members and throws away the welcome and join lines, so a test starts quiet.
fn quiet_room(n: usize) -> (Harness<Chat>, Vec<ConnId>) {
    let mut h = room();
    let ids: Vec<ConnId> = (0..n).map(|_| h.open()).collect();
    for &id in &ids {
        h.take_output(id);
    }
    (h, ids)
}

fn welcome(name: &str, count: usize) -> String {
    let noun = if count == 1 { "member" } else { "members" };
    format!(
        "*** welcome, you are {name} ({count} {noun} here). \
         Type a line to talk, /help for commands.\n"
    )
}

#[test]
fn three_members_join_talk_rename_and_leave() {
    let mut h = room();
    let a = h.open();
    assert_eq!(h.take_text(a), welcome("guest-1", 1));
    let b = h.open();
    assert_eq!(h.take_text(b), welcome("guest-2", 2));
    assert_eq!(h.take_text(a), "*** guest-2 joined\n");
    let c = h.open();
    assert_eq!(h.take_text(c), welcome("guest-3", 3));
    assert_eq!(h.take_text(a), "*** guest-3 joined\n");
    assert_eq!(h.take_text(b), "*** guest-3 joined\n");

    // A line goes to everyone but its sender, consumed whole.
    assert_eq!(h.input(a, b"hello all\n"), 10);
    assert_eq!(h.take_text(a), "");
    assert_eq!(h.take_text(b), "guest-1: hello all\n");
    assert_eq!(h.take_text(c), "guest-1: hello all\n");

    h.input(b, b"/nick bob\n");
    assert_eq!(h.take_text(b), "*** you are now bob\n");
    assert_eq!(h.take_text(a), "*** guest-2 is now bob\n");
    assert_eq!(h.take_text(c), "*** guest-2 is now bob\n");
    assert_eq!(h.service.name_of(b), Some("bob"));

    h.input(b, b"hi, I'm bob\n");
    assert_eq!(h.take_text(a), "bob: hi, I'm bob\n");
    assert_eq!(h.take_text(c), "bob: hi, I'm bob\n");

    // Leaving by closing the socket.
    h.close(c, CloseReason::PeerClosed);
    assert_eq!(h.take_text(a), "*** guest-3 left\n");
    assert_eq!(h.take_text(b), "*** guest-3 left\n");
    assert_eq!(h.take_text(c), "", "nothing is written to a peer that left");

    // Leaving with /quit: a goodbye, then the reactor closes after the flush.
    h.input(a, b"/quit\n");
    assert_eq!(h.take_text(a), "*** bye, guest-1\n");
    assert!(h.is_closing(a));
    assert_eq!(h.take_text(b), "", "still a member until the reactor closes it");
    h.close(a, CloseReason::Service);
    assert_eq!(h.take_text(b), "*** guest-1 left\n");
    assert_eq!(h.service.member_count(), 1);
}

#[test]
fn each_senders_lines_arrive_in_order() {
    let (mut h, ids) = quiet_room(3);
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    h.input(a, b"a1\na2\n");
    h.input(b, b"b1\n");
    h.input(a, b"a3\n");
    h.input(b, b"b2\nb3\n");
    assert_eq!(
        h.take_text(c),
        "guest-1: a1\nguest-1: a2\nguest-2: b1\nguest-1: a3\nguest-2: b2\nguest-2: b3\n"
    );
    assert_eq!(h.take_text(a), "guest-2: b1\nguest-2: b2\nguest-2: b3\n");
    assert_eq!(h.take_text(b), "guest-1: a1\nguest-1: a2\nguest-1: a3\n");
}

#[test]
fn who_lists_members_sorted_by_name() {
    let (mut h, ids) = quiet_room(3);
    h.input(ids[2], b"/nick Alice\n");
    h.take_output(ids[0]);
    h.take_output(ids[1]);
    h.take_output(ids[2]);
    h.input(ids[0], b"/who\n");
    assert_eq!(h.take_text(ids[0]), "*** 3 members: Alice guest-1 guest-2 (you are guest-1)\n");
    assert_eq!(h.take_text(ids[1]), "", "/who answers only the asker");
    h.input(ids[0], b"/who everyone\n");
    assert_eq!(h.take_text(ids[0]), "*** usage: /who\n");
}

#[test]
fn me_shows_an_action_to_the_others() {
    let (mut h, ids) = quiet_room(2);
    h.input(ids[0], b"/me waves  \n");
    assert_eq!(h.take_text(ids[1]), "* guest-1 waves\n");
    assert_eq!(h.take_text(ids[0]), "");
    h.input(ids[0], b"/me\n");
    assert_eq!(h.take_text(ids[0]), "*** usage: /me ACTION\n");
    assert_eq!(h.take_text(ids[1]), "");
}

#[test]
fn nick_is_unique_without_regard_to_case() {
    let (mut h, ids) = quiet_room(2);
    let (a, b) = (ids[0], ids[1]);
    h.input(a, b"/nick alice\n");
    h.take_output(a);
    h.take_output(b);
    h.input(b, b"/nick ALICE\n");
    assert_eq!(h.take_text(b), "*** error: the name ALICE is taken\n");
    assert_eq!(h.take_text(a), "");
    assert_eq!(h.service.name_of(b), Some("guest-2"));

    // Changing only the case of one's own name is allowed.
    h.input(a, b"/nick Alice\n");
    assert_eq!(h.take_text(a), "*** you are now Alice\n");
    assert_eq!(h.take_text(b), "*** alice is now Alice\n");
    h.input(a, b"/nick Alice\n");
    assert_eq!(h.take_text(a), "*** you are already Alice\n");

    // A freed name can be taken again.
    h.input(a, b"/nick carol\n");
    assert_eq!(h.take_text(b), "*** Alice is now carol\n");
    h.input(b, b"/nick alice\n");
    assert_eq!(h.take_text(b), "*** you are now alice\n");
}

#[test]
fn nick_rejects_invalid_names() {
    let (mut h, ids) = quiet_room(2);
    let error = "*** error: a name is 1-32 characters from A-Z a-z 0-9 _ -\n";
    let too_long = format!("/nick {}\n", "x".repeat(33));
    for bad in ["/nick two words\n", "/nick bad*name\n", "/nick héllo\n", "/nick a:b\n", too_long.as_str()] {
        h.input(ids[0], bad.as_bytes());
        assert_eq!(h.take_text(ids[0]), error, "for {bad:?}");
    }
    h.input(ids[0], b"/nick\n");
    assert_eq!(h.take_text(ids[0]), "*** usage: /nick NAME\n");
    assert_eq!(h.take_text(ids[1]), "", "failed renames are not announced");
    let longest = format!("/nick {}\n", "x".repeat(32));
    h.input(ids[0], longest.as_bytes());
    assert_eq!(h.service.name_of(ids[0]), Some("x".repeat(32).as_str()));
}

#[test]
fn guest_names_skip_names_already_taken() {
    let mut h = room();
    let a = h.open();
    h.input(a, b"/nick guest-2\n");
    let b = h.open();
    assert_eq!(h.service.name_of(b), Some("guest-3"));
}

#[test]
fn unknown_commands_help_and_escaped_slash() {
    let (mut h, ids) = quiet_room(2);
    h.input(ids[0], b"/dance now\n");
    assert_eq!(h.take_text(ids[0]), "*** error: unknown command /dance (try /help)\n");
    h.input(ids[0], b"/help\n");
    assert!(h.take_text(ids[0]).starts_with("*** commands:\n"));
    assert_eq!(h.take_text(ids[1]), "");
    h.input(ids[0], b"//dance is a command\n");
    assert_eq!(h.take_text(ids[1]), "guest-1: /dance is a command\n");
}

#[test]
fn long_line_is_rejected_and_the_connection_stays_usable() {
    let mut h = Harness::new(Chat::new(ChatConfig { max_line: 8, ..ChatConfig::default() }));
    let a = h.open();
    let b = h.open();
    h.take_output(a);
    h.take_output(b);
    let error = "*** error: line too long (max 8 bytes), not sent\n";

    // Exactly max_line is fine, with either terminator.
    h.input(a, b"12345678\n12345678\r\n");
    assert_eq!(h.take_text(b), "guest-1: 12345678\nguest-1: 12345678\n");

    // Too long, arriving whole.
    h.input(a, b"123456789\nok\n");
    assert_eq!(h.take_text(a), error);
    assert_eq!(h.take_text(b), "guest-1: ok\n");

    // Too long and still coming: rejected as soon as it passes the limit, and every byte is
    // consumed, so the reactor never buffers it.
    h.input(a, b"0123456789");
    assert_eq!(h.take_text(a), error);
    assert_eq!(h.unconsumed(a), 0);
    h.input(a, &[b'x'; 10_000]);
    assert_eq!(h.unconsumed(a), 0);
    assert_eq!(h.take_text(a), "", "one error per line");
    h.input(a, b"xxx\nback\n");
    assert_eq!(h.take_text(b), "guest-1: back\n");
    assert!(!h.is_closing(a));

    // A full line ending in `\r` waits for its `\n` instead of being rejected early.
    h.input(a, b"12345678\r");
    assert_eq!(h.unconsumed(a), 9);
    h.input(a, b"\n");
    assert_eq!(h.take_text(b), "guest-1: 12345678\n");
    assert_eq!(h.take_text(a), "");
}

#[test]
fn unconsumed_input_never_passes_max_input() {
    let mut h = Harness::new(Chat::new(ChatConfig { max_line: 16, ..ChatConfig::default() }));
    let a = h.open();
    let max_input = h.service.max_input();
    for chunk in [&b"aaaaaaaaaaaaaaa"[..], b"\r", b"bbbbbbbbbbbbbbbbbbbb", b"\n", b"cc"] {
        h.input(a, chunk);
        assert!(h.unconsumed(a) <= max_input);
    }
}

#[test]
fn bytewise_input_gives_the_same_output_as_whole_lines() {
    let script: &[u8] = b"hi\r\n/nick zed\n\n/me naps\r\n/who\nthis line is far too long\n/bogus\nbye\n";
    let run = |bytewise: bool| {
        let mut h = Harness::new(Chat::new(ChatConfig { max_line: 12, ..ChatConfig::default() }));
        let (a, b) = (h.open(), h.open());
        h.take_output(a);
        h.take_output(b);
        if bytewise {
            h.input_bytewise(a, script);
        } else {
            h.input(a, script);
        }
        (h.take_text(a), h.take_text(b), h.unconsumed(a))
    };
    let whole = run(false);
    assert_eq!(whole, run(true));
    assert_eq!(
        whole.0,
        "*** you are now zed\n\
         *** 2 members: guest-2 zed (you are zed)\n\
         *** error: line too long (max 12 bytes), not sent\n\
         *** error: unknown command /bogus (try /help)\n"
    );
    assert_eq!(whole.1, "guest-1: hi\n*** guest-1 is now zed\n* zed naps\nzed: bye\n");
}

#[test]
fn crlf_and_blank_lines() {
    let (mut h, ids) = quiet_room(2);
    h.input(ids[0], b"one\r\n\r\n   \n\ttwo\tthree\r\n");
    assert_eq!(h.take_text(ids[1]), "guest-1: one\nguest-1: \ttwo\tthree\n");
    // A lone `\r` inside a line is a control character, not a terminator.
    h.input(ids[0], b"a\rb\n");
    assert_eq!(h.take_text(ids[1]), "guest-1: a\u{FFFD}b\n");
}

#[test]
fn invalid_utf8_and_control_characters_are_replaced() {
    let (mut h, ids) = quiet_room(2);
    h.input(ids[0], b"caf\xc3\xa9 \xff\xfe ok\n");
    assert_eq!(h.take_text(ids[1]), "guest-1: café \u{FFFD}\u{FFFD} ok\n");
    h.input(ids[0], b"\x1b[2Jgotcha\n");
    assert_eq!(h.take_output(ids[1]), "guest-1: \u{FFFD}[2Jgotcha\n".as_bytes());
}

#[test]
fn too_slow_member_gets_a_last_notice_and_the_others_a_leave_notice() {
    let (mut h, ids) = quiet_room(3);
    h.close(ids[1], CloseReason::TooSlow);
    assert_eq!(h.take_text(ids[1]), "\n*** too slow, disconnected\n", "on a line of its own");
    assert_eq!(h.take_text(ids[0]), "*** guest-2 was disconnected (too slow)\n");
    assert_eq!(h.take_text(ids[2]), "*** guest-2 was disconnected (too slow)\n");
    // The others carry on, and the slow one no longer receives anything.
    h.input(ids[0], b"phew\n");
    assert_eq!(h.take_text(ids[2]), "guest-1: phew\n");
    assert_eq!(h.take_text(ids[1]), "");
    assert_eq!(h.service.member_count(), 2);
}

#[test]
fn a_full_room_turns_newcomers_away_without_announcing_them() {
    let mut h = Harness::new(Chat::new(ChatConfig { max_members: Some(1), ..ChatConfig::default() }));
    let a = h.open();
    h.take_output(a);
    let b = h.open();
    assert_eq!(h.take_text(b), "*** the room is full, try again later\n");
    assert!(h.is_closing(b));
    h.close(b, CloseReason::Service);
    assert_eq!(h.take_text(a), "", "a refused connection never joined");
    assert_eq!(h.service.member_count(), 1);
}

#[test]
fn quit_stops_reading_the_rest_of_the_input() {
    let (mut h, ids) = quiet_room(2);
    h.input(ids[0], b"first\n/quit\nnever sent\n");
    assert_eq!(h.take_text(ids[1]), "guest-1: first\n");
    assert_eq!(h.take_text(ids[0]), "*** bye, guest-1\n");
}

#[test]
fn quit_uses_up_whatever_follows_so_it_cannot_count_as_a_long_line() {
    let (mut h, ids) = quiet_room(2);
    let mut wire = b"/quit\n".to_vec();
    wire.extend_from_slice(&[b'x'; 10_000]);
    assert_eq!(h.input(ids[0], &wire), wire.len());
    assert_eq!(h.take_text(ids[0]), "*** bye, guest-1\n");
    assert_eq!(h.unconsumed(ids[0]), 0);
}

#[test]
fn commands_are_case_insensitive_and_may_end_at_a_tab() {
    let (mut h, ids) = quiet_room(2);
    h.input(ids[0], b"/NICK alice\n");
    assert_eq!(h.take_text(ids[0]), "*** you are now alice\n");
    assert_eq!(h.take_text(ids[1]), "*** guest-1 is now alice\n");
    h.input(ids[1], b"/nick\tbob\n");
    assert_eq!(h.take_text(ids[1]), "*** you are now bob\n");
    h.input(ids[1], b"/Who\n");
    assert!(h.take_text(ids[1]).starts_with("*** 2 members:"));
}

#[test]
fn a_flood_of_lines_stops_at_the_output_limit_and_goes_on_when_offered_again() {
    let (mut h, ids) = quiet_room(3);
    h.set_output_limit(1000);
    let line = b"spam spam spam\n";
    let flood = line.repeat(1000);
    let first = h.input(ids[0], &flood);
    // Each line is 24 bytes for each of 2 others: the call stops between lines at ~1000
    // bytes queued, instead of queueing 48 KB (or, for a real room, gigabytes).
    assert!(first > 0 && first < flood.len(), "consumed {first}");
    assert_eq!(first % line.len(), 0);
    let mut received = h.take_text(ids[1]).lines().count();
    assert_eq!(received, first / line.len());
    assert!(received * 24 * 2 < 1000 + 48);
    // Offered the rest again (the reactor does once the fan-out has gone), it goes on.
    while h.unconsumed(ids[0]) > 0 {
        assert!(h.input(ids[0], b"") > 0);
        received += h.take_text(ids[1]).lines().count();
    }
    assert_eq!(received, 1000);
    assert_eq!(h.take_text(ids[2]).lines().count(), 1000);
}

#[test]
fn a_flood_of_commands_stops_at_the_output_limit_too() {
    let (mut h, ids) = quiet_room(3);
    h.set_output_limit(1000);
    let flood = b"/who\n".repeat(1000);
    let first = h.input(ids[0], &flood);
    assert!(first > 0 && first < flood.len(), "consumed {first}");
    // The answers wait in the sender's own output: the limit bounds them.
    let answers = h.take_text(ids[0]);
    assert!(answers.len() < 1100, "{} bytes of answers", answers.len());
    assert_eq!(answers.lines().count(), first / 5);
}
