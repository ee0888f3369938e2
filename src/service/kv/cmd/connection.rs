//! Connection commands: PING, ECHO, SELECT, QUIT, AUTH, HELLO and CLIENT. They concern the
//! client talking, not the keyspace.

use std::fmt::Write as _;

use crate::service::Cx;

use super::{Kv, Sub, help, not_an_integer, reply, sub, syntax_error};
use crate::service::kv::resp::{Args, parse_int};

/// The Redis version we answer to, in HELLO and INFO: the protocol level this service
/// follows. Clients use it to decide which commands to try.
pub(crate) const REDIS_VERSION: &str = "7.0.0";

/// `PING [message]`: `+PONG`, or the message as a bulk string.
pub(super) fn ping(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    if args.len() > 2 {
        return super::wrong_arity("ping", cx.out());
    }
    // In RESP2 pub/sub mode a reply must look like a message: `[pong, message or ""]`.
    if super::in_pubsub_mode(kv, cx) {
        let out = cx.out();
        reply::array(out, 2);
        reply::bulk(out, b"pong");
        return reply::bulk(out, args.get(1).unwrap_or_default());
    }
    match args.get(1) {
        None => reply::simple(cx.out(), "PONG"),
        Some(message) => reply::bulk(cx.out(), message),
    }
}

/// `ECHO message`.
pub(super) fn echo(_kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    reply::bulk(cx.out(), args.arg(1));
}

/// `SELECT index`: there is one database, 0.
pub(super) fn select(_kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    match parse_int(args.arg(1)) {
        None => not_an_integer(cx.out()),
        Some(n) if i32::try_from(n).is_err() => {
            reply::err(cx.out(), "value is out of range, value must between -2147483648 and 2147483647")
        }
        Some(0) => cx.write(reply::OK),
        Some(_) => reply::err(cx.out(), "DB index is out of range"),
    }
}

/// `QUIT`: `+OK`, then the connection closes once the reply is sent.
pub(super) fn quit(_kv: &mut Kv, _args: Args<'_>, cx: &mut Cx<'_>) {
    cx.write(reply::OK);
    cx.close();
}

/// `AUTH [username] password`. There are no passwords here: the one user, `default`, needs
/// none, which is how Redis starts without `requirepass`. So, as there, a client configured
/// with `default` and any password logs in, another user is refused, and a password alone is
/// an error that says why (Redis's words, which clients show to their users).
pub(super) fn auth(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let (user, password) = match args.len() {
        2 if kv.config.requirepass.is_none() => {
            return reply::err(
                cx.out(),
                "AUTH <password> called without any password configured for the default user. \
                 Are you sure your configuration is correct?",
            );
        }
        2 => (&b"default"[..], args.arg(1)),
        3 => (args.arg(1), args.arg(2)),
        _ => return syntax_error(cx.out()),
    };
    if log_in(kv, cx, user, password) {
        cx.write(reply::OK);
    } else {
        wrong_pass(cx.out());
    }
}

/// Checks `user` and `password` (the `default` user only; any password when none is set)
/// and marks the client authenticated if they are right.
fn log_in(kv: &mut Kv, cx: &Cx<'_>, user: &[u8], password: &[u8]) -> bool {
    let right = user == b"default"
        && kv.config.requirepass.as_deref().is_none_or(|expected| same_secret(expected.as_bytes(), password));
    let Some(client) = kv.clients.get_mut(&cx.id().serial()) else {
        return false;
    };
    if right {
        client.authenticated = true;
    } else {
        // Once per connection, and counted when it closes (`Kv::close`): a line per attempt
        // would let a pipeline of guesses write the log as fast as it can send them.
        client.failed_auths += 1;
        if client.failed_auths == 1 {
            log::info!("kv: {} ({}): failed AUTH", cx.id(), cx.peer());
        }
    }
    right
}

/// `a == b`, in a time that depends on their lengths only, not on where they first differ:
/// an attacker timing replies learns nothing about how much of a guess was right (Redis's
/// `time_independent_strcmp` does the same).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let longest = a.len().max(b.len());
    let mut differ = u8::from(a.len() != b.len());
    for i in 0..longest {
        differ |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    differ == 0
}

fn wrong_pass(out: &mut Vec<u8>) {
    reply::error_bytes(out, b"WRONGPASS invalid username-password pair or user is disabled.");
}

