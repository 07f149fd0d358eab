//! Timers: heartbeats and failure detection, gossip rounds, sync probes,
//! keeping the neighbour count up, reconnecting splits, and clean-up.

use super::*;

impl Node {
    // ---- timers ------------------------------------------------------

    pub(super) fn on_timeout(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        if now - self.last_tick > self.cfg.ping_interval.saturating_mul(2) {
            // This node was frozen (paused, starved, suspended): the silence
            // it sees is its own. Give every neighbour a fresh window rather
            // than accusing them all.
            for c in self.conns.values_mut() {
                c.last_heard = c.last_heard.max(now);
            }
        }
        self.last_tick = now;
        self.graft_missing(out);
        if now >= self.next_ping {
            self.next_ping = now + self.cfg.ping_interval;
            self.heartbeat(out);
            self.expire_gaps(out);
            self.maintain(out);
            self.probe_members(out);
        }
        if now >= self.next_gossip {
            self.next_gossip = now + self.cfg.gossip_interval;
            self.gossip(out);
        }
        if now >= self.next_sync {
            self.next_sync = now + self.cfg.sync_interval;
            if let Some(conn) = self.random_neighbour() {
                out.push(Output::Send {
                    conn,
                    msg: Message::Sync(Sync {
                        members_hash: self.roster_hash(),
                        chat_hash: self.chat_hash(),
                    }),
                });
            }
        }
        if now >= self.next_reconnect {
            self.next_reconnect = now + self.cfg.reconnect_interval;
            self.reconnect(out);
        }
        if now >= self.next_gc {
            self.next_gc = now + Duration::from_secs(60);
            self.gc();
        }
    }

    pub(super) fn heartbeat(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        let dead_after = self.cfg.dead_after();
        let mut dead = Vec::new();
        let mut stale = Vec::new();
        for (&id, c) in &self.conns {
            match c.peer {
                Some(p) if now - c.last_heard >= dead_after => dead.push((id, p)),
                Some(_) => {}
                None if now - c.opened >= self.cfg.handshake_timeout => stale.push(id),
                None => {}
            }
        }
        for id in stale {
            self.stats.handshake_timeouts += 1;
            self.close(id, out);
        }
        for (id, peer) in dead {
            // The link's own life, or a later one the same process moved to
            // by refuting (same link): either way it is this node's link.
            let linked = self.neighbours.get(&peer.addr) == Some(&id);
            self.close(id, out);
            let current = self
                .members
                .get(&peer.addr)
                .filter(|m| {
                    m.in_roster()
                        && (m.incarnation == peer.incarnation
                            || (linked && m.incarnation > peer.incarnation))
                })
                .map(|m| m.key(peer.addr));
            if let Some(key) = current {
                self.declare_dead(key, out);
            }
        }
        // The dialling side pings, the other answers: both hear from each
        // other once per interval, at two messages per connection. It pings
        // while still waiting for the answer to its hello too, so that a
        // lost answer does not make it look dead to the other side.
        self.ping_nonce = self.ping_nonce.wrapping_add(1);
        for (&conn, c) in &self.conns {
            if c.dialed.is_some() {
                out.push(Output::Send {
                    conn,
                    msg: Message::Ping(self.ping_nonce),
                });
            }
        }
        // Suspicions that nobody refuted in time become deaths.
        let expired: Vec<SocketAddr> = self
            .suspects
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(a, _)| *a)
            .collect();
        for addr in expired {
            self.suspects.remove(&addr);
            let still = self
                .members
                .get(&addr)
                .filter(|m| {
                    m.state == MemberState::Suspect && m.suspect_until.is_some_and(|t| t <= now)
                })
                .map(|m| m.key(addr));
            if let Some(key) = still {
                self.declare_dead(key, out);
            }
        }
        // Dials the driver never answered.
        let limit = self.cfg.handshake_timeout.saturating_mul(2);
        let lost: Vec<SocketAddr> = self
            .dialing
            .iter()
            .filter(|(_, d)| now - d.since >= limit)
            .map(|(a, _)| *a)
            .collect();
        for a in lost {
            self.on_connect_failed(a, out);
        }
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

