//! Membership: merging gossip by precedence, refuting accusations,
//! flooding changes, deaths and leaves.

use super::overlay::FAR_WATCHERS;
use super::*;
use crate::message::Accusation;
use crate::peers::print_of;
use std::borrow::Cow;

/// log2 of 0..=17 in thousandths (index 0 unused), for Lifeguard's
/// suspicion timeout without floating point.
const LOG2_MILLI: [u64; 18] = [
    0, 0, 1000, 1585, 2000, 2322, 2585, 2807, 3000, 3170, 3322, 3459, 3585, 3700, 3807, 3907, 4000,
    4087,
];

/// Whether news must reach everyone at once: an accusation, a death, a
/// departure or a refutation. The rest are arrivals (a member alive in a
/// life, never refuted), which may take the broadcast tree.
/// Bytes of one entry's fingerprint on the wire, at most.
const PRINT_SIZE: usize = 5;

/// One entry this node spreads, before it is put in wire form: a member,
/// or this node itself.
#[derive(Clone, Copy)]
enum Spread<'a> {
    Member(Id, &'a Member),
    Me,
}

/// A duplicate arrival does not prune a node's last tree links: with many
/// senders at once, prunes for different arrivals would otherwise cut it
/// off the tree.
const MIN_TREE_LINKS: usize = 2;

/// How [`Node::merge_update`] took an update.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Merged {
    /// The table did not change.
    No,
    /// The table holds it now.
    Yes,
    /// It was a death from a full list, taken as a suspicion.
    Suspected,
}

fn urgent(u: &MemberUpdate) -> bool {
    u.state != MemberState::Alive || u.version > 0
}

impl Node {
    // ---- membership --------------------------------------------------

    /// Merges one update; true if it changed the table (news to spread).
    /// `stale_risk` marks updates from a full list, or from a peer back
    /// from the other side of a cut, which may carry deaths from across a
    /// healed split: those become suspicions.
    pub(super) fn apply_update(
        &mut self,
        u: &MemberUpdate,
        stale_risk: bool,
        out: &mut Vec<Output>,
    ) -> bool {
        self.merge_update(u, stale_risk, out) != Merged::No
    }

    /// [`apply_update`](Self::apply_update), saying how the table took it.
    fn merge_update(
        &mut self,
        u: &MemberUpdate,
        stale_risk: bool,
        out: &mut Vec<Output>,
    ) -> Merged {
        let id = u.node.id;
        if u.node.incarnation >= MAX_INCARNATION
            || u.version >= MAX_VERSION
            || u.name.len() > MAX_NAME_LEN
        {
            self.stats.unexpected += 1;
            return Merged::No;
        }
        if id == self.me.id {
            // Only this node's own key speaks for its life and version.
            if self.proven(u) {
                self.about_me(u, out);
            }
            return Merged::No;
        }
        // Copied only if it changes (this runs for every entry of every
        // peer list).
        let mut u = Cow::Borrowed(u);
        let accusing = matches!(u.state, MemberState::Suspect | MemberState::Dead);
        if !accusing && u.accuser.is_some() {
            u.to_mut().accuser = None;
        }
        // Who accuses (its id is a hash of its key: worked out once), and
        // whether its accusations count here (see `limited`).
        let accuser = u.accuser_id();
        let counted = !accuser.is_some_and(|a| self.limited(a));
        // A death no longer spread (older than `tombstone_ttl`) does not
        // outweigh news that the member is alive in that life: the other
        // side of a long split held it alive all along. It is taken afresh;
        // if it is really gone, probing finds out again.
        let cutoff = self.spread_cutoff();
        let mut at = self.members.index_of(&id);
        let revived = u.state == MemberState::Alive
            && at
                .and_then(|i| self.members.get_index(i))
                .is_some_and(|(_, m)| !m.spread(cutoff) && m.incarnation == u.node.incarnation);
        // Whatever could change the table or be passed on is checked once,
        // before anything acts on it: a revival (an old tombstone still
        // keeps this node re-dialling the member across a split), a
        // confirmation, an accusation (it names a version the accused
        // signed), news of any other kind.
        let news = revived
            || at
                .and_then(|i| self.members.get_index(i))
                .is_none_or(|(_, m)| {
                    supersedes(rank(&u), m.rank())
                        || (rank(&u) == m.rank() && u.state == MemberState::Suspect)
                });
        if news && !self.proven(&u) {
            return Merged::No;
        }
        if news && accusing && !counted {
            // Taken and passed on, but not counted (see `limited`).
            self.stats.accusations_limited += 1;
        }
        if revived {
            self.members.remove(&id);
            at = None;
        }
        let mut downgraded = false;
        if let Some((_, m)) = at.and_then(|i| self.members.get_index(i)) {
            if rank(&u) == m.rank() && u.state == MemberState::Suspect {
                return if self.confirm(id, u.accuser) {
                    Merged::Yes
                } else {
                    Merged::No
                };
            }
            if !supersedes(rank(&u), m.rank()) {
                return Merged::No;
            }
            let same_life = m.incarnation == u.node.incarnation;
            if same_life
                && m.in_roster()
                && matches!(u.state, MemberState::Dead | MemberState::Suspect)
            {
                // First-hand evidence beats hearsay: a neighbour we heard
                // from within a heartbeat is alive. Pass the accusation to it.
                // Not on a node that sees itself degraded: what it hears
                // comes late, so its evidence is not fresh.
                let neighbour = self
                    .neighbours
                    .get(&id)
                    .filter(|_| self.detector.health == 0);
                if let Some(&c) = neighbour {
                    let fresh = self.conns.get(&c).is_some_and(|c| {
                        self.now - c.last_heard < self.cfg.ping_interval.saturating_mul(2)
                    });
                    if fresh {
                        if u.state == MemberState::Dead && u.version == m.version {
                            if let Some(m) = self.members.get_mut(&id) {
                                m.heard_dead = true;
                            }
                        }
                        out.push(Output::Send {
                            conn: c,
                            msg: Message::PeerList {
                                full: false,
                                members: vec![u.into_owned()],
                            },
                        });
                        // And see for itself: what it heard may have been
                        // sent just before the member died (this node may
                        // be running late).
                        self.verify(id, out);
                        return Merged::No;
                    }
                }
                let suspect = m.state == MemberState::Suspect;
                let mine = accuser == Some(self.me.id);
                // A death others declared of a member this node holds in
                // the roster is only a suspicion here: the accused may
                // refute it, and this node's own suspicion runs out into a
                // death (Lifeguard's confirmations, or its own failed
                // probe). A fresh one names its accuser, who is held to
                // it. One the sender has held for longer than a suspicion
                // lasts is stale news and names none: a sender cut off
                // from everyone (a split, a lost key) declares them all
                // dead, and tells them on its return. (Taken so before
                // anything passes it on, a held-back accusation included.)
                let old = Duration::from_secs(u.age_secs.into()) >= self.cfg.suspect_timeout;
                let stale = stale_risk || old;
                // A node that runs a heartbeat or more behind (its timers
                // fire late: see `suspect`) hears everything late, the
                // refutation too if there was one, and accuses no one
                // itself: a fresh death the others declared, on the word
                // of an accuser it counts, stands.
                let late = self.runs_late() && !stale && counted;
                if u.state == MemberState::Dead && !late {
                    if suspect && stale {
                        return Merged::No;
                    }
                    if suspect && u.version == m.version {
                        // One more accuser of what this node suspects, and
                        // one whose suspicion ran out: the wait shrinks to
                        // the shortest. Not on the word of a member this
                        // node holds accused itself (see
                        // `confirming_accusers`).
                        let witness = counted && !accuser.is_some_and(|a| self.held_accused(a));
                        if let Some(m) = self.members.get_mut(&id) {
                            m.heard_dead |= witness;
                        }
                        let news = self.confirm(id, u.accuser);
                        self.arm_suspicion(id);
                        return if news { Merged::Yes } else { Merged::No };
                    }
                    let u = u.to_mut();
                    u.state = MemberState::Suspect;
                    if stale {
                        u.accuser = None;
                    }
                    u.age_secs = 0;
                    downgraded = true;
                }
                if !mine && self.reached_lately(id) && self.hold_back(&u, out) {
                    // First-hand evidence again, from a member that is not a
                    // neighbour.
                    self.found_between(&u, out);
                    return Merged::No;
                }
                if !mine
                    && (self.watches_over(&u)
                        || self.stands_between() && !self.neighbours.contains_key(&id))
                    && self.check_accused(&u, out)
                {
                    // No evidence either way here, but this node is one of
                    // the few that look for themselves.
                    return Merged::No;
                }
            }
        }
        // Set, the entry holds `u` (nothing else changes the table on the
        // way out of `apply_at`).
        let changed = self.apply_at(at, &u, out)
            || self.members.get(&id).is_some_and(|m| m.rank() == rank(&u));
        if changed && u.state == MemberState::Suspect {
            self.arm_suspicion(id);
            self.tell_accused(&u, out);
            if u.accuser_id() != Some(self.me.id) {
                self.verify(id, out);
            }
        }
        match (changed, downgraded) {
            (false, _) => Merged::No,
            (true, false) => Merged::Yes,
            (true, true) => Merged::Suspected,
        }
    }

