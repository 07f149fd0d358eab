//! Overlay watch: is this node's part of the overlay still joined to the
//! rest?
//!
//! Rosters cannot tell: after a bridge between two parts dies and the
//! network heals, both parts hold everyone alive (random probes reach
//! across), yet no neighbour link joins them and chat never crosses. So the
//! member first on the ring of id hashes (the leader, as every roster
//! agrees once views converge) floods a small [`Beacon`] over the broadcast
//! tree every `beacon_interval`, and every node notes when the leader's
//! beacon last advanced. A node that holds the leader alive but has heard
//! none for two intervals (plus a random part of one, so that a cut-off
//! part does not act as one) first puts its lazy links back on the tree,
//! in case only the tree broke; after three it dials the leader, and again
//! each interval while none comes (both waits stretch with the node's ill
//! health, as its timeouts do). The dial's hello says it bridges two parts,
//! so a full leader makes room for it, and the two sides of the new link
//! trade beacons at once, which wakes the whole part up.
//!
//! A beacon costs about one message per node: it rides the tree, and a
//! link that brings a copy again leaves the tree (Plumtree's prune). The
//! leader alone sends it over every neighbour link, lazy ones too, and a
//! copy that comes first over a lazy link grafts it: the tree cannot stay
//! cut where the leader's neighbours are (prunes for different senders'
//! news can cut it while a group forms). Nothing else is sent while the
//! overlay holds together.

use super::*;

/// An accusation held back (see [`Node::hold_back`]).
#[derive(Clone, Debug)]
pub(super) struct Held {
    pub(super) accusation: MemberUpdate,
    /// When it came; whether its refutation came is seen a gossip
    /// interval later (see [`Node::settle_held`]).
    came: Instant,
}

/// Most leaders whose beacons a node tracks at once (one normally, two
/// while views disagree on who leads).
const MAX_ORIGINS: usize = 4;
/// A leader's early beacon (see [`Node::beacon_due`]) comes at least
/// `beacon_interval / EARLY_BEACON_DIVISOR` after its last; a node
/// forwards one beacon per leader per half that.
const EARLY_BEACON_DIVISOR: u64 = 5;
/// Accusations held back at once: one per member reached lately (see
/// [`Node::hold_back`]).
const MAX_HELD: usize = 32;
/// Members after an accused on the ring (its accusers not counted) that
/// probe it to hand it the accusation (see [`Node::watches_over`]).
pub(super) const FAR_WATCHERS: usize = 3;
/// Beacons for which a peer's place on the tree, as its last copy over a
/// link named it, is taken as known (see [`Node::push_beacon`]).
const PLACE_KEPT: u32 = 4;

/// Where a node sits on the tree the leader's newest beacon took.
#[derive(Clone, Copy, Debug)]
struct Place {
    hops: u8,
    /// Half the round trip of each link from the leader, summed.
    at: Duration,
    grandparent: Id,
    /// The round trip from the parent to the grandparent.
    up_rtt: Duration,
}

/// Other members as near the leader as the grandparent, kept while the
/// tree stays the same: shortcuts to try when the grandparent is full.
const MAX_ALTS: usize = 8;

/// A shortcut dial out to the grandparent or another member as near the
/// leader (see [`Node::shortcut`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct ShortcutDial {
    pub(super) to: Id,
    /// This node's place (its hops from the leader among them) when it
    /// dialled: tried again with the next member if this one turns the
    /// dial away as full.
    place: Place,
    /// The parent link it replaces.
    from: ConnId,
    /// The round trip to `to` through the parent.
    through: Duration,
}

/// A shortcut link up, until chat comes over it (see
/// [`Node::pushed_over`]).
#[derive(Clone, Copy, Debug)]
struct Switch {
    to: ConnId,
    /// The parent link it replaces.
    from: ConnId,
    /// This node's hops from the leader before.
    hops: u8,
    /// The member dialled for it, and this node's place then: until chat
    /// comes over the link, its far end may still turn it away as full
    /// (see [`Node::shortcut_refused`]). `None` for a link grafted.
    dialled: Option<(Id, Place)>,
}

/// Where this node sits on the broadcast tree, and its shortcuts up it
/// (see [`Node::shortcut`]).
#[derive(Debug, Default)]
pub(super) struct Shortcuts {
    /// The link the leader's newest beacon came by first: this node's way
    /// to the leader on the tree.
    parent: Option<ConnId>,
    /// This node's hops and way from the leader, its grandparent and the
    /// round trip of its parent's link there, as that beacon told them.
    place: Option<Place>,
    /// The parents of the neighbours that sit as deep as this node's
    /// parent (their copies of the leader's newest beacon named them), and
    /// the round trip to each through that neighbour: members as near the
    /// leader as the grandparent, fastest first: tried in turn when it is
    /// full.
    alts: Vec<(Duration, Id)>,
    /// The grandparent (or other member) dialled, while the dial is out.
    pub(super) dial: Option<ShortcutDial>,
    /// A shortcut link up, until chat comes over it.
    switch: Option<Switch>,
    /// The last grandparent whose link proved no faster than the way
    /// through the parent: not tried again while it stays the same.
    slower: Option<Id>,
    /// This node's hops from the leader when it last took a shortcut,
    /// until the next beacon shows whether the tree kept it.
    took_at: Option<u8>,
    /// Shortcuts in a row that the next beacon's tree did not keep, and
    /// until when the next waits.
    unkept: (u8, Instant),
}

/// Where the overlay watch stands.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    /// This node's own beacon counter, for when it leads.
    seq: u32,
    /// When this node last sent a beacon of its own.
    sent: Option<Instant>,
    /// Whether the roster had stayed the same for `reconnect_interval`
    /// when this node last sent a beacon of its own.
    sent_settled: bool,
    /// The roster hash at the last heartbeat tick, and since when it has
    /// been the same.
    roster: (u64, Instant),
    /// When this node's neighbour links last changed, if they did since
    /// it last pushed a beacon over every one of them (see
    /// [`Node::push_beacon`]).
    pub(super) unshaped: Option<Instant>,
    /// The neighbour links this node last pushed a beacon over, every one
    /// of them: a link opened and closed again since (a dial turned away
    /// as full) changed nothing.
    shaped: Vec<ConnId>,
    /// The newest beacon forwarded per leader, and when.
    seen: BTreeMap<Id, (Beacon, Instant)>,
    /// The member this node follows (`None`: it leads).
    leader: Option<Id>,
    /// When the leader's beacon last advanced here, or this node began
    /// following it.
    heard: Instant,
    /// A random part of an interval added to both deadlines, drawn each
    /// time `heard` moves.
    jitter: Duration,
    /// 0: beacons come; 1: lazy links put back on the tree; 2: leader
    /// dialled.
    stage: u8,
    /// When this node last dialled the leader for its stalled beacons.
    dialled: Instant,
    /// The leader this node dialled to join its part to the leader's: its
    /// hello says so.
    pub(super) bridging: Option<Id>,
    /// An accusation to hand the member dialled as a bridge, once linked.
    vouch: Option<MemberUpdate>,
    /// Accusations held back against members this node reached (at most
    /// [`MAX_HELD`]).
    pub(super) held: BTreeMap<Id, Held>,
    /// When this node last dialled an accused member it had reached.
    bridged: Option<Instant>,
    /// The accused whose bridge dial just failed, while its accusation
    /// is taken.
    given_up: Option<Id>,
    /// The ring predecessor this node dials to bridge a gap left in the
    /// ring by a failure: its hello says it bridges.
    pub(super) ring_bridge: Option<Id>,
    /// When this node last found that it reaches both a member and a
    /// neighbour that accuses it (see [`Node::stands_between`]).
    pub(super) between: Option<Instant>,
    /// Where this node sits on the broadcast tree, and its shortcuts.
    pub(super) tree: Shortcuts,
}

