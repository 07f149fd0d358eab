//! Timers: one table of deadlines, and what each timer does: heartbeats,
//! probes, gossip rounds, sync probes, keeping the neighbour count up,
//! reconnecting splits, and clean-up.

use super::*;

/// The node's periodic and one-shot timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// Heartbeats, silent links, gaps, neighbour slots.
    Ping,
    /// The next probe of a member that is not a neighbour.
    Probe,
    /// Probes and checks whose answer is due.
    Detect,
    /// A membership gossip round.
    Gossip,
    /// An anti-entropy probe.
    Sync,
    /// A dial to a dead member.
    Reconnect,
    /// Forgetting old tombstones, streams and history.
    Gc,
    /// Sending the arrivals batched since it was armed.
    Flush,
    /// The earliest moment a watched link may have gone silent for
    /// `dead_after`: checked then, not at the next heartbeat tick.
    Silent,
    /// The earliest moment a heartbeat over a watched link has waited its
    /// time for an answer (see [`Node::early_checks`]).
    Early,
    /// The moment enough neighbour links will have gone silent that this
    /// node is most likely cut off: it dials for their slots then (see
    /// [`Node::maintain`]), not at the next heartbeat tick.
    Mend,
    /// Copies of the leader's beacon over other links have had time to
    /// come: whether this node sits too deep on the tree is judged then
    /// (see [`Node::shortcut`]).
    Shortcut,
}

const TIMERS: usize = 12;

/// Heartbeat intervals after a heartbeat over any link went unanswered
/// during which no link is checked ahead of its silence.
const LOSSY_FOR: u64 = 10;

/// When each [`Timer`] is due.
#[derive(Clone, Debug)]
pub(super) struct Timers {
    due: [Instant; TIMERS],
}

impl Timers {
    pub(super) fn new(now: Instant, cfg: &Config) -> Timers {
        let mut t = Timers {
            due: [Instant::MAX; TIMERS],
        };
        t.set(Timer::Ping, now + cfg.ping_interval);
        t.set(Timer::Probe, now + cfg.probe_interval);
        t.set(Timer::Gossip, now + cfg.gossip_interval);
        t.set(Timer::Sync, now + cfg.sync_interval);
        t.set(Timer::Reconnect, now + cfg.reconnect_interval);
        t.set(Timer::Gc, now + Duration::from_secs(60));
        t
    }

    pub(super) fn set(&mut self, t: Timer, at: Instant) {
        self.due[t as usize] = at;
    }

    /// When `t` is due next (`Instant::MAX` while disarmed).
    pub(super) fn due(&self, t: Timer) -> Instant {
        self.due[t as usize]
    }

    /// Arms a one-shot timer unless it is armed already.
    pub(super) fn arm(&mut self, t: Timer, at: Instant) {
        let due = &mut self.due[t as usize];
        *due = (*due).min(at);
    }

    /// Whether `t` is due at `now`; if so it is re-armed `every` later.
    fn fire(&mut self, t: Timer, now: Instant, every: Duration) -> bool {
        let due = self.due[t as usize] <= now;
        if due {
            self.due[t as usize] = now + every;
        }
        due
    }

    /// Whether the one-shot `t` is due at `now`; if so it is disarmed.
    fn take(&mut self, t: Timer, now: Instant) -> bool {
        let due = self.due[t as usize] <= now;
        if due {
            self.due[t as usize] = Instant::MAX;
        }
        due
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Instant {
        self.due.iter().copied().min().unwrap_or(Instant::MAX)
    }
}

impl Node {
    // ---- timers ------------------------------------------------------

