//! Failure detection: a neighbour that goes silent is checked, members that
//! are not neighbours are probed in turn (SWIM), a member this node cannot
//! reach is probed through others before it is suspected, and this node's
//! own health stretches its timeouts (Lifeguard).
//!
//! Nothing here declares anyone dead: the worst outcome of a failed check
//! is a suspicion, flooded so that the accused can refute it
//! (`membership.rs`).

use super::*;

/// Pings (own probes and probes relayed for others) waiting for their
/// answer at once; beyond it new ones are not started.
/// The longest round trip any wait for a member stretches by: a member
/// further away than that is taken for a slow one.
const MAX_RTT: Duration = Duration::from_secs(1);

const MAX_PINGS: usize = 64;
/// Members checked through others at once.
const MAX_CHECKS: usize = 64;
/// One probe round in this many goes to a random member rather than to
/// the ring predecessor, while deaths are about (see `ALARM`).
const RANDOM_EVERY: u32 = 4;
/// The same when no member died or was suspected lately: a member whose
/// watchers all failed with it was part of a failure others see too.
const RANDOM_EVERY_CALM: u32 = 32;
/// How long a suspicion, a death or a check keeps random probes at
/// `RANDOM_EVERY`.
const ALARM: Duration = Duration::from_secs(60);
/// Most helpers asked to probe one member (`indirect_probes` beyond it
/// are not asked).
const MAX_HELPERS: usize = 8;
/// Most pings and checks in flight at once.
pub const MAX_PROBING: usize = MAX_PINGS + MAX_CHECKS;
/// Most members remembered as reached over a probe connection.
const MAX_REACHED: usize = 32;
/// While the ring predecessor pushes its answers over the kept connection
/// (see [`Node::push_answers`]), the prober still pings it once in this
/// many of its rounds: the answer measures the round trip and tells the
/// predecessor that the connection is still wanted.
const RING_PING_EVERY: u32 = 8;
/// An accepted probe connection whose prober has said nothing for this
/// many probe intervals is closed: it pings at least once per
/// `RING_PING_EVERY` rounds while it keeps it.
pub(super) const PUSH_STALE_ROUNDS: u32 = 3 * RING_PING_EVERY;
/// The nonce of an answer pushed unasked: no ping carries it.
pub(super) const PUSHED: u32 = 0;

/// The detector's state: what it waits for, and how healthy this node
/// believes itself to be.
#[derive(Debug, Default)]
pub(super) struct Detector {
    /// Pings waiting for their pong, by nonce.
    pings: BTreeMap<u32, PendingPing>,
    /// Members this node could not reach, waiting for others to.
    checks: BTreeMap<Id, Check>,
    /// Members still to probe in this round, in a shuffled order.
    order: Vec<Id>,
    /// Probe rounds so far: most go to the ring predecessor, one in
    /// `RANDOM_EVERY` to a member drawn at random.
    rounds: u32,
    /// The probe connection kept open to the ring predecessor.
    pub(super) ring_link: Option<(Id, ConnId)>,
    /// The kept connection over which the ring predecessor pushes its
    /// answers unasked, once it has: its silence is then the probe.
    ring_pushed: Option<ConnId>,
    /// Whether an answer came pushed over `ring_pushed` (with
    /// `ring_push_interval`, a neighbour link counts as pushing before
    /// any has: see `probe_ring`).
    ring_push_seen: bool,
    /// Ring rounds since the ring predecessor was last pinged.
    ring_quiet: u32,
    /// Lifeguard's local health score: 0 is healthy.
    pub(super) health: u32,
    /// Until when this node runs too late to judge others: its timers
    /// lately fired more than a heartbeat interval after their deadline
    /// (or it was frozen), so what it hears is that much behind.
    pub(super) lagging_until: Option<Instant>,
    /// Until when deaths are about: a member was suspected or died, or
    /// this node checked one (random probes run more often).
    alarm_until: Option<Instant>,
    /// When a neighbour last went silent and every quiet link was pinged
    /// in turn.
    pub(super) swept: Option<Instant>,
    /// When a heartbeat over any link last went unanswered until the next
    /// one was due: while that is recent, links here lose messages now and
    /// then, and no link is checked ahead of its silence.
    pub(super) lost_heartbeat: Option<Instant>,
    /// Members that answered a ping over a probe connection lately, and
    /// when: first-hand evidence for members that are not neighbours.
    reached: BTreeMap<Id, Instant>,
    /// The ring predecessor this node last watched (it answered a ring
    /// probe, or its link is watched).
    ring_watch: Option<Id>,
    /// When this node last dialled its ring predecessor to bridge a gap.
    ring_dialled: Option<Instant>,
    /// When this node last received anything, over any connection.
    pub(super) heard: Option<Instant>,
    /// When it last heard something after hearing nothing for a silence
    /// (see [`Node::isolated`]): suspicions wait from then at the earliest.
    pub(super) heard_again: Option<Instant>,
    nonce: u32,
}

#[derive(Debug, Clone, Copy)]
struct PendingPing {
    target: Id,
    sent: Instant,
    until: Instant,
    /// The probe connection it went on, closed once answered or given up.
    conn: Option<ConnId>,
    /// Sent for a neighbour's [`Message::ProbeReq`]: whom to answer, and
    /// its nonce.
    relay: Option<(ConnId, u32)>,
    /// A probe of the ring predecessor: if it fails, the one before it is
    /// probed at once.
    ring: bool,
    /// A degraded node's ring probe over a link it watched when it sent
    /// it: for its own health only (see `probe_ring`); that link is
    /// judged by its silence, and a failure starts no check.
    for_health: bool,
    /// Sent over a connection dialled for it: its answer took a round
    /// trip more.
    dialled: bool,
}

#[derive(Debug, Clone, Copy)]
struct Check {
    nonce: u32,
    life: u64,
    started: Instant,
    until: Instant,
    /// The earliest it may end in a suspicion: when its silent link will
    /// have been quiet for a whole silence (a check started early, once a
    /// heartbeat went unanswered, waits for it); `started` otherwise.
    not_before: Instant,
    /// The neighbour link that went silent, if that is what started it.
    link: Option<ConnId>,
    /// The links of the helpers asked to probe the target, each with
    /// whether it answered that it could not reach it either.
    helpers: [Option<(ConnId, bool)>; MAX_HELPERS],
}

impl Detector {
    /// Notes that something came in at `now`: the first thing after
    /// `silence` with nothing ends an isolation (see [`Node::isolated`]).
    pub(super) fn note_heard(&mut self, now: Instant, silence: Duration) {
        if self.heard.is_some_and(|t| now - t >= silence) {
            self.heard_again = Some(now);
        }
        self.heard = Some(now);
    }

