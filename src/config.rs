//! Node configuration: every knob, its unit, default, constraint and
//! trade-off.

use crate::time::Duration;
use thiserror::Error;

/// Everything a [`crate::Node`] can be tuned with.
///
/// Start from [`Config::lan`] (the default) or [`Config::testing`] and change
/// fields; [`Config::validate`] says what is out of range. All nodes of one
/// group should use the same timing values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Most neighbours (open, handshaken connections) a node keeps.
    /// Default 8; at least 1. More neighbours: faster floods and more
    /// redundancy, but more copies of every message and more threads in the
    /// TCP adapter. Full mesh below `max_connections + 1` nodes.
    pub max_connections: usize,
    /// Stop pushing chat over a link that delivered a duplicate, so the
    /// links that carry chat thin out to a spanning tree (as in Plumtree);
    /// repair and grafting fill what a broken tree misses. Default true.
    /// False floods every link: about `max_connections - 1` copies of each
    /// message per node, but no extra delay when a tree link dies.
    pub prune_duplicates: bool,
    /// How long a message announced over a pruned link may take to arrive
    /// over the tree before this node asks the announcer for it and grafts
    /// the link back. Default 150 ms. Shorter heals a broken tree sooner
    /// but grafts more links that were only slow.
    pub graft_timeout: Duration,
    /// How long ids for a lazy link (one off the broadcast tree) are
    /// gathered before they go out in one announcement (`IHave`) per
    /// link; on a link where four round trips are longer, four round
    /// trips, up to `sync_interval` (mending the tree over a link costs
    /// two and a half round trips anyway). Default 50 ms; zero announces each
    /// message at once. Ids waiting for a link go out early with anything
    /// else this node writes to it. An announcement awaits no answer (the
    /// link is not pinged for it). Longer sends fewer announcements when
    /// chat is busy, but a link that must be grafted (a broken tree)
    /// learns of the message that much later.
    pub ihave_interval: Duration,
    /// Chat payloads pushed over a tree link are written at most once per
    /// this long: a message for a link written to less than this long
    /// ago waits out the rest of the window, and goes in one write with
    /// the others that came meanwhile (Nagle's rule per link). A quiet
    /// link gets a message at once. Default zero: every message is
    /// written at once. Each hop may add up to this much delay; on a
    /// busy group a tree link then costs one write per window instead of
    /// one per message. The `slow_links` preset sets it.
    pub chat_batch: Duration,
    /// How much earlier an announcement over a lazy link must come than
    /// the message itself over the tree before the lazy link joins the
    /// tree and the slower tree link leaves it (Plumtree's optimization).
    /// Default `None` (off): with one tree shared by every sender, a
    /// swap that speeds one sender's path slows another's, and at 1000
    /// nodes on LAN links it raised payload copies and delivery p99 (see
    /// the README's dissemination figures). `None` keeps the tree that
    /// duplicates shape. Lower follows the fastest paths more closely; too low swaps
    /// links back and forth when two paths are about as fast (the
    /// announcement already waits up to `ihave_interval`, which favours
    /// the tree).
    pub optimize_threshold: Option<Duration>,
    /// Most lazy links each message is announced over (`IHave`). Default
    /// 0: every lazy link (Plumtree). A bound `k` picks, for each
    /// message, the lazy links that already have a batch waiting first,
    /// then others at random, so a batch window goes to about `k` links
    /// whatever the chat rate: on wide-area links announcements drop from
    /// about `N * lazy degree` to `N * k` per message at most. Fewer
    /// announcers per message means a broken tree is mended from fewer
    /// places (each node still hears of most messages from some
    /// announcer when `k >= 2`; repair covers the rest). A node that found
    /// chat lost lately (a gap ahead of a live message, or a message only
    /// repair brought) announces over every lazy link for 10 s whatever
    /// `k`. On 100 ms links with 1% loss, `k = 1` or `2` leaves a lost
    /// last message of a stream to repair in a few seeds (3 s and more).
    pub lazy_fanout: usize,
    /// Most lazy links a node asks to announce to it (`Message::Listen`);
    /// it asks the others to stay quiet. Default 1; 0: every lazy link
    /// (Plumtree). Each node needs only a few announcers to learn of what
    /// its tree links missed, so announcements cost about `N * k` streams
    /// instead of one per lazy link end (on `scenarios/wan.toml`, about a
    /// third), and unlike `lazy_fanout`, which thins announcements at the
    /// sender, every node keeps `k` announcers for every message. A node
    /// that found chat lost lately (a gap ahead of a live message, or a
    /// message only repair brought) asks every lazy link to announce, and
    /// announces over every lazy link itself, for 10 s; so does one that
    /// finds it stands between two parts of a partial cut, while it does.
    /// Links announce the ids gathered for `ihave_interval` as before,
    /// each announcement repeating the ids of the two before it over that
    /// link.
    pub announcers: usize,
    /// Take a link off the tree at its first duplicate, as Plumtree does,
    /// instead of once duplicates outnumber the messages it brought first.
    /// Default false. True keeps the links that carry chat closer to a
    /// real tree when many senders chat at once (fewer copies per
    /// delivery), at the cost of more grafts while it settles.
    pub strict_prune: bool,
    /// Shape the broadcast tree from the leader's beacons only: each
    /// beacon goes over every neighbour link, the link its first copy
    /// came over joins the tree (grafted, if it was off it) and every
    /// tree link a copy comes again over leaves it, so the tree is the
    /// first-arrival (fewest hops on even links) tree from the leader,
    /// checked with every beacon while chat flows or a group that formed
    /// lately has settled (its roster changed within a beacon interval,
    /// then stayed the same for `reconnect_interval`; other idle beacons
    /// go over the tree only); only the links whose place
    /// changed cost a message. Chat duplicates and arrivals then leave
    /// the tree alone, but for a peer that pushes over a link this end
    /// holds off the tree, which is told (grafts for missing messages
    /// still add links; the next beacon prunes them). Default true: a
    /// real tree under many senders (about
    /// one payload copy per delivery) of depth about the overlay's
    /// radius, at about one message per link per beacon, and a tree that
    /// may route around a slow link only as far as the leader's shortest
    /// paths do. False: chat duplicates shape the tree (Plumtree), which
    /// with many senders at once leaves cycles (about two payload copies
    /// per delivery on `scenarios/wan.toml`).
    pub rooted_tree: bool,
    /// Interval between the overlay beacons the member first on the ring
    /// floods over the broadcast tree (see [`crate::Beacon`]). Default
    /// 10 s; at least 10 ms. A node that holds that member alive but has
    /// heard none of its beacons for two intervals (plus a random part of
    /// one) puts its lazy links back on the tree; after three it dials the
    /// member, so two parts of the overlay that no link joins any longer
    /// (every roster still shows everyone alive) merge again. Each beacon
    /// costs about one message per node while idle, and at most one per
    /// link while chat flows. With `rooted_tree`, the leader
    /// also sends one early (at least a fifth of an interval after the
    /// last) once the roster has settled after a change while no chat
    /// flows, so a group that formed idle chats over a shaped tree.
    pub beacon_interval: Duration,
    /// Interval between heartbeats on a watched link (see `watched_links`).
    /// Default 1 s; at least 10 ms. One exchange per interval (a ping and
    /// its answer, three packets over TCP) serves both ends of a link, and
    /// none goes out over a link that carried something both ways in that
    /// time. Shorter detects deaths sooner and costs more idle traffic.
    pub ping_interval: Duration,
    /// How a node's ring predecessor proves it alive when the two are
    /// neighbours, and how often a predecessor pushes its answer.
    /// Default `None`: the link between them is watched with heartbeats,
    /// one exchange per `ping_interval` that serves both ends (each member
    /// is watched by the members on both sides of it on the ring), and a
    /// predecessor that is not a neighbour pushes an answer over the
    /// connection kept for it every `ping_interval`. `Some(d)`: the
    /// predecessor pushes an answer every `d`, over the link as over a
    /// kept connection, and none while the link carries anything else;
    /// once nothing has come for `d` and a ping's wait, the successor
    /// checks it through others as after a ping left unanswered (it pings
    /// first one that never pushed), and the predecessor does not watch
    /// back. One message per `d` where heartbeats cost two per interval;
    /// each member has one watcher on the ring instead of two, and a
    /// death found by the ring comes up to `d - ping_interval` later.
    /// Pushes go at heartbeat ticks: a `d` under `ping_interval` counts
    /// as `ping_interval`. The slow-links preset sets 2 s.
    pub ring_push_interval: Option<Duration>,
    /// Neighbour links this node watches itself with heartbeats: first
    /// the link to its predecessor on a ring of id hashes (Rapid's
    /// observers; a predecessor that is not a neighbour is probed over a
    /// connection kept for it, see `probe_interval`, and takes this slot),
    /// then the links with the lowest hash of the pair of ids, so
    /// that both ends tend to pick them. A node also watches back every
    /// link whose peer picked it (its heartbeats say so), so with the
    /// default each member is watched by the members on both sides of it
    /// on the ring. Any other link is watched only while this node awaits
    /// an answer over it (it sent something, and nothing came back): it is
    /// pinged three quarters of an interval after the send and checked
    /// after the silence, so a node whose links were cut finds out as soon
    /// as it speaks, and an idle link costs nothing. A death on an unwatched link is found by
    /// the watchers, whose suspicion every other neighbour verifies over
    /// its own link before adding its voice. Default 1; at least 1. More
    /// watchers find deaths with more independent accusers and cost an
    /// exchange per link per interval.
    pub watched_links: usize,
    /// Heartbeat intervals without any traffic from a watched neighbour
    /// before this node checks it: it asks `indirect_probes` other
    /// neighbours to reach it, and suspects it only if none can. Default 2
    /// (2 s of silence; doubled while this node sees itself degraded); at
    /// least 2. The silence is checked at its deadline, not at the next
    /// heartbeat. A heartbeat left unanswered for a probe timeout has the
    /// link checked through others while the silence runs out (at most a
    /// probe timeout before its end), so that a check every helper has
    /// answered it cannot reach the member either ends in a suspicion as
    /// the silence ends; not while a heartbeat over any link went
    /// unanswered in the last 10 intervals, nor by a node that sees itself
    /// degraded, nor over a link slower than `probe_timeout` allows for.
    /// Lower detects sooner but checks slow links more often.
    pub missed_pings: u32,
    /// Interval between probe rounds. Most rounds probe the ring
    /// predecessor when it is not a neighbour, over a connection kept for
    /// it; one round in 32 (one in 4 for a minute after a suspicion, a
    /// death or a check: deaths are about) probes a member that is not a
    /// neighbour, taken in turn from the whole membership (SWIM) over a
    /// short connection, so that a member whose watchers all died with it
    /// is still found out. Default 1 s. Shorter finds unwatched deaths
    /// sooner and costs more connections.
    pub probe_interval: Duration,
    /// How long a probe or a heartbeat check waits for an answer, direct or
    /// through others. Default 500 ms; at least 10 ms. Stretched by the
    /// node's own health (see `max_health`).
    pub probe_timeout: Duration,
    /// Other neighbours asked to probe a member this node cannot reach
    /// before it suspects it (SWIM's indirect probes; each answers with an
    /// ack, or a nack if it cannot reach it either, within four fifths of
    /// `probe_timeout`), and the independent accusations after which a
    /// suspicion runs out in `suspect_min` (Lifeguard). Default 3.
    pub indirect_probes: usize,
    /// Most that this node's own timeouts are stretched by when it sees
    /// itself degraded (accused of being dead, its timers handled late,
    /// others reached a neighbour whose link went silent here, or a helper
    /// whose link speaks sent neither an answer nor a nack to a probe
    /// request): each such sign adds one, each answered probe takes one
    /// off, and probe, check, heartbeat and suspicion timeouts and the
    /// probe interval are multiplied by one plus the score (Lifeguard's
    /// local health). Default 4; 0 turns it off.
    pub max_health: u32,
    /// Interval between membership gossip rounds, which resend recent
    /// changes to `gossip_fanout` random neighbours. Default 1 s.
    pub gossip_interval: Duration,
    /// Neighbours each gossip round goes to. Default 2; at least 1.
    pub gossip_fanout: usize,
    /// Gossip rounds each membership change is resent in after it was
    /// flooded. Default 3. Higher heals lossy links better, costs bytes.
    pub gossip_retransmits: u8,
    /// Interval between anti-entropy probes (membership and chat digest
    /// hashes) sent to one random neighbour. Default 1 s. Shorter repairs
    /// losses and splits sooner.
    pub sync_interval: Duration,
    /// Least time between two roster repairs (a digest by bucket) this
    /// node starts over one link to answer a membership mismatch. Default
    /// 5 s. Bounds repair traffic.
    pub full_sync_cooldown: Duration,
    /// Interval between attempts to reach one random dead member, so that
    /// the two sides of a healed split find each other again. Default 2 s.
    pub reconnect_interval: Duration,
    /// Time a dialled or accepted connection has to complete its handshake.
    /// Default 3 s. A connection that says nothing, or only part of a
    /// frame, is closed after it.
    pub handshake_timeout: Duration,
    /// Most accepted connections open at once that have not completed
    /// their handshake; a new one closes the oldest. Default 32; at least 1.
    /// Bounds what idle or slow connections to the port can hold; the
    /// node's own dials do not count.
    pub max_handshaking: usize,
    /// Failed dials in a row after which a member is taken out of this
    /// node's roster (it comes back if it is heard from) and checked
    /// through others. Default 5; at least 1. (While deaths are about, a
    /// failed dial of a member held alive is checked at once.)
    pub max_dial_failures: u32,
    /// First wait before dialling a member again after a failed dial; it
    /// doubles per failure up to `dial_backoff_max`. Default 1 s.
    pub dial_backoff: Duration,
    /// Longest wait between dial attempts to one member. Default 60 s.
    /// Also how long a member that refuted an accusation while this node
    /// could not reach it is held alive beyond its reach: its failed
    /// probes and dials start no check meanwhile (see
    /// `docs/protocol.md`, "Alive beyond reach").
    pub dial_backoff_max: Duration,
    /// How long a death or a departure is told to others (so stale news
    /// about it is refused). Default 1 h. Departures are forgotten then;
    /// deaths are kept for retries (`retry_dead_for`) but no longer spread.
    pub tombstone_ttl: Duration,
    /// How long a suspicion with a single accuser waits for a refutation
    /// before the suspect is declared dead. Default 3 s. Each further
    /// independent accuser shortens it, down to `suspect_min` after
    /// `indirect_probes` of them (Lifeguard's dynamic suspicion). Both
    /// are lengthened by two round trips of the node's typical link (the
    /// median of its links'), so that the accused hears of the suspicion
    /// and its refutation comes back in time on wide-area links.
    pub suspect_timeout: Duration,
    /// Shortest suspicion, when many accusers agree. Default 500 ms; at
    /// most `suspect_timeout`. Must leave time for the accused to hear of
    /// it and refute.
    pub suspect_min: Duration,
    /// How many of one accuser's accusations may be refuted (less those
    /// forgiven, see `accuser_forgive`) before a node stops counting its
    /// accusations (they still go round, so that the accused hears and
    /// refutes them, but confirm nothing and kill no one). Default 8, a
    /// burst of confirmations of others' suspicions. At least 1.
    pub accuser_allowance: u32,
    /// One refuted accusation is forgiven per this long. Default 1 s, the
    /// default `probe_interval`: an honest member accuses on its own
    /// probes, about one member per probe interval, so however wrong its
    /// links make it (a cut, a lossy or one-way link), its accusations
    /// keep counting; one that accuses faster than it could probe counts
    /// for one accusation per `accuser_forgive`.
    pub accuser_forgive: Duration,
    /// How long a dead member is kept and retried (with back-off up to
    /// `dial_backoff_max`), so that the two sides of a split of any length
    /// find each other again. Default 24 h; at least `tombstone_ttl`.
    pub retry_dead_for: Duration,
    /// Most members (alive and remembered dead) in the table. Default 10 000.
    /// New names are refused when full; known members are never evicted for
    /// them.
    pub max_members: usize,
    /// Most entries accepted from one peer list. Default 10 000.
    pub max_peer_list: usize,
    /// Largest frame payload accepted or sent, in bytes. Default 1 MiB;
    /// at least 4 KiB.
    pub max_frame: usize,
    /// Longest chat text, in bytes. Default 4 KiB; less than `max_frame`.
    pub max_text_len: usize,
    /// Most chat messages kept for repair and newcomers. Default 10 000.
    pub history_max: usize,
    /// Longest a message is kept for repair. Default 15 min. Splits longer
    /// than this lose history (reported as gaps).
    pub history_max_age: Duration,
    /// Messages a newcomer receives on joining. Default 100.
    pub newcomer_history: usize,
    /// Most messages in one repair batch; one batch per digest exchange,
    /// so repair never crowds out live traffic. Default 500.
    pub repair_batch: usize,
    /// Most messages held back, over all streams, waiting for a gap to
    /// fill. Default 1 000; beyond it the newest wait in the history store
    /// only (and come back by repair if it drops them).
    pub max_holdback: usize,
    /// How long a gap in a stream may block delivery before it is given up
    /// and reported. Default 30 s.
    pub gap_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config::lan()
    }
}