    /// Whether `id`, not a neighbour, answered this node's ping over a
    /// probe connection (a ring link, a probe asked for by another) within
    /// two heartbeat intervals, while this node sees itself healthy (a
    /// degraded node's evidence is not fresh).
    fn reached_lately(&self, id: Id) -> bool {
        if self.detector.health > 0 || self.neighbours.contains_key(&id) {
            return false;
        }
        self.reached_fresh(id).is_some()
    }

    /// How long an answer to this node's own ping over a probe connection
    /// counts as evidence that the member lives: two heartbeat intervals.
    pub(super) fn reach_window(&self) -> Duration {
        self.cfg.ping_interval.saturating_mul(2)
    }

    /// When `id` last answered this node's ping over a probe connection,
    /// if within [`reach_window`](Self::reach_window).
    pub(super) fn reached_fresh(&self, id: Id) -> Option<Instant> {
        let window = self.reach_window();
        self.detector
            .reached_at(id)
            .filter(|t| self.now - *t < window)
    }

    /// Hands `u`, an accusation, to its accused over a probe connection
    /// this node holds to it (a ring link, a probe still open), as the
    /// links that carry the flood may all lead away from it (Lifeguard's
    /// buddy system, on connections that are not neighbour links too).
    pub(super) fn tell_accused(&self, u: &MemberUpdate, out: &mut Vec<Output>) {
        let id = u.node.id;
        let link = self.neighbours.get(&id).copied();
        for (&c, _) in self.conns.iter().filter(|(c, x)| {
            let to = x.peer.map(|p| p.id).or(x.proven).or(x.wanted);
            Some(**c) != link && to == Some(id)
        }) {
            out.push(Output::Send {
                conn: c,
                msg: Message::PeerList {
                    full: false,
                    members: vec![u.clone()],
                },
            });
        }
    }

    /// Whether this node is one of the [`FAR_WATCHERS`] members after
    /// `u`'s accused on the ring of id hashes, its accusers not counted,
    /// while the accused is no neighbour here and may be dialled. The
    /// accusers of a member whose links all cross a cut are on the far
    /// side of it (the members after it on the ring, that probe it, among
    /// them), and so are its neighbours: it hears of its suspicion from
    /// no one until a suspicion taken on the accusers' word runs out on
    /// its own side. These few probe it (see [`Node::check_accused`]).
    fn watches_over(&self, u: &MemberUpdate) -> bool {
        let id = u.node.id;
        if self.neighbours.contains_key(&id) || self.dialing_to(id) {
            return false;
        }
        let Some(m) = self.members.get(&id) else {
            return false;
        };
        if m.retry_at > self.now {
            return false;
        }
        let by = u.accuser_id();
        let accuser = |a: Id| by == Some(a) || m.accusers.ids().any(|x| x == a);
        let mut seen = 0;
        for (i, (a, _)) in self.members.before(self.me.id).enumerate() {
            if a == id {
                // Not this node's ring predecessor: it probes that one
                // itself, and its own failed probe is the evidence.
                return i > 0;
            }
            if accuser(a) {
                continue;
            }
            seen += 1;
            if seen >= FAR_WATCHERS {
                return false;
            }
        }
        false
    }

    /// Another accuser of a suspect: the suspicion runs out sooner. True if
    /// it is news (to spread, so others count it too). The accusers kept
    /// are bounded: once they are as many as count, an accuser that
    /// confirms (see `confirming_accusers`) takes the place of one that
    /// does not, so that accusers this node does not count (refuted too
    /// often, or accused themselves) cannot hold the places of those it
    /// does.
    fn confirm(&mut self, id: Id, accuser: Option<Accusation>) -> bool {
        let most = self.cfg.indirect_probes + 1;
        let Some(a) = accuser else {
            return false;
        };
        let Some(m) = self.members.get(&id) else {
            return false;
        };
        if m.accusers.contains(&a.by()) {
            return false;
        }
        let place = if m.accusers.len() < most {
            None
        } else if self.confirms(a.by()) {
            let Some(x) = m.accusers.ids().find(|x| !self.confirms(*x)) else {
                return false;
            };
            Some(x)
        } else {
            return false;
        };
        let Some(m) = self.members.get_mut(&id) else {
            return false;
        };
        match place {
            Some(old) => m.accusers.replace(old, a),
            None => m.accusers.push(a),
        }
        self.arm_suspicion(id);
        true
    }

    /// Sets when a suspect's suspicion runs out: `suspect_timeout` with one
    /// accuser, shrinking with the log of further independent accusers to
    /// `suspect_min` after `indirect_probes` of them (Lifeguard); at once
    /// to `suspect_min` when others already declared it dead while this
    /// node still heard from it. Both stretch with this node's own ill
    /// health: a node whose messages go missing or come late would
    /// otherwise run out of patience before the refutation reaches it.
    pub(super) fn arm_suspicion(&mut self, id: Id) {
        self.note_cut(id);
        self.set_suspicion_end(id, |_| true);
        self.arm_detector();
    }

    /// Sets the end of the suspicion of `id` to what
    /// [`suspicion_end`](Self::suspicion_end) says now, if `take` accepts
    /// it; whether it did. The caller arms the detector.
    pub(super) fn set_suspicion_end(&mut self, id: Id, take: impl FnOnce(Instant) -> bool) -> bool {
        let Some((until, start)) = self
            .members
            .get(&id)
            .map(|m| (self.suspicion_end(m), self.suspicion_start(m)))
        else {
            return false;
        };
        if !take(until) {
            return false;
        }
        if let Some(m) = self.members.get_mut(&id) {
            m.suspect_until = Some(until);
            m.suspect_wait = until - start;
        }
        self.suspects.insert(id, until);
        true
    }