impl Overlay {
    pub(super) fn leader(&self) -> Option<Id> {
        self.leader
    }
}

impl Node {
    /// The newest beacon this node has from the member it follows (its own
    /// when it leads).
    pub(super) fn beacon_news(&self) -> Option<Beacon> {
        match self.overlay.leader {
            None => (self.overlay.seq > 0).then_some(Beacon::new(self.me, self.overlay.seq)),
            Some(l) => self.overlay.seen.get(&l).map(|(b, _)| *b),
        }
    }

    /// This node's way from the leader on the tree and its hops, as the
    /// leader's newest beacon found them, if that came within two beacon
    /// intervals (the leader itself: none, at once).
    pub(super) fn tree_place(&self) -> Option<(Duration, u8)> {
        let Some(l) = self.overlay.leader else {
            return (self.overlay.seq > 0).then_some((Duration::ZERO, 0));
        };
        let every = self.cfg.beacon_interval.saturating_mul(2);
        self.overlay
            .seen
            .get(&l)
            .filter(|(_, t)| self.now - *t < every)
            .map(|(b, _)| (Duration::from_millis(u64::from(b.at_ms)), b.hops))
    }

    /// [`Node::beacon_news`] without this node's place on the tree: what a
    /// hello or a probe answer tells (a part that lags), 10-14 bytes
    /// less than a beacon passed on.
    pub(super) fn beacon_mark(&self) -> Option<Beacon> {
        self.beacon_news().map(|b| Beacon::new(b.origin, b.seq))
    }

    /// Whether `theirs` lags this node's beacon from the same leader by two
    /// or more (a part of the overlay that the leader's beacons no longer
    /// reach; one behind is a beacon still on its way).
    pub(super) fn beacon_behind(&self, theirs: Option<Beacon>) -> bool {
        let (Some(mine), Some(theirs)) = (self.beacon_news(), theirs) else {
            return false;
        };
        mine.origin.id == theirs.origin.id
            && (mine.origin.incarnation > theirs.origin.incarnation
                || (mine.origin.incarnation == theirs.origin.incarnation
                    && mine.seq >= theirs.seq.saturating_add(2)))
    }

    /// A new neighbour's hello showed a stale beacon: send it the newest,
    /// which it floods over its part of the overlay.
    pub(super) fn share_beacon(
        &mut self,
        conn: ConnId,
        theirs: Option<Beacon>,
        out: &mut Vec<Output>,
    ) {
        if self.beacon_behind(theirs) {
            if let Some(b) = self.beacon_news() {
                out.push(Output::Send {
                    conn,
                    msg: Message::Beacon(b),
                });
            }
        }
    }

    /// The member first on the ring of id hashes, if not this node: the
    /// leader it follows.
    fn head_of_ring(&self) -> Option<Id> {
        let me = (ring_pos(self.me.id), self.me.id);
        self.members.first().filter(|l| *l < me).map(|(_, a)| a)
    }

    fn follow(&mut self, leader: Option<Id>) {
        if self.overlay.leader != leader {
            self.overlay.leader = leader;
            self.beacon_heard();
        }
    }

    fn beacon_heard(&mut self) {
        let every = self.cfg.beacon_interval.as_millis() as usize;
        self.overlay.heard = self.now;
        self.overlay.stage = 0;
        self.overlay.jitter = Duration::from_millis(self.below(every) as u64);
    }

    /// Each heartbeat tick: lead (send a beacon when one is due) or follow
    /// (mend the tree, then dial the leader, when its beacons stop).
    pub(super) fn overlay_tick(&mut self, out: &mut Vec<Output>) {
        if !self.joined || self.left {
            return;
        }
        self.settle_held(out);
        let roster = self.roster_hash();
        if roster != self.overlay.roster.0 {
            self.overlay.roster = (roster, self.now);
        }
        let members = &self.members;
        self.overlay
            .seen
            .retain(|a, _| members.get(a).is_some_and(|m| m.in_roster()));
        let leader = self.head_of_ring();
        self.follow(leader);
        let every = self.cfg.beacon_interval;
        let Some(leader) = leader else {
            if self.beacon_due() {
                self.overlay.sent = Some(self.now);
                self.overlay.sent_settled = self.roster_settled();
                self.overlay.seq = self.overlay.seq.saturating_add(1);
                let b = Beacon::new(self.me, self.overlay.seq);
                self.push_beacon(b, None, true, out);
            }
            return;
        };
        if self.neighbours.contains_key(&leader) || self.neighbours.is_empty() {
            // Its beacons come straight over the link (a silent leader is
            // the detector's business), or this node dials for all its
            // slots anyway.
            self.overlay.heard = self.overlay.heard.max(self.now.saturating_sub(every));
            return;
        }
        // A node that sees itself degraded (losing messages, starved) waits
        // longer: beacons lost on its links are not a cut.
        let late = self.now - self.overlay.heard;
        let due = |k: u64| self.stretch(every.saturating_mul(k)) + self.overlay.jitter;
        if self.overlay.stage == 0 && late >= due(2) {
            // Maybe only the tree broke: the lazy links carry the next one.
            self.overlay.stage = 1;
            self.stats.overlay_mends += 1;
            let _ = self.graft_lazy_links(Duration::ZERO, out);
        } else if !self.given_up(leader)
            && ((self.overlay.stage == 1 && late >= due(3))
                || (self.overlay.stage == 2
                    && late >= due(3)
                    && self.now - self.overlay.dialled >= every
                    && self
                        .members
                        .get(&leader)
                        .is_some_and(|m| m.retry_at <= self.now)))
        {
            // (A leader that could not be dialled lately and is being
            // checked or suspected is not dialled again until that is
            // decided: an invented member may come first on the ring.)
            // No neighbour brings it: this part is cut off from the leader.
            // Dialled again each interval while none comes (and its dial
            // backoff allows): the link made may have been lost (a full
            // leader gives the slot of an earlier bridge to a later one, or
            // to anyone who needs it).
            self.overlay.stage = 2;
            self.overlay.dialled = self.now;
            self.stats.overlay_dials += 1;
            // A dial already in flight (to fill a slot, or a probe) carries
            // the mark too: its hello has not left yet.
            self.overlay.bridging = Some(leader);
            self.dial(leader, false, out);
        }
    }