/// `HELLO [protover [AUTH username password] [SETNAME name]]`: the handshake of RESP3-aware
/// clients (redis-py 8 sends `HELLO 3` and gives up on `-NOPROTO`). Both 2 and 3 are
/// accepted. With 3 the server information is a map, and so is `CONFIG GET`'s reply, and a
/// missing value is RESP3's `_` ([`reply::null`]); every other reply keeps its RESP2
/// spelling, which RESP3 includes.
pub(super) fn hello(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    let mut next = 1;
    let mut resp3 = kv.resp3;
    if let Some(version) = args.get(1) {
        match parse_int(version) {
            None => {
                return reply::err(cx.out(), "Protocol version is not an integer or out of range");
            }
            Some(v @ (2 | 3)) => resp3 = v == 3,
            Some(_) => {
                return reply::error_bytes(cx.out(), b"NOPROTO unsupported protocol version");
            }
        }
        next = 2;
    }
    let (mut name, mut login) = (None, None);
    while let Some(option) = args.get(next) {
        if option.eq_ignore_ascii_case(b"setname") && args.get(next + 1).is_some() {
            name = args.get(next + 1);
            next += 2;
        } else if option.eq_ignore_ascii_case(b"auth") && args.get(next + 2).is_some() {
            login = Some((args.arg(next + 1), args.arg(next + 2)));
            next += 3;
        } else {
            let mut text = b"ERR Syntax error in HELLO option '".to_vec();
            text.extend_from_slice(option);
            text.push(b'\'');
            return reply::error_bytes(cx.out(), &text);
        }
    }
    // Every option is read before any is acted on, as in Redis: a syntax error logs nobody in.
    // As AUTH: any password for `default` when none is set.
    if let Some((user, password)) = login
        && !log_in(kv, cx, user, password)
    {
        return wrong_pass(cx.out());
    }
    // Without its password a client may not pick a protocol: only log in while picking one.
    if kv.config.requirepass.is_some() && !kv.authenticated(cx) {
        return reply::error_bytes(
            cx.out(),
            b"NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO \
              AUTH <user> <pass> option can be used to authenticate the client and select the RESP \
              protocol version at the same time",
        );
    }
    if let Some(name) = name
        && !set_name(kv, cx, name)
    {
        return;
    }
    // Only a HELLO that succeeds switches the protocol.
    kv.resp3 = resp3;
    let id = cx.id().serial() as i64;
    let out = cx.out();
    if resp3 {
        reply::map(out, 7);
    } else {
        reply::array(out, 14);
    }
    for (field, value) in [("server", "redis"), ("version", REDIS_VERSION)] {
        reply::bulk(out, field.as_bytes());
        reply::bulk(out, value.as_bytes());
    }
    reply::bulk(out, b"proto");
    reply::int(out, if resp3 { 3 } else { 2 });
    reply::bulk(out, b"id");
    reply::int(out, id);
    for (field, value) in [("mode", "standalone"), ("role", "master")] {
        reply::bulk(out, field.as_bytes());
        reply::bulk(out, value.as_bytes());
    }
    reply::bulk(out, b"modules");
    reply::array(out, 0);
}

/// `CLIENT <subcommand>`: the subcommands served here.
pub(super) const CLIENT: &[Sub] = &[
    sub("client|id", 2, client_id, &["ID", "    Return the ID of the current connection."]),
    sub(
        "client|setname",
        3,
        client_setname,
        &["SETNAME <name>", "    Assign the name <name> to the current connection."],
    ),
    sub("client|getname", 2, client_getname, &["GETNAME", "    Return the name of the current connection."]),
    sub(
        "client|info",
        2,
        client_info,
        &["INFO", "    Return information about the current client connection."],
    ),
    sub(
        "client|list",
        -2,
        client_list,
        &["LIST", "    Return information about client connections (no filters here)."],
    ),
    help("client|help"),
];

fn client_id(_kv: &mut Kv, _args: Args<'_>, cx: &mut Cx<'_>) {
    let id = cx.id().serial() as i64;
    reply::int(cx.out(), id);
}

fn client_setname(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    if set_name(kv, cx, args.arg(2)) {
        cx.write(reply::OK);
    }
}

/// Sets this client's name (empty clears it); replies with the error and returns false for a
/// name `CLIENT LIST` could not show: Redis allows only printable ASCII without spaces.
fn set_name(kv: &mut Kv, cx: &mut Cx<'_>, name: &[u8]) -> bool {
    if name.iter().any(|b| !(b'!'..=b'~').contains(b)) {
        reply::err(cx.out(), "Client names cannot contain spaces, newlines or special characters.");
        return false;
    }
    if let Some(client) = kv.clients.get_mut(&cx.id().serial()) {
        client.name = (!name.is_empty()).then(|| name.into());
    }
    true
}

fn client_getname(kv: &mut Kv, _args: Args<'_>, cx: &mut Cx<'_>) {
    let name = kv.clients.get(&cx.id().serial()).and_then(|c| c.name.as_deref());
    reply::bulk_or_null(cx.out(), name, kv.resp3);
}

fn client_info(kv: &mut Kv, _args: Args<'_>, cx: &mut Cx<'_>) {
    let mut line = String::new();
    describe_client(kv, cx.id().serial(), cx, &mut line);
    reply::verbatim(cx.out(), kv.resp3, line.as_bytes());
}

/// `CLIENT LIST`: one line per connected client. (Redis's TYPE and ID filters are not
/// supported: syntax error.)
fn client_list(kv: &mut Kv, args: Args<'_>, cx: &mut Cx<'_>) {
    if args.len() > 2 {
        return syntax_error(cx.out());
    }
    let mut text = String::new();
    for &id in kv.clients.keys() {
        describe_client(kv, id, cx, &mut text);
    }
    reply::verbatim(cx.out(), kv.resp3, text.as_bytes());
}

/// One `CLIENT LIST` line, in Redis's `name=value` format, with the fields this service knows.
fn describe_client(kv: &Kv, id: u64, cx: &Cx<'_>, text: &mut String) {
    let Some(client) = kv.clients.get(&id) else {
        return;
    };
    let now = cx.now();
    let name = client.name.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
    let (sub, psub, ssub) = kv.pubsub.counts(id);
    // Redis's flags, in its order: P in pub/sub mode, x in a MULTI, d when a watched key
    // changed (its EXEC will fail); N for none.
    let mut flags = String::new();
    for (on, flag) in
        [(sub + psub + ssub > 0, 'P'), (client.multi.is_some(), 'x'), (kv.store.watch_dirty(id), 'd')]
    {
        if on {
            flags.push(flag);
        }
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let multi = client.multi.map_or(-1, |n| n as i64);
    // Writing to a String cannot fail.
    let _ = writeln!(
        text,
        "id={id} addr={} name={name} age={} idle={} flags={flags} db=0 sub={sub} psub={psub} ssub={ssub} \
         multi={multi} cmd={} user=default resp={}",
        client.addr,
        now.saturating_duration_since(client.opened).as_secs(),
        now.saturating_duration_since(client.last_command_at).as_secs(),
        client.last_command,
        if client.resp3 { 3 } else { 2 },
    );
}