    /// When the suspicion of `m` runs out, as [`arm_suspicion`] says,
    /// with this node's health now.
    ///
    /// [`arm_suspicion`]: Self::arm_suspicion
    pub(super) fn suspicion_end(&self, m: &Member) -> Instant {
        let k = self.cfg.indirect_probes.clamp(1, 16);
        let max = self.stretch(self.cfg.suspect_timeout).as_millis();
        // A death another node declared is its own timing, not this
        // node's: the shortest wait it allows is not stretched by this
        // node's health (a starved node hears it late already).
        let min = if m.heard_dead {
            self.cfg.suspect_min
        } else {
            self.stretch(self.cfg.suspect_min)
        };
        let min = min.as_millis().min(max);
        let c = if m.heard_dead {
            k
        } else {
            self.confirming_accusers(m).saturating_sub(1).min(k)
        };
        let frac = LOG2_MILLI[c + 1] * 1000 / LOG2_MILLI[k + 1];
        let mut wait = max - (max - min) * frac / 1000;
        if self.correlated() || self.refuted_lately(m) {
            // Accusers on one side of a cut confirm one another: no
            // shorter than a lone accusation on a healthy node.
            wait = wait.max(self.cfg.suspect_timeout.as_millis().min(max));
        }
        // The accused must hear of the suspicion and its refutation come
        // back: at least two round trips of a typical link more, which
        // the shortest wait does not allow for on wide-area links (on a
        // LAN, next to nothing).
        // Not for a death another node declared: its wait allowed for
        // that already (and the round trips a node that runs late
        // measures hold its own lateness too).
        self.suspicion_start(m) + Duration::from_millis(wait) + self.round_trips_for(m)
    }

    /// When the suspicion of `m` runs out with the wait it was armed with,
    /// counted from [`suspicion_start`](Self::suspicion_start) (which moves
    /// when this node hears from others again after hearing from no one).
    /// The round trips a suspicion of `m` waits on top of its wait (see
    /// [`suspicion_end`](Self::suspicion_end)): none for a death another
    /// node declared.
    fn round_trips_for(&self, m: &Member) -> Duration {
        if m.heard_dead {
            Duration::ZERO
        } else {
            self.typical_rtt().saturating_mul(2)
        }
    }

    /// No shorter than a lone accusation on a healthy node while
    /// failures look correlated (see [`correlated`](Self::correlated)),
    /// even for a suspicion armed before that showed.
    pub(super) fn resumed_end(&self, m: &Member) -> Instant {
        let mut wait = m.suspect_wait;
        if self.correlated() || self.refuted_lately(m) {
            let far = self.round_trips_for(m);
            let lone = self
                .cfg
                .suspect_timeout
                .min(self.stretch(self.cfg.suspect_timeout));
            wait = wait.max(lone + far);
        }
        self.suspicion_start(m) + wait
    }

    /// When the wait of the suspicion of `m` starts: when it was suspected,
    /// or when this node heard from others again if it heard from no one
    /// since (the refutation of what it suspected meanwhile is only now on
    /// its way).
    fn suspicion_start(&self, m: &Member) -> Instant {
        self.detector
            .heard_again
            .map_or(m.since, |t| t.max(m.since))
    }

    /// `id` refuted what this node suspected of it, or came back from
    /// the dead in the same life: it was most likely on the other side of
    /// a cut, whose side may have declared this side dead meanwhile. For a
    /// suspicion's time, the deaths it tells are taken as suspicions, over
    /// whatever link they come (a new one, or one that outlived the cut).
    /// The table keeps its bound by dropping what ran out, then refusing.
    fn note_back(&mut self, id: Id) {
        let now = self.now;
        if self.back.len() >= MAX_BACK {
            self.back.retain(|_, t| *t > now);
        }
        if self.back.len() < MAX_BACK || self.back.contains_key(&id) {
            self.back.insert(id, now + self.cfg.suspect_timeout);
        }
    }

    /// Suspects `id` on this node's own evidence, and floods it.
    pub(super) fn suspect(&mut self, id: Id, out: &mut Vec<Output>) {
        // A node that runs a heartbeat or more behind hears everyone late:
        // the silence it sees is its own, and several such nodes would
        // confirm each other's accusations into deaths of healthy members.
        // It accuses no one until it catches up (others still find real
        // deaths, and it takes their word).
        if self.runs_late() {
            return;
        }
        let Some(m) = self.members.get(&id).filter(|m| m.in_roster()) else {
            return;
        };
        let mine = Accusation::sign(&self.key, m.key(id), m.version);
        let u = MemberUpdate {
            node: m.key(id),
            addr: m.addr,
            version: m.version,
            state: MemberState::Suspect,
            name: m.name.clone(),
            age_secs: 0,
            accuser: Some(mine),
            proof: m.proof,
        };
        if self.apply_update(&u, false, out) {
            self.stats.suspicions += 1;
            let news = self
                .members
                .get(&id)
                .map_or(u.clone(), |m| m.update(id, self.now));
            // The accusation this node adds, whoever accused first.
            let news = MemberUpdate {
                accuser: Some(mine),
                ..news
            };
            self.flood_updates(vec![news], None, out);
        }
    }

    /// Writes `u` into the table if it supersedes what is there and its
    /// member signed it, emitting roster events. Returns whether the table
    /// changed.
    pub(super) fn apply(&mut self, u: &MemberUpdate, out: &mut Vec<Output>) -> bool {
        let at = self.members.index_of(&u.node.id);
        let stale = at
            .and_then(|i| self.members.get_index(i))
            .is_some_and(|(_, m)| !supersedes(rank(u), m.rank()));
        !stale && self.proven(u) && self.apply_at(at, u, out)
    }

    /// [`apply`](Self::apply) of an entry whose proof was checked already
    /// (a hello's, one taken from this node's own table).
    pub(super) fn apply_proven(&mut self, u: &MemberUpdate, out: &mut Vec<Output>) -> bool {
        let at = self.members.index_of(&u.node.id);
        self.apply_at(at, u, out)
    }

    /// Whether the member that `u` is about signed it: nothing goes in the
    /// table, or is passed on, that the member did not sign (its life,
    /// version, address and name, or its departure). Counted if not.
    pub(super) fn proven(&mut self, u: &MemberUpdate) -> bool {
        let ok = self.authenticity.proven(u) && self.authenticity.attributed(u);
        if !ok {
            self.stats.forged_state += 1;
        }
        ok
    }