    /// The answer to a ping over probe connection `conn` (see
    /// [`Message::ProbePong`]).
    pub(super) fn probe_pong(&mut self, conn: ConnId, nonce: u32) -> Message {
        let news = self.beacon_mark();
        let beacon = match self.conns.get_mut(&conn) {
            Some(c) if c.beacon == news => None,
            Some(c) => {
                c.beacon = news;
                news
            }
            None => news,
        };
        let (mark, hash) = self.chat_hash();
        let chat = match self.conns.get_mut(&conn) {
            Some(c) if c.chat_sent == Some(hash) => None,
            Some(c) => {
                c.chat_sent = Some(hash);
                Some((mark, hash))
            }
            None => Some((mark, hash)),
        };
        Message::ProbePong {
            nonce,
            beacon,
            chat,
        }
    }

    /// The member `id`, probed over a probe connection, holds a beacon
    /// that did not reach this node over the overlay: this node's part of
    /// the overlay is cut off from the part that holds `id`, which the
    /// probe just proved reachable. That is so when
    /// - it is from the leader this node follows, newer than the newest
    ///   here, whose beacons stopped coming here more than an interval ago
    ///   (two, stretched with ill health; a beacon takes moments over the
    ///   tree); or
    /// - it is from another member this node holds alive (the leader of a
    ///   part whose view differs, as across a partial partition, where a
    ///   bridge member sees both sides alive and each side sees the other
    ///   dead), two or more beacons past the newest from it that reached
    ///   here: beacons of every member in the roster are forwarded, so in
    ///   one overlay they would have come.
    ///
    /// It dials `id` as a bridge at once, instead of waiting out the
    /// leader's silence (see [`Node::overlay_tick`]), or where no silence
    /// would ever show; the two ends trade beacons on linking. The ring of
    /// probes runs through every member, so some member of each part
    /// probes one of the other. At most one such dial per beacon interval.
    pub(super) fn beacon_from_probe(
        &mut self,
        id: Id,
        theirs: Option<Beacon>,
        out: &mut Vec<Output>,
    ) {
        let Some(theirs) = theirs else {
            return;
        };
        let every = self.cfg.beacon_interval;
        let origin = theirs.origin.id;
        let newest_here =
            |b: Option<Beacon>| b.filter(|b| b.origin == theirs.origin).map_or(0, |b| b.seq);
        let cut = if Some(origin) == self.overlay.leader {
            theirs.seq > newest_here(self.beacon_news())
                && self.now - self.overlay.heard >= self.stretch(every.saturating_mul(2))
        } else {
            origin != self.me.id
                && self.members.get(&origin).is_some_and(|m| {
                    m.state == MemberState::Alive && m.incarnation == theirs.origin.incarnation
                })
                && theirs.seq
                    >= newest_here(self.overlay.seen.get(&origin).map(|(b, _)| *b))
                        .saturating_add(2)
        };
        if cut {
            self.bridge_to_probed(id, out);
        }
    }

    /// The member `id`, probed over a probe connection, answered with
    /// its chat hash at its mark, which this node has passed: messages
    /// there are no longer in flight, so hashes that differ mean one side
    /// lacks what the other delivered and repair over the links each has
    /// did not bring (a loss is repaired within `settle_wait` by
    /// neighbours that share the messages; while this node and a
    /// neighbour found their chat different within two `settle_wait`s, a
    /// digest going either way, its part is still repairing losses and
    /// the answer is not taken for a cut). So this node is in a part of
    /// the overlay that chat from the probed member's part does not
    /// reach, as the bridge of a partial partition is once its neighbours
    /// all went to one side, while both sides still look alive to it; or
    /// the prober is. It dials `id` as a bridge (at most once per beacon
    /// interval, as for beacons), and the link's handshake starts repair
    /// both ways. Either end finds it: the prober compares the answer, and
    /// the answerer is probed by members of the other part in turn.
    pub(super) fn chat_from_probe(
        &mut self,
        id: Id,
        theirs: Option<(u64, u64)>,
        out: &mut Vec<Output>,
    ) {
        let Some((mark, theirs)) = theirs else {
            return;
        };
        self.chat_hash();
        let repairing = self
            .chat_repaired
            .is_some_and(|t| self.now - t < self.settle_wait().saturating_mul(2));
        if !repairing && self.streams.hash_at(mark).is_some_and(|h| h != theirs) {
            self.bridge_to_probed(id, out);
        }
    }

    /// The member `id` answered this node's probe while nothing has come
    /// over any of this node's neighbour links for `dead_after`, though
    /// it wrote to one of them that long ago (see [`Node::links_cut`]):
    /// the overlay around this node is cut off, as when a few members are
    /// cut away together and each holds only links to the far side, which
    /// it cannot yet declare dead. The member the probe reached is on this
    /// side of the cut, so this node dials it as a bridge: this side's
    /// chat reaches it over that link during the cut, not after the heal
    /// (and the link's first repair holds nothing back, see
    /// `Conn::bridge`).
    pub(super) fn stranded_probe(&mut self, id: Id, out: &mut Vec<Output>) {
        if self.links_cut() {
            self.bridge_to_probed(id, out);
        }
    }

    /// Whether this node's neighbour links have all gone quiet: none
    /// carried anything for `dead_after` (not stretched by ill health:
    /// this asks whether to look for another way, not whether to declare
    /// anyone dead), and at least one has awaited an answer that long.
    /// An idle link that nobody wrote to is not evidence; a node without
    /// neighbours fills its slots anyway.
    pub(super) fn links_cut(&self) -> bool {
        let quiet = self.cfg.dead_after();
        let mut waited = false;
        for conn in self.neighbours.values() {
            let Some(c) = self.conns.get(conn) else {
                continue;
            };
            if self.now - c.last_heard < quiet {
                return false;
            }
            waited |= self.awaited_since(c).is_some_and(|t| self.now >= t + quiet);
        }
        waited
    }

    /// Dials `id`, a member a probe just reached in another part of the
    /// overlay, as a bridge: at most one such dial per beacon interval.
    fn bridge_to_probed(&mut self, id: Id, out: &mut Vec<Output>) {
        let every = self.cfg.beacon_interval;
        if !self.joined
            || self.left
            || (self.overlay.stage == 2 && self.now - self.overlay.dialled < every)
            || self.neighbours.contains_key(&id)
            || self.dialing_to(id)
        {
            return;
        }
        self.overlay.stage = 2;
        self.overlay.dialled = self.now;
        self.stats.beacon_dials += 1;
        self.overlay.bridging = Some(id);
        self.dial(id, false, out);
    }