    /// A nonce for a ping of any kind (a probe, a heartbeat, a verify):
    /// one number space, so that the answer to one never completes
    /// another over the same link.
    pub(super) fn next_nonce(&mut self) -> u32 {
        self.nonce = self.nonce.wrapping_add(1);
        if self.nonce == PUSHED {
            self.nonce = 1;
        }
        self.nonce
    }

    /// When `id` last answered a ping over a probe connection, if it is
    /// remembered.
    pub(super) fn reached_at(&self, id: Id) -> Option<Instant> {
        self.reached.get(&id).copied()
    }

    /// The members that answered a ping over a probe connection within
    /// `within` before `now`, the latest first.
    pub(super) fn reached_within(&self, now: Instant, within: Duration) -> Vec<Id> {
        let mut near: Vec<(Instant, Id)> = self
            .reached
            .iter()
            .filter(|(_, t)| now - **t <= within)
            .map(|(a, t)| (*t, *a))
            .collect();
        near.sort_unstable_by(|a, b| b.cmp(a));
        near.into_iter().map(|(_, a)| a).collect()
    }

    /// Whether a ping to `id` awaits its answer.
    pub(super) fn pinging(&self, id: Id) -> bool {
        self.ping_due(id).is_some()
    }

    /// When the latest ping to `id` awaiting its answer gives up, if any.
    pub(super) fn ping_due(&self, id: Id) -> Option<Instant> {
        self.pings
            .values()
            .filter(|p| p.target == id)
            .map(|p| p.until)
            .max()
    }

    /// Notes that `id` answered a ping over a probe connection at `now`;
    /// past `MAX_REACHED`, the member reached longest ago is forgotten.
    fn note_reached(&mut self, id: Id, now: Instant) {
        if !self.reached.contains_key(&id) && self.reached.len() >= MAX_REACHED {
            let oldest = self.reached.iter().min_by_key(|(a, t)| (**t, **a));
            if let Some((&a, _)) = oldest {
                self.reached.remove(&a);
            }
        }
        self.reached.insert(id, now);
    }

    /// Forgets that `id` was reached (a dial to it has failed since).
    pub(super) fn forget_reached(&mut self, id: Id) {
        self.reached.remove(&id);
    }

    /// Drops ping `nonce`, which can no longer be answered and says
    /// nothing of its target.
    pub(super) fn drop_ping(&mut self, nonce: u32) {
        self.pings.remove(&nonce);
    }

    /// Whether `id` is being checked through others.
    /// The target of the ping `nonce`, if it went over probe connection
    /// `conn`.
    pub(super) fn probed_over(&self, nonce: u32, conn: ConnId) -> Option<Id> {
        self.pings
            .get(&nonce)
            .filter(|p| p.conn == Some(conn))
            .map(|p| p.target)
    }

    pub(super) fn is_checking(&self, id: Id) -> bool {
        self.checks.contains_key(&id)
    }

    /// Pings and checks in flight, for the table bounds.
    pub(super) fn len(&self) -> usize {
        self.pings.len() + self.checks.len()
    }

    /// The earliest deadline of a ping or a check.
    fn next_deadline(&self) -> Instant {
        let p = self.pings.values().map(|p| p.until).min();
        let c = self.checks.values().map(|c| c.until).min();
        p.into_iter().chain(c).min().unwrap_or(Instant::MAX)
    }
}

impl Node {
    /// How much this node's own timeouts are stretched now.
    pub(super) fn stretch(&self, d: Duration) -> Duration {
        d.saturating_mul(1 + self.detector.health as u64)
    }

    /// True if this node fails to reach `id` too: it is not alive here,
    /// is being checked, or the last probe or dial of it failed.
    pub(super) fn cut_off_from(&self, id: Id) -> bool {
        self.detector.checks.contains_key(&id)
            || self.members.get(&id).is_some_and(|m| {
                m.state != MemberState::Alive || m.failures > 0 || m.retry_at > self.now
            })
    }

    /// Whether `id` refuted an accusation lately while this node could
    /// not reach it (it accused it, failed to dial it, was checking it, or
    /// saw the mark of a cut), and has not answered this node's ping nor
    /// taken its connection since: alive, beyond this node's reach (a
    /// partial cut, a one-way link). For up to `dial_backoff_max` after
    /// the refutation, this node's failed probes and dials of it then
    /// start no check and no accusation: each one would be flooded round
    /// the group and refuted again. Those that reach it watch it (a
    /// neighbour link that goes silent is checked as ever), and their word
    /// on its death counts here as ever.
    pub(super) fn out_of_reach(&self, id: Id) -> bool {
        self.members
            .get(&id)
            .is_some_and(|m| m.out_of_reach_until > self.now)
    }

    /// Silence on a watched link after which this node checks the peer
    /// through others: `dead_after`, doubled while this node is degraded
    /// at all. Not stretched further with its health, unlike its probe
    /// and suspicion timeouts: a check only asks others, who answer for
    /// the peer if they reach it, and waiting for several times the
    /// silence would let a real death go unnoticed on a lossy network.
    pub(super) fn silence(&self) -> Duration {
        self.cfg
            .dead_after()
            .saturating_mul(1 + self.detector.health.min(1) as u64)
    }

    /// Whether this node hears from no one: nothing has come over any
    /// connection for a silence, while at least two other members are in
    /// its roster. Then it is far likelier that this node is cut off
    /// than that every other member failed at once, so it declares no one
    /// dead (see `expire_suspicions`). With one other member it cannot
    /// tell, and goes by its own word.
    pub(super) fn isolated(&self) -> bool {
        self.detector
            .heard
            .is_some_and(|t| self.now - t >= self.silence())
            && self
                .members
                .iter()
                .filter(|(a, m)| **a != self.me.id && m.in_roster())
                .nth(1)
                .is_some()
    }

    /// A sign that this node is degraded: it was accused, its timers ran
    /// late, or others reached a neighbour whose link went silent here.
    /// (Failing to reach a member nobody reaches is not: that member may
    /// just be gone.)
    pub(super) fn health_worse(&mut self) {
        self.detector.health = (self.detector.health + 1).min(self.cfg.max_health);
    }

    /// Deaths are about: random probes run more often for a while.
    pub(super) fn alarm(&mut self) {
        self.detector.alarm_until = Some(self.now + ALARM);
    }

    /// Whether deaths are about (see [`alarm`](Self::alarm)).
    pub(super) fn alarmed(&self) -> bool {
        self.detector.alarm_until.is_some_and(|t| t > self.now)
    }