    pub(super) fn on_timeout(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        if now - self.last_tick > self.cfg.ping_interval.saturating_mul(2) {
            // This node was frozen (paused, starved, suspended): the silence
            // it sees is its own. Give every neighbour a fresh window rather
            // than accusing them all, and trust its own timing less.
            for c in self.conns.values_mut() {
                c.last_heard = c.last_heard.max(now);
            }
            self.health_worse();
            self.lagging();
        } else if self.wake.is_some_and(|due| {
            due < now && (now - due).as_millis() > self.cfg.ping_interval.as_millis() / 2
        }) {
            // Its timer is handled well past the deadline it asked for, tick
            // after tick: a starved node (Lifeguard's missed deadlines). What
            // it hears is as late as its timers, so it must not trust its own
            // timeouts: they stretch while this lasts.
            self.health_worse();
            if self
                .wake
                .is_some_and(|due| now - due > self.cfg.ping_interval)
            {
                self.lagging();
            }
        }
        self.last_tick = now;
        self.graft_missing(out);
        self.flush_announcements(out);
        if self.timers.take(Timer::Flush, now) {
            self.flush_arrivals(out);
            if now >= self.urgent_due() {
                self.flush_urgent(out);
            } else if !self.urgent.is_empty() {
                self.timers.arm(Timer::Flush, self.urgent_due());
            }
        }
        if self
            .timers
            .fire(Timer::Detect, now, Duration::from_secs(3600))
        {
            self.expire_probes(out);
        }
        if self.timers.fire(Timer::Ping, now, self.cfg.ping_interval) {
            self.timers.set(Timer::Silent, Instant::MAX);
            self.heartbeat(out);
            self.push_answers(out);
            self.expire_gaps(out);
            self.overlay_tick(out);
            self.maintain(out);
            if now >= self.redial_at {
                self.redial_at = now + SEED_REDIAL;
                self.redial_lost_seeds(out);
            }
            self.probe_members(out);
        }
        let every = self.stretch(self.cfg.probe_interval);
        if self.timers.fire(Timer::Probe, now, every) {
            self.probe_round(out);
        }
        if self.timers.take(Timer::Silent, now) {
            self.heartbeat(out);
        }
        if self.timers.take(Timer::Mend, now) {
            self.maintain(out);
        }
        if self.timers.take(Timer::Early, now) {
            self.early_checks(out);
        }
        if self.timers.take(Timer::Shortcut, now) {
            self.shortcut(out);
        }
        if self
            .timers
            .fire(Timer::Gossip, now, self.cfg.gossip_interval)
        {
            self.gossip(out);
        }
        if self.timers.fire(Timer::Sync, now, self.cfg.sync_interval) {
            let (chat_mark, chat_hash) = self.chat_hash();
            let hashes = (self.roster_hash(), chat_hash);
            let sync = Message::Sync(Sync {
                members_hash: hashes.0,
                chat_hash,
                chat_mark,
            });
            // A view that stays the same, with no neighbour finding it
            // different, is synced ever more rarely: every round for three
            // rounds, then every second, fourth, eighth and sixteenth; each
            // to a neighbour that would answer a membership mismatch (`sync_neighbour`).
            // Chat that moves on while none is lost changes the chat hash
            // each round but needs no repair (the tree and its announcers
            // carry it): it keeps the pace at every `2^CHAT_SYNC_PACE`
            // rounds at most. A changed roster, or chat while this node
            // finds messages lost, syncs every round again.
            let chat_moved = hashes.1 != self.sync.last.1;
            if hashes.0 != self.sync.last.0 || (chat_moved && self.lossy()) {
                self.sync.quiet = 0;
            } else if chat_moved {
                self.sync.quiet = self.sync.quiet.min(STEADY_SYNCS + CHAT_SYNC_PACE);
            }
            self.sync.last = hashes;
            self.sync.skipped += 1;
            let pace = self.sync.quiet.saturating_sub(STEADY_SYNCS);
            let random = if self.sync.skipped >= 1 << pace {
                self.sync.skipped = 0;
                self.sync.quiet = (self.sync.quiet + 1).min(MAX_SYNC_QUIET + STEADY_SYNCS);
                self.sync_target()
            } else {
                None
            };
            // A node that stands between two parts compares chat with
            // every neighbour each round while it does: its tree link and
            // those that announce to it may all lead into one part, and a
            // neighbour drawn at random mostly lacks what the other part
            // said as much as this node does.
            let between = self.stands_between();
            let mut to: Vec<ConnId> = self
                .neighbours
                .values()
                .copied()
                .filter(|c| {
                    self.conns
                        .get_mut(c)
                        .is_some_and(|c| std::mem::take(&mut c.recheck) || between)
                })
                .collect();
            if let Some(c) = random.filter(|c| !to.contains(c)) {
                to.push(c);
            }
            for conn in to {
                out.push(Output::Send {
                    conn,
                    msg: sync.clone(),
                });
            }
            self.ask_for_gaps(out);
            self.recheck_held_back(out);
        }
        if self
            .timers
            .fire(Timer::Reconnect, now, self.cfg.reconnect_interval)
        {
            self.reconnect(out);
        }
        if self.timers.fire(Timer::Gc, now, Duration::from_secs(60)) {
            self.gc();
        }
    }

