//! Chat: a line-based chat room you can join with `nc`. Every line a member types reaches every
//! other member, prefixed with the sender's name.
//!
//! ```text
//! $ nc 127.0.0.1 7000
//! *** welcome, you are guest-1 (1 member here). Type a line to talk, /help for commands.
//! *** guest-2 joined
//! guest-2: hi!
//! ```
//!
//! The protocol (with a full transcript, limits and a state diagram) is in `docs/chat.md`.
//!
//! # How one connection's input becomes output on others
//!
//! Chat is the service that shows the other half of the [`Service`] interface: output that is
//! not a reply. One [`Chat`] value serves every connection of its listener, so the room — who
//! is here and under which name — lives in the service, keyed by [`ConnId`]; the per-connection
//! [`ChatSession`] only remembers where its line reader is. When a member's line is complete,
//! [`Chat::input`](Service::input) formats it **once** (`name: text\n`) and hands the same bytes
//! to [`Cx::send_to`] for each other member. The reactor delivers them right after the call,
//! into each recipient's own output buffer, with that recipient's own backpressure. The service
//! never sees a socket and never waits for anyone.
//!
//! ```text
//!   guest-1's socket ─▶ reactor ─▶ Chat::input(guest-1) ─┬─ cx.write(..)      ─▶ guest-1's buffer
//!                                                         ├─ cx.send_to(g2, ..) ─▶ guest-2's buffer
//!                                                         └─ cx.send_to(g3, ..) ─▶ guest-3's buffer
//! ```
//!
//! # Slow consumers
//!
//! A member whose terminal stops reading would, in a naive server, make everyone else wait (a
//! blocking write) or make the server's memory grow without bound. Here the reactor caps each
//! connection's output buffer; when a member passes that cap the reactor calls
//! [`Service::close`] with [`CloseReason::TooSlow`]. Chat then writes a last
//! `*** too slow, disconnected` to that member (sent once, best effort) and tells the others
//! that the member was disconnected for being too slow. This is Redis's policy for pub/sub
//! clients (`client-output-buffer-limit pubsub`): the slow one is dropped, nobody else is
//! slowed down, and the server's memory per member stays bounded.
//!
//! # Bad input
//!
//! - **Long lines.** A line longer than [`ChatConfig::max_line`] bytes is answered with an
//!   error line and thrown away. Its bytes are *consumed* as they arrive (the reader switches
//!   to `Reading::Discarding` until the next newline), so the reactor's input buffer for a
//!   chat connection never holds more than one line, and the sender stays connected.
//! - **Invalid UTF-8** is replaced with U+FFFD (`�`), one per invalid sequence, like
//!   [`String::from_utf8_lossy`]. Passing raw bytes through would be simpler, but a chat line
//!   is text shown on *other people's* terminals: one member's broken encoding should not
//!   garble everyone else's screen, and every line the room sends is valid UTF-8.
//! - **Control characters** (everything but tab) become U+FFFD for the same reason: an escape
//!   sequence such as `ESC [2J` would otherwise clear the screen of every member.
//! - **Empty lines** (nothing but spaces and tabs) are ignored.
//!
//! Server notices start with `***` and `/me` actions with `*`. Names cannot contain `*`, `:` or
//! spaces, so a member can never forge a notice: their text always follows `name: `.

use std::collections::BTreeMap;

use super::{CloseReason, ConnId, Cx, Service};

/// Limits of a chat room.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// The longest line, in bytes, not counting its `\n` or `\r\n`. Longer lines get an error.
    pub max_line: usize,
    /// The most members at once; `None` means "as many as the reactor lets in". A connection
    /// beyond it is told the room is full and closed.
    pub max_members: Option<usize>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig { max_line: 4096, max_members: None }
    }
}

/// The chat room: one per listener, shared by all its connections.
#[derive(Debug)]
pub struct Chat {
    config: ChatConfig,
    /// Who is in the room. A `BTreeMap` so that broadcast order is the same on every run.
    members: BTreeMap<ConnId, Member>,
    /// Names in use, lowercased, so uniqueness is case-insensitive. Sorted, which is also the
    /// order `/who` lists them in.
    names: BTreeMap<String, ConnId>,
    /// The `N` of the next `guest-N` name.
    next_guest: u64,
    /// One broadcast line, formatted once and then sent to each member. Reused between lines.
    outgoing: Vec<u8>,
}