impl Config {
    /// Defaults for a LAN or a single data centre: deaths removed from every
    /// roster in about 2-3 s.
    pub fn lan() -> Self {
        Config {
            max_connections: 8,
            prune_duplicates: true,
            graft_timeout: Duration::from_millis(150),
            ihave_interval: Duration::from_millis(50),
            chat_batch: Duration::ZERO,
            optimize_threshold: None,
            lazy_fanout: 0,
            announcers: 1,
            strict_prune: false,
            rooted_tree: true,
            beacon_interval: Duration::from_secs(10),
            ping_interval: Duration::from_secs(1),
            ring_push_interval: None,
            missed_pings: 2,
            watched_links: 1,
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_probes: 3,
            max_health: 4,
            gossip_interval: Duration::from_secs(1),
            gossip_fanout: 2,
            gossip_retransmits: 3,
            sync_interval: Duration::from_secs(1),
            full_sync_cooldown: Duration::from_secs(5),
            reconnect_interval: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(3),
            max_handshaking: 32,
            max_dial_failures: 5,
            dial_backoff: Duration::from_secs(1),
            dial_backoff_max: Duration::from_secs(60),
            tombstone_ttl: Duration::from_secs(3600),
            suspect_timeout: Duration::from_secs(3),
            suspect_min: Duration::from_millis(500),
            accuser_allowance: 8,
            accuser_forgive: Duration::from_secs(1),
            retry_dead_for: Duration::from_secs(24 * 3600),
            max_members: 10_000,
            max_peer_list: 10_000,
            max_frame: 1 << 20,
            max_text_len: 4096,
            history_max: 10_000,
            history_max_age: Duration::from_secs(15 * 60),
            newcomer_history: 100,
            repair_batch: 500,
            max_holdback: 1000,
            gap_timeout: Duration::from_secs(30),
        }
    }