    pub(super) fn heartbeat(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        let dead_after = self.silence();
        let watched = self.watched_links();
        let mut silent = Vec::new();
        let mut stale = Vec::new();
        let mut ping = Vec::new();
        let mut next_silent = Instant::MAX;
        // When each neighbour link that awaits an answer goes silent (see
        // `silent_links`).
        let mut going_silent = Vec::new();
        let interval = self.cfg.ping_interval.as_millis();
        for (&id, c) in &self.conns {
            let Some(p) = c.peer else {
                if c.probe {
                    let round = self.stretch(self.cfg.probe_interval);
                    if c.kept_by_prober() {
                        // Kept open by a prober (for its ring predecessor),
                        // which gets answers pushed (see `push_answers`)
                        // for as long as it still pings now and then.
                        if now - c.last_heard
                            >= round.saturating_mul(u64::from(detector::PUSH_STALE_ROUNDS))
                        {
                            stale.push(id);
                        }
                    } else if self.detector.ring_link.is_none_or(|(_, k)| k != id)
                        && now - c.last_sent >= round.saturating_mul(4)
                    {
                        // Kept by this node: closed once it stops using it.
                        stale.push(id);
                    }
                    continue;
                }
                if now - c.opened >= self.cfg.handshake_timeout {
                    stale.push(id);
                } else if c.dialed.is_some() && !c.probe {
                    // Waiting for the answer to its hello: pinged, so that
                    // a lost answer does not make it look dead to the
                    // other side.
                    ping.push(id);
                }
                continue;
            };
            let link = self.neighbours.get(&p.id) == Some(&id);
            if link {
                if let Some(since) = self.awaited_since(c) {
                    going_silent.push(since + self.silent_wait(c));
                }
            }
            // A link is watched if this node picked it or the peer pings
            // over it (then this end watches back, so a member is watched
            // by every neighbour that picked it and by those it picked).
            let watching = !link
                || watched.contains(&id)
                || c.pinged
                    .is_some_and(|t| now - t < dead_after.saturating_mul(2));
            // Any other link is watched from the first message this node
            // sent over it that nothing came back after: it is pinged if
            // the peer stays quiet for most of an interval, and checked
            // after the silence. An idle link costs nothing, but a node
            // whose links were all cut finds out as soon as it speaks.
            // (Chat pushed over a tree link counts a silence later: see
            // `awaited_since`.)
            let awaiting = if watching {
                None
            } else {
                self.awaited_since(c)
            };
            if !watching && awaiting.is_none() {
                continue;
            }
            let heard = awaiting.unwrap_or(c.last_heard).max(c.last_heard);
            if now >= heard + dead_after {
                silent.push((id, p));
                continue;
            }
            next_silent = next_silent.min(heard + dead_after);
            // A link quiet in either direction for about an interval gets a
            // ping: one exchange per interval serves both ends (the ping
            // tells the peer this node lives, the answer tells this node the
            // peer does). The end that picked the link leads (both or
            // neither: the lower id): it pings after three quarters of
            // an interval (so that a tick just after the last exchange does
            // not skip a whole interval), the other only after five
            // quarters, when the first is late. Two ends whose ticks fall
            // together do not both ping, and the leader's heartbeats keep
            // the other watching back. Either end pings at its last tick
            // before the link's silence runs out, whatever it waits for:
            // ticks an interval apart may otherwise pass five quarters of
            // quiet only when the silence has run out too, and a link
            // would be checked through others (and closed, the member
            // being reached) with no ping over it (two ends that each
            // took the other for the leader, after the picks moved).
            let mine = watched.contains(&id);
            let theirs = c
                .pinged
                .is_some_and(|t| now - t < dead_after.saturating_mul(2));
            let lead = if mine != theirs {
                mine
            } else {
                self.me.id < p.id
            };
            let quarters = if lead { 3 } else { 5 };
            let quiet = |t: Instant| (now - t).as_millis() * 4 >= interval * quarters;
            // Whether this is the last tick that leaves an answer its round
            // trip before a silence from `t` runs out: the next one, plus
            // the link's round trip, falls past it. On a link whose round
            // trip is over a quarter interval, a tick just under three
            // quarters of an interval after the last answer (or the first
            // unanswered send) passed, and the next one's answer landed on
            // the silence's end (150 ms links): the link was checked and
            // closed, its peer alive, and both ends grafted every link off
            // the tree. Not over a link whose round trip is an interval or
            // more: no tick leaves its answer room, every tick would ping,
            // and its checks stretch past the silence anyway (see
            // `slack`).
            let rtt = c.rtt.unwrap_or(Duration::ZERO);
            let last_tick = |t: Instant| {
                rtt < self.cfg.ping_interval && now + self.cfg.ping_interval + rtt >= t + dead_after
            };
            if let Some(since) = awaiting {
                // Pinged by whichever end awaits, after three quarters of an
                // interval (a tick just after the send still leaves one
                // before the silence runs out), or at the last tick.
                // (`since` may lie ahead, for pushed chat: the difference
                // is then zero.)
                if (now - since).as_millis() * 4 >= interval * 3 || last_tick(since) {
                    ping.push(id);
                }
            } else if (link || c.dialed.is_some())
                && (quiet(c.last_heard)
                    || quiet(c.last_sent)
                    || now + self.cfg.ping_interval >= heard + dead_after
                    || (lead && last_tick(heard))
                    || (watched.contains(&id)
                        && c.ping_sent.is_none_or(|t| now - t >= dead_after)
                        && c.pinged.is_none_or(|t| now - t >= dead_after)))
            {
                // A link that carried anything both ways lately needs no
                // heartbeat. But a link this node picked, and whose peer
                // does not ping it, gets one at least every `dead_after`,
                // busy or not, so that the peer keeps watching back.
                ping.push(id);
            }
        }
        if silent
            .iter()
            .any(|(id, p)| self.neighbours.get(&p.id) == Some(id))
            && self.detector.swept.is_none_or(|t| now - t >= dead_after)
        {
            // A neighbour went silent: failures often come together (a
            // rack, a region, a mass crash), and an idle link would tell
            // nothing until this node next speaks over it. Every link quiet
            // for an interval is pinged now, so that its peer's death is
            // known within the silence, and the slot refilled.
            self.detector.swept = Some(now);
            for id in self.quiet_links() {
                if !silent.iter().any(|(s, _)| *s == id) && !ping.contains(&id) {
                    ping.push(id);
                    next_silent = next_silent.min(now + dead_after);
                }
            }
        }
        self.timers.arm(Timer::Silent, next_silent);
        for id in stale {
            self.stats.handshake_timeouts += 1;
            self.close(id, out);
        }
        for (id, peer) in silent {
            // A silent neighbour is checked through others before anyone
            // suspects it; a silent connection that is not the neighbour's
            // link (a duplicate on its way out) just goes.
            if self.neighbours.get(&peer.id) == Some(&id) {
                self.check(peer.id, Some(id), out);
            } else {
                self.close(id, out);
            }
        }
        self.send_pings(ping, &watched, out);
        self.arm_mend(going_silent);
        // Dials the driver never answered.
        let limit = self.cfg.handshake_timeout.saturating_mul(2);
        let lost: Vec<SocketAddr> = self
            .dialing
            .iter()
            .filter(|(_, d)| now - d.since >= limit)
            .map(|(a, _)| *a)
            .collect();
        for a in lost {
            self.on_connect_failed(a, false, out);
        }
    }