    /// Others accuse `u`'s member, which answered this node's ping over a
    /// probe connection lately (a probe asked for by another, a ring
    /// link): this node does not take the accusation, but passes it on to
    /// its neighbours, so that the accused can refute it over the links
    /// there are. If no refutation has come a gossip interval later (see
    /// [`Node::settle_held`]), this node most likely stands between two
    /// parts of the overlay that a partial cut (a bridge, one-way links)
    /// pulled apart, and it dials the accused as a bridge. One accusation
    /// is held per member (a later version's replaces it; more of the same
    /// are confirmations, set aside), up to [`MAX_HELD`]: a cut that
    /// leaves this node a bridge has one side accuse every member of the
    /// other at once, and each accused must hear of its accusation. False
    /// when it is not held (the table is full): the caller takes it.
    pub(super) fn hold_back(&mut self, u: &MemberUpdate, out: &mut Vec<Output>) -> bool {
        let id = u.node.id;
        if self.overlay.bridging == Some(id) {
            self.overlay.vouch = Some(u.clone());
            return true;
        }
        let life = |x: &MemberUpdate| (x.node.incarnation, x.version);
        match self.overlay.held.get(&id) {
            Some(h) if life(&h.accusation) >= life(u) => return true,
            Some(_) => {}
            None if self.overlay.held.len() >= MAX_HELD => return false,
            None => {}
        }
        let held = Held {
            accusation: u.clone(),
            came: self.now,
        };
        self.overlay.held.insert(id, held);
        let msg = Message::PeerList {
            full: false,
            members: vec![u.clone()],
        };
        self.broadcast(&msg, None, out);
        self.tell_accused(u, out);
        true
    }

    /// Others accuse `u`'s member, which this node watches over (see
    /// [`Node::watches_over`]): the accusation is held back and passed on,
    /// and the accused probed over a connection of its own, which hands
    /// it the accusation with the ping (see [`Node::probe_connected`]) and
    /// stays open for the refutation, so that a member whose links all
    /// cross a cut hears of its suspicion from its own side. A probe that
    /// fails is checked through others, as any; one that reaches the
    /// accused makes this node hold the accusation as one against a
    /// member it reached (see [`Node::settle_held`]). False when nothing
    /// is held (the caller takes it).
    pub(super) fn check_accused(&mut self, u: &MemberUpdate, out: &mut Vec<Output>) -> bool {
        if self.overlay.given_up == Some(u.node.id) || !self.hold_back(u, out) {
            return false;
        }
        self.probe(u.node.id, None, out);
        true
    }

    /// Whether this node found, within a suspicion's time, that it
    /// reaches both a member and a neighbour that accuses it (see
    /// [`found_between`](Self::found_between)): it may stand between two
    /// parts of a partial cut, where each part accuses the other and the
    /// overlay's links may all stay on one side. Such a node checks each
    /// accusation of a member it has no link to for itself before it
    /// takes it (see [`Node::check_accused`]); taken on the word of one
    /// part, it would remove members this node reaches.
    pub(super) fn stands_between(&self) -> bool {
        self.detector.health == 0
            && self
                .overlay
                .between
                .is_some_and(|t| self.now - t < self.cfg.suspect_timeout)
    }

    /// This node just held back `u`, an accusation of a member it reached
    /// itself lately. If its accuser is a neighbour whose link speaks,
    /// this node reaches both the accuser and the accused, which cannot
    /// reach each other: it stands between two parts (a node of the
    /// accused's own part, which reaches no accuser, holds the accusation
    /// back and no more). Entering [`stands_between`], it probes the suspects
    /// it took on others' word meanwhile (at most [`MAX_HELD`]): the probe
    /// tells each one of its suspicion, over a connection kept for the
    /// refutation, and one it reaches is not declared dead on others'
    /// word while that is fresh.
    ///
    /// [`stands_between`]: Self::stands_between
    pub(super) fn found_between(&mut self, u: &MemberUpdate, out: &mut Vec<Output>) {
        if u.accuser_id().is_some_and(|a| self.speaks(a)) {
            self.enter_between(out);
        }
    }

    /// This node's own ping reached `id`, which it holds suspect on
    /// others' word: if one of its accusers is a neighbour whose link
    /// speaks, this node stands between two parts, as in
    /// [`found_between`](Self::found_between). Its neighbour links may
    /// all lead into the accusers' part (chat from the other reaches
    /// neither this node nor that part, and what a probe answers may not
    /// show it while both parts repair their own losses): it dials `id`
    /// as a bridge (see [`Node::bridge_to_probed`]).
    pub(super) fn reached_suspect(&mut self, id: Id, out: &mut Vec<Output>) {
        let accused_by_neighbour = self.members.get(&id).is_some_and(|m| {
            m.state == MemberState::Suspect && m.accusers.ids().any(|a| self.speaks(a))
        });
        if accused_by_neighbour {
            self.enter_between(out);
            if self.stands_between() {
                self.bridge_to_probed(id, out);
            }
        }
    }

    /// Whether `id` is a neighbour whose link carried something within a
    /// silence.
    fn speaks(&self, id: Id) -> bool {
        let silence = self.silence();
        self.neighbours
            .get(&id)
            .and_then(|c| self.conns.get(c))
            .is_some_and(|c| self.now - c.last_heard < silence)
    }

    /// See [`found_between`](Self::found_between).
    fn enter_between(&mut self, out: &mut Vec<Output>) {
        let entering = !self.stands_between();
        self.overlay.between = Some(self.now);
        if !entering || self.detector.health > 0 {
            return;
        }
        // Chat may have gone round either part without this node: its
        // tree link and the links that announce to it may all be in one
        // of them. Its next sync round compares chat with every neighbour.
        self.recheck_every_neighbour();
        let me = self.me.id;
        let taken: Vec<Id> = self
            .suspects
            .keys()
            .copied()
            .filter(|id| {
                !self.neighbours.contains_key(id)
                    && !self.detector.pinging(*id)
                    && self
                        .members
                        .get(id)
                        .is_some_and(|m| !m.accusers.ids().any(|a| a == me))
            })
            .take(MAX_HELD)
            .collect();
        for id in taken {
            self.probe(id, None, out);
        }
    }

    /// The accusations held back that are due: one refuted meanwhile
    /// needs nothing; otherwise the accused is dialled as a bridge (if it
    /// answered this node's ping since the dial that failed, if any, and
    /// no bridge was dialled lately), or else the accusation is taken.
    fn settle_held(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        let wait = self.cfg.gossip_interval;
        let due: Vec<Id> = self
            .overlay
            .held
            .iter()
            .filter(|(_, h)| h.came + wait <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(Held {
                accusation: u,
                came,
            }) = self.overlay.held.remove(&id)
            else {
                continue;
            };
            let standing = self.members.get(&id).is_some_and(|m| {
                m.in_roster() && (m.incarnation, m.version) <= (u.node.incarnation, u.version)
            });
            if !standing || self.neighbours.contains_key(&id) {
                continue;
            }
            // Evidence counts from a reach window before it came.
            let since = came.saturating_sub(self.reach_window());
            let reached = self.detector.reached_at(id).is_some_and(|t| t >= since);
            let bridged = self.detector.health == 0 && reached && self.bridge_to(&u, out);
            if !bridged {
                // Nothing reached it (the probe of a check is still out):
                // its suspicion counts from when it came.
                self.take(u, (!reached).then_some(came), out);
            }
        }
    }

