//! Publish/subscribe: who listens to which channel or pattern, and the messages a `PUBLISH`
//! sends them.
//!
//! This is where one client's command makes output on *other* connections, as in the chat
//! service: `PUBLISH` formats a message for each subscriber and hands it to
//! [`Cx::send_to`](crate::service::Cx::send_to). After the service call (a whole pipeline) the
//! reactor appends each recipient's messages to its output, in one write. A subscriber is not
//! slowed down by backpressure, since it is not the one sending: one already owed more than
//! the output limit is disconnected (`CloseReason::TooSlow`), as Redis drops a pub/sub client
//! past its `client-output-buffer-limit pubsub`; nobody else waits for it, and its
//! subscriptions go when it closes ([`PubSub::forget`]).
//!
//! Each subscriber's protocol is remembered with it: a RESP2 client gets a message as an
//! array (`*3 message channel payload`), a RESP3 one as a push (`>3 …`), which RESP3 clients
//! tell apart from replies.
//!
//! Shard channels (`SSUBSCRIBE`, `SPUBLISH`, Redis 7) are a third kind, kept apart from the
//! other two as Redis keeps them: a `PUBLISH` never reaches a shard subscriber nor an
//! `SPUBLISH` an ordinary one, patterns never match shard channels, and the count in a
//! confirmation is of its own family only (`ssubscribe`'s counts shard channels; `subscribe`'s
//! and `psubscribe`'s count channels and patterns). Outside a cluster a shard channel is just
//! a channel: Redis's hash slots only route them between cluster nodes. A client with a
//! subscription of any kind is a subscriber ([`PubSub::subscribed`]: RESP2's pub/sub mode).

use std::collections::{BTreeMap, BTreeSet};

use super::glob;
use super::reply;
use crate::service::ConnId;

/// Every subscription of every client (see the module docs).
#[derive(Debug, Default)]
pub struct PubSub {
    /// Channel → its subscribers, by connection serial. Ordered maps throughout: a handful of
    /// channels is the common case, and `PUBSUB CHANNELS` lists them in order.
    channels: BTreeMap<Box<[u8]>, BTreeMap<u64, ConnId>>,
    /// Pattern → its subscribers. Every `PUBLISH` tries every pattern, as Redis does.
    patterns: BTreeMap<Box<[u8]>, BTreeMap<u64, ConnId>>,
    /// Shard channel → its subscribers (`SSUBSCRIBE`).
    shard_channels: BTreeMap<Box<[u8]>, BTreeMap<u64, ConnId>>,
    /// What each subscribed client listens to (absent: nothing). Ordered, not hashed: once
    /// anyone is subscribed, every RESP2 command asks whether its client is (`execute`), and
    /// a search by serial is cheaper than hashing one.
    clients: BTreeMap<u64, Listener>,
}

#[derive(Debug)]
struct Listener {
    resp3: bool,
    channels: BTreeSet<Box<[u8]>>,
    patterns: BTreeSet<Box<[u8]>>,
    shard_channels: BTreeSet<Box<[u8]>>,
    /// What these subscriptions cost, names and bookkeeping ([`SUBSCRIPTION_OVERHEAD`]).
    bytes: usize,
}

/// Bookkeeping bytes of one subscription beyond its name: its copies in the client's set and
/// the name's map, the client's entry there. Counted with the names against `max_query`, as
/// WATCH counts its keys: every PUBLISH tries every pattern, so a client with a million of
/// them (one 14 MB PSUBSCRIBE) would slow every publisher's every message.
pub const SUBSCRIPTION_OVERHEAD: usize = 96;

impl Listener {
    /// The count a confirmation of `kind` carries, as Redis counts it: shard channels for
    /// `ssubscribe`/`sunsubscribe`, channels and patterns together for the other four.
    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
            Kind::Shard => self.shard_channels.len(),
        }
    }

    fn set(&self, kind: Kind) -> &BTreeSet<Box<[u8]>> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard_channels,
        }
    }

    fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty()
    }
}

/// A channel, a pattern or a shard channel: the three kinds of subscription, kept apart as
/// Redis keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SUBSCRIBE`: one channel, by name.
    Channel,
    /// `PSUBSCRIBE`: every channel a glob pattern matches.
    Pattern,
    /// `SSUBSCRIBE`: one shard channel, by name; only `SPUBLISH` reaches it.
    Shard,
}