    pub(super) fn gossip(&mut self, out: &mut Vec<Output>) {
        if self.recent.is_empty() || self.neighbours.is_empty() {
            return;
        }
        // Oldest first, a bounded batch per round, so that a burst of
        // changes costs a steady trickle rather than one huge list.
        let updates = self.recent.round(GOSSIP_BATCH);
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
            // other links up (they may be newcomers as lost as this node).
            let due: Vec<SocketAddr> = self
                .seeds
                .iter()
                .filter(|(a, at)| **at <= self.now && !self.neighbours.contains_key(a))
                .map(|(a, _)| *a)
                .collect();
            let retry = self.now + self.cfg.dial_backoff;
            for a in due {
                self.seeds.insert(a, retry);
                self.dial(a, false, out);
            }
            // Linked to a seed but no answer yet: ask again.
            let asked: Vec<(SocketAddr, ConnId)> = self
                .seeds
                .iter()
                .filter(|(_, at)| **at <= self.now)
                .filter_map(|(a, _)| self.neighbours.get(a).map(|c| (*a, *c)))
                .collect();
            for (a, conn) in asked {
                self.seeds.insert(a, retry);
                let hello = self.hello();
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
                .filter(|c| c.peer.is_none() && c.dialed.is_some())
                .count();
        let have = self.neighbours.len() + outbound_pending;
        if have >= self.cfg.max_connections || self.now < self.next_dial {
            return;
        }
        let mut want = (self.cfg.max_connections - have).min(2);
        for _ in 0..SAMPLE_TRIES {
            if want == 0 || self.members.len() == 0 {
                break;
            }
            let i = self.below(self.members.len());
            let Some((addr, m)) = self.members.get_index(i) else {
                break;
            };
            let addr = *addr;
            if m.state != MemberState::Alive
                || m.retry_at > self.now
                || self.neighbours.contains_key(&addr)
                || self.dialing.contains_key(&addr)
            {
                continue;
            }
            self.dial(addr, false, out);
            want -= 1;
        }
        if self.neighbours.len() >= self.cfg.max_connections / 2 {
            // Well connected: look for the last slots at a gentle pace.
            self.next_dial = self.now + self.cfg.reconnect_interval;
        }
        if self.neighbours.is_empty() && self.dialing.is_empty() {
            let due: Vec<SocketAddr> = self
                .seeds
                .iter()
                .filter(|(_, at)| **at <= self.now)
                .map(|(a, _)| *a)
                .collect();
            for a in due {
                self.dial(a, false, out);
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
            let Some((addr, m)) = self.members.get_index(i) else {
                return;
            };
            let addr = *addr;
            if !m.in_roster()
                || m.retry_at > self.now
                || self.neighbours.contains_key(&addr)
                || self.dialing.contains_key(&addr)
            {
                continue;
            }
            self.start_dial(addr, false, true, out);
            room -= 1;
        }
    }

    /// Tries one random dead member: the other side of a healed split, or a
    /// node that came back.
    pub(super) fn reconnect(&mut self, out: &mut Vec<Output>) {
        for _ in 0..SAMPLE_TRIES {
            if self.members.len() == 0 {
                return;
            }
            let i = self.below(self.members.len());
            let Some((addr, m)) = self.members.get_index(i) else {
                return;
            };
            let addr = *addr;
            if m.state == MemberState::Dead
                && m.retry_at <= self.now
                && !self.dialing.contains_key(&addr)
                && !self.neighbours.contains_key(&addr)
            {
                self.dial(addr, false, out);
                return;
            }
        }
    }

    pub(super) fn gc(&mut self) {
        let now = self.now;
        if let Some(cutoff) = now
            .as_millis()
            .checked_sub(self.cfg.tombstone_ttl.as_millis())
        {
            let cutoff = Instant::from_millis(cutoff);
            self.members.forget_before(cutoff);
            let members = &self.members;
            let me = self.me;
            self.streams.forget_idle(cutoff, |k| {
                *k == me
                    || members
                        .get(&k.addr)
                        .is_some_and(|m| m.in_roster() && m.incarnation == k.incarnation)
            });
        }
        self.store.expire(now);
    }
}