    /// Writes `u`, whose proof was checked, with the entry for the member
    /// at index `at` in the table (`None`: there is none).
    fn apply_at(&mut self, at: Option<usize>, u: &MemberUpdate, out: &mut Vec<Output>) -> bool {
        let id = u.node.id;
        let now = self.now;
        // What the new entry keeps of the old one (no clone of its name
        // and accusers: this runs for every entry of every peer list).
        struct Old {
            rank: crate::peers::Rank,
            addr: SocketAddr,
            in_roster: bool,
            heard_dead: bool,
            retry_at: Instant,
            failures: u32,
            out_of_reach_until: Instant,
            refuted_at: Option<Instant>,
            refusals: u8,
            full_until: Instant,
            rtt_ms: u16,
        }
        let old = at
            .and_then(|i| self.members.get_index(i))
            .map(|(_, m)| Old {
                rank: m.rank(),
                addr: m.addr,
                in_roster: m.in_roster(),
                heard_dead: m.heard_dead,
                retry_at: m.retry_at,
                failures: m.failures,
                out_of_reach_until: m.out_of_reach_until,
                refuted_at: (m.incarnation == u.node.incarnation)
                    .then_some(m.refuted_at)
                    .flatten(),
                refusals: m.refusals,
                full_until: m.full_until,
                rtt_ms: m.rtt_ms,
            });
        // An accusation of this life refuted: a suspicion, or a death
        // declared within a suspicion's time (an older one is news from
        // across a cut, where the accuser could not reach the accused).
        let refuting = at.and_then(|i| self.members.get_index(i)).filter(|(_, m)| {
            u.state == MemberState::Alive
                && m.incarnation == u.node.incarnation
                && supersedes(rank(u), m.rank())
                && (m.state == MemberState::Suspect
                    || (m.state == MemberState::Dead && now - m.since < self.cfg.suspect_timeout))
        });
        // This node heard from no one for a silence after the accusation
        // (and hears again now): the silence it took for the accused's was
        // most likely its own.
        let cut_off_since =
            refuting.is_some_and(|(_, m)| self.detector.heard_again.is_some_and(|t| t >= m.since));
        // The member is alive where this node could not reach it (it
        // accused it, failed to dial it since it last reached it, is
        // checking it, or saw the mark of a cut), while this node itself
        // heard from others: a cut between the two, not a death. For a
        // while this node's own failures to reach it start no check (see
        // `out_of_reach`), so a partial cut does not flood an accusation
        // and its refutation round the group at every probe across it.
        let out_of_reach = !cut_off_since
            && refuting.is_some_and(|(id, m)| {
                m.accusers.contains(&self.me.id)
                    || m.failures > 0
                    || self.detector.is_checking(*id)
                    || self.cut_in_sight()
            });
        let refuted: Vec<Id> = refuting
            .map(|(_, m)| {
                // This node's own accusation is not held against the
                // accused then: its word on the members that really died
                // meanwhile still counts.
                m.accusers
                    .ids()
                    .filter(|a| !(cut_off_since && *a == self.me.id))
                    .collect()
            })
            .unwrap_or_default();
        // Any later version of this life is a refutation (a version counts
        // refutations), whether this node held the accusation or not.
        let refuted_now = u.state == MemberState::Alive
            && old
                .as_ref()
                .is_some_and(|m| m.rank.0 == u.node.incarnation && m.rank.1 < u.version);
        let tomb = matches!(u.state, MemberState::Dead | MemberState::Left);
        if let Some(m) = &old {
            if !supersedes(rank(u), m.rank) {
                return false;
            }
        } else if tomb
            && (self.members.len() >= self.cfg.max_members
                || u.age_secs as u64 >= self.cfg.tombstone_ttl.as_millis() / 1000)
        {
            // The death of a stranger is worth a slot only while it is
            // spread, and never another tombstone's slot.
            return false;
        } else if self.members.len() >= self.cfg.max_members
            && !self.members.evict_oldest_tombstone(
                now.saturating_sub(TOMBSTONE_MIN_AGE),
                self.cfg.max_dial_failures,
                |a| self.dialing.contains_key(a),
            )
        {
            self.stats.members_refused += 1;
            return false;
        }
        let was_in = old.as_ref().is_some_and(|m| m.in_roster);
        if u.state == MemberState::Alive
            && old
                .as_ref()
                .is_some_and(|m| m.rank.0 == u.node.incarnation && m.rank.2 != MemberState::Alive)
        {
            self.note_back(id);
        }
        if u.state == MemberState::Suspect || (u.state == MemberState::Dead && was_in) {
            self.alarm();
        }
        // Where it listens is its own word, signed.
        let addr = u.addr;
        let entry = Member {
            name: u.name.clone(),
            addr,
            incarnation: u.node.incarnation,
            version: u.version,
            state: u.state,
            since: if tomb {
                now.saturating_sub(Duration::from_secs(u.age_secs as u64))
            } else {
                now
            },
            suspect_until: None,
            suspect_wait: Duration::ZERO,
            accusers: Accusers::first_of(u.accuser),
            heard_dead: old.as_ref().is_some_and(|m| {
                m.heard_dead && m.rank.0 == u.node.incarnation && m.rank.1 == u.version
            }),
            retry_at: old.as_ref().map_or(now, |m| m.retry_at),
            failures: old.as_ref().map_or(0, |m| m.failures),
            out_of_reach_until: if out_of_reach {
                now + self.cfg.dial_backoff_max
            } else {
                old.as_ref().map_or(now, |m| m.out_of_reach_until)
            },
            refuted_at: if refuted_now {
                Some(now)
            } else {
                old.as_ref().and_then(|m| m.refuted_at)
            },
            refusals: old.as_ref().map_or(0, |m| m.refusals),
            full_until: old.as_ref().map_or(now, |m| m.full_until),
            // The path to the address, whatever life runs there.
            rtt_ms: old
                .as_ref()
                .filter(|m| m.addr == addr)
                .map_or(0, |m| m.rtt_ms),
            bucket: 0,
            print: 0,
            proof: u.proof,
        };
        let is_in = entry.in_roster();
        match at {
            // An eviction above happens only for a new entry: `at` holds.
            Some(i) => self.members.set_index(i, entry),
            None => self.members.set(id, entry),
        }
        let ev = match (was_in, is_in) {
            (true, true) => old
                .as_ref()
                .filter(|m| m.rank.0 < u.node.incarnation)
                .map(|m| Event::PeerRestarted {
                    node: u.node,
                    addr,
                    previous_addr: m.addr,
                    name: u.name.clone(),
                }),
            (false, true) => Some(Event::PeerUp {
                node: u.node,
                addr,
                name: u.name.clone(),
            }),
            (true, false) => Some(Event::PeerDown {
                node: u.node,
                addr,
                name: u.name.clone(),
                reason: if u.state == MemberState::Left {
                    DownReason::Left
                } else {
                    DownReason::Dead
                },
            }),
            _ => None,
        };
        if let Some(ev) = ev {
            out.push(Output::Event(ev));
        }
        for a in refuted {
            self.strike(a);
        }
        true
    }

    /// Takes back a suspicion of `id` held on others' word: the member is
    /// alive again here at the version it signed (its proof is of that
    /// version), as it was before.
    pub(super) fn unsuspect(&mut self, id: Id) {
        self.suspects.remove(&id);
        let Some(i) = self.members.index_of(&id) else {
            return;
        };
        let Some((_, m)) = self
            .members
            .get_index(i)
            .filter(|(_, m)| m.state == MemberState::Suspect)
        else {
            return;
        };
        // Through the table, which keeps the entry's fingerprint and its
        // bucket's hashes with it.
        let alive = Member {
            state: MemberState::Alive,
            accusers: Accusers::default(),
            suspect_until: None,
            suspect_wait: Duration::ZERO,
            heard_dead: false,
            since: self.now,
            ..m.clone()
        };
        self.members.set_index(i, alive);
    }