    fn health_better(&mut self) {
        if self.detector.health == 0 {
            return;
        }
        self.detector.health -= 1;
        // A suspicion armed while this node was degraded waits as long
        // as that health said; with it better, the wait is shortened to
        // what it says now (never lengthened: Lifeguard's scaling applies
        // to what the node does from now on). A node back from a stall
        // takes the deaths it missed as suspicions (stale news), armed
        // while its health was at its worst.
        let held: Vec<(Id, Instant)> = self.suspects.iter().map(|(a, t)| (*a, *t)).collect();
        let mut shorter = false;
        for (id, until) in held {
            shorter |= self.set_suspicion_end(id, |end| end < until);
        }
        if shorter {
            self.arm_detector();
        }
    }

    /// Sets the detector's timer to the earliest ping, check or suspicion
    /// deadline.
    pub(super) fn arm_detector(&mut self) {
        let suspicion = self.suspects.values().min().copied();
        let at = self
            .detector
            .next_deadline()
            .min(suspicion.unwrap_or(Instant::MAX))
            .min(self.ring_due().map_or(Instant::MAX, |(_, _, t)| t));
        self.timers.set(Timer::Detect, at);
    }

    /// One probe round: the ring predecessor, or now and then a member
    /// drawn at random.
    pub(super) fn probe_round(&mut self, out: &mut Vec<Output>) {
        // Most rounds go to this node's predecessor on a ring of the
        // members (by a hash of their ids), skipping suspects, over
        // a connection kept open for it (a neighbour over its link, unless
        // that is watched already): every member then
        // has a watcher that is not chosen by chance, at the cost of a ping
        // and its answer (three packets over TCP), and after a mass failure
        // each survivor walks back over the dead before it (Rapid's
        // observers, with one ring).
        // One round in `RANDOM_EVERY` goes to a member drawn at random
        // (SWIM), over a connection opened for that probe.
        self.detector.rounds = self.detector.rounds.wrapping_add(1);
        let every = if self.alarmed() {
            RANDOM_EVERY
        } else {
            RANDOM_EVERY_CALM
        };
        if self.detector.rounds % every != 0 && self.probe_ring(out) {
            return;
        }
        for _ in 0..SAMPLE_TRIES {
            let Some(id) = self.detector.order.pop() else {
                self.refill_probe_order();
                if self.detector.order.is_empty() {
                    return;
                }
                continue;
            };
            let due = self
                .members
                .get(&id)
                .is_some_and(|m| m.in_roster() && m.retry_at <= self.now)
                && !self.neighbours.contains_key(&id)
                && !self.dialing_to(id)
                && !self.detector.checks.contains_key(&id);
            if due {
                self.probe(id, None, out);
                return;
            }
        }
    }

    /// Probes the ring predecessor, if there is one; true if so.
    fn probe_ring(&mut self, out: &mut Vec<Output>) -> bool {
        let Some(id) = self.ring_predecessor() else {
            self.drop_ring_link(None, out);
            return false;
        };
        let mut for_health = false;
        match self.neighbours.get(&id).copied() {
            // With `ring_push_interval`, a neighbour is watched by the
            // answers it pushes over its link (see `push_answers`) as over
            // a connection kept for it, and by anything else that comes:
            // its link is no heartbeat's (see `watched_links`). It counts
            // as pushing from the first round; one that stays quiet is
            // pinged (see `expire_probes`).
            Some(conn) if self.push_ring() => {
                if self.detector.ring_link != Some((id, conn)) {
                    self.drop_ring_link(None, out);
                    self.detector.ring_link = Some((id, conn));
                    self.detector.ring_pushed = Some(conn);
                    self.detector.ring_push_seen = false;
                }
                if self.ring_pushing(id) && self.detector.health == 0 {
                    self.detector.ring_watch = Some(id);
                    return true;
                }
            }
            // A neighbour is probed over its link unless the link's
            // heartbeats watch it already: every member keeps a watcher on
            // each side of a split, and a newcomer that hung before its
            // first heartbeat, on links nobody picked, is still watched.
            // While this node is degraded it pings even a watched one: a
            // probe answered in time is what restores its health
            // (Lifeguard), and a round that probes nothing would leave its
            // timeouts stretched for as long as the ring stays put.
            Some(conn) => {
                self.drop_ring_link(None, out);
                if self.watches_link(conn) {
                    self.detector.ring_watch = Some(id);
                    if self.detector.health == 0 {
                        return true;
                    }
                    for_health = true;
                }
            }
            None => self.drop_ring_link(Some(id), out),
        }
        // Over TCP a ping and its answer cost three packets, a pushed
        // answer two: while the predecessor pushes, its silence is
        // watched instead (see `ring_due`), and a ping goes only now and
        // then, or every round while this node is degraded (an answer to
        // its own ping is what makes it well again).
        if self.ring_pushing(id)
            && self.detector.health == 0
            && self.detector.ring_quiet + 1 < RING_PING_EVERY
        {
            self.detector.ring_quiet += 1;
            self.detector.ring_watch = Some(id);
            return true;
        }
        self.detector.ring_quiet = 0;
        self.probe(id, None, out);
        if let Some(p) = self.detector.pings.values_mut().find(|p| p.target == id) {
            p.ring = true;
            p.for_health = for_health;
        }
        true
    }

    /// The ring predecessor `id` answered over a probe connection. If
    /// the predecessor this node watched before it failed (it is suspected,
    /// dead or gone; while it is being checked the answer waits), this node
    /// links to `id` as a neighbour (its hello says it bridges, so a full
    /// node makes room): the overlay then holds the ring of the live
    /// members across failures. After a mass failure the survivors' overlay
    /// is cut into parts that random dials (mostly to members not yet known
    /// dead) join slowly, while every survivor has walked back to the next
    /// live member on the ring within a few probes: those links join every
    /// part at once. A failure costs one dial, by the member after it; a
    /// lost ping or a newcomer on the ring none. At most one dial per
    /// `reconnect_interval`.
    fn bridge_ring_gap(&mut self, id: Id, out: &mut Vec<Output>) {
        let now = self.now;
        let Some(watched) = self.detector.ring_watch.filter(|w| *w != id) else {
            self.detector.ring_watch = Some(id);
            return;
        };
        let alive = self
            .members
            .get(&watched)
            .is_some_and(|m| m.state == MemberState::Alive);
        if alive && self.detector.is_checking(watched) {
            return;
        }
        self.detector.ring_watch = Some(id);
        if alive
            || self.neighbours.contains_key(&id)
            || self.dialing_to(id)
            || self
                .detector
                .ring_dialled
                .is_some_and(|t| now - t < self.cfg.reconnect_interval)
        {
            return;
        }
        self.detector.ring_dialled = Some(now);
        self.overlay.ring_bridge = Some(id);
        self.stats.ring_dials += 1;
        self.dial(id, false, out);
    }