    /// This node's own probe of `id` failed while it held back an
    /// accusation of it: the accusation is taken now, its suspicion
    /// counted from when it came, so that checking for itself delays no
    /// real death (the failed probe is checked through others as well,
    /// which may add this node's own voice).
    pub(super) fn take_held(&mut self, id: Id, out: &mut Vec<Output>) {
        let Some(Held {
            accusation: u,
            came,
        }) = self.overlay.held.remove(&id)
        else {
            return;
        };
        self.detector.forget_reached(id);
        self.take(u, Some(came), out);
    }

    /// Takes `u`, an accusation held back, and passes it on; its
    /// suspicion counts from `came` if given (when it arrived here).
    fn take(&mut self, u: MemberUpdate, came: Option<Instant>, out: &mut Vec<Output>) {
        let id = u.node.id;
        // Taken, not held back again (see `check_accused`).
        self.overlay.given_up = Some(id);
        if self.apply_update(&u, false, out) {
            if let Some((m, came)) = came.and_then(|c| {
                self.members
                    .get_mut(&id)
                    .filter(|m| m.state == MemberState::Suspect && m.since > c)
                    .map(|m| (m, c))
            }) {
                m.since = came;
                self.arm_suspicion(id);
            }
            self.flood_updates(vec![u], None, out);
        }
        self.overlay.given_up = None;
    }

    /// Dials the member an accusation held back names, as a bridge (a
    /// full node makes room for it, and the link stays on the tree), at
    /// most once per `reconnect_interval`, and hands it the accusation once
    /// linked: its refutation then crosses here. False when no bridge is
    /// dialled (one was, lately).
    fn bridge_to(&mut self, u: &MemberUpdate, out: &mut Vec<Output>) -> bool {
        let id = u.node.id;
        if self.overlay.bridging == Some(id) {
            self.overlay.vouch = Some(u.clone());
            return true;
        }
        let every = self.cfg.reconnect_interval;
        if self.overlay.bridged.is_some_and(|t| self.now - t < every) {
            return false;
        }
        self.overlay.bridged = Some(self.now);
        self.stats.bridge_dials += 1;
        self.overlay.bridging = Some(id);
        self.overlay.vouch = Some(u.clone());
        self.dial(id, false, out);
        true
    }

    /// A dial to `id` failed: a bridge meant for it is off, and the
    /// accusation held back for it is taken after all (the member may
    /// have died just after it last answered).
    pub(super) fn overlay_dial_failed(&mut self, id: Id, out: &mut Vec<Output>) {
        if self.overlay.bridging != Some(id) {
            return;
        }
        self.overlay.bridging = None;
        self.detector.forget_reached(id);
        if let Some(u) = self.overlay.vouch.take().filter(|u| u.node.id == id) {
            self.take(u, None, out);
        }
    }

    /// A new neighbour link to `id` is up: hand it the accusation this
    /// node dialled it for, if any.
    pub(super) fn hand_vouch(&mut self, conn: ConnId, id: Id, out: &mut Vec<Output>) {
        if self.overlay.vouch.as_ref().is_some_and(|u| u.node.id == id) {
            if let Some(u) = self.overlay.vouch.take() {
                out.push(Output::Send {
                    conn,
                    msg: Message::PeerList {
                        full: false,
                        members: vec![u],
                    },
                });
            }
        }
    }

    /// Whether this node, leading, sends a beacon now: every
    /// `beacon_interval`, and with `Config::rooted_tree` once early (at
    /// least a fifth of an interval after the last) when the last went out
    /// while the roster was still changing and it has since stayed the
    /// same for `reconnect_interval`, while no chat flows. Members joined
    /// or left, links were made or lost, and the tree that joins and
    /// prunes left behind is reshaped before chat has to cross it: each
    /// node whose links changed pushes this beacon over every link (see
    /// [`Node::push_beacon`]). While chat flows, every beacon reshapes the
    /// tree anyway.
    fn beacon_due(&self) -> bool {
        let every = self.cfg.beacon_interval;
        let Some(sent) = self.overlay.sent else {
            return true;
        };
        self.now - sent >= every
            || (self.cfg.rooted_tree
                && !self.overlay.sent_settled
                && !self.chat_flows()
                && self.roster_settled()
                && self.now - sent
                    >= Duration::from_millis(every.as_millis() / EARLY_BEACON_DIVISOR))
    }

    /// Whether the roster has stayed the same for `reconnect_interval`
    /// (the pace of dials that fill a node's slots, so links made for the
    /// last change are mostly up).
    fn roster_settled(&self) -> bool {
        self.roster_hash() == self.overlay.roster.0
            && self.now - self.overlay.roster.1 >= self.cfg.reconnect_interval
    }