    /// How many of the accusers of `m` are heard: each counts toward
    /// Lifeguard's confirmations, save those whose accusations kept being
    /// refuted (see [`limited`](Self::limited)).
    pub(super) fn heard_accusers(&self, m: &Member) -> usize {
        m.accusers.ids().filter(|a| !self.limited(*a)).count()
    }

    /// How many of the heard accusers of `m` are independent witnesses:
    /// those this node holds alive. An accuser this node holds suspect or
    /// dead is, on others' word, cut off from them or gone: across a cut
    /// each side accuses the other, and a node that reaches both sides
    /// (the bridge of a partial cut) hears every member of one side
    /// accused by several of the other, themselves accused. Their word
    /// starts a suspicion and keeps it, but shortens no wait (Lifeguard's
    /// confirmations are independent ones).
    pub(super) fn confirming_accusers(&self, m: &Member) -> usize {
        m.accusers.ids().filter(|a| self.confirms(*a)).count()
    }

    /// Whether accuser `a`'s word is an independent confirmation here:
    /// counted (see `limited`) and not held accused itself.
    fn confirms(&self, a: Id) -> bool {
        !self.limited(a) && !self.held_accused(a)
    }

    /// Notes, as `id`'s suspicion is armed, whether accused and accusers
    /// overlap: one of its accusers is held accused here, or (a new
    /// suspect) it accused a member this node suspects. Members that
    /// died do not accuse; across a cut each side accuses the other.
    fn note_cut(&mut self, id: Id) {
        let Some(m) = self.members.get(&id) else {
            return;
        };
        let accused_accuses = m.accusers.ids().any(|a| self.held_accused(a));
        let new = !self.suspects.contains_key(&id);
        let accuser_accused = new
            && self.suspects.keys().any(|s| {
                self.members
                    .get(s)
                    .is_some_and(|x| x.accusers.contains(&id))
            });
        if accused_accuses || accuser_accused {
            self.cut_seen_at = Some(self.now);
        }
    }

    /// Whether this node saw the mark of a cut within a suspicion's time
    /// (`suspect_timeout`): the accused accusing (see `note_cut`), or a
    /// member it holds accused answering its ping (its accusers cannot
    /// reach what this node reaches). Members that died do neither: a
    /// burst of suspicions without it is deaths, with it a cut (Rapid
    /// waits for reports to settle before it removes anyone). Meanwhile
    /// confirmations shorten no suspicion below the wait of a lone one on
    /// a healthy node (`suspect_timeout`): a bridge between the two sides
    /// of a partial cut hears each side accuse the other, each member of
    /// it by several, and the refutation has to find its way round.
    pub(super) fn cut_in_sight(&self) -> bool {
        self.cut_seen_at
            .is_some_and(|t| self.now - t < self.cfg.suspect_timeout)
    }

    /// Whether this node holds suspicions of [`BURST`] members or more at
    /// once, and of one in [`BURST_SHARE`] of the members it knows. Lifeguard
    /// shortens a suspicion with each independent confirmation; so many
    /// at once are not independent: a cut (each side accuses the other,
    /// and the bridge of a partial cut hears one side accuse every member
    /// of the other, each by several) or a correlated failure (Rapid waits
    /// for reports to settle before it removes anyone). The bridge may see
    /// no accused accuse (see `note_cut`) while its links all lead into
    /// one side, which alone accuses. A few crashes at once in a large
    /// group are not a burst: their detection keeps its pace.
    pub(super) fn burst_in_sight(&self) -> bool {
        let n = self.suspects.len();
        n >= BURST && n * BURST_SHARE >= self.members.len()
    }

    /// Whether `m` refuted an accusation in this life within
    /// `dial_backoff_max`: its accusers' failures to reach it were a cut
    /// then, not a death, and a new accusation most likely comes from the
    /// same cut (a partial one that holds, or comes again, as in
    /// `wan-bridges`). Its accusers confirm one another no more than
    /// across a cut in sight: a bridge that took one side's word for it
    /// removed it before its refutation came round.
    pub(super) fn refuted_lately(&self, m: &Member) -> bool {
        m.refuted_at
            .is_some_and(|t| self.now - t < self.cfg.dial_backoff_max)
    }

    /// Whether failures look correlated here: a cut in sight or a burst of
    /// suspicions. Meanwhile confirmations shorten no suspicion below the
    /// wait of a lone one on a healthy node.
    pub(super) fn correlated(&self) -> bool {
        self.cut_in_sight() || self.burst_in_sight()
    }

    /// Whether this node holds `a` suspect or dead in the life it knows.
    fn held_accused(&self, a: Id) -> bool {
        self.members
            .get(&a)
            .is_some_and(|m| m.state != MemberState::Alive)
    }

    /// `a` accused a member that then refuted it: one strike more. The
    /// table keeps its bound by dropping the forgiven, then refusing. This
    /// node holds itself to its own accusations too: the others count the
    /// same refutations, and past the allowance no death comes of its
    /// word alone here either.
    fn strike(&mut self, a: Id) {
        let now = self.now;
        let decay = self.cfg.accuser_forgive;
        if self.strikes.len() >= MAX_STRIKES && !self.strikes.contains_key(&a) {
            self.strikes.retain(|_, s| s.standing(now, decay) > 0);
            if self.strikes.len() >= MAX_STRIKES {
                return;
            }
        }
        let s = self.strikes.entry(a).or_default();
        let before = s.standing(now, decay);
        *s = Strikes {
            count: before.saturating_add(1),
            last: now,
        };
        if before < self.cfg.accuser_allowance && s.count >= self.cfg.accuser_allowance {
            self.stats.accusers_limited += 1;
        }
    }

    /// Whether `a`'s accusations were refuted `Config::accuser_allowance`
    /// times or more, less one per `Config::accuser_forgive` since the
    /// last, until it is forgiven one. Its accusations
    /// still go round as they came (the accused must hear of them to
    /// refute, whoever took them), but here they count for nothing: no
    /// confirmation, no shorter wait, and no death on its word alone
    /// (Lifeguard's confirmations come from others).
    pub(super) fn limited(&self, a: Id) -> bool {
        self.strikes.get(&a).is_some_and(|s| {
            s.standing(self.now, self.cfg.accuser_forgive) >= self.cfg.accuser_allowance
        })
    }

    /// News about this node's own id: an accusation of this life is
    /// refuted by a higher version (the life and its chat stream go on); a
    /// claim of a later life of this id is moved past.
    pub(super) fn about_me(&mut self, u: &MemberUpdate, out: &mut Vec<Output>) {
        let mine = (self.me.incarnation, self.version);
        let theirs = (u.node.incarnation, u.version);
        let accused = u.state != MemberState::Alive && theirs >= mine;
        if u.state != MemberState::Alive && theirs < mine && u.node.incarnation == mine.0 {
            // An accusation this node already refuted is still going round:
            // its refutation may have been lost on the way. Send it out
            // again (at most once per gossip interval).
            if self.reassert_due() {
                self.reasserted = Some(self.now);
                let me = self.my_update();
                self.flood_updates(vec![me], None, out);
            }
            return;
        }
        if !(accused || theirs > mine) {
            return;
        }
        if u.node.incarnation > self.me.incarnation {
            self.me.incarnation = u.node.incarnation + 1;
            self.version = 0;
            self.next_seq = 1;
        } else {
            self.version = u.version + 1;
        }
        self.sign_me();
        self.stats.refutations += 1;
        // An accusation by a member this node cannot reach either is the
        // mark of a cut between them, not of this node's own slowness: only
        // others' accusations count against its health.
        // Otherwise the accusation was false, as only this node knows for
        // sure: its accuser is held to it.
        match u.accuser_id() {
            Some(a) if self.cut_off_from(a) => {}
            Some(a) => {
                self.health_worse();
                self.strike(a);
            }
            None => self.health_worse(),
        }
        out.push(Output::Event(Event::Refuted {
            incarnation: self.me.incarnation,
            version: self.version,
        }));
        let me = self.my_update();
        self.flood_updates(vec![me], None, out);
    }