    /// Closes the connection kept for probing the ring predecessor unless
    /// it goes to `keep`: the ring moved, or the member became a neighbour.
    pub(super) fn drop_ring_link(&mut self, keep: Option<Id>, out: &mut Vec<Output>) {
        if let Some((kept, conn)) = self.detector.ring_link {
            if Some(kept) != keep {
                self.detector.ring_link = None;
                // (With `ring_push_interval` the predecessor's link is
                // kept as a link.)
                if !(self.push_ring() && self.neighbours.values().any(|c| *c == conn)) {
                    self.close(conn, out);
                }
            }
        }
    }

    /// How often a ring predecessor pushes its answer (see
    /// `Config::ring_push_interval`).
    fn push_interval(&self) -> Duration {
        self.cfg
            .ring_push_interval
            .map_or(self.cfg.ping_interval, |d| d.max(self.cfg.ping_interval))
    }

    /// Whether a ring predecessor that is a neighbour pushes its answers
    /// over the link instead of a heartbeat watching it.
    pub(super) fn push_ring(&self) -> bool {
        self.cfg.ring_push_interval.is_some()
    }

    /// Whether this node comes right before `id` on the ring of the
    /// members alive, as far as it knows: `id` then watches it.
    fn precedes(&self, id: Id) -> bool {
        let at = crate::peers::ring_pos(id);
        let back = |a: Id| at.wrapping_sub(crate::peers::ring_pos(a));
        let mine = back(self.me.id);
        self.members
            .before(id)
            .find(|(a, m)| *a != self.me.id && m.state == MemberState::Alive)
            .is_none_or(|(a, _)| mine < back(a))
    }

    /// Whether `id`, the ring predecessor, pushes its answers over the
    /// connection kept for probing it.
    fn ring_pushing(&self, id: Id) -> bool {
        self.ring_due().is_some_and(|(a, _, _)| a == id)
    }

    /// The ring predecessor that pushes its answers, its connection, and
    /// when its silence counts as a ping left unanswered: an interval
    /// after the last thing it sent, plus the wait for an answer.
    fn ring_due(&self) -> Option<(Id, ConnId, Instant)> {
        let (id, conn) = self.detector.ring_link?;
        if self.detector.ring_pushed != Some(conn) {
            return None;
        }
        let heard = self.conns.get(&conn)?.last_heard;
        Some((id, conn, heard + self.push_interval() + self.ping_wait(id)))
    }

    /// At each heartbeat tick: an answer pushed unasked over every probe
    /// connection a prober keeps open here (a ping came before any hello),
    /// unless something went over it within the last quarter interval, so
    /// that two are at most an interval and a quarter apart (the prober
    /// allows an interval and a ping's wait). With `ring_push_interval`,
    /// at that pace instead (its last tick), and over the link to the
    /// ring successor too.
    ///
    /// An answer to the prober's ping within that quarter does not count:
    /// the prober pings every round until an answer comes unasked (see
    /// `ring_due`), and a tick that fell just after each of its pings, as
    /// two ticks a fixed interval apart can for good, kept it pinging every
    /// round, two messages where one does.
    pub(super) fn push_answers(&mut self, out: &mut Vec<Output>) {
        // At the last tick before the pace runs out: ticks come an
        // interval apart (with pushes every interval, the last quarter).
        let interval = self.cfg.ping_interval.as_millis();
        let after =
            Duration::from_millis(self.push_interval().as_millis() - interval + interval / 4);
        let kept: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.kept_by_prober()
                    && (self.now - c.last_sent >= after || c.pinged == Some(c.last_sent))
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in kept {
            let msg = self.probe_pong(conn, PUSHED);
            out.push(Output::Send { conn, msg });
        }
        // So too over the link to the successor, if it is a neighbour
        // (see `ring_push_interval`), unless the link carried anything
        // else since; without the beacon and chat mark a probe answer
        // carries (they tell a member in another part of the overlay,
        // and a neighbour is in this one).
        if self.push_ring() {
            let next = self
                .neighbours
                .iter()
                .find(|(a, _)| self.precedes(**a))
                .map(|(_, c)| *c)
                .filter(|c| {
                    self.conns
                        .get(c)
                        .is_some_and(|c| self.now - c.last_sent >= after)
                });
            if let Some(conn) = next {
                let msg = Message::ProbePong {
                    nonce: PUSHED,
                    beacon: None,
                    chat: None,
                };
                out.push(Output::Send { conn, msg });
            }
        }
    }

    /// The beacon an answer over the probe connection `conn` carries: one
    /// without repeats the last over the connection.
    pub(super) fn answer_beacon(&mut self, conn: ConnId, beacon: Option<Beacon>) -> Option<Beacon> {
        match self.conns.get_mut(&conn) {
            Some(c) => {
                c.beacon = beacon.or(c.beacon);
                c.beacon
            }
            None => beacon,
        }
    }

    /// An answer pushed unasked over the probe connection `conn`: if it is
    /// the ring predecessor's, it proves that one alive as its answer to a
    /// ping would (and carries its beacon and chat mark the same way).
    /// Others keep a connection open only until idle.
    pub(super) fn on_pushed_answer(
        &mut self,
        conn: ConnId,
        beacon: Option<Beacon>,
        chat: Option<(u64, u64)>,
        out: &mut Vec<Output>,
    ) {
        let Some((id, _)) = self.detector.ring_link.filter(|(_, c)| *c == conn) else {
            return;
        };
        self.detector.ring_pushed = Some(conn);
        self.detector.ring_push_seen = true;
        self.detector.note_reached(id, self.now);
        if let Some(m) = self.members.get_mut(&id) {
            m.out_of_reach_until = self.now;
        }
        let beacon = self.answer_beacon(conn, beacon);
        self.beacon_from_probe(id, beacon, out);
        self.chat_from_probe(id, chat, out);
        self.stranded_probe(id, out);
        self.arm_detector();
    }

    /// The alive member before this node on the ring of id hashes
    /// that is not being dialled or checked, and may be dialled now.
    pub(super) fn ring_predecessor(&self) -> Option<Id> {
        self.members
            .before(self.me.id)
            .find(|(a, m)| {
                m.state == MemberState::Alive
                    && m.retry_at <= self.now
                    && !self.dialing_to(*a)
                    && !self.detector.checks.contains_key(a)
            })
            .map(|(a, _)| a)
    }