impl PubSub {
    /// True when any client listens to anything (a cheap test before the per-client ones).
    pub fn any(&self) -> bool {
        !self.clients.is_empty()
    }

    /// Whether `client` listens to anything, of any kind (RESP2's pub/sub mode).
    pub fn subscribed(&self, client: u64) -> bool {
        self.clients.contains_key(&client)
    }

    /// The count a confirmation of `kind` tells `client`: its shard channels for
    /// [`Kind::Shard`], its channels and patterns together otherwise (see [`Listener::count`]).
    pub fn count(&self, kind: Kind, client: u64) -> usize {
        self.clients.get(&client).map_or(0, |l| l.count(kind))
    }

    /// Whether `client` already listens to `name`.
    pub fn holds(&self, kind: Kind, client: u64, name: &[u8]) -> bool {
        self.clients.get(&client).is_some_and(|l| l.set(kind).contains(name))
    }

    /// What `client`'s subscriptions cost, in bytes (see [`SUBSCRIPTION_OVERHEAD`]).
    pub fn bytes(&self, client: u64) -> usize {
        self.clients.get(&client).map_or(0, |l| l.bytes)
    }

    /// How many channels, patterns and shard channels `client` listens to (`CLIENT LIST`'s
    /// `sub=`, `psub=`, `ssub=`).
    pub fn counts(&self, client: u64) -> (usize, usize, usize) {
        self.clients
            .get(&client)
            .map_or((0, 0, 0), |l| (l.channels.len(), l.patterns.len(), l.shard_channels.len()))
    }

    /// Subscribes `client` to `name`; returns the count its confirmation carries after
    /// ([`PubSub::count`]).
    pub fn subscribe(&mut self, kind: Kind, client: ConnId, resp3: bool, name: &[u8]) -> usize {
        let serial = client.serial();
        let listener = self.clients.entry(serial).or_insert_with(|| Listener {
            resp3,
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            shard_channels: BTreeSet::new(),
            bytes: 0,
        });
        listener.resp3 = resp3;
        let (mine, all) = match kind {
            Kind::Channel => (&mut listener.channels, self.channels.entry(name.into()).or_default()),
            Kind::Pattern => (&mut listener.patterns, self.patterns.entry(name.into()).or_default()),
            Kind::Shard => {
                (&mut listener.shard_channels, self.shard_channels.entry(name.into()).or_default())
            }
        };
        if mine.insert(name.into()) {
            listener.bytes += name.len() + SUBSCRIPTION_OVERHEAD;
        }
        all.insert(serial, client);
        listener.count(kind)
    }

    /// Unsubscribes `client` from `name` (nothing if it was not subscribed); returns the count
    /// its confirmation carries after ([`PubSub::count`]).
    pub fn unsubscribe(&mut self, kind: Kind, client: u64, name: &[u8]) -> usize {
        let Some(listener) = self.clients.get_mut(&client) else {
            return 0;
        };
        let removed = match kind {
            Kind::Channel => listener.channels.remove(name),
            Kind::Pattern => listener.patterns.remove(name),
            Kind::Shard => listener.shard_channels.remove(name),
        };
        if removed {
            listener.bytes -= name.len() + SUBSCRIPTION_OVERHEAD;
        }
        let count = listener.count(kind);
        if listener.is_empty() {
            self.clients.remove(&client);
        }
        if removed {
            remove_from(self.map_mut(kind), name, client);
        }
        count
    }

    /// The channels (patterns, shard channels) `client` listens to, in byte order.
    pub fn subscriptions(&self, kind: Kind, client: u64) -> Vec<Box<[u8]>> {
        self.clients.get(&client).map_or_else(Vec::new, |l| l.set(kind).iter().cloned().collect())
    }

    /// Drops every subscription of `client` (it closed, or sent `RESET`).
    pub fn forget(&mut self, client: u64) {
        let Some(listener) = self.clients.remove(&client) else {
            return;
        };
        for name in &listener.channels {
            remove_from(&mut self.channels, name, client);
        }
        for name in &listener.patterns {
            remove_from(&mut self.patterns, name, client);
        }
        for name in &listener.shard_channels {
            remove_from(&mut self.shard_channels, name, client);
        }
    }

    /// Records that `client` now speaks RESP3 (or RESP2): its messages change shape.
    pub fn set_protocol(&mut self, client: u64, resp3: bool) {
        if let Some(listener) = self.clients.get_mut(&client) {
            listener.resp3 = resp3;
        }
    }