#[derive(Debug)]
struct Member {
    name: String,
}

/// Per-connection state: only where the line reader is. Everything else is in [`Chat`].
#[derive(Debug)]
pub struct ChatSession {
    reading: Reading,
}

/// The line reader's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Collecting a line (the reactor keeps its incomplete tail for us).
    Line,
    /// The current line passed `max_line`: it was rejected, and its bytes are thrown away up
    /// to and including the next `\n`.
    Discarding,
    /// The connection was refused (room full) or said `/quit`; nothing more is read.
    Done,
}

const HELP: &[u8] = b"\
*** commands:
***   /nick NAME   change your name (1-32 of A-Z a-z 0-9 _ -)
***   /who         list who is here
***   /me ACTION   show \"* yourname ACTION\"
***   /quit        leave the room
***   /help        this text
***   //text       send a line that starts with \"/\"
";

impl Chat {
    /// An empty room.
    pub fn new(config: ChatConfig) -> Self {
        Chat { config, members: BTreeMap::new(), names: BTreeMap::new(), next_guest: 1, outgoing: Vec::new() }
    }

    /// How many members are in the room.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// The name of member `id`, if it is in the room.
    pub fn name_of(&self, id: ConnId) -> Option<&str> {
        self.members.get(&id).map(|m| m.name.as_str())
    }

    /// Sends `bytes` to every member but `except`.
    fn broadcast(&self, except: ConnId, bytes: &[u8], cx: &mut Cx<'_>) {
        for &id in self.members.keys().filter(|&&id| id != except) {
            cx.send_to(id, bytes);
        }
    }

    /// Like [`Chat::broadcast`], for the line formatted in `self.outgoing`.
    fn broadcast_outgoing(&self, except: ConnId, cx: &mut Cx<'_>) {
        self.broadcast(except, &self.outgoing, cx);
    }

    /// The first `guest-N` that nobody has taken (someone may have picked `/nick guest-7`).
    fn fresh_guest_name(&mut self) -> String {
        loop {
            let name = format!("guest-{}", self.next_guest);
            self.next_guest += 1;
            if !self.names.contains_key(&name) {
                return name;
            }
        }
    }

    /// One complete line, without its terminator, from member `id`.
    fn on_line(&mut self, id: ConnId, line: &[u8], cx: &mut Cx<'_>) {
        if line.iter().all(|b| matches!(b, b' ' | b'\t')) {
            return;
        }
        let Some(member) = self.members.get(&id) else {
            return;
        };
        // `//text` is an escaped `/text`: said, not run.
        let said = match line {
            [b'/', b'/', ..] => &line[1..],
            [b'/', ..] => return self.command(id, line, cx),
            _ => line,
        };
        self.outgoing.clear();
        self.outgoing.extend_from_slice(member.name.as_bytes());
        self.outgoing.extend_from_slice(b": ");
        push_text(&mut self.outgoing, said);
        self.outgoing.push(b'\n');
        self.broadcast_outgoing(id, cx);
    }

    /// A line starting with `/`. Commands are case-insensitive, as IRC's are, and end at a
    /// space or a tab.
    fn command(&mut self, id: ConnId, line: &[u8], cx: &mut Cx<'_>) {
        let (command, arg) = match line.iter().position(|&b| b == b' ' || b == b'\t') {
            Some(space) => (&line[..space], trim(&line[space + 1..])),
            None => (line, &b""[..]),
        };
        match (command.to_ascii_lowercase().as_slice(), arg) {
            (b"/nick", b"") => cx.write(b"*** usage: /nick NAME\n"),
            (b"/nick", name) => self.nick(id, name, cx),
            (b"/who", b"") => self.who(id, cx),
            (b"/me", b"") => cx.write(b"*** usage: /me ACTION\n"),
            (b"/me", action) => self.me(id, action, cx),
            (b"/quit", _) => self.quit(id, cx),
            (b"/help", _) => cx.write(HELP),
            (b"/who", _) => cx.write(b"*** usage: /who\n"),
            _ => {
                cx.write(b"*** error: unknown command ");
                push_text(cx.out(), command);
                cx.write(b" (try /help)\n");
            }
        }
    }