    /// A new round: every member in the roster that is not a neighbour, in
    /// a random order (each is probed once per round).
    fn refill_probe_order(&mut self) {
        // Sized once: a node refills the order mostly with the whole group.
        let mut order = Vec::with_capacity(self.members.len());
        order.extend(
            self.members
                .iter()
                .filter(|(a, m)| m.in_roster() && !self.neighbours.contains_key(a))
                .map(|(a, _)| *a),
        );
        for i in (1..order.len()).rev() {
            let j = self.below(i + 1);
            order.swap(i, j);
        }
        self.detector.order = order;
    }

    /// Pings `target`: over the link if it is a neighbour, otherwise over a
    /// probe connection. `relay` names the neighbour that asked for it.
    pub(super) fn probe(
        &mut self,
        target: Id,
        relay: Option<(ConnId, u32)>,
        out: &mut Vec<Output>,
    ) {
        if self.detector.pings.len() >= MAX_PINGS {
            self.nack(relay, target, out);
            return;
        }
        let nonce = self.detector.next_nonce();
        // A member behind a slow link (hundreds of ms) is not taken for a
        // silent one: each wait stretches with the round trip measured to
        // it (see `slack`).
        let slow = self.slack(self.rtt_to(target));
        let until = self.now + self.ping_wait(target);
        let kept = self
            .detector
            .ring_link
            .filter(|(a, c)| *a == target && self.conns.contains_key(c))
            .map(|(_, c)| c);
        let link = self.neighbours.get(&target).copied().or(kept);
        match link {
            Some(conn) => out.push(Output::Send {
                conn,
                msg: Message::Ping(nonce),
            }),
            None => match self.members.get(&target).map(|m| m.addr) {
                Some(addr)
                    if !self.dialing_to(target)
                        && !self.given_up(target)
                        && self.probe_dials() < MAX_PROBING =>
                {
                    self.start_probe_dial(addr, target, nonce, out)
                }
                _ => {
                    self.nack(relay, target, out);
                    return;
                }
            },
        }
        self.detector.pings.insert(
            nonce,
            PendingPing {
                target,
                sent: self.now,
                // A probe connection needs a round trip more (a probe
                // timeout more, for the encrypted handshake too); one that
                // has not opened by then is a ping left unanswered, whose
                // connect may take the system's whole timeout (seconds) to
                // fail. A probe for another node gives up at four fifths
                // of that node's timeout, so that the nack reaches it in
                // time.
                until: if relay.is_some() {
                    self.now
                        + Duration::from_millis(self.cfg.probe_timeout.as_millis() * 4 / 5)
                        + slow
                } else if link.is_some() {
                    until
                } else {
                    until + self.cfg.probe_timeout
                },
                conn: kept,
                relay,
                ring: false,
                for_health: false,
                dialled: link.is_none(),
            },
        );
        self.arm_detector();
    }

    /// Dials in flight for pings, including those whose ping gave up
    /// before the connection opened (the system's connect timeout may be
    /// seconds): at most [`MAX_PROBING`], as the table bounds count.
    fn probe_dials(&self) -> usize {
        self.dialing.values().filter(|d| d.ping.is_some()).count()
    }

    /// `target` failed `max_dial_failures` dials in a row and is being
    /// checked through others or suspected: it is not dialled again until
    /// that is decided (or it is heard from), so that an address nobody
    /// answers at (an invented one, say) costs a bounded number of dials
    /// however many probes and probe requests name it meanwhile.
    pub(super) fn given_up(&self, target: Id) -> bool {
        self.members.get(&target).is_some_and(|m| {
            m.failures >= self.cfg.max_dial_failures
                && (m.state == MemberState::Suspect || self.detector.checks.contains_key(&target))
        })
    }