    /// For slow links (wide-area, 50 ms or more one way), trading delay
    /// for fewer writes: a busy tree link writes chat payloads at most
    /// every 300 ms (`chat_batch`), announcements are gathered for 1 s
    /// (`ihave_interval`, as long as `sync_interval`: one per link per
    /// second however busy the group), a message announced but not
    /// yet come waits longer before it is asked for, and the ring
    /// predecessor pushes its answer every 2 s, over a link too, instead
    /// of heartbeats (`ring_push_interval`). Each hop may add up
    /// to 300 ms, messages take longer to arrive when the tree breaks
    /// or links lose messages, and a death only the ring finds takes up
    /// to a second longer. Figures on
    /// `scenarios/wan-slow-links.toml` are in the README.
    pub fn slow_links() -> Self {
        Config {
            ihave_interval: Duration::from_secs(1),
            chat_batch: Duration::from_millis(300),
            graft_timeout: Duration::from_millis(400),
            rooted_tree: true,
            ring_push_interval: Some(Duration::from_secs(2)),
            ..Config::lan()
        }
    }

    /// Small tables and short timeouts for tests and small simulations.
    pub fn testing() -> Self {
        Config {
            max_members: 1000,
            max_peer_list: 1000,
            max_frame: 64 * 1024,
            max_text_len: 1024,
            history_max: 1000,
            gap_timeout: Duration::from_secs(10),
            ..Config::lan()
        }
    }