    fn nick(&mut self, id: ConnId, wanted: &[u8], cx: &mut Cx<'_>) {
        let Some(wanted) = valid_name(wanted) else {
            cx.write(b"*** error: a name is 1-32 characters from A-Z a-z 0-9 _ -\n");
            return;
        };
        let key = wanted.to_ascii_lowercase();
        if self.names.get(&key).is_some_and(|&owner| owner != id) {
            cx.write(format!("*** error: the name {wanted} is taken\n").as_bytes());
            return;
        }
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        if member.name == wanted {
            cx.write(format!("*** you are already {wanted}\n").as_bytes());
            return;
        }
        // Same key when only the case changes (`alice` → `Alice`): remove, then insert.
        let old = std::mem::replace(&mut member.name, wanted.to_owned());
        self.names.remove(&old.to_ascii_lowercase());
        self.names.insert(key, id);
        log::debug!("chat: {} ({}) renamed {old} -> {wanted}", id, cx.peer());
        cx.write(format!("*** you are now {wanted}\n").as_bytes());
        self.broadcast(id, format!("*** {old} is now {wanted}\n").as_bytes(), cx);
    }

    fn who(&self, id: ConnId, cx: &mut Cx<'_>) {
        let you = self.name_of(id).unwrap_or_default();
        let count = self.members.len();
        let noun = if count == 1 { "member" } else { "members" };
        let mut reply = format!("*** {count} {noun}:");
        for &member in self.names.values() {
            reply.push(' ');
            reply.push_str(self.name_of(member).unwrap_or_default());
        }
        reply.push_str(&format!(" (you are {you})\n"));
        cx.write(reply.as_bytes());
    }

    fn me(&mut self, id: ConnId, action: &[u8], cx: &mut Cx<'_>) {
        let Some(member) = self.members.get(&id) else {
            return;
        };
        self.outgoing.clear();
        self.outgoing.extend_from_slice(b"* ");
        self.outgoing.extend_from_slice(member.name.as_bytes());
        self.outgoing.push(b' ');
        push_text(&mut self.outgoing, action);
        self.outgoing.push(b'\n');
        self.broadcast_outgoing(id, cx);
    }

    fn quit(&mut self, id: ConnId, cx: &mut Cx<'_>) {
        let name = self.name_of(id).unwrap_or_default();
        cx.write(format!("*** bye, {name}\n").as_bytes());
        // The leave notice goes out from `close`, which the reactor calls once this goodbye
        // has been flushed; that one place handles every way of leaving.
        cx.close();
    }
}

impl Service for Chat {
    type Session = ChatSession;