    /// Arms [`Timer::Mend`] for when fewer than half the slots' links will
    /// speak: when so many links will have gone silent (`going_silent`:
    /// when each that awaits an answer does), or so many heartbeats gone
    /// unanswered (see `maintain`).
    fn arm_mend(&mut self, going_silent: Vec<Instant>) {
        if self.runs_late() {
            return;
        }
        let half = self.cfg.max_connections / 2;
        let enough = (self.neighbours.len() + 1).saturating_sub(half).max(1);
        let unanswered: Vec<Instant> = self.unanswered_links().collect();
        for mut due in [going_silent, unanswered] {
            if due.len() < enough {
                continue;
            }
            due.sort_unstable();
            let at = due[enough - 1];
            if at > self.now {
                self.timers.arm(Timer::Mend, at);
            }
        }
    }

    /// Whether member `who` (`m`) may be dialled now to fill a slot: it
    /// is alive, not backed off, not full unless this node is `needy` (a
    /// full member takes a needy dial), and neither a neighbour nor being
    /// dialled.
    fn fills_slot(&self, who: Id, m: &Member, needy: bool) -> bool {
        m.state == MemberState::Alive
            && m.retry_at <= self.now
            && (needy || m.full_until <= self.now)
            && !self.neighbours.contains_key(&who)
            && !self.dialing_to(who)
    }

    /// The neighbour links quiet for a heartbeat interval over which this
    /// node awaits nothing.
    fn quiet_links(&self) -> Vec<ConnId> {
        let interval = self.cfg.ping_interval.as_millis();
        self.conns
            .iter()
            .filter(|(&id, c)| {
                c.awaiting.is_none()
                    && c.peer
                        .is_some_and(|p| self.neighbours.get(&p.id) == Some(&id))
                    && (self.now - c.last_heard).as_millis() >= interval
            })
            .map(|(&id, _)| id)
            .collect()
    }

    /// A link checked ahead of its silence stayed silent to its end (see
    /// `early_checks`): as when a neighbour goes silent (see `heartbeat`),
    /// failures come together, so every other link quiet for an interval
    /// is pinged now (at most once a silence).
    pub(super) fn sweep_quiet(&mut self, out: &mut Vec<Output>) {
        let silence = self.silence();
        if self.detector.swept.is_some_and(|t| self.now - t < silence) {
            return;
        }
        let quiet = self.quiet_links();
        if quiet.is_empty() {
            return;
        }
        self.detector.swept = Some(self.now);
        self.timers.arm(Timer::Silent, self.now + silence);
        let watched = self.watched_links();
        self.send_pings(quiet, &watched, out);
    }

    /// Sends a heartbeat over each of `links`: over a link this node
    /// picked (in `watched`) it asks the peer to watch back; elsewhere a
    /// ping asks for an answer only.
    ///
    /// A link whose last ping went out less than its round trip ago and is
    /// still unanswered gets no other: its answer cannot have come yet (a
    /// silent link's sweep and the heartbeat tick after it may fall a few
    /// milliseconds apart), and a second would count the first as lost.
    fn send_pings(&mut self, links: Vec<ConnId>, watched: &[ConnId], out: &mut Vec<Output>) {
        let dead_after = self.silence();
        let now = self.now;
        let links: Vec<ConnId> = links
            .into_iter()
            .filter(|conn| {
                self.conns.get(conn).is_none_or(|c| {
                    c.ping_sent
                        .is_none_or(|t| c.last_heard >= t || now - t >= self.rtt(*conn))
                })
            })
            .collect();
        if links.is_empty() {
            return;
        }
        let nonce = self.detector.next_nonce();
        for conn in links {
            let lost = self
                .conns
                .get(&conn)
                .and_then(|c| c.ping_sent.map(|t| c.last_heard < t))
                .unwrap_or(false);
            if lost {
                // The heartbeat before this one went unanswered.
                self.detector.lost_heartbeat = Some(self.now);
            }
            let early = self.early_check_at(conn, watched, dead_after);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.ping_sent = Some(self.now);
                c.ping_nonce = nonce;
                c.early_at = early;
            }
            if let Some(at) = early {
                self.timers.arm(Timer::Early, at);
            }
            let msg = if watched.contains(&conn) {
                Message::Heartbeat(nonce)
            } else {
                Message::Ping(nonce)
            };
            out.push(Output::Send { conn, msg });
        }
    }

    /// When a heartbeat sent now over `conn` that is still unanswered has
    /// the link checked ahead of its silence (see [`Node::early_checks`]):
    /// after a wait for its answer, and no sooner than that wait before
    /// the silence ends. Only for a neighbour link that is watched (this
    /// node picked it, or the peer pings over it), while no heartbeat over
    /// any link went unanswered lately, by a node that sees itself
    /// healthy, and not over a link slower than the probe timeout allows
    /// for: its checks stretch past the silence (see `slack`), and
    /// starting early would cut them short.
    fn early_check_at(
        &self,
        conn: ConnId,
        watched: &[ConnId],
        dead_after: Duration,
    ) -> Option<Instant> {
        let c = self.conns.get(&conn)?;
        let p = c.peer?;
        let theirs = c
            .pinged
            .is_some_and(|t| self.now - t < dead_after.saturating_mul(2));
        let link = self.neighbours.get(&p.id) == Some(&conn);
        if !link || !(theirs || watched.contains(&conn)) {
            return None;
        }
        // Only while no heartbeat over any link went unanswered lately, by
        // a node that sees itself healthy: where links lose messages (or
        // this node's answers go missing), a heartbeat unanswered is weak
        // evidence, and a check waits out the whole silence as before.
        // (Looked at before the round trip, which may take a look at every
        // neighbour link: this runs for every heartbeat.)
        let lossy_for = self.cfg.ping_interval.saturating_mul(LOSSY_FOR);
        let lossy = self
            .detector
            .lost_heartbeat
            .is_some_and(|t| self.now - t < lossy_for);
        if lossy || self.detector.health > 0 {
            return None;
        }
        if self.slack(self.rtt_to(p.id)) > Duration::ZERO {
            return None;
        }
        let wait = self.ping_wait(p.id);
        Some((self.now + wait).max((c.last_heard + dead_after).saturating_sub(wait)))
    }