    /// Whether a refutation may go round again (at most once per gossip
    /// interval).
    fn reassert_due(&self) -> bool {
        self.reasserted
            .is_none_or(|t| self.now - t >= self.cfg.gossip_interval)
    }

    pub(super) fn on_peer_list(
        &mut self,
        conn: ConnId,
        cover: Cover,
        mut members: Vec<MemberUpdate>,
        out: &mut Vec<Output>,
    ) {
        if members.len() > self.cfg.max_peer_list {
            self.stats.peer_list_truncated += (members.len() - self.cfg.max_peer_list) as u64;
            members.truncate(self.cfg.max_peer_list);
        }
        let whole = cover != Cover::Delta;
        // Deaths from a peer back from the other side of a cut may be its
        // side's view of this side: they are suspicions, which the accused
        // can refute, while this node holds the peer suspect or dead in its
        // life, and for a suspicion's time after its refutation here (see
        // `note_back`; later, the age they carry says so: see
        // `merge_update`).
        let doubted = self.conns.get(&conn).and_then(|c| c.peer).is_some_and(|p| {
            self.back.get(&p.id).is_some_and(|t| self.now < *t)
                || self.members.get(&p.id).is_some_and(|m| {
                    m.incarnation == p.incarnation && m.state != MemberState::Alive
                })
        });
        if cover == Cover::Full {
            // A join answer: the table grows once, not entry by entry.
            let more = members.len().saturating_sub(self.members.len());
            self.members.reserve(more);
        }
        let mut news = Vec::new();
        let mut newer = Vec::new();
        // This node's own refutation goes back to the sender unless it is
        // due to go round again anyway (see `about_me`), which reaches the
        // sender too.
        let mut answer_me = !self.reassert_due();
        let (mut arrivals, mut new_arrivals) = (0, 0);
        for u in &members {
            let arrival = !urgent(u);
            arrivals += arrival as usize;
            // An accusation older than what this node knows (the accused
            // refuted it, or another life began): the sender missed the
            // news, and its suspicion would run out into a false death.
            // Tell it back. So too for this node's own life: its
            // refutation may have gone out over links that are gone (a
            // node resumed after a pause refutes what waited on links its
            // peers had closed, and the peers that dial it again repeat the
            // accusation). (A full or bucket list is answered by push-pull
            // below.)
            if !whole && u.state != MemberState::Alive {
                if u.node == self.me {
                    if answer_me && u.version < self.version {
                        answer_me = false;
                        newer.push(self.my_update());
                    }
                } else if let Some(m) = self.members.get(&u.node.id) {
                    if supersedes(m.rank(), rank(u)) && m.in_roster() {
                        newer.push(m.update(u.node.id, self.now));
                    }
                }
            }
            let merged = self.merge_update(u, whole || doubted, out);
            if merged == Merged::No && !arrival {
                self.came_again(u, conn);
            }
            if merged != Merged::No {
                new_arrivals += arrival as usize;
                // Spread it as it came (its accuser counts at every node),
                // or as this node took it (a stale death made a suspicion).
                let now = self.now;
                let took = match merged {
                    Merged::Suspected => self.members.get(&u.node.id),
                    _ => None,
                };
                news.push(match took {
                    Some(m) if m.rank() != rank(u) => m.update(u.node.id, now),
                    // A join answer's arrivals are not news (see below):
                    // not copied only to be dropped.
                    _ if cover == Cover::Full && !urgent(u) => continue,
                    _ => u.clone(),
                });
            }
        }
        // A refutation floods over the neighbour links; an accusation that
        // came over another connection (a ring link, a probe) is answered
        // over it too: it may be the only one that still crosses a cut.
        let off_links = !self.neighbours.values().any(|c| *c == conn);
        let accused_here = members.iter().any(|u| {
            u.node == self.me && u.state != MemberState::Alive && u.version < self.version
        });
        if off_links && accused_here && !newer.iter().any(|u| u.node == self.me) {
            newer.push(self.my_update());
        }
        if whole && self.joined {
            // Push-pull: tell the sender what it lacks or holds older
            // within what the list covers. A full view may come in several
            // frames, each spanning an id range; a bucket list covers
            // its buckets.
            let theirs: BTreeMap<Id, crate::peers::Rank> =
                members.iter().map(|u| (u.node.id, rank(u))).collect();
            let range = match (theirs.keys().next(), theirs.keys().next_back()) {
                (Some(lo), Some(hi)) => *lo..=*hi,
                _ => self.me.id..=self.me.id,
            };
            let covered = |id: &Id| match cover {
                Cover::Buckets(mask) => mask & (1 << crate::peers::bucket_of(*id)) != 0,
                _ => range.contains(id),
            };
            let lacks = |id: &Id, mine: crate::peers::Rank| {
                covered(id) && theirs.get(id).is_none_or(|t| supersedes(mine, *t))
            };
            let now = self.now;
            let spread = self.spread_cutoff();
            let mut back: Vec<MemberUpdate> = self
                .members
                .iter()
                .filter(|(a, m)| m.spread(spread) && lacks(a, m.rank()))
                .map(|(a, m)| m.update(*a, now))
                .collect();
            if lacks(
                &self.me.id,
                (self.me.incarnation, self.version, MemberState::Alive),
            ) {
                back.push(self.my_update());
            }
            self.send_peer_list(conn, false, back, out);
        }
        // Arrivals ride the broadcast tree (see `flood_updates`): a batch
        // that came over a tree link mostly again takes the link off the
        // tree (the news it brought came another way as well); one that
        // only repair brought puts the link it came over back on the tree
        // (Plumtree). A link that is being pruned may still carry a few.
        let (lazy, probe) = self
            .conns
            .get(&conn)
            .map_or((false, false), |c| (c.lazy, c.probe));
        if probe {
            // A ring link is not part of the broadcast tree.
        } else if cover == Cover::Delta
            && !self.cfg.rooted_tree
            && arrivals > 0
            && new_arrivals * 2 <= arrivals
            && !lazy
            && self.tree_links() > MIN_TREE_LINKS
        {
            self.prune(conn, out);
        } else if new_arrivals > 0 && lazy && matches!(cover, Cover::Buckets(_)) {
            self.graft(conn, out);
        }
        if cover == Cover::Full && self.is_seed_link(conn) {
            // Only a seed's answer ends the join: another newcomer's view
            // may be an island.
            self.joined = true;
            self.member = true;
            for c in std::mem::take(&mut self.pending_joins) {
                if self.conns.get(&c).is_some_and(|c| c.peer.is_some()) {
                    self.answer_join(c, out);
                }
            }
        }
        if !newer.is_empty() {
            self.send_peer_list(conn, false, newer, out);
        }
        if cover == Cover::Full {
            // A join answer is the group's view: its arrivals are news to
            // this newcomer only, not to the group (they are on their way
            // over the tree already). Urgent news still goes on.
            news.retain(urgent);
        }
        if !news.is_empty() {
            self.flood_updates(news, Some(conn), out);
        }
        self.maintain(out);
    }