    /// A beacon came over `conn`.
    pub(super) fn on_beacon(&mut self, conn: ConnId, b: Beacon, out: &mut Vec<Output>) {
        let id = b.origin.id;
        if id == self.me.id {
            // Its own, back round a cycle of the tree.
            self.prune_for_beacon(conn, out);
            return;
        }
        let in_roster = self
            .members
            .get(&id)
            .is_some_and(|m| m.in_roster() && m.incarnation <= b.origin.incarnation);
        if !in_roster {
            self.stats.beacons_dropped += 1;
            return;
        }
        let gap = Duration::from_millis(
            self.cfg.beacon_interval.as_millis() / (2 * EARLY_BEACON_DIVISOR),
        );
        let lazy = self.conns.get(&conn).is_some_and(|c| c.lazy);
        // Only the beacons of the member this node follows shape its tree.
        // While the group forms, members that do not know the head of the
        // ring yet lead too, and their floods cross the leader's: a copy
        // again of theirs would prune a link the leader's tree runs over
        // and cut a part off it until the leader's next beacon. Theirs are
        // only passed on. (The roster may have changed since the last
        // heartbeat tick picked the leader.)
        self.follow(self.head_of_ring());
        let followed = self.overlay.leader == Some(id);
        if followed {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.beacon_copy = Some((id, b.seq, b.at_ms, b.hops));
            }
        }
        match self.overlay.seen.get(&id) {
            Some((old, _))
                if (old.origin.incarnation, old.seq) >= (b.origin.incarnation, b.seq) =>
            {
                if !followed {
                    return;
                }
                if (old.origin, old.seq) == (b.origin, b.seq) {
                    if self.orphaned() {
                        // The link this beacon came by first has closed
                        // since (a full peer gave it away, or it died):
                        // the next copy is this node's way to the leader,
                        // not a copy again, or the prunes of the copies
                        // would leave this node off the tree until the
                        // next beacon.
                        self.overlay.tree.parent = Some(conn);
                        self.overlay.tree.place = None;
                        if lazy {
                            self.graft_way_up(conn, out);
                        }
                        return;
                    }
                    self.note_alt(conn, &b);
                }
                // A copy again: the link is not this node's way to the
                // leader, and leaves the tree. One over a link already off
                // the tree here costs nothing more where the peer pushes
                // over every link anyway (the leader its own, everyone
                // while chat flows); an idle peer pushes over its tree
                // links only, so its end is on the tree, and unless told
                // it goes on pushing chat and idle beacons over it.
                let from_leader = self
                    .conns
                    .get(&conn)
                    .and_then(|c| c.peer)
                    .is_some_and(|p| p.id == id);
                if !lazy || !(from_leader || self.shaping_tree()) {
                    self.prune_for_beacon(conn, out);
                }
                return;
            }
            Some((_, at)) if self.now - *at < gap => {
                // Faster than any leader sends them: not forwarded, so a
                // peer cannot make the whole overlay carry a flood.
                self.stats.beacons_dropped += 1;
                return;
            }
            _ => {}
        }
        if !self.overlay.seen.contains_key(&id) && self.overlay.seen.len() >= MAX_ORIGINS {
            // Keep the leaders nearest the head of the ring.
            let last = self
                .overlay
                .seen
                .keys()
                .copied()
                .max_by_key(|a| (ring_pos(*a), *a));
            if let Some(last) = last {
                if (ring_pos(last), last) < (ring_pos(id), id) {
                    self.stats.beacons_dropped += 1;
                    return;
                }
                self.overlay.seen.remove(&last);
            }
        }
        // Forwarded with this node's own place on the tree.
        let depth = b.hops.saturating_add(1);
        let up = self.conns.get(&conn).and_then(|c| c.peer).map(|p| p.id);
        let rtt = self.rtt(conn);
        let at = Duration::from_millis(u64::from(b.at_ms) + rtt.as_millis() / 2);
        let place = b.up.map(|grandparent| Place {
            hops: depth,
            at,
            grandparent,
            up_rtt: Duration::from_millis(u64::from(b.up_ms)),
        });
        let b = Beacon {
            hops: depth,
            up,
            up_ms: u16::try_from(rtt.as_millis()).unwrap_or(u16::MAX),
            at_ms: u32::try_from(at.as_millis()).unwrap_or(u32::MAX),
            ..b
        };
        // Whether this node sits elsewhere on the tree than the last
        // beacon of this leader put it: its neighbours' view of it is
        // stale, and it pushes over every link (see `push_beacon`).
        let moved = self.overlay.seen.get(&id).is_none_or(|(old, _)| {
            old.origin != b.origin || (old.at_ms, old.hops) != (b.at_ms, b.hops)
        });
        self.overlay.seen.insert(id, (b, self.now));
        self.first_over(conn);
        if followed {
            self.overlay.tree.alts.clear();
        }
        let off = lazy || self.conns.get(&conn).is_some_and(|c| c.peer_holds_off());
        if off && followed {
            // Came first over a link off the tree, at this end or, as far
            // as this end knows, at the peer's (a prune from here crossed
            // a graft from there). The leader pushes its own over every
            // link, and every node while chat flows or the group forms: the
            // tree lacked this path, as when prunes for different senders
            // cut it apart (Plumtree's graft, here without waiting for a
            // message to go missing), or it is faster than the way the
            // tree took. The copy that comes again over the old way
            // prunes it before the peer here has the graft: the peer
            // pushes again what came to it within three round trips, as
            // for a lost tree link.
            self.graft_way_up(conn, out);
        }
        if followed {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.mend = false;
            }
            self.beacon_heard();
            // The beacon reshapes the tree: a switch to a shortcut taken
            // before it is done, or moot.
            self.overlay.tree.parent = Some(conn);
            self.overlay.tree.switch = None;
            self.overlay.tree.place = place;
            self.kept_shortcut(depth);
            if place.is_some() {
                let known = if rtt.as_millis() == 0 {
                    self.cfg.probe_timeout
                } else {
                    rtt
                };
                let wait = known.saturating_mul(2);
                self.timers.arm(Timer::Shortcut, self.now + wait);
            }
        }
        self.push_beacon(b, Some(conn), moved, out);
    }

    /// The tree is whatever the leader's beacons took first, and its span
    /// is up to twice its depth: over wide-area links every hop costs a
    /// link's latency, and a leader far from the overlay's centre leaves
    /// some members twice as deep as others. A node deeper than a tree of
    /// the roster's size needs (see [`Node::depth_goal`]) dials its
    /// grandparent, named by the beacon; once linked it takes that link as
    /// its way to the leader and prunes its parent's, and its whole
    /// subtree moves a hop up (X-BOT's overlay optimisation, with the
    /// depth as the cost), where its own link is faster than the way
    /// through the parent (with uneven latencies the first-arrival tree is
    /// deep in hops because its links are fast, and a shortcut there only
    /// churns). A full grandparent makes room only by dropping a link off
    /// the tree, so no part is cut off for it. One try per beacon, two
    /// round trips after it came (its copies over other links have pruned
    /// them by then), while chat flows or the group forms.
    pub(super) fn shortcut(&mut self, out: &mut Vec<Output>) {
        let (Some(place), Some(parent)) = (self.overlay.tree.place, self.overlay.tree.parent)
        else {
            return;
        };
        let (g, up_rtt) = (place.grandparent, place.up_rtt);
        // Only while chat flows or the group forms (its roster changed
        // within a beacon interval): an idle group's tree carries nothing
        // whose latency counts, and a shortcut costs a dial and a slot.
        if !(self.chat_flows() || self.forming()) {
            return;
        }
        if !self.cfg.rooted_tree
            || !self.too_deep(place)
            || g == self.me.id
            || self.overlay.tree.slower == Some(g)
            || self.now < self.overlay.tree.unkept.1
        {
            return;
        }
        let through = self
            .conns
            .get(&parent)
            .and_then(|c| c.rtt)
            .unwrap_or(up_rtt)
            + up_rtt;
        if let Some(&link) = self.neighbours.get(&g) {
            // Linked already, off the tree (the beacon came over the tree
            // only): put the link on it if it is faster.
            if link != parent && self.conns.get(&link).is_some_and(|c| c.lazy) {
                self.overlay.tree.place = None;
                if self.faster(link, through) {
                    // What came to the grandparent before this graft is
                    // still on its way here through the parent, whose
                    // link is pruned once chat comes over this one: it
                    // pushes again what came to it within that way's
                    // round trip.
                    self.graft_replaying(link, through, out);
                    self.overlay.tree.switch = Some(Switch {
                        to: link,
                        from: parent,
                        hops: place.hops,
                        dialled: None,
                    });
                } else {
                    self.overlay.tree.slower = Some(g);
                }
            }
            return;
        }
        if self.neighbours.len() >= self.cfg.max_connections
            && !self
                .neighbours
                .values()
                .any(|c| self.conns.get(c).is_some_and(|x| x.lazy))
        {
            return;
        }
        // The grandparent first, then the others as near the leader.
        let pick = std::iter::once((through, g))
            .chain(self.overlay.tree.alts.iter().copied())
            .find(|&(_, x)| self.may_shortcut_to(x, g));
        let Some((through, to)) = pick else {
            return;
        };
        self.overlay.tree.place = None;
        self.overlay.tree.dial = Some(ShortcutDial {
            to,
            place,
            from: parent,
            through,
        });
        self.stats.shortcut_dials += 1;
        self.dial(to, false, out);
    }

    /// Whether a shortcut may dial `x` (`g`: the grandparent, which may be
    /// linked already): alive, not dialled already, not known to be full
    /// lately, and not found slower than the way through the parent.
    fn may_shortcut_to(&self, x: Id, g: Id) -> bool {
        x != self.me.id
            && (x == g || !self.neighbours.contains_key(&x))
            && self.overlay.tree.slower != Some(x)
            && !self.dialing_to(x)
            && self
                .members
                .get(&x)
                .is_some_and(|m| m.state == MemberState::Alive && m.full_until <= self.now)
    }

    /// A copy again of the leader's newest beacon came over `conn`: if its
    /// sender sits as deep as this node's parent, the member it names as
    /// its own parent is as near the leader as this node's grandparent,
    /// and a shortcut to try should the grandparent be full (every link
    /// of its own on the tree: a shortcut may only take a link off it).
    fn note_alt(&mut self, conn: ConnId, b: &Beacon) {
        let Some(place) = self.overlay.tree.place else {
            return;
        };
        let Some(up) = b.up else {
            return;
        };
        let tree = &self.overlay.tree;
        if b.hops.saturating_add(1) != place.hops
            || up == place.grandparent
            || up == self.me.id
            || tree.alts.len() >= MAX_ALTS
            || tree.alts.iter().any(|(_, x)| *x == up)
        {
            return;
        }
        let alt = (
            self.rtt(conn) + Duration::from_millis(u64::from(b.up_ms)),
            up,
        );
        // Kept fastest first.
        let at = tree.alts.partition_point(|a| *a < alt);
        self.overlay.tree.alts.insert(at, alt);
    }

    /// `member` turned this node's dial away as full (its hello comes
    /// first, so the link was up here): if it was a shortcut, the next
    /// member as near the leader is tried at once (this one is marked
    /// full for a while, so it is passed over), unless the tree moved
    /// meanwhile.
    pub(super) fn shortcut_refused(&mut self, member: Id) {
        let tree = &mut self.overlay.tree;
        let dialled = match tree.switch.and_then(|sw| sw.dialled.map(|d| (sw.from, d))) {
            Some((from, (id, place))) if id == member => {
                tree.switch = None;
                (from, place)
            }
            _ => match tree.dial.filter(|d| d.to == member) {
                Some(d) => {
                    tree.dial = None;
                    (d.from, d.place)
                }
                None => return,
            },
        };
        if tree.place.is_none() && tree.parent == Some(dialled.0) {
            tree.place = Some(dialled.1);
            self.timers.arm(Timer::Shortcut, self.now);
        }
    }

    /// The link the leader's newest beacon came by first: this node's way
    /// to the leader on the tree.
    pub(super) fn tree_parent(&self) -> Option<ConnId> {
        self.overlay.tree.parent
    }

    /// Grafts `conn`, off the tree here, as this node's way to the leader:
    /// the peer pushes again what came to it within three of the link's
    /// round trips (a graft's wait at least), since the old way may be
    /// pruned or gone before the peer has the graft.
    pub(super) fn graft_way_up(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        let replay = self.rtt(conn).saturating_mul(3).max(self.cfg.graft_timeout);
        self.graft_replaying(conn, replay, out);
    }

    /// Whether the link the leader's newest beacon came by first has
    /// closed since.
    fn orphaned(&self) -> bool {
        self.overlay
            .tree
            .parent
            .is_some_and(|p| !self.neighbours.values().any(|&c| c == p))
    }

    /// Whether this node sits deeper than a tree of the roster's size
    /// needs (see [`Node::depth_goal`]), in hops and in time: its way from
    /// the leader is longer than that many of its own links (half their
    /// median round trip each). Over even links both say the same; where
    /// latencies are uneven the first-arrival tree is deep in hops because
    /// its links are fast, and a shortcut there would only churn.
    fn too_deep(&self, place: Place) -> bool {
        let goal = self.depth_goal();
        if place.hops <= goal {
            return false;
        }
        let mut rtts: Vec<u64> = self
            .neighbours
            .values()
            .filter_map(|c| self.conns.get(c)?.rtt)
            .map(|r| r.as_millis())
            .collect();
        rtts.sort_unstable();
        let Some(&median) = rtts.get(rtts.len() / 2) else {
            return false;
        };
        place.at.as_millis() > u64::from(goal) * median / 2
    }

    /// Whether the link `conn` is faster than `through` (a link whose round
    /// trip is not known yet counts as `through`: not faster).
    fn faster(&self, conn: ConnId, through: Duration) -> bool {
        self.conns
            .get(&conn)
            .and_then(|c| c.rtt)
            .is_some_and(|r| r < through)
    }

    /// The depth a tree over the roster needs with each node past the
    /// leader's neighbours using a quarter of its slots for children (in
    /// a random overlay most of a node's links lead to members the tree
    /// reached another way), and at least two.
    fn depth_goal(&self) -> u8 {
        let n = self.members.len() + 1;
        let k = self.cfg.max_connections.max(1);
        let fan = (k / 4).max(1);
        let (mut reach, mut layer, mut depth) = (1usize, k, 0u8);
        while reach < n && depth < u8::MAX {
            reach = reach.saturating_add(layer);
            layer = layer.saturating_mul(fan);
            depth += 1;
        }
        depth.max(2)
    }

    /// A link this node dialled is up: if it is the shortcut to its
    /// grandparent and faster than the way through the parent, it becomes
    /// this node's way to the leader, and the parent's link leaves the
    /// tree once the grandparent pushes over the new one (see
    /// [`Node::pushed_over`]); if slower, it leaves the tree itself.
    pub(super) fn took_shortcut(&mut self, conn: ConnId, peer: Id, out: &mut Vec<Output>) {
        let Some(d) = self.overlay.tree.dial.filter(|d| d.to == peer) else {
            return;
        };
        self.overlay.tree.dial = None;
        if self.overlay.tree.parent != Some(d.from) || d.from == conn {
            return;
        }
        if self.faster(conn, d.through) {
            // It pushes over the link from this node's hello on; what
            // came to it before is still on its way here through the
            // parent, whose link is pruned once chat comes over this one
            // (see [`Node::pushed_over`]): it pushes again what came to it
            // within that way's round trip.
            let replay_ms = u32::try_from(d.through.as_millis()).unwrap_or(u32::MAX);
            out.push(Output::Send {
                conn,
                msg: Message::Graft(Graft {
                    ids: Vec::new(),
                    replay_ms,
                }),
            });
            self.overlay.tree.switch = Some(Switch {
                to: conn,
                from: d.from,
                hops: d.place.hops,
                dialled: Some((peer, d.place)),
            });
        } else {
            self.overlay.tree.slower = Some(peer);
            self.prune(conn, out);
        }
    }

    /// Chat came over `conn`. If it is a shortcut link, its far end has
    /// taken it (its hello crossed this node's, and whatever it had
    /// before came over the old parent's link, which was still on the
    /// tree): prune the old parent's link now, so that nothing falls
    /// between the two.
    pub(super) fn pushed_over(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        let Some(sw) = self.overlay.tree.switch.filter(|sw| sw.to == conn) else {
            return;
        };
        self.overlay.tree.switch = None;
        if self.overlay.tree.parent == Some(sw.from)
            && self.neighbours.values().any(|c| *c == sw.from)
        {
            self.prune(sw.from, out);
            self.overlay.tree.parent = Some(conn);
            self.overlay.tree.took_at = Some(sw.hops);
        }
    }

    /// The leader's next beacon after a shortcut put this node `hops`
    /// from it. Where latencies are uneven the first-arrival tree may
    /// take a faster way that is no shorter in hops, and the shortcut
    /// only churned: each such shortcut in a row doubles the wait before
    /// the next try, from a beacon interval up to 32. One the tree kept
    /// resets it.
    fn kept_shortcut(&mut self, hops: u8) {
        let Some(before) = self.overlay.tree.took_at.take() else {
            return;
        };
        if hops < before {
            self.overlay.tree.unkept = (0, Instant::ZERO);
            return;
        }
        let n = self.overlay.tree.unkept.0.saturating_add(1).min(6);
        let wait = self.cfg.beacon_interval.saturating_mul(1 << (n - 1));
        self.overlay.tree.unkept = (n, self.now + wait);
    }

    /// Whether this node's beacons shape a rooted tree now
    /// (`Config::rooted_tree`): while chat flows (a new message within
    /// three beacon intervals) or a group that formed lately has settled
    /// (see [`Node::forming`]; its roster stayed the same for
    /// `reconnect_interval`): its links are new, and a tree left from
    /// before they came may be deep or cut apart when chat starts. Not
    /// while members still arrive: their arrivals go over the tree
    /// links, which the shaping rules leave off the tree until a beacon
    /// places them. An idle group's beacons otherwise go over the tree
    /// only, as without it: a beacon over every link costs a message
    /// per link, and its prunes as many again, for a tree nobody uses.
    fn shaping_tree(&self) -> bool {
        self.cfg.rooted_tree && (self.chat_flows() || (self.forming() && self.roster_settled()))
    }

    /// Whether the group forms: its roster changed within a beacon
    /// interval.
    fn forming(&self) -> bool {
        self.now - self.overlay.roster.1 < self.cfg.beacon_interval
    }

    /// Whether a new chat message came within three beacon intervals.
    pub(super) fn chat_flows(&self) -> bool {
        self.last_new_chat != Instant::ZERO
            && self.now - self.last_new_chat < self.cfg.beacon_interval.saturating_mul(3)
    }

    /// A beacon came again over `conn`. While the group is idle, Plumtree's
    /// rule: the link leaves the tree (beacons go one at a time, so unlike
    /// chats in flight together they cannot prune a tree apart), and the
    /// beacon costs one message per node. While chat flows, the chat
    /// shapes the tree (its paths are the shortest for every sender, not
    /// for the leader alone), and a beacon's copies are left alone.
    fn prune_for_beacon(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        if self.cfg.rooted_tree || !self.chat_flows() {
            self.prune(conn, out);
        }
    }

    /// Sends a beacon over every tree link but the one it came by (every
    /// neighbour link with `Config::rooted_tree`). The leader sends its own
    /// over every neighbour link: a neighbour whose link to it is off the
    /// tree takes the beacon's arrival there first as a hole in the tree
    /// and grafts the link, so the tree cannot stay cut apart while idle
    /// (a follower that holds the leader as a neighbour counts on that).
    ///
    /// A node whose links changed since it last pushed a beacon over every
    /// link pushes this one over its new links too, even while the group
    /// is idle (their place in the tree is whatever joins and prunes
    /// left), so a beacon after the overlay changed reshapes the tree
    /// where it changed, at a message or two per new link, and an idle
    /// group that stays the same pays nothing for it.
    fn push_beacon(&mut self, b: Beacon, from: Option<ConnId>, moved: bool, out: &mut Vec<Output>) {
        let mut links: Vec<ConnId> = self.neighbours.values().copied().collect();
        links.sort_unstable();
        let settled = self
            .overlay
            .unshaped
            .is_some_and(|t| self.now - t >= self.cfg.sync_interval);
        let shaping = self.shaping_tree();
        // The links to push over as on a rooted tree: every one while chat
        // flows, the new ones once links have changed and settled.
        let fresh: Vec<ConnId> = if shaping {
            links.clone()
        } else if settled && self.cfg.rooted_tree {
            links
                .iter()
                .copied()
                .filter(|c| self.overlay.shaped.binary_search(c).is_err())
                .collect()
        } else {
            Vec::new()
        };
        if shaping || settled {
            self.overlay.unshaped = None;
            self.overlay.shaped = links;
        }
        let own = b.origin.id == self.me.id;
        for n in self.neighbours.values() {
            let Some(c) = self.conns.get_mut(n) else {
                continue;
            };
            let rooted = fresh.contains(n);
            if Some(*n) == from || (c.lazy && !rooted && !own) {
                continue;
            }
            // Over a link off the tree, a copy reaches a peer that sat no
            // later than this node on the tree after its own first copy:
            // it would find the link slower than its way and leave it as
            // it is. Only a peer that may sit later gets it: one whose
            // place is not known (a new link, or not told for
            // `PLACE_KEPT` beacons), or later than this node's, or every
            // peer when this node has moved since the last beacon (their
            // view of it is stale). A link off the tree then costs about
            // one message per beacon where both ends pushed, and none
            // between members as near the leader.
            let earlier = |&(leader, seq, at, hops): &(Id, u32, u32, u8)| {
                leader == b.origin.id
                    && seq.saturating_add(PLACE_KEPT) >= b.seq
                    && (at, hops) <= (b.at_ms, b.hops)
            };
            if shaping && !own && !moved && c.lazy && c.beacon_copy.as_ref().is_some_and(earlier) {
                continue;
            }
            // With a rooted tree this end pushes chat over a new link from
            // now on: if its peer takes the link as its way to the leader
            // it misses nothing until its graft lands; if not, its prune
            // ends the pushing one round trip later. A beacon over every
            // link while chat flows leaves the links as they are: a peer
            // whose first copy comes over a link off the tree grafts it,
            // and one whose copy comes again over a link on the tree
            // prunes it, so only the links whose place changed cost a
            // message, and chat does not go over every link meanwhile.
            if rooted && !shaping {
                c.lazy = false;
            }
            out.push(Output::Send {
                conn: *n,
                msg: Message::Beacon(b),
            });
        }
    }
}