    /// Watched links whose heartbeat went unanswered for its wait are
    /// checked through others now, while their silence runs out, so that
    /// the helpers' answers are in when it does (SWIM's probe timeout,
    /// with the indirect probes overlapping the wait). Such a check ends
    /// in a suspicion only once the whole silence has passed with nothing
    /// heard: as it ends if every helper has said it cannot reach the
    /// member either, a probe timeout later otherwise (see `check_from`).
    pub(super) fn early_checks(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        let silence = self.silence();
        let mut due = Vec::new();
        let mut next = Instant::MAX;
        for (&id, c) in &self.conns {
            let Some(at) = c.early_at else { continue };
            let answered = c.ping_sent.is_none_or(|t| c.last_heard >= t);
            if answered {
                continue;
            }
            if at <= now {
                due.push((id, c.last_heard + silence));
            } else {
                next = next.min(at);
            }
        }
        self.timers.arm(Timer::Early, next);
        for (id, not_before) in due {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            c.early_at = None;
            let Some(peer) = c.peer.filter(|p| self.neighbours.get(&p.id) == Some(&id)) else {
                continue;
            };
            self.check_from(peer.id, Some(id), not_before, out);
        }
    }

    /// True if the heartbeats of neighbour link `conn` watch its peer:
    /// this node picked it, or the peer pings over it.
    pub(super) fn watches_link(&self, conn: ConnId) -> bool {
        let dead_after = self.stretch(self.cfg.dead_after());
        self.watched_links().contains(&conn)
            || self
                .conns
                .get(&conn)
                .and_then(|c| c.pinged)
                .is_some_and(|t| self.now - t < dead_after.saturating_mul(2))
    }

    /// The neighbour links this node picks to watch: the
    /// `watched_links` with the lowest hash of the pair of ids, which
    /// both ends compute alike.
    fn watched_links(&self) -> Vec<ConnId> {
        let pair = |a: Id| {
            let (lo, hi) = if a < self.me.id {
                (a, self.me.id)
            } else {
                (self.me.id, a)
            };
            let k = |id| NodeKey { id, incarnation: 0 };
            crate::peers::key_hash(k(lo), crate::peers::key_hash(k(hi), 0))
        };
        // The ring predecessor's link first (it is this node's to watch,
        // and it watches back: each member is watched by the members on
        // both sides of it on the ring, by heartbeats on links that exist
        // anyway).
        let pred = self.ring_predecessor();
        // (Not with `ring_push_interval`: the predecessor pushes its
        // answers over the link instead, and it takes the slot.)
        let ring = pred
            .and_then(|a| self.neighbours.get(&a).copied())
            .filter(|_| !self.push_ring());
        // A predecessor that is not a neighbour is watched over the probe
        // connection kept for it, which takes one of the slots.
        let slots = if pred.is_some() && ring.is_none() {
            self.cfg.watched_links.saturating_sub(1)
        } else {
            self.cfg.watched_links
        };
        let mut links: Vec<(u64, Id, ConnId)> = self
            .neighbours
            .iter()
            .filter(|(_, c)| Some(**c) != ring)
            .map(|(a, c)| (pair(*a), *a, *c))
            .collect();
        links.sort_unstable();
        ring.into_iter()
            .chain(links.into_iter().map(|(_, _, c)| c))
            .take(slots)
            .collect()
    }

    /// Marks every neighbour link for the next sync round, which then
    /// compares chat with all of them rather than one drawn at random.
    pub(super) fn recheck_every_neighbour(&mut self) {
        for conn in self.neighbours.values() {
            if let Some(c) = self.conns.get_mut(conn) {
                c.recheck = true;
            }
        }
    }