    /// A member dialled this node (a `Hello`, not a join) while it had
    /// neighbours already (`degree` in its hello): it is on the broadcast
    /// tree, or was put on it by its seed, so the new link starts off the
    /// tree. Arrivals and chats already reach it, and a second tree path
    /// would bring each of them twice until a duplicate pruned it
    /// (Plumtree grows the tree only where something is missing: a graft).
    /// A newcomer's link to its seed, which brings what the join answer
    /// did not, a link of an isolated node and this node's only link stay
    /// on. The end that
    /// accepted decides, so that a link whose handshake did not complete
    /// at that end carries nothing extra.
    pub(super) fn off_tree_if_covered(
        &mut self,
        conn: ConnId,
        dialed_or_join: bool,
        degree: u16,
        out: &mut Vec<Output>,
    ) {
        // This node keeps a tree link of its own too.
        if dialed_or_join || degree == 0 || !self.joined || self.tree_links() < 2 {
            return;
        }
        self.prune(conn, out);
    }

    /// A newcomer asks this node to let it in. A node still joining
    /// itself holds only what its seed's answer has not brought yet: its
    /// answer would leave the newcomer to learn the rest of the group by
    /// repair. So it answers once its own join completes; a newcomer that
    /// asks again (its own retry, after `dial_backoff`) is answered at
    /// once, so that newcomers that only know one another still get in.
    pub(super) fn defer_join(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        let room = self.cfg.max_connections + self.cfg.max_handshaking;
        if self.joined || self.pending_joins.len() >= room {
            self.answer_join(conn, out);
            return;
        }
        self.pending_joins.retain(|c| self.conns.contains_key(c));
        if !self.pending_joins.contains(&conn) {
            self.pending_joins.push(conn);
        }
    }

