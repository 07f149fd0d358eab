//! Membership: merging gossip by precedence, refuting accusations,
//! flooding changes, deaths and leaves.

use super::*;

impl Node {
    // ---- membership --------------------------------------------------

    /// Merges one update; true if it changed the table (news to spread).
    /// `stale_risk` marks updates from a full list, which may carry deaths
    /// from across a healed split: those become suspicions.
    pub(super) fn apply_update(
        &mut self,
        u: &MemberUpdate,
        stale_risk: bool,
        out: &mut Vec<Output>,
    ) -> bool {
        let addr = u.node.addr;
        if u.node.incarnation >= MAX_INCARNATION || u.name.len() > MAX_NAME_LEN {
            self.stats.unexpected += 1;
            return false;
        }
        if addr == self.me.addr {
            self.about_me(u, out);
            return false;
        }
        let mut u = u.clone();
        if let Some(m) = self.members.get(&addr) {
            if !supersedes((u.node.incarnation, u.state), (m.incarnation, m.state)) {
                return false;
            }
            let same_life = m.incarnation == u.node.incarnation;
            if same_life
                && m.in_roster()
                && matches!(u.state, MemberState::Dead | MemberState::Suspect)
            {
                // First-hand evidence beats hearsay: a neighbour we heard
                // from within a heartbeat is alive. Pass the accusation to it.
                if let Some(&c) = self.neighbours.get(&addr) {
                    let fresh = self.conns.get(&c).is_some_and(|c| {
                        self.now - c.last_heard < self.cfg.ping_interval.saturating_mul(2)
                    });
                    if fresh {
                        out.push(Output::Send {
                            conn: c,
                            msg: Message::PeerList {
                                full: false,
                                members: vec![u],
                            },
                        });
                        return false;
                    }
                }
                if stale_risk {
                    if m.state == MemberState::Suspect {
                        return false;
                    }
                    u.state = MemberState::Suspect;
                }
            }
        }
        self.apply(&u, out);
        let changed = self
            .members
            .get(&addr)
            .is_some_and(|m| m.incarnation == u.node.incarnation && m.state == u.state);
        if changed {
            if let (MemberState::Suspect, Some(m)) = (u.state, self.members.get_mut(&addr)) {
                let until = self.now + self.cfg.suspect_timeout;
                m.suspect_until = Some(until);
                self.suspects.insert(addr, until);
            }
        }
        changed
    }