    /// Silence after which a neighbour is declared dead.
    pub fn dead_after(&self) -> Duration {
        self.ping_interval.saturating_mul(self.missed_pings as u64)
    }

    /// Checks every constraint documented on the fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, field: &'static str, rule: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError { field, rule })
            }
        };
        check(self.max_connections >= 1, "max_connections", "at least 1")?;
        check(
            self.ping_interval.as_millis() >= 10,
            "ping_interval",
            "at least 10ms",
        )?;
        check(
            self.beacon_interval.as_millis() >= 10,
            "beacon_interval",
            "at least 10ms",
        )?;
        check(self.missed_pings >= 2, "missed_pings", "at least 2")?;
        check(self.watched_links >= 1, "watched_links", "at least 1")?;
        check(
            self.gossip_interval.as_millis() >= 10,
            "gossip_interval",
            "at least 10ms",
        )?;
        check(self.gossip_fanout >= 1, "gossip_fanout", "at least 1")?;
        check(
            self.probe_interval.as_millis() >= 10,
            "probe_interval",
            "at least 10ms",
        )?;
        check(
            self.probe_timeout.as_millis() >= 10,
            "probe_timeout",
            "at least 10ms",
        )?;
        check(
            self.suspect_min <= self.suspect_timeout,
            "suspect_min",
            "at most suspect_timeout",
        )?;
        check(self.max_health <= 64, "max_health", "at most 64")?;
        check(
            self.accuser_allowance >= 1,
            "accuser_allowance",
            "at least 1",
        )?;
        check(
            self.accuser_forgive.as_millis() >= 1,
            "accuser_forgive",
            "at least 1ms",
        )?;
        check(self.indirect_probes <= 16, "indirect_probes", "at most 16")?;
        check(
            self.retry_dead_for >= self.tombstone_ttl,
            "retry_dead_for",
            "at least tombstone_ttl",
        )?;
        check(
            self.chat_batch <= self.sync_interval,
            "chat_batch",
            "at most sync_interval",
        )?;
        check(
            self.sync_interval.as_millis() >= 10,
            "sync_interval",
            "at least 10ms",
        )?;
        check(
            self.reconnect_interval.as_millis() >= 10,
            "reconnect_interval",
            "at least 10ms",
        )?;
        check(
            self.handshake_timeout.as_millis() >= 10,
            "handshake_timeout",
            "at least 10ms",
        )?;
        check(
            self.dial_backoff.as_millis() >= 1 && self.dial_backoff <= self.dial_backoff_max,
            "dial_backoff",
            "at least 1ms and at most dial_backoff_max",
        )?;
        check(self.max_handshaking >= 1, "max_handshaking", "at least 1")?;
        check(
            self.max_dial_failures >= 1,
            "max_dial_failures",
            "at least 1",
        )?;
        check(self.max_members >= 2, "max_members", "at least 2")?;
        check(self.max_peer_list >= 1, "max_peer_list", "at least 1")?;
        check(self.max_frame >= 4096, "max_frame", "at least 4096 bytes")?;
        check(
            self.max_frame <= u32::MAX as usize,
            "max_frame",
            "at most 4 GiB",
        )?;
        check(
            self.max_text_len >= 1 && self.max_text_len + 1024 <= self.max_frame,
            "max_text_len",
            "at least 1 and at most max_frame - 1024",
        )?;
        check(self.history_max >= 1, "history_max", "at least 1")?;
        check(
            self.newcomer_history <= self.history_max,
            "newcomer_history",
            "at most history_max",
        )?;
        check(self.repair_batch >= 1, "repair_batch", "at least 1")?;
        check(self.max_holdback >= 1, "max_holdback", "at least 1")?;
        check(
            self.tombstone_ttl >= self.history_max_age,
            "tombstone_ttl",
            "at least history_max_age",
        )?;
        Ok(())
    }
}

/// A config field outside its documented range. Nothing was changed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid config: {field} must be {rule}")]
pub struct ConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What it must be.
    pub rule: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        Config::lan().validate().unwrap();
        Config::slow_links().validate().unwrap();
        Config::testing().validate().unwrap();
    }

    #[test]
    fn out_of_range_fields_are_named() {
        let cfg = Config {
            missed_pings: 1,
            ..Config::lan()
        };
        assert_eq!(cfg.validate().unwrap_err().field, "missed_pings");
        let cfg = Config {
            max_text_len: 1 << 20,
            ..Config::lan()
        };
        assert_eq!(cfg.validate().unwrap_err().field, "max_text_len");
    }
}