    fn name(&self) -> &'static str {
        "chat"
    }

    /// One line and its `\r`: `input` consumes every complete line and discards over-long
    /// ones as they arrive, so an unconsumed tail never gets longer than this. (Complete
    /// lines left at the output limit do not count: the reactor knows it held them back.)
    fn max_input(&self) -> usize {
        self.config.max_line.saturating_add(2)
    }

    fn open(&mut self, cx: &mut Cx<'_>) -> ChatSession {
        if self.config.max_members.is_some_and(|max| self.members.len() >= max) {
            log::debug!("chat: {} ({}) refused: room full", cx.id(), cx.peer());
            cx.write(b"*** the room is full, try again later\n");
            cx.close();
            return ChatSession { reading: Reading::Done };
        }
        let id = cx.id();
        let name = self.fresh_guest_name();
        log::debug!("chat: {} ({}) joined as {name}", id, cx.peer());
        self.names.insert(name.clone(), id); // `guest-N` is already lowercase
        self.members.insert(id, Member { name: name.clone() });
        let count = self.members.len();
        let noun = if count == 1 { "member" } else { "members" };
        cx.write(
            format!(
                "*** welcome, you are {name} ({count} {noun} here). \
                 Type a line to talk, /help for commands.\n"
            )
            .as_bytes(),
        );
        self.broadcast(id, format!("*** {name} joined\n").as_bytes(), cx);
        ChatSession { reading: Reading::Line }
    }

    fn input(&mut self, session: &mut ChatSession, input: &[u8], cx: &mut Cx<'_>) -> usize {
        let mut consumed = 0;
        while session.reading != Reading::Done {
            // One line can become a copy for every member (or, like `/who`, a long answer):
            // at the output limit, stop between lines and leave the rest until what is queued
            // has gone (`Cx::output_room`; the reactor stops reading this member meanwhile and
            // offers the rest again). A flood costs its sender time, not the server memory.
            if consumed > 0 && cx.output_room() == 0 {
                return consumed;
            }
            let rest = &input[consumed..];
            let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
                // No complete line yet. Keep the tail for the next call, unless it is already
                // too long (a trailing `\r` may still be half of a `\r\n`, so it does not count).
                let known = rest.len() - usize::from(rest.ends_with(b"\r"));
                match session.reading {
                    Reading::Discarding => consumed = input.len(),
                    Reading::Line if known > self.config.max_line => {
                        self.reject_long_line(cx);
                        session.reading = Reading::Discarding;
                        consumed = input.len();
                    }
                    _ => {}
                }
                break;
            };
            consumed += newline + 1;
            let line = rest[..newline].strip_suffix(b"\r").unwrap_or(&rest[..newline]);
            match session.reading {
                // The end of a line that was already rejected.
                Reading::Discarding => session.reading = Reading::Line,
                Reading::Line if line.len() > self.config.max_line => self.reject_long_line(cx),
                Reading::Line => self.on_line(cx.id(), line, cx),
                Reading::Done => {}
            }
            if cx.close_requested() {
                session.reading = Reading::Done;
            }
        }
        if session.reading == Reading::Done {
            // After `/quit` nothing more is read: call all of it used, so whatever follows
            // cannot count as an over-long line and cut the goodbye short.
            return input.len();
        }
        consumed
    }

    fn close(&mut self, _session: ChatSession, reason: CloseReason, cx: &mut Cx<'_>) {
        let id = cx.id();
        let Some(member) = self.members.remove(&id) else {
            return; // refused at the door: never joined, nobody to tell
        };
        let name = member.name;
        self.names.remove(&name.to_ascii_lowercase());
        log::debug!("chat: {} ({}) {name} left: {reason:?}", id, cx.peer());
        // Written here, this reaches the leaving member only for the reasons where the reactor
        // still tries a last send (see `Service::close`); otherwise it is dropped, harmlessly.
        let (to_member, to_others): (&[u8], _) = match reason {
            // The reactor dropped what this member owed, cut wherever the kernel stopped
            // taking it: usually inside a line. The newline first puts the notice on a line
            // of its own instead of gluing it to half a message (at worst, a blank line).
            CloseReason::TooSlow => {
                (b"\n*** too slow, disconnected\n", format!("*** {name} was disconnected (too slow)\n"))
            }
            CloseReason::Idle => (b"*** idle too long, disconnected\n", format!("*** {name} left (idle)\n")),
            CloseReason::Shutdown => {
                (b"*** the server is shutting down\n", format!("*** {name} left (server shutting down)\n"))
            }
            CloseReason::InputTooLarge => (
                b"*** input too large, disconnected\n",
                format!("*** {name} was disconnected (input too large)\n"),
            ),
            CloseReason::Error => (b"", format!("*** {name} left (connection error)\n")),
            CloseReason::PeerClosed | CloseReason::Service => (b"", format!("*** {name} left\n")),
        };
        cx.write(to_member);
        self.broadcast(id, to_others.as_bytes(), cx);
    }

    fn refusal(&self) -> &[u8] {
        b"*** the server is full, try again later\n"
    }
}

impl Chat {
    fn reject_long_line(&self, cx: &mut Cx<'_>) {
        cx.write(
            format!("*** error: line too long (max {} bytes), not sent\n", self.config.max_line).as_bytes(),
        );
    }
}

/// `Some(name)` if `name` is 1 to 32 characters from `[A-Za-z0-9_-]`.
fn valid_name(name: &[u8]) -> Option<&str> {
    let ok = (1..=32).contains(&name.len())
        && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    // All ASCII, so this conversion cannot fail; `.ok()` keeps it panic-free anyway.
    ok.then(|| std::str::from_utf8(name).ok()).flatten()
}

/// Appends `bytes` as text safe to show on someone else's terminal: invalid UTF-8 and control
/// characters (tab excepted) become U+FFFD.
fn push_text(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        if !valid.chars().any(|c| c.is_control() && c != '\t') {
            out.extend_from_slice(valid.as_bytes()); // the common case: copy as is
        } else {
            for c in valid.chars() {
                let c = if c.is_control() && c != '\t' { char::REPLACEMENT_CHARACTER } else { c };
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
}

/// `bytes` without leading and trailing spaces and tabs.
fn trim(bytes: &[u8]) -> &[u8] {
    let is_blank = |b: &u8| matches!(b, b' ' | b'\t');
    let start = bytes.iter().position(|b| !is_blank(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_blank(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests;