    /// Writes `u` into the table if it supersedes what is there, emitting
    /// roster events. Returns whether the table changed.
    pub(super) fn apply(&mut self, u: &MemberUpdate, out: &mut Vec<Output>) -> bool {
        let addr = u.node.addr;
        let now = self.now;
        let old = self.members.get(&addr).cloned();
        if let Some(m) = &old {
            if !supersedes((u.node.incarnation, u.state), (m.incarnation, m.state)) {
                return false;
            }
        } else if self.members.len() >= self.cfg.max_members
            && !self.members.evict_oldest_tombstone(
                now.saturating_sub(TOMBSTONE_MIN_AGE),
                self.cfg.max_dial_failures,
            )
        {
            self.stats.members_refused += 1;
            return false;
        }
        let was_in = old.as_ref().is_some_and(Member::in_roster);
        let entry = Member {
            name: u.name.clone(),
            incarnation: u.node.incarnation,
            state: u.state,
            since: now,
            suspect_until: None,
            retry_at: old.as_ref().map_or(now, |m| m.retry_at),
            failures: old.as_ref().map_or(0, |m| m.failures),
        };
        let is_in = entry.in_roster();
        self.members.set(addr, entry);
        let ev = match (was_in, is_in) {
            (false, true) => Some(Event::PeerUp {
                node: u.node,
                name: u.name.clone(),
            }),
            (true, false) => Some(Event::PeerDown {
                node: u.node,
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
        true
    }

    pub(super) fn about_me(&mut self, u: &MemberUpdate, out: &mut Vec<Output>) {
        let accused = u.state != MemberState::Alive && u.node.incarnation >= self.me.incarnation;
        if !(accused || u.node.incarnation > self.me.incarnation) {
            return;
        }
        self.me.incarnation = u.node.incarnation + 1;
        self.next_seq = 1;
        self.stats.refutations += 1;
        out.push(Output::Event(Event::Refuted {
            incarnation: self.me.incarnation,
        }));
        let me = MemberUpdate {
            node: self.me,
            state: MemberState::Alive,
            name: self.name.clone(),
        };
        self.flood_updates(vec![me], None, out);
    }

    pub(super) fn on_peer_list(
        &mut self,
        conn: ConnId,
        full: bool,
        mut members: Vec<MemberUpdate>,
        out: &mut Vec<Output>,
    ) {
        if members.len() > self.cfg.max_peer_list {
            self.stats.peer_list_truncated += (members.len() - self.cfg.max_peer_list) as u64;
            members.truncate(self.cfg.max_peer_list);
        }
        let mut news = Vec::new();
        for u in &members {
            if self.apply_update(u, full, out) {
                news.push(
                    self.members
                        .get(&u.node.addr)
                        .map_or(u.clone(), |m| m.update(u.node.addr)),
                );
            }
        }
        if full && self.joined {
            // Slow repair: tell the sender what it lacks or holds older.
            // A full view may come in several frames, each covering an
            // address range: compare only within this one's range.
            let theirs: BTreeMap<SocketAddr, (u64, MemberState)> = members
                .iter()
                .map(|u| (u.node.addr, (u.node.incarnation, u.state)))
                .collect();
            let range = match (theirs.keys().next(), theirs.keys().next_back()) {
                (Some(lo), Some(hi)) => *lo..=*hi,
                _ => self.me.addr..=self.me.addr,
            };
            let lacks = |addr: &SocketAddr, mine: (u64, MemberState)| {
                range.contains(addr) && theirs.get(addr).is_none_or(|t| supersedes(mine, *t))
            };
            let mut back: Vec<MemberUpdate> = self
                .members
                .iter()
                .filter(|(a, m)| lacks(a, (m.incarnation, m.state)))
                .map(|(a, m)| m.update(*a))
                .collect();
            if lacks(&self.me.addr, (self.me.incarnation, MemberState::Alive)) {
                back.push(MemberUpdate {
                    node: self.me,
                    state: MemberState::Alive,
                    name: self.name.clone(),
                });
            }
            self.send_peer_list(conn, false, back, out);
        }
        if full && self.is_seed_link(conn) {
            // Only a seed's answer ends the join: another newcomer's view
            // may be an island.
            self.joined = true;
        }
        if !news.is_empty() {
            self.flood_updates(news, Some(conn), out);
        }
        self.maintain(out);
    }

    /// Sends membership changes to every neighbour but `except`, and queues
    /// them for the next gossip rounds.
    pub(super) fn flood_updates(
        &mut self,
        updates: Vec<MemberUpdate>,
        except: Option<ConnId>,
        out: &mut Vec<Output>,
    ) {
        for u in &updates {
            self.recent
                .push(u.clone(), self.cfg.gossip_retransmits, MAX_RECENT);
        }
        for members in batches(updates, update_size, self.frame_budget()) {
            self.broadcast(
                &Message::PeerList {
                    full: false,
                    members,
                },
                except,
                out,
            );
        }
    }

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

    pub(super) fn declare_dead(&mut self, key: NodeKey, out: &mut Vec<Output>) {
        let u = self.members.get(&key.addr).map(|m| MemberUpdate {
            node: key,
            state: MemberState::Dead,
            name: m.name.clone(),
        });
        if let Some(u) = u {
            if self.apply(&u, out) {
                self.stats.deaths_detected += 1;
                self.flood_updates(vec![u], None, out);
            }
        }
    }

    pub(super) fn on_leave(&mut self, conn: ConnId, key: NodeKey, out: &mut Vec<Output>) {
        let peer = self.conns.get(&conn).and_then(|c| c.peer);
        if peer.map(|p| p.addr) != Some(key.addr) {
            // Only a node itself may say goodbye on its own connection.
            self.stats.unexpected += 1;
            return;
        }
        self.close(conn, out);
        let name = self
            .members
            .get(&key.addr)
            .map_or_else(|| Arc::from(""), |m| m.name.clone());
        let u = MemberUpdate {
            node: key,
            state: MemberState::Left,
            name,
        };
        if self.apply(&u, out) {
            self.flood_updates(vec![u], None, out);
        }
    }

    pub(super) fn leave(&mut self, out: &mut Vec<Output>) {
        // Every connection, handshaken or not: a peer that already took our
        // hello counts us as up even if its hello has not reached us yet.
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            out.push(Output::Send {
                conn: c,
                msg: Message::Leave(self.me),
            });
            self.close(c, out);
        }
        self.left = true;
    }
}