    /// Suspicions that nobody refuted in time become deaths.
    pub(super) fn expire_suspicions(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        let expired: Vec<Id> = self
            .suspects
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(a, _)| *a)
            .collect();
        for who in expired {
            // Worked out while `who` still counts among the suspects (see
            // `burst_in_sight`).
            let still = self
                .members
                .get(&who)
                .filter(|m| {
                    m.state == MemberState::Suspect && m.suspect_until.is_some_and(|t| t <= now)
                })
                .map(|m| {
                    // Only a lone accusation waits on this node's health
                    // now: independent confirmations are evidence enough.
                    let lone = self.confirming_accusers(m) <= 1 && !m.heard_dead;
                    let end = if lone {
                        self.suspicion_end(m)
                    } else {
                        self.resumed_end(m)
                    };
                    // Held on the word of accusers whose accusations all
                    // kept being refuted since, this node's own included:
                    // no death on it (see `limited`).
                    let unheard = m.accusers.len() > 0 && self.heard_accusers(m) == 0;
                    (m.key(who), end, m.since, unheard)
                });
            self.suspects.remove(&who);
            let Some((key, end, since, unheard)) = still else {
                continue;
            };
            if unheard {
                self.unsuspect(who);
                continue;
            }
            if end > now {
                // A lone accusation, and this node's health got worse
                // since it suspected (it was accused itself, its timers
                // ran late): what reaches it comes late or not at all, the
                // refutation too, so it waits as long as a suspicion made
                // now would (Lifeguard's local health, applied when the
                // wait ends). Or this node heard from no one meanwhile
                // (see `suspicion_start`). The armed deadline stays: each
                // wake-up works the end out afresh from it.
                self.suspects.insert(who, end);
                continue;
            }
            if let Some(t) = self
                .detector
                .ping_due(who)
                .filter(|_| self.stands_between())
            {
                // This node, which reaches members others cannot, is
                // probing the suspect itself: its own answer decides (a
                // probe's wait at most).
                self.suspects.insert(who, t);
                continue;
            }
            if let Some(t) = self.reached_fresh(who).filter(|t| *t >= since) {
                // This node's own ping reached the suspect since it took
                // the suspicion (and told it so): the refutation is on its
                // way, over links that may have to go round a cut. No
                // death on others' word until that evidence is stale.
                self.suspects.insert(who, t + self.reach_window());
                continue;
            }
            let mut age = 0;
            if self.isolated() {
                // Cut off, most likely: no death until this node hears
                // from others (the wait then starts again, see
                // `suspicion_end`), or for `ISOLATED_WAIT`. Past that (the
                // last member left alive?) it declares, dated from the
                // suspicion, so that the death travels as the old news it
                // may be (see `merge_update`).
                let last = since + ISOLATED_WAIT;
                if now < last {
                    let at = last.min(now + self.cfg.ping_interval);
                    self.suspects.insert(who, at);
                    continue;
                }
                age = ((now - since).as_millis() / 1000).min(u64::from(u32::MAX)) as u32;
            }
            self.declare_dead(key, age, out);
        }
    }

    /// Whether this node ran a heartbeat or more behind lately (see
    /// `lagging`): what it hears is as late as its timers.
    pub(super) fn runs_late(&self) -> bool {
        self.detector.lagging_until.is_some_and(|t| self.now < t)
    }

    /// This node runs a heartbeat or more behind: it accuses no one for
    /// a while (see `suspect`).
    fn lagging(&mut self) {
        let until = self.now + self.stretch(self.cfg.dead_after());
        self.detector.lagging_until = Some(until);
    }

    pub(super) fn expire_gaps(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        let due: Vec<NodeKey> = self
            .streams
            .waiting
            .iter()
            .filter(|k| {
                self.streams.map.get(k).is_some_and(|s| {
                    s.waiting_since
                        .is_some_and(|t| now - t >= self.cfg.gap_timeout)
                })
            })
            .copied()
            .collect();
        for k in due {
            self.give_up_gap(k, out);
        }
    }

    /// The suspicions this node holds as it passes them on (naming itself
    /// as the accuser where it accused), at most [`GOSSIP_BATCH`].
    pub(super) fn held_suspicions(&self) -> Vec<MemberUpdate> {
        let (now, me) = (self.now, self.me.id);
        self.suspects
            .keys()
            .filter_map(|a| {
                let m = self
                    .members
                    .get(a)
                    .filter(|m| m.state == MemberState::Suspect)?;
                let u = m.update(*a, now);
                Some(MemberUpdate {
                    accuser: m.accusers.get(&me).copied().or(u.accuser),
                    ..u
                })
            })
            .take(GOSSIP_BATCH)
            .collect()
    }

    pub(super) fn gossip(&mut self, out: &mut Vec<Output>) {
        // Each suspicion this node holds, in one pass over them:
        // - a suspect that is a neighbour is told of it every round until it
        //   refutes it or it runs out: it alone can refute, and the flood
        //   that should have told it may have been lost on every link to it;
        // - this node's own accusations ride every round while they stand
        //   (not only the first few), so that one whose flood was lost all
        //   around still reaches the accused before it runs out;
        // - so do the others' accusations it holds: a neighbour that has
        //   the accused's refutation answers a stale accusation with it
        //   (see `on_peer_list`), so a refutation lost on every link to
        //   this node still reaches it before the suspicion runs out into
        //   a false death.
        let now = self.now;
        for a in self.suspects.keys() {
            let Some(m) = self
                .members
                .get(a)
                .filter(|m| m.state == MemberState::Suspect)
            else {
                continue;
            };
            if let Some(&conn) = self.neighbours.get(a) {
                self.send_peer_list(conn, false, vec![m.update(*a, now)], out);
            }
        }
        let mut own = self.held_suspicions();
        if (self.recent.is_empty() && own.is_empty()) || self.neighbours.is_empty() {
            return;
        }
        // Oldest first, a bounded batch per round, so that a burst of
        // changes costs a steady trickle rather than one huge list.
        let mut updates = self.recent.round(GOSSIP_BATCH);
        // A death goes with its age now, not when it was queued: news that
        // waited (this node had no neighbours) must not pass for fresh.
        for u in &mut updates {
            if let Some(m) = self.members.get(&u.node.id).filter(|m| m.rank() == rank(u)) {
                u.age_secs = m.update(u.node.id, now).age_secs;
            }
        }
        own.retain(|o| !updates.iter().any(|u| u.node.id == o.node.id));
        updates.extend(own);
        let msg = Message::PeerList {
            full: false,
            members: updates,
        };
        let mut targets: Vec<ConnId> = self.neighbours.values().copied().collect();
        for _ in 0..self.cfg.gossip_fanout.min(targets.len()) {
            let i = self.below(targets.len());
            let conn = targets.swap_remove(i);
            out.push(Output::Send {
                conn,
                msg: msg.clone(),
            });
        }
    }

    /// Opens connections while under the neighbour target.
    pub(super) fn maintain(&mut self, out: &mut Vec<Output>) {
        if !self.joined {
            // Still joining: retry every seed not linked yet, even with
            // other links up (they may be newcomers as lost as this node),
            // but not one whose dial is still in flight or whose
            // connection is still in its handshake (a connection takes a
            // round trip to open: on slow links a retry at the back-off
            // would open a second one just as the first answers).
            let opening = |a: SocketAddr| {
                self.dialing.contains_key(&a)
                    || self
                        .conns
                        .values()
                        .any(|c| c.dialed == Some(a) && c.peer.is_none())
            };
            let due: Vec<SocketAddr> = self
                .seeds
                .iter()
                .filter(|(a, at)| **at <= self.now && self.link_at(**a).is_none())
                .filter(|(a, _)| !opening(**a))
                .map(|(a, _)| *a)
                .collect();
            let retry = self.now + self.cfg.dial_backoff;
            for a in due {
                self.seeds.insert(a, retry);
                self.dial_addr(a, None, false, out);
            }
            // Linked to a seed but no answer yet: ask again.
            let asked: Vec<(SocketAddr, ConnId)> = self
                .seeds
                .iter()
                .filter(|(_, at)| **at <= self.now)
                .filter_map(|(a, _)| self.link_at(*a).map(|c| (*a, c)))
                .collect();
            for (a, conn) in asked {
                self.await_join(a, conn);
                let hello = self.hello();
                self.asked_to_join(conn);
                out.push(Output::Send {
                    conn,
                    msg: Message::Join(hello),
                });
            }
            return;
        }
        let outbound_pending = self.dialing.len()
            + self
                .conns
                .values()
                .filter(|c| c.peer.is_none() && c.dialed.is_some() && !c.probe)
                .count();
        // Links gone silent (their peers died, or a cut came between this
        // node and them) carry nothing, but hold their slots until the
        // silence closes them. A node whose heartbeats went unanswered over
        // most of its links at once is most likely cut off from its
        // neighbours: it dials for those slots now, without the pace, and
        // a new link takes a silent one's slot (`on_hello`). Not a node
        // that runs late (its timers fired well past their deadlines): what
        // it hears is as late, and its links only look silent.
        let now = self.now;
        let half = self.cfg.max_connections / 2;
        let dead_after = self.cfg.dead_after();
        let all_quiet = self.chat_flows()
            && !self.neighbours.is_empty()
            && self.neighbours.values().all(|c| {
                self.conns
                    .get(c)
                    .is_some_and(|x| now - x.last_heard >= dead_after)
            });
        if !self.runs_late() {
            // Most links went silent: each that has no heartbeat out since
            // gets one now, and the answers (or their absence, a ping's
            // wait later) tell whether this node is cut off. Anything else
            // sent over a link may leave it quiet for a while (a chat or a
            // sync asks for no answer, and a quiet link is pinged only at
            // the next heartbeat tick).
            //
            // So is every link when nothing came from any neighbour for a
            // silence's time while chat flows: links this node sends
            // nothing over await no answer, and when every neighbour died
            // with the others (a mass failure), only their accusers' pace
            // would free the slots.
            let silent: Vec<ConnId> = self.silent_links(false).map(|(_, c)| c).collect();
            let asked: Vec<ConnId> = if all_quiet {
                self.neighbours.values().copied().collect()
            } else if self.neighbours.len() - silent.len() < half {
                silent
            } else {
                Vec::new()
            };
            let ask: Vec<ConnId> = asked
                .into_iter()
                .filter(|c| {
                    self.conns
                        .get(c)
                        .is_some_and(|x| x.ping_sent.is_none_or(|t| x.last_heard >= t))
                })
                .collect();
            if !ask.is_empty() {
                if all_quiet {
                    self.stats.quiet_rounds += 1;
                }
                let watched = self.watched_links();
                self.send_pings(ask, &watched, out);
                self.arm_mend(Vec::new());
            }
        }
        let silent = if self.runs_late() {
            0
        } else {
            self.unanswered_links().filter(|t| *t <= now).count()
        };
        let live = self.neighbours.len() - silent;
        let cut_off = silent > 0 && live < half;
        let have = if cut_off { live } else { self.neighbours.len() } + outbound_pending;
        if have >= self.cfg.max_connections || (self.now < self.next_dial && !cut_off) {
            return;
        }
        // Two at a time, at a gentle pace; but a node with no neighbour
        // it hears (they all died, or it was cut off) is deaf to every
        // death and chat: it dials for all its slots at once, since many
        // of the members it knows may be gone too.
        let mut want = if live == 0 {
            self.cfg.max_connections - have
        } else if !cut_off && self.neighbours.len() < half {
            // Short of half its slots: up to half at once. A group that
            // starts together fills the other half by each other's dials
            // (every node that dials for half takes about as many), where
            // each dialling for all its slots would open twice the links
            // it keeps and turn half away as full.
            half.saturating_sub(have).min(2)
        } else {
            (self.cfg.max_connections - have).min(2)
        };
        // A node short of neighbours asks full members too: they take a
        // needy dial.
        let needy = live < self.cfg.max_connections / 2;
        if cut_off {
            // Most links went silent: a cut runs between this node and
            // most members it knows, and a random pick mostly dials across
            // it. Members a probe reached lately are on this side: they
            // go first, the latest first.
            let within = self.cfg.dead_after().saturating_mul(2);
            for who in self.detector.reached_within(self.now, within) {
                if want == 0 {
                    break;
                }
                if self
                    .members
                    .get(&who)
                    .is_some_and(|m| self.fills_slot(who, m, needy))
                {
                    self.dial(who, false, out);
                    want -= 1;
                }
            }
        }
        for _ in 0..SAMPLE_TRIES {
            if want == 0 || self.members.len() == 0 {
                break;
            }
            let i = self.below(self.members.len());
            let Some((who, m)) = self.members.get_index(i) else {
                break;
            };
            let who = *who;
            if !self.fills_slot(who, m, needy) {
                continue;
            }
            self.dial(who, false, out);
            want -= 1;
        }
        if self.neighbours.len() >= self.cfg.max_connections / 2 {
            // Well connected: look for the last slots at a gentle pace.
            // Each refusal since a neighbour was last lost doubles the
            // wait: in a group where the others are full, the last slot
            // stays empty rather than costing a connection every interval.
            let wait = self
                .cfg
                .reconnect_interval
                .saturating_mul(1u64 << self.fill_refused.min(16))
                .min(self.cfg.dial_backoff_max);
            self.next_dial = self.now + wait;
        }
        if self.neighbours.is_empty() && self.dialing.is_empty() {
            let due: Vec<SocketAddr> = self
                .seeds
                .iter()
                .filter(|(_, at)| **at <= self.now)
                .map(|(a, _)| *a)
                .collect();
            for a in due {
                self.dial_addr(a, None, false, out);
            }
        }
    }

    /// While the member table is three quarters full, dials a few random
    /// members that are not neighbours just to see whether they exist:
    /// invented addresses from hostile peer lists then fail their dials and
    /// are given up (and their entries make room), even at a node that has
    /// all the neighbours it wants and so would never dial them otherwise.
    pub(super) fn probe_members(&mut self, out: &mut Vec<Output>) {
        if self.members.len().saturating_mul(4) < self.cfg.max_members.saturating_mul(3) {
            return;
        }
        let mut room = MAX_PROBES.saturating_sub(self.dialing.values().filter(|d| d.probe).count());
        for _ in 0..SAMPLE_TRIES {
            if room == 0 {
                return;
            }
            let i = self.below(self.members.len());
            let Some((who, m)) = self.members.get_index(i) else {
                return;
            };
            let (who, addr) = (*who, m.addr);
            if !m.in_roster()
                || m.retry_at > self.now
                || self.neighbours.contains_key(&who)
                || self.dialing.contains_key(&addr)
            {
                continue;
            }
            self.start_dial(addr, Some(who), false, true, out);
            room -= 1;
        }
    }

    /// Tries one random dead member whose back-off ran out: the other side
    /// of a healed split, or a node that came back. The dead are kept and
    /// retried for `retry_dead_for`.
    pub(super) fn reconnect(&mut self, out: &mut Vec<Output>) {
        for _ in 0..SAMPLE_TRIES {
            if self.members.len() == 0 {
                return;
            }
            let i = self.below(self.members.len());
            let Some((who, m)) = self.members.get_index(i) else {
                return;
            };
            let who = *who;
            if m.state == MemberState::Dead
                && m.retry_at <= self.now
                && !self.dialing_to(who)
                && !self.neighbours.contains_key(&who)
            {
                self.dial(who, false, out);
                return;
            }
        }
    }

    /// Once a minute (at a point of the minute of its own, so that the
    /// nodes of one side dial at different times), dials each join
    /// address given to this node that no member it knows (alive,
    /// suspected or dead) listens at and no link or dial already reaches:
    /// the other side of a split longer than `retry_dead_for`, which each
    /// side forgot with its tombstones, is found again through the
    /// addresses the nodes joined by, however long the split lasted. While
    /// a join address belongs to a member the member's own dials and
    /// retries cover it, so this costs nothing in a group that holds its
    /// join addresses; a join address gone for good costs one dial a
    /// minute. (Not the members busy nodes named while
    /// this node joined: a hostile one could name addresses to be dialled
    /// for ever.)
    pub(super) fn redial_lost_seeds(&mut self, out: &mut Vec<Output>) {
        if !self.joined || self.given.is_empty() {
            return;
        }
        let lost: Vec<SocketAddr> = self
            .given
            .iter()
            .copied()
            .filter(|a| !self.dialing.contains_key(a) && self.link_at(*a).is_none())
            .filter(|a| !self.members.iter().any(|(_, m)| m.addr == *a))
            .collect();
        for a in lost {
            self.dial_addr(a, None, false, out);
        }
    }

    pub(super) fn gc(&mut self) {
        let now = self.now;
        if let Some(cutoff) = now
            .as_millis()
            .checked_sub(self.cfg.tombstone_ttl.as_millis())
        {
            let cutoff = Instant::from_millis(cutoff);
            let dead_cutoff = now.saturating_sub(self.cfg.retry_dead_for);
            self.members.forget_before(cutoff, dead_cutoff);
            let members = &self.members;
            let me = self.me;
            self.streams.forget_idle(cutoff, |k| {
                *k == me
                    || members
                        .get(&k.id)
                        .is_some_and(|m| m.in_roster() && m.incarnation == k.incarnation)
            });
        }
        // A life that ended longer ago than any history is kept has
        // nothing left to repair: its stream goes (its messages are refused
        // as long as its tombstone is kept), so digests stop naming it.
        let gone: Vec<NodeKey> = self
            .streams
            .map
            .iter()
            .filter(|(k, s)| s.held.is_empty() && self.long_gone(**k))
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            self.streams.forget(k);
        }
        self.store.expire(now);
    }
}