    /// A neighbour's digest by bucket (its answer to a differing
    /// [`Sync`]): send it this node's entries of the buckets that differ.
    pub(super) fn on_buckets(&mut self, conn: ConnId, theirs: Vec<u32>, out: &mut Vec<Output>) {
        if theirs.len() != crate::peers::BUCKETS {
            self.stats.unexpected += 1;
            return;
        }
        // The peer started a roster repair over this link: neither end
        // starts another over it within the cooldown, and this node's
        // syncs go to the other links meanwhile (`sync_neighbour`).
        let now = self.now;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer_repair = Some(now);
        }
        let mine = self.roster_buckets();
        let mask = mine
            .iter()
            .zip(&theirs)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .fold(0u64, |m, (i, _)| m | 1 << i);
        if mask == 0 {
            return;
        }
        // Fingerprints of whole buckets per frame, so that each frame says
        // what it covers.
        let mut by_bucket: Vec<Vec<u32>> = vec![Vec::new(); crate::peers::BUCKETS];
        self.each_spread(mask, |bucket, e| {
            by_bucket[bucket].push(self.print_spread(e));
        });
        let budget = self.frame_budget() / PRINT_SIZE;
        let mut frame: (u64, Vec<u32>) = (0, Vec::new());
        for (i, prints) in by_bucket.into_iter().enumerate() {
            if mask & (1 << i) == 0 {
                continue;
            }
            if frame.0 != 0 && frame.1.len() + prints.len() > budget {
                let (buckets, prints) = std::mem::take(&mut frame);
                out.push(Output::Send {
                    conn,
                    msg: Message::Prints { buckets, prints },
                });
            }
            frame.0 |= 1 << i;
            frame.1.extend(prints);
        }
        if frame.0 != 0 {
            out.push(Output::Send {
                conn,
                msg: Message::Prints {
                    buckets: frame.0,
                    prints: frame.1,
                },
            });
        }
    }

    /// Calls `f` with every entry this node spreads (itself last) in the
    /// buckets of `mask`, and its bucket.
    fn each_spread<'a>(&'a self, mask: u64, mut f: impl FnMut(usize, Spread<'a>)) {
        let spread = self.spread_cutoff();
        for (a, m) in self.members.iter() {
            if !m.spread(spread) {
                continue;
            }
            let bucket = m.bucket as usize;
            if mask & (1 << bucket) != 0 {
                f(bucket, Spread::Member(*a, m));
            }
        }
        let bucket = crate::peers::bucket_of(self.me.id);
        if mask & (1 << bucket) != 0 {
            f(bucket, Spread::Me);
        }
    }

    /// The fingerprint of an entry this node spreads ([`print_of`] its
    /// life, version and state).
    fn print_spread(&self, e: Spread) -> u32 {
        match e {
            Spread::Member(a, m) => {
                debug_assert_eq!(m.print, print_of(m.key(a), m.version, m.state));
                m.print
            }
            Spread::Me => print_of(self.me, self.version, MemberState::Alive),
        }
    }

    /// An entry this node spreads, as it goes on the wire.
    fn spread_update(&self, e: Spread) -> MemberUpdate {
        match e {
            Spread::Member(a, m) => m.update(a, self.now),
            Spread::Me => self.my_update(),
        }
    }

    /// A neighbour's fingerprints of its entries in some buckets: send it
    /// the entries of those buckets it lacks (or holds in another state),
    /// and ask for those this node lacks.
    pub(super) fn on_prints(
        &mut self,
        conn: ConnId,
        mask: u64,
        prints: Vec<u32>,
        out: &mut Vec<Output>,
    ) {
        if prints.len() > self.cfg.max_members + 1 {
            self.stats.unexpected += 1;
            return;
        }
        let mut theirs = prints;
        theirs.sort_unstable();
        theirs.dedup();
        let mut have = Vec::new();
        let mut give = Vec::new();
        self.each_spread(mask, |_, e| {
            let p = self.print_spread(e);
            have.push(p);
            if theirs.binary_search(&p).is_err() {
                give.push(self.spread_update(e));
            }
        });
        self.send_repair(conn, give, out);
        have.sort_unstable();
        let want: Vec<u32> = theirs
            .into_iter()
            .filter(|p| have.binary_search(p).is_err())
            .collect();
        if !want.is_empty() {
            out.push(Output::Send {
                conn,
                msg: Message::Want(want),
            });
        }
    }

    /// A neighbour asks for the entries with these fingerprints.
    pub(super) fn on_want(&mut self, conn: ConnId, want: Vec<u32>, out: &mut Vec<Output>) {
        if want.len() > self.cfg.max_members + 1 {
            self.stats.unexpected += 1;
            return;
        }
        let mut want = want;
        want.sort_unstable();
        let mut give = Vec::new();
        self.each_spread(u64::MAX, |_, e| {
            if want.binary_search(&self.print_spread(e)).is_ok() {
                give.push(self.spread_update(e));
            }
        });
        self.send_repair(conn, give, out);
    }

    /// Entries found missing by repair: they may be stale news from across
    /// a healed split (see `apply_update`), so they go as a
    /// [`Message::RosterPart`] that covers no bucket.
    fn send_repair(&self, conn: ConnId, give: Vec<MemberUpdate>, out: &mut Vec<Output>) {
        for members in batches(give, update_size, self.frame_budget()) {
            out.push(Output::Send {
                conn,
                msg: Message::RosterPart {
                    buckets: 0,
                    members,
                },
            });
        }
    }

    /// Sends membership changes to every neighbour but `except`, and queues
    /// them for the next gossip rounds.
    pub(super) fn flood_updates(
        &mut self,
        updates: Vec<MemberUpdate>,
        except: Option<ConnId>,
        out: &mut Vec<Output>,
    ) {
        // Arrivals are many (a whole group starting): they go over the
        // broadcast tree only, and repair (`Sync`, then the differing
        // buckets) finds any that a broken tree missed. Accusations and
        // refutations are few and urgent: they go over every link, and
        // ride the gossip rounds as well.
        let (urgent_news, arrivals): (Vec<_>, Vec<_>) = updates.into_iter().partition(urgent);
        for u in &urgent_news {
            self.recent
                .push(u.clone(), self.cfg.gossip_retransmits, MAX_RECENT);
        }
        // A refutation goes at once, and what waits with it: it races its
        // accusers' suspicion timeouts.
        let refuted = urgent_news.iter().any(|u| u.state == MemberState::Alive);
        for u in urgent_news {
            let have: Vec<ConnId> = except.into_iter().collect();
            match self.urgent.iter_mut().find(|(q, _)| q.node.id == u.node.id) {
                Some(q) if supersedes(rank(&u), rank(&q.0)) => *q = (u, have),
                Some(_) => {}
                None => self.urgent.push((u, have)),
            }
        }
        let due = self.urgent_due();
        if !self.urgent.is_empty() {
            if refuted || self.now >= due || self.urgent.len() >= MAX_URGENT {
                self.flush_urgent(out);
            } else {
                self.timers.arm(Timer::Flush, due);
            }
        }
        if arrivals.is_empty() {
            return;
        }
        self.arrivals
            .extend(arrivals.into_iter().map(|u| (u, except)));
        if self.arrivals.len() >= MAX_ARRIVALS {
            self.flush_arrivals(out);
        } else if self.timers.due(Timer::Flush) > self.now + ARRIVAL_BATCH {
            // (A flush due within the shortest batch goes first anyway:
            // the typical round trip, a lookup per neighbour, is not
            // worked out again for every list that comes in.)
            let batch = Duration::from_millis(self.typical_rtt().as_millis() / ARRIVAL_RTT_SHARE)
                .clamp(ARRIVAL_BATCH, ARRIVAL_BATCH_MAX);
            self.timers.arm(Timer::Flush, self.now + batch);
        }
    }

    /// When urgent news may go out next: a pace after the last went.
    pub(super) fn urgent_due(&self) -> Instant {
        self.urgent_sent + URGENT_PACE
    }

    /// Sends the urgent news waiting over every neighbour link, each link
    /// what did not come over it.
    pub(super) fn flush_urgent(&mut self, out: &mut Vec<Output>) {
        let urgent = std::mem::take(&mut self.urgent);
        if urgent.is_empty() {
            return;
        }
        self.urgent_sent = self.now;
        for &conn in self.neighbours.values() {
            let list: Vec<MemberUpdate> = urgent
                .iter()
                .filter(|(_, have)| !have.contains(&conn))
                .map(|(u, _)| u.clone())
                .collect();
            self.send_peer_list(conn, false, list, out);
        }
    }

    /// Urgent news `u` came again over `conn`: if it waits to go out, not
    /// over that link.
    fn came_again(&mut self, u: &MemberUpdate, conn: ConnId) {
        if let Some((_, have)) = self
            .urgent
            .iter_mut()
            .find(|(q, _)| q.node.id == u.node.id && rank(q) == rank(u))
        {
            if !have.contains(&conn) {
                have.push(conn);
            }
        }
    }

    /// Sends the batched arrivals over the tree links (every link when
    /// pruning is off), each link all but those that came over it.
    pub(super) fn flush_arrivals(&mut self, out: &mut Vec<Output>) {
        let arrivals = std::mem::take(&mut self.arrivals);
        if arrivals.is_empty() {
            return;
        }
        let tree_only = self.cfg.prune_duplicates;
        for &conn in self.neighbours.values() {
            if tree_only && self.conns.get(&conn).is_some_and(|c| c.lazy) {
                continue;
            }
            let list: Vec<MemberUpdate> = arrivals
                .iter()
                .filter(|(_, from)| *from != Some(conn))
                .map(|(u, _)| u.clone())
                .collect();
            self.send_peer_list(conn, false, list, out);
        }
    }

    /// Sends `msg` over every neighbour link but `except`.
    pub(super) fn broadcast(&self, msg: &Message, except: Option<ConnId>, out: &mut Vec<Output>) {
        for &conn in self.neighbours.values() {
            if Some(conn) != except {
                out.push(Output::Send {
                    conn,
                    msg: msg.clone(),
                });
            }
        }
    }

    /// Tombstones set before this are no longer spread (they are only kept
    /// for retries).
    pub(super) fn spread_cutoff(&self) -> Instant {
        self.now.saturating_sub(self.cfg.tombstone_ttl)
    }

    /// Declares a suspect dead, as of `age_secs` ago (0: now).
    pub(super) fn declare_dead(&mut self, key: NodeKey, age_secs: u32, out: &mut Vec<Output>) {
        let u = self.members.get(&key.id).map(|m| MemberUpdate {
            node: key,
            addr: m.addr,
            version: m.version,
            state: MemberState::Dead,
            name: m.name.clone(),
            age_secs,
            accuser: Some(Accusation::sign(&self.key, key, m.version)),
            proof: m.proof,
        });
        if let Some(u) = u {
            if self.apply_proven(&u, out) {
                self.stats.deaths_detected += 1;
                self.flood_updates(vec![u], None, out);
            }
        }
    }

    pub(super) fn on_leave(&mut self, conn: ConnId, u: MemberUpdate, out: &mut Vec<Output>) {
        let peer = self.conns.get(&conn).and_then(|c| c.peer);
        if peer.map(|p| p.id) != Some(u.node.id) || u.state != MemberState::Left {
            // Only a node itself may say goodbye on its own connection.
            self.stats.unexpected += 1;
            return;
        }
        self.close(conn, out);
        let u = MemberUpdate {
            age_secs: 0,
            accuser: None,
            ..u
        };
        if self.apply(&u, out) {
            self.flood_updates(vec![u], None, out);
        }
    }

    pub(super) fn leave(&mut self, out: &mut Vec<Output>) {
        // Every connection, handshaken or not: a peer that already took our
        // hello counts us as up even if its hello has not reached us yet.
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        let gone = MemberUpdate {
            state: MemberState::Left,
            proof: Proof::sign(
                &self.key,
                self.me,
                self.version,
                self.addr,
                &self.name,
                true,
            ),
            ..self.my_update()
        };
        for c in conns {
            out.push(Output::Send {
                conn: c,
                msg: Message::Leave(Box::new(gone.clone())),
            });
            self.close(c, out);
        }
        self.left = true;
    }
}