    /// `PUBLISH`: calls `send` with each receiver and the message as its protocol frames it;
    /// returns how many messages that was (a client subscribed to the channel and to two
    /// matching patterns gets three, as in Redis).
    pub fn publish(&self, channel: &[u8], payload: &[u8], mut send: impl FnMut(ConnId, &[u8])) -> usize {
        let mut message = Vec::with_capacity(32 + channel.len() + payload.len());
        let mut sent = self.deliver(b"message", &self.channels, channel, payload, &mut message, &mut send);
        for (pattern, subscribers) in &self.patterns {
            if !glob::matches(pattern, channel) {
                continue;
            }
            for (serial, &id) in subscribers {
                message.clear();
                reply::push(&mut message, self.resp3(*serial), 4);
                reply::bulk(&mut message, b"pmessage");
                reply::bulk(&mut message, pattern);
                reply::bulk(&mut message, channel);
                reply::bulk(&mut message, payload);
                send(id, &message);
                sent += 1;
            }
        }
        sent
    }

    /// `SPUBLISH`: calls `send` with each subscriber of the shard channel and the message
    /// (`smessage`) as its protocol frames it; returns how many that was. Patterns and
    /// ordinary subscribers are not told, as in Redis.
    pub fn spublish(&self, channel: &[u8], payload: &[u8], mut send: impl FnMut(ConnId, &[u8])) -> usize {
        let mut message = Vec::with_capacity(32 + channel.len() + payload.len());
        self.deliver(b"smessage", &self.shard_channels, channel, payload, &mut message, &mut send)
    }

    /// Sends `[kind, channel, payload]` (`message`, `smessage`) to every subscriber of
    /// `channel` in `subscriptions`, framed for each one's protocol in `message` (a scratch
    /// buffer); returns how many that was.
    fn deliver(
        &self,
        kind: &[u8],
        subscriptions: &BTreeMap<Box<[u8]>, BTreeMap<u64, ConnId>>,
        channel: &[u8],
        payload: &[u8],
        message: &mut Vec<u8>,
        send: &mut impl FnMut(ConnId, &[u8]),
    ) -> usize {
        let mut sent = 0;
        for (serial, &id) in subscriptions.get(channel).into_iter().flatten() {
            message.clear();
            reply::push(message, self.resp3(*serial), 3);
            reply::bulk(message, kind);
            reply::bulk(message, channel);
            reply::bulk(message, payload);
            send(id, message);
            sent += 1;
        }
        sent
    }

    /// Channels (or shard channels, for [`Kind::Shard`]) with at least one subscriber that
    /// `pattern` matches (all with `None`), in byte order (`PUBSUB CHANNELS`, `PUBSUB
    /// SHARDCHANNELS`).
    pub fn active_channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<&[u8]> {
        let map = if kind == Kind::Shard { &self.shard_channels } else { &self.channels };
        map.keys().map(|name| &**name).filter(|name| pattern.is_none_or(|p| glob::matches(p, name))).collect()
    }

    /// Subscribers of `channel` (`PUBSUB NUMSUB`; patterns do not count), or of the shard
    /// channel for [`Kind::Shard`] (`PUBSUB SHARDNUMSUB`).
    pub fn subscribers(&self, kind: Kind, channel: &[u8]) -> usize {
        let map = if kind == Kind::Shard { &self.shard_channels } else { &self.channels };
        map.get(channel).map_or(0, BTreeMap::len)
    }

    /// Patterns with at least one subscriber (`PUBSUB NUMPAT`, `INFO`'s `pubsub_patterns`).
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// Channels with at least one subscriber (`INFO`'s `pubsub_channels`).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Shard channels with at least one subscriber (`INFO`'s `pubsubshard_channels`).
    pub fn shard_channel_count(&self) -> usize {
        self.shard_channels.len()
    }

    fn map_mut(&mut self, kind: Kind) -> &mut BTreeMap<Box<[u8]>, BTreeMap<u64, ConnId>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    fn resp3(&self, client: u64) -> bool {
        self.clients.get(&client).is_some_and(|l| l.resp3)
    }
}

/// Removes `client` from `name`'s subscribers, and `name` once nobody listens.
fn remove_from(map: &mut BTreeMap<Box<[u8]>, BTreeMap<u64, ConnId>>, name: &[u8], client: u64) {
    if let Some(subscribers) = map.get_mut(name) {
        subscribers.remove(&client);
        if subscribers.is_empty() {
            map.remove(name);
        }
    }
}