    /// A probe connection opened: ping over it.
    pub(super) fn probe_connected(
        &mut self,
        conn: ConnId,
        nonce: u32,
        proven: Option<Id>,
        out: &mut Vec<Output>,
    ) {
        let target = self.detector.pings.get(&nonce).map(|p| p.target);
        if proven.is_some() && target.is_some() && proven != target {
            // Someone else listens there now: no answer of the target's.
            out.push(Output::Close { conn });
            return;
        }
        // The connect measured the round trip: the ping gets its whole wait
        // from now.
        let until = target.map_or(self.now, |t| self.now + self.ping_wait(t));
        match self.detector.pings.get_mut(&nonce) {
            Some(p) => {
                p.conn = Some(conn);
                p.until = p.until.max(until);
            }
            None => {
                out.push(Output::Close { conn });
                return;
            }
        }
        self.conns.insert(
            conn,
            Conn {
                dialed: target.and_then(|id| self.members.get(&id)).map(|m| m.addr),
                wanted: target,
                proven,
                peer: None,
                opened: self.now,
                last_heard: self.now,
                last_sent: self.now,
                awaiting: None,
                awaiting_other: None,
                last_repair: None,
                peer_repair: None,
                recheck: false,
                pinged: None,
                ping_sent: None,
                ping_nonce: 0,
                answered_late: false,
                degree: 0,
                lazy: true,
                quiet: false,
                hushed: false,
                grafted: None,
                mend: false,
                pruned: None,
                payload_sent: None,
                probe: true,
                rtt: None,
                firsts: 0,
                dups: 0,
                first_join: false,
                held_back: None,
                bridge: false,
                beacon: None,
                chat_sent: None,
                early_at: None,
                beacon_copy: None,
            },
        );
        out.push(Output::Send {
            conn,
            msg: Message::Ping(nonce),
        });
        // A suspect probed directly hears of its suspicion with the ping
        // (Lifeguard's buddy system): where messages are lost, the flood
        // may miss it for longer than the suspicion lasts, while every
        // node that took the suspicion probes it.
        let target = self.detector.pings.get(&nonce).map(|p| p.target);
        if let Some((id, m)) = target.and_then(|a| self.members.get(&a).map(|m| (a, m))) {
            // Or an accusation this node holds back against it.
            let told = if m.state == MemberState::Suspect {
                Some(m.update(id, self.now))
            } else {
                self.overlay.held.get(&id).map(|h| h.accusation.clone())
            };
            if let Some(u) = told {
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

    /// A probe connection to `id` could not be opened. The dial backs
    /// off even when its ping was already given up (a probe for another
    /// node gives up sooner than a dial times out): an address that does
    /// not answer is not dialled again at once for the next request.
    pub(super) fn probe_dial_failed(&mut self, id: Id, nonce: u32, out: &mut Vec<Output>) {
        self.dial_failed(id, true, out);
        if let Some(p) = self.detector.pings.remove(&nonce) {
            self.ping_failed(p, true, out);
        }
    }

    pub(super) fn on_pong(&mut self, conn: ConnId, nonce: u32, out: &mut Vec<Output>) {
        let Some(p) = self.detector.pings.get(&nonce).copied() else {
            return;
        };
        // The answer must come from where the ping went.
        let from_target = match p.conn {
            Some(c) => c == conn,
            None => self.neighbours.get(&p.target) == Some(&conn),
        };
        if !from_target {
            self.stats.unexpected += 1;
            return;
        }
        self.detector.pings.remove(&nonce);
        if let Some(m) = self.members.get_mut(&p.target) {
            // Within this node's reach (see `out_of_reach`).
            m.out_of_reach_until = self.now;
        }
        if self.overlay.held.contains_key(&p.target)
            || self
                .members
                .get(&p.target)
                .is_some_and(|m| m.state == MemberState::Suspect)
        {
            // A member accused here answers: its accusers cannot reach
            // what this node reaches, the mark of a cut (see
            // `cut_in_sight`).
            self.cut_seen_at = Some(self.now);
        }
        if !p.dialled {
            // (A dialled probe's round trip was taken at the connect.)
            self.note_rtt(p.target, self.now - p.sent);
        }
        if let Some(c) = p.conn {
            let now = self.now;
            self.detector.note_reached(p.target, now);
            // Two members with at most one neighbour each (the prober, and
            // the target by its hello on the probe connection) are nearly
            // cut off: link them. With few slots per node, the ends of two
            // parts of the overlay find each other this way.
            let lonely = self
                .conns
                .get(&c)
                .is_some_and(|x| x.peer.is_none() && x.degree <= 1)
                && self.neighbours.len() <= 1
                && self.cfg.max_connections >= 2;
            if p.ring || self.detector.ring_link.is_some_and(|(_, k)| k == c) {
                // Kept for the next probes of the ring predecessor.
                self.detector.ring_link = Some((p.target, c));
                self.bridge_ring_gap(p.target, out);
            } else if self.overlay.held.contains_key(&p.target)
                || self
                    .members
                    .get(&p.target)
                    .is_some_and(|m| m.state == MemberState::Suspect)
            {
                // It was handed an accusation this node holds back, or the
                // suspicion this node took (see `probe_connected`): its
                // refutation comes back this way, which may be the only
                // way across a cut. Closed once idle (see `heartbeat`).
            } else {
                self.close(c, out);
            }
            // A member just proved alive, at a node short of neighbours
            // (after a mass failure most members it knows may be dead):
            // make it a neighbour.
            if (lonely || self.neighbours.len() < self.cfg.max_connections / 2)
                && !self.neighbours.contains_key(&p.target)
                && !self.dialing_to(p.target)
            {
                self.dial(p.target, false, out);
            }
        }
        match p.relay {
            Some((asker, n)) => {
                if self.conns.contains_key(&asker) {
                    out.push(Output::Send {
                        conn: asker,
                        msg: Message::ProbeAck {
                            nonce: n,
                            target: p.target,
                        },
                    });
                }
            }
            None => {
                self.reached_suspect(p.target, out);
                self.health_better();
                if let Some(m) = self.members.get_mut(&p.target) {
                    m.failures = 0;
                }
            }
        }
    }

    fn ping_failed(&mut self, p: PendingPing, unreachable: bool, out: &mut Vec<Output>) {
        if let Some(c) = p.conn {
            self.close(c, out);
        }
        if p.relay.is_some() {
            self.nack(p.relay, p.target, out);
            return;
        }
        // Heard from it meanwhile over a link: it is there. A degraded
        // node's ring probe over a link it watched is for its own health
        // (see `probe_ring`): that link is judged by its silence (see
        // `heartbeat`), which a degraded node waits out longer.
        let link = self.neighbours.get(&p.target).copied();
        let heard = link
            .and_then(|c| self.conns.get(&c))
            .is_some_and(|c| c.last_heard >= p.sent);
        if !heard && !p.for_health {
            self.take_held(p.target, out);
            // Over a link, the check also weighs what the link carried.
            self.check(p.target, link, out);
            if p.ring {
                // Walk back over the dead at the pace of the probes, not of
                // the rounds, and wider at each predecessor that cannot even
                // be dialled: two more per such one, so a run of k dead
                // members before this node takes about log2(k) dial
                // timeouts, not k. (A ping lost on a lossy link is weaker
                // evidence: one step back.)
                self.probe_ring(out);
                if unreachable {
                    self.probe_ring(out);
                }
            }
        }
    }

    /// The round trip to `id` as this node knows it: the longer of its
    /// pings' and its link's (measured at the handshake), at most
    /// [`MAX_RTT`]. While neither is known, the median round trip of this
    /// node's neighbour links (zero without any): a member never pinged
    /// is most likely as far as most of those this node has measured, and
    /// a wait sized for a LAN would take every first probe over slow
    /// links for a failure (TCP likewise starts from a conservative
    /// timeout before its first sample). The median of those measured, so
    /// that one link slowed by a lost handshake does not stretch every
    /// first probe.
    pub(super) fn rtt_to(&self, id: Id) -> Duration {
        let known = self.known_rtt(id);
        let rtt = if known > Duration::ZERO {
            known
        } else {
            self.typical_rtt()
        };
        rtt.min(MAX_RTT)
    }

    /// The median round trip of this node's neighbour links, of those
    /// measured (zero without any), at most [`MAX_RTT`].
    pub(super) fn typical_rtt(&self) -> Duration {
        let mut rtts: Vec<Duration> = self
            .neighbours
            .keys()
            .map(|a| self.known_rtt(*a))
            .filter(|r| *r > Duration::ZERO)
            .collect();
        rtts.sort_unstable();
        rtts.get(rtts.len() / 2)
            .copied()
            .unwrap_or(Duration::ZERO)
            .min(MAX_RTT)
    }

    /// The round trip to `id` measured by this node's pings or its
    /// link's handshake, the longer of the two; zero while neither is.
    fn known_rtt(&self, id: Id) -> Duration {
        let link = self
            .neighbours
            .get(&id)
            .map_or(Duration::ZERO, |c| self.rtt(*c));
        let pinged = self.members.get(&id).map_or(0, |m| u64::from(m.rtt_ms));
        link.max(Duration::from_millis(pinged))
    }

    /// How long this node waits for `target` to answer a ping over a link
    /// that is open: the probe timeout (stretched with ill health) and the
    /// slack for its round trip.
    pub(super) fn ping_wait(&self, target: Id) -> Duration {
        self.stretch(self.cfg.probe_timeout) + self.slack(self.rtt_to(target))
    }

    /// How much longer than `probe_timeout` a wait for an answer over a
    /// round trip of `rtt` takes: nothing while two round trips fit in
    /// half the timeout (a LAN, most wide-area links), the excess beyond.
    pub(super) fn slack(&self, rtt: Duration) -> Duration {
        let fits = self.cfg.probe_timeout.as_millis() / 2;
        Duration::from_millis((rtt.as_millis() * 2).saturating_sub(fits))
    }

    /// A ping to `id` was answered, or a connection to it opened, after
    /// `sample`: the round trip estimate drops to a shorter sample and
    /// moves an eighth of the way to a longer one (TCP's smoothing, biased
    /// to the least delay seen). A sample over [`MAX_RTT`] is most likely a
    /// connect that was retried (TCP sends its first SYN again after a
    /// second), or an answer that waited on something else: no round trip
    /// (as Karn's rule leaves out retransmitted segments).
    pub(super) fn note_rtt(&mut self, id: Id, sample: Duration) {
        if sample > MAX_RTT {
            return;
        }
        if let Some(m) = self.members.get_mut(&id) {
            let s = sample.as_millis().min(u64::from(u16::MAX)) as u32;
            // Down at once, up by an eighth: an answer delayed by a loss
            // or a cut (TCP resends under it) barely moves it, a slow link
            // takes a few samples.
            let est = u32::from(m.rtt_ms);
            m.rtt_ms = if est == 0 || s < est {
                s
            } else {
                (7 * est + s) / 8
            } as u16;
        }
    }

    /// This node cannot reach `target` (a silent `link`, a failed probe or
    /// dial): ask `indirect_probes` other neighbours to, and suspect it if
    /// none can by the deadline.
    pub(super) fn check(&mut self, target: Id, link: Option<ConnId>, out: &mut Vec<Output>) {
        self.check_from(target, link, self.now, out);
    }

    /// [`Node::check`] that ends in a suspicion no earlier than
    /// `not_before`: a watched link whose heartbeat went unanswered is
    /// checked while its silence runs, so that the helpers' answers are in
    /// when it ends (the silence still guards against a lost heartbeat).
    pub(super) fn check_from(
        &mut self,
        target: Id,
        link: Option<ConnId>,
        not_before: Instant,
        out: &mut Vec<Output>,
    ) {
        if link.is_none() && self.out_of_reach(target) {
            // A failed probe or dial of a member known to be alive beyond
            // this node's reach: no evidence, and no alarm.
            return;
        }
        if not_before <= self.now {
            // (A check started ahead of its silence sounds the alarm only
            // if the silence runs out: see `expire_probes`.)
            self.alarm();
        }
        let Some(life) = self
            .members
            .get(&target)
            .filter(|m| m.in_roster())
            .map(|m| m.incarnation)
        else {
            if let Some(c) = link {
                self.close(c, out);
            }
            return;
        };
        if self.detector.checks.contains_key(&target) {
            return;
        }
        if self.detector.checks.len() >= MAX_CHECKS {
            // Too much at once to ask about: suspect on this node's word.
            if let Some(c) = link {
                self.close(c, out);
            }
            self.suspect(target, out);
            return;
        }
        let nonce = self.detector.next_nonce();
        let mut helpers: Vec<ConnId> = self
            .neighbours
            .iter()
            .filter(|(a, _)| **a != target)
            .map(|(_, c)| *c)
            .collect();
        let mut asked = [None; MAX_HELPERS];
        for slot in asked
            .iter_mut()
            .take(self.cfg.indirect_probes.min(helpers.len()))
        {
            let i = self.below(helpers.len());
            let conn = helpers.swap_remove(i);
            *slot = Some((conn, false));
            out.push(Output::Send {
                conn,
                msg: Message::ProbeReq { nonce, target },
            });
        }
        // A probe timeout covers a helper's ping, even over a probe
        // connection, on any link this timeout suits; it stretches with the
        // round trip to the target (the helpers' pings wait that much
        // longer too) and with the slowest helper's (see `nacks_back`).
        let helper_rtt = asked
            .iter()
            .flatten()
            .map(|(c, _)| self.rtt(*c))
            .max()
            .unwrap_or(Duration::ZERO);
        // A check started ahead of its link's silence ends there only
        // once every helper has said it cannot reach the member either
        // (see `on_probe_nack`); otherwise it waits a probe timeout past the
        // silence, as one started at the silence would (on a lossy link,
        // answers and nacks go missing too).
        let wait = self.stretch(self.cfg.probe_timeout);
        let until =
            (self.now + wait + self.slack(self.rtt_to(target)) + self.nacks_back(helper_rtt)).max(
                if not_before > self.now {
                    not_before + wait
                } else {
                    not_before
                },
            );
        self.detector.checks.insert(
            target,
            Check {
                nonce,
                life,
                started: self.now,
                until,
                not_before,
                link,
                helpers: asked,
            },
        );
        self.arm_detector();
    }

    /// How much longer than `probe_timeout` a check waits for the nacks
    /// of helpers a round trip of `rtt` away: a helper gives up on the
    /// target four fifths of the timeout after the request reached it
    /// (see `probe`), and its nack takes the rest of the round trip back;
    /// a tenth of the timeout to spare, and no less than `slack`. A nack
    /// that came after the check ended would count against this node's
    /// health (Lifeguard's missed nacks) though the helper answered in
    /// time: on links of 100-150 ms round trips every nack did, and a
    /// survivor of a mass failure on such links, taking itself for
    /// degraded, held its suspicions several times as long as the others.
    fn nacks_back(&self, rtt: Duration) -> Duration {
        let t = self.cfg.probe_timeout.as_millis();
        let back = (rtt.as_millis() + t / 10).saturating_sub(t / 5);
        Duration::from_millis(back).max(self.slack(rtt))
    }

    /// Another node suspects `target`, a neighbour whose link this node
    /// does not watch: ping it over the link and through others at once,
    /// and add this node's voice to the suspicion only if neither answers
    /// (Lifeguard's independent confirmations, each one checked).
    pub(super) fn verify(&mut self, target: Id, out: &mut Vec<Output>) {
        let Some(&link) = self.neighbours.get(&target) else {
            return;
        };
        let nonce = self.detector.next_nonce();
        out.push(Output::Send {
            conn: link,
            msg: Message::Ping(nonce),
        });
        self.check(target, Some(link), out);
    }

    /// Tells the node that asked for a probe of `target` (if `relay` names
    /// one) that this node did not reach it: its request arrived, so its
    /// link to this node works (Lifeguard's nack). Sent as well for a
    /// request this node does not carry out.
    fn nack(&mut self, relay: Option<(ConnId, u32)>, target: Id, out: &mut Vec<Output>) {
        if let Some((asker, nonce)) = relay.filter(|(c, _)| self.conns.contains_key(c)) {
            out.push(Output::Send {
                conn: asker,
                msg: Message::ProbeNack { nonce, target },
            });
        }
    }

    /// A neighbour asks this node to probe `target` for it.
    pub(super) fn on_probe_req(
        &mut self,
        conn: ConnId,
        nonce: u32,
        target: Id,
        out: &mut Vec<Output>,
    ) {
        if target == self.me.id {
            out.push(Output::Send {
                conn,
                msg: Message::ProbeAck { nonce, target },
            });
            return;
        }
        // Only members, and none this node is backing off from: a request
        // cannot make this node dial anywhere, nor dial an address again
        // and again.
        let ok = self.neighbours.contains_key(&target)
            || self
                .members
                .get(&target)
                .is_some_and(|m| m.in_roster() && m.retry_at <= self.now);
        if !ok {
            self.nack(Some((conn, nonce)), target, out);
            return;
        }
        self.probe(target, Some((conn, nonce)), out);
    }

    /// Whether the silent link that started check `c` spoke since.
    fn spoke_since(&self, c: &Check) -> bool {
        c.link
            .and_then(|l| self.conns.get(&l))
            .is_some_and(|x| x.last_heard > c.started)
    }

    /// Another neighbour reached the member this node could not.
    pub(super) fn on_probe_ack(&mut self, nonce: u32, target: Id, out: &mut Vec<Output>) {
        let Some(c) = self.detector.checks.get(&target).copied() else {
            return;
        };
        if c.nonce != nonce {
            return;
        }
        self.detector.checks.remove(&target);
        let spoke = self.spoke_since(&c);
        // A check started before its link's silence ran out judges the
        // link only once it has (a heartbeat lost on a lossy link is no
        // fault): until then the silence itself decides.
        let judged = self.now >= c.not_before;
        if let Some(link) = c.link.filter(|_| !spoke && judged) {
            // Others reach the neighbour whose link went silent here:
            // perhaps the fault is at this end. (A member that is not a
            // neighbour may just sit behind a cut this node cannot cross.)
            self.health_worse();
            // The member is there but this link does not carry: drop it and
            // let the neighbour slots be refilled.
            self.close(link, out);
        }
    }

    /// A helper could not reach the member this node could not either.
    /// Once every helper asked has said so, the member is unreachable from
    /// all of them and from here: the check ends now rather than at its
    /// timeout, which covers helpers that never answer.
    pub(super) fn on_probe_nack(
        &mut self,
        conn: ConnId,
        nonce: u32,
        target: Id,
        out: &mut Vec<Output>,
    ) {
        let Some(check) = self
            .detector
            .checks
            .get_mut(&target)
            .filter(|c| c.nonce == nonce)
        else {
            self.stats.unexpected += 1;
            return;
        };
        match check.helpers.iter_mut().flatten().find(|(h, _)| *h == conn) {
            Some((_, nacked)) => *nacked = true,
            None => {
                self.stats.unexpected += 1;
                return;
            }
        }
        if check.helpers.iter().flatten().all(|(_, nacked)| *nacked) {
            check.until = check.not_before.max(self.now);
            self.expire_probes(out);
        }
    }

    /// Gives up pings and checks whose time ran out.
    pub(super) fn expire_probes(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        if let Some((target, conn, due)) = self.ring_due().filter(|(_, _, t)| *t <= now) {
            // The ring predecessor's pushed answers stopped: as for a ping
            // it left unanswered.
            self.detector.ring_pushed = None;
            let seen = std::mem::take(&mut self.detector.ring_push_seen);
            if self.push_ring() && !seen && self.neighbours.get(&target) == Some(&conn) {
                // Over a link that never brought a pushed answer, where
                // nothing came for as long: a ping tells (the predecessor
                // may not know it is one). Once it has pushed, its silence
                // is a ping it left unanswered, as over a kept connection.
                self.probe(target, None, out);
                if let Some(p) = self
                    .detector
                    .pings
                    .values_mut()
                    .find(|p| p.target == target)
                {
                    p.ring = true;
                }
            } else {
                let p = PendingPing {
                    target,
                    sent: due,
                    until: due,
                    conn: Some(conn),
                    relay: None,
                    ring: true,
                    for_health: false,
                    dialled: false,
                };
                self.ping_failed(p, false, out);
            }
        }
        let late: Vec<u32> = self
            .detector
            .pings
            .iter()
            .filter(|(_, p)| p.until <= now)
            .map(|(n, _)| *n)
            .collect();
        for n in late {
            if let Some(p) = self.detector.pings.remove(&n) {
                // A probe connection that never opened: as a dial that
                // failed (the ring walk widens past it; the dial, left to
                // the system's timeout, is closed if it ever opens).
                let unreachable = p.dialled && p.conn.is_none();
                self.ping_failed(p, unreachable, out);
            }
        }
        let due: Vec<Id> = self
            .detector
            .checks
            .iter()
            .filter(|(_, c)| c.until <= now)
            .map(|(a, _)| *a)
            .collect();
        for target in due {
            let Some(c) = self.detector.checks.remove(&target) else {
                continue;
            };
            let missed = c.helpers.iter().flatten().any(|(h, nacked)| {
                !nacked && self.conns.get(h).is_some_and(|x| x.last_heard > c.started)
            });
            if missed {
                // A helper that is there (its link spoke since) but neither
                // reached the target nor said it could not: this node's own
                // messages go missing (Lifeguard's missed nacks). Its
                // timeouts stretch. (A helper gone silent may just have died
                // with the target.)
                self.health_worse();
            }
            let spoke = self.spoke_since(&c);
            if c.link.is_some() && c.not_before > c.started && !spoke {
                // Checked ahead of its silence (see `early_checks`), which
                // has run out: as for a silence found at its deadline,
                // deaths are about, and other quiet links are pinged now.
                self.alarm();
                self.sweep_quiet(out);
            }
            let link = c.link.and_then(|l| self.conns.get(&l).map(|x| (l, x)));
            let quiet_for = self.silence();
            if spoke || link.is_some_and(|(_, x)| now - x.last_heard < quiet_for) {
                // The silent link spoke again meanwhile, or a link this node
                // verifies a suspicion over carried something lately: a
                // lost ping on a lossy link is no evidence of a death.
                continue;
            }
            if let Some((l, _)) = link {
                self.close(l, out);
            }
            let same_life = self
                .members
                .get(&target)
                .is_some_and(|m| m.in_roster() && m.incarnation == c.life);
            // (It refuted an accusation meanwhile: see `out_of_reach`.)
            if same_life && !(c.link.is_none() && self.out_of_reach(target)) {
                self.suspect(target, out);
            }
        }
        self.expire_suspicions(out);
        self.arm_detector();
    }
}
