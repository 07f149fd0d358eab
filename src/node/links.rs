//! Connections: dialling, handshakes, one link per pair, slots, and the
//! answer to a newcomer's join.

use super::*;

impl Node {
    // ---- connections -------------------------------------------------

    pub(super) fn hello(&mut self) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            node: self.me,
            name: self.name.clone(),
            degree: self.neighbours.len() as u16,
            members_hash: self.roster_hash(),
            chat_hash: self.chat_hash(),
        }
    }

    pub(super) fn dial(&mut self, addr: SocketAddr, verify: bool, out: &mut Vec<Output>) {
        if let Some(d) = self.dialing.get_mut(&addr) {
            // The dial in flight now serves this purpose too.
            d.verify |= verify;
            d.probe = false;
            return;
        }
        self.start_dial(addr, verify, false, out);
    }

    /// Asks the driver to dial `addr`, which has no dial in flight.
    pub(super) fn start_dial(
        &mut self,
        addr: SocketAddr,
        verify: bool,
        probe: bool,
        out: &mut Vec<Output>,
    ) {
        self.dialing.insert(
            addr,
            Dial {
                since: self.now,
                verify,
                probe,
            },
        );
        out.push(Output::Connect { addr });
    }

    pub(super) fn close(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        if let Some(c) = self.conns.remove(&conn) {
            out.push(Output::Close { conn });
            self.forget_link(conn, &c, out);
        }
    }

    /// Drops a closed connection from the neighbours; if it carried the
    /// broadcast tree, every lazy link is grafted back so the tree re-forms.
    fn forget_link(&mut self, conn: ConnId, c: &Conn, out: &mut Vec<Output>) {
        let Some(p) = c.peer else {
            return;
        };
        if self.neighbours.get(&p.addr) != Some(&conn) {
            return;
        }
        self.neighbours.remove(&p.addr);
        if !c.lazy && !self.left {
            let lazy: Vec<ConnId> = self
                .neighbours
                .values()
                .copied()
                .filter(|n| self.conns.get(n).is_some_and(|c| c.lazy))
                .collect();
            for n in lazy {
                self.set_lazy(n, false);
                out.push(Output::Send {
                    conn: n,
                    msg: Message::Graft(Vec::new()),
                });
            }
        }
    }

    pub(super) fn set_lazy(&mut self, conn: ConnId, lazy: bool) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.lazy = lazy;
        }
    }

    /// A duplicate came over `conn`: take it off the tree, both ends.
    pub(super) fn prune(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        if !self.cfg.prune_duplicates {
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.lazy {
                c.lazy = true;
                out.push(Output::Send {
                    conn,
                    msg: Message::Prune,
                });
            }
        }
    }

    /// New messages came by repair over `conn`: put it back on the tree.
    pub(super) fn graft(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.lazy {
                c.lazy = false;
                out.push(Output::Send {
                    conn,
                    msg: Message::Graft(Vec::new()),
                });
            }
        }
    }

    pub(super) fn bye(&mut self, conn: ConnId, reason: ByeReason, out: &mut Vec<Output>) {
        out.push(Output::Send {
            conn,
            msg: Message::Bye(reason),
        });
        self.close(conn, out);
    }

    pub(super) fn on_connected(
        &mut self,
        conn: ConnId,
        dialed: Option<SocketAddr>,
        out: &mut Vec<Output>,
    ) {
        // A connection for a dial no longer in flight counts as accepted.
        let dial = dialed.and_then(|addr| self.dialing.remove(&addr).map(|d| (addr, d)));
        let dialed = dial.as_ref().map(|(addr, _)| *addr);
        if let Some((addr, Dial { probe: true, .. })) = dial {
            // Someone answers there: the member is real. Nothing to say.
            if let Some(m) = self.members.get_mut(&addr) {
                m.failures = 0;
                m.retry_at = self.now + self.cfg.reconnect_interval;
            }
            out.push(Output::Close { conn });
            return;
        }
        if self.conns.contains_key(&conn) {
            self.stats.unexpected += 1;
            return;
        }
        if dialed.is_none() {
            // Accepted connections that have not said who they are hold
            // slots; when they are all taken the oldest goes, so that an
            // honest peer (whose hello follows at once) gets in unless the
            // port is flooded faster than one round trip. The node's own
            // dials are bounded by its members and never take these slots.
            let waiting = self.conns.iter().filter(|(_, c)| c.accepting());
            if waiting.clone().count() >= self.cfg.max_handshaking {
                if let Some(oldest) = waiting
                    .min_by_key(|(id, c)| (c.opened, **id))
                    .map(|(id, _)| *id)
                {
                    self.stats.conns_refused += 1;
                    self.close(oldest, out);
                }
            }
        }
        self.conns.insert(
            conn,
            Conn {
                dialed,
                peer: None,
                opened: self.now,
                last_heard: self.now,
                degree: 0,
                lazy: false,
                last_full_sync: None,
            },
        );
        let hello = self.hello();
        let msg = if self.joined {
            Message::Hello(hello)
        } else {
            Message::Join(hello)
        };
        out.push(Output::Send { conn, msg });
    }

    pub(super) fn on_connect_failed(&mut self, addr: SocketAddr, out: &mut Vec<Output>) {
        let Some(dial) = self.dialing.remove(&addr) else {
            return;
        };
        self.dial_failed(addr, true, out);
        if dial.verify && !self.neighbours.contains_key(&addr) {
            if let Some(m) = self.members.get(&addr) {
                if m.state == MemberState::Alive {
                    let key = m.key(addr);
                    self.declare_dead(key, out);
                }
            }
        }
    }

    /// Backs off dialling `addr`. A member that could not be reached
    /// `max_dial_failures` times in a row is taken out of this node's
    /// roster (not spread: others may reach it), so invented addresses in a
    /// peer list cannot keep the node dialling.
    pub(super) fn dial_failed(
        &mut self,
        addr: SocketAddr,
        unreachable: bool,
        out: &mut Vec<Output>,
    ) {
        let base = self.cfg.dial_backoff;
        let max = self.cfg.dial_backoff_max;
        let mut give_up = None;
        if let Some(m) = self.members.get_mut(&addr) {
            m.failures = m.failures.saturating_add(1);
            let wait = base
                .saturating_mul(1u64 << m.failures.min(20).saturating_sub(1))
                .min(max);
            m.retry_at = self.now + wait;
            if unreachable && m.failures >= self.cfg.max_dial_failures && m.in_roster() {
                give_up = Some(MemberUpdate {
                    node: m.key(addr),
                    state: MemberState::Dead,
                    name: m.name.clone(),
                });
            }
        }
        if let Some(u) = give_up {
            self.apply(&u, out);
        }
        if let Some(at) = self.seeds.get_mut(&addr) {
            *at = self.now + base;
        }
    }

    pub(super) fn on_disconnected(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        match c.peer {
            None => {
                if let Some(addr) = c.dialed {
                    self.dial_failed(addr, true, out);
                }
            }
            Some(peer) => {
                if self.neighbours.get(&peer.addr) != Some(&conn) {
                    return;
                }
                self.forget_link(conn, &c, out);
                // The link dropped without a goodbye: check at once whether
                // the node is still there; a failed dial means it is dead.
                // (Its life may have moved on by a refutation over this link.)
                if self.members.get(&peer.addr).is_some_and(|m| {
                    m.state == MemberState::Alive && m.incarnation >= peer.incarnation
                }) {
                    self.dial(peer.addr, true, out);
                }
            }
        }
    }

    pub(super) fn on_bad_frame(&mut self, conn: ConnId, e: wire::WireError, out: &mut Vec<Output>) {
        match e {
            wire::WireError::Oversized { .. } => self.stats.oversized += 1,
            _ => self.stats.malformed += 1,
        }
        self.close(conn, out);
    }

    pub(super) fn on_message(&mut self, conn: ConnId, msg: Message, out: &mut Vec<Output>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            self.stats.unexpected += 1;
            return;
        };
        c.last_heard = self.now;
        let established = c.peer.is_some();
        match msg {
            Message::Join(h) => self.on_hello(conn, h, true, out),
            Message::Hello(h) => self.on_hello(conn, h, false, out),
            _ if !established => {
                self.stats.unexpected += 1;
                self.close(conn, out);
            }
            Message::Ping(n) => out.push(Output::Send {
                conn,
                msg: Message::Pong(n),
            }),
            Message::Pong(_) => {}
            Message::PeerList { full, members } => self.on_peer_list(conn, full, members, out),
            Message::Chat(chat) => {
                if self.valid_chat(&chat) {
                    let dups = self.stats.duplicates;
                    let origin = chat.id.origin.addr;
                    self.on_chat(chat, Some(conn), false, true, out);
                    // A sender's own link is the shortest path for its
                    // messages: never pruned for a duplicate.
                    let from_origin = self
                        .conns
                        .get(&conn)
                        .and_then(|c| c.peer)
                        .is_some_and(|p| p.addr == origin);
                    if self.stats.duplicates > dups && !from_origin {
                        self.prune(conn, out);
                    }
                }
            }
            Message::Leave(key) => self.on_leave(conn, key, out),
            Message::Bye(reason) => {
                let peer = self.conns.get(&conn).and_then(|c| c.peer);
                self.close(conn, out);
                if let (Some(p), ByeReason::Full) = (peer, reason) {
                    self.dial_failed(p.addr, false, out);
                }
            }
            Message::Prune => self.set_lazy(conn, true),
            Message::Graft(ids) => self.on_graft(conn, ids, out),
            Message::IHave(ids) => self.on_ihave(conn, ids),
            Message::Sync(s) => self.on_sync(conn, s.members_hash, s.chat_hash, out),
            Message::Digest(d) => self.on_digest(conn, d, out),
            Message::History(h) => self.on_history(conn, h, out),
        }
    }

    pub(super) fn on_hello(&mut self, conn: ConnId, h: Hello, join: bool, out: &mut Vec<Output>) {
        if h.version != PROTOCOL_VERSION {
            self.stats.bad_version += 1;
            self.close(conn, out);
            return;
        }
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if join && c.peer == Some(h.node) {
            // The same peer asks again: our first answer went missing.
            self.answer_join(conn, out);
            return;
        }
        if c.peer.is_some()
            || h.node.addr == self.me.addr
            || h.name.len() > MAX_NAME_LEN
            || h.node.incarnation >= MAX_INCARNATION
        {
            self.stats.unexpected += 1;
            self.close(conn, out);
            return;
        }
        let dialed_by_me = c.dialed.is_some();
        let peer = h.node;

        // What we know of it: a restart or a first meeting is news; a node we
        // hold dead in this very life is told so, so that it refutes.
        let stranger = !self.knows_alive(&peer.addr);
        self.learn_direct(&h, conn, out);

        // One connection per pair: the one dialled by the lower address wins.
        if let Some(&other) = self.neighbours.get(&peer.addr) {
            let other_conn = self.conns.get(&other);
            let other_dialed_by_me = other_conn.is_some_and(|c| c.dialed.is_some());
            let other_life = other_conn.and_then(|c| c.peer).map_or(0, |p| p.incarnation);
            let keep_new = if other_life < peer.incarnation || dialed_by_me == other_dialed_by_me {
                true
            } else {
                dialed_by_me == (self.me.addr < peer.addr)
            };
            let loser = if keep_new { other } else { conn };
            self.bye(loser, ByeReason::Duplicate, out);
            if !keep_new {
                return;
            }
        }

        if self.neighbours.len() >= self.cfg.max_connections {
            // Make room for links that matter: ones this node asked for,
            // newcomers, poorly connected nodes, and nodes this node did not
            // hold alive (the other side of a healed split).
            let needy = dialed_by_me
                || join
                || stranger
                || (h.degree as usize) < self.cfg.max_connections / 2;
            let victim = self
                .neighbours
                .values()
                .copied()
                .filter(|c| *c != conn)
                .max_by_key(|c| (self.conns.get(c).map_or(0, |x| x.degree), *c));
            match victim {
                Some(v) if needy => {
                    self.stats.conns_refused += 1;
                    self.bye(v, ByeReason::Full, out);
                }
                _ => {
                    self.stats.conns_refused += 1;
                    if join {
                        self.answer_join(conn, out);
                    }
                    self.bye(conn, ByeReason::Full, out);
                    return;
                }
            }
        }

        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Some(peer);
            c.degree = h.degree;
        }
        self.neighbours.insert(peer.addr, conn);
        if let Some(m) = self.members.get_mut(&peer.addr) {
            m.failures = 0;
            m.retry_at = self.now;
        }
        if join {
            self.answer_join(conn, out);
        } else if self.joined {
            self.on_sync(conn, h.members_hash, h.chat_hash, out);
        }
    }

    /// A handshake is first-hand evidence that the speaker is alive.
    pub(super) fn learn_direct(&mut self, h: &Hello, conn: ConnId, out: &mut Vec<Output>) {
        let known = self.members.get(&h.node.addr).cloned();
        match known {
            Some(m) if m.incarnation == h.node.incarnation && !m.in_roster() => {
                // We hold it dead or gone in this life: tell it, it refutes.
                out.push(Output::Send {
                    conn,
                    msg: Message::PeerList {
                        full: false,
                        members: vec![m.update(h.node.addr)],
                    },
                });
            }
            Some(m) if m.incarnation >= h.node.incarnation => {}
            _ => {
                let u = MemberUpdate {
                    node: h.node,
                    state: MemberState::Alive,
                    name: h.name.clone(),
                };
                if self.apply(&u, out) {
                    self.flood_updates(vec![u], Some(conn), out);
                }
            }
        }
    }

    pub(super) fn answer_join(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        // History first: the newcomer has its baseline before it dials
        // anyone else.
        let baseline = self.streams.digest();
        let room = self
            .frame_budget()
            .saturating_sub(baseline.len() * 32)
            .max(self.frame_budget() / 2);
        let chats = self
            .store
            .latest(self.cfg.newcomer_history, chat_size, room);
        out.push(Output::Send {
            conn,
            msg: Message::History(History {
                chats,
                baseline: Some(baseline),
            }),
        });
        let list = self.full_list();
        self.send_peer_list(conn, true, list, out);
    }

    /// The whole view, this node included, sorted by address (so that a
    /// list split over several frames covers address ranges).
    pub(super) fn full_list(&self) -> Vec<MemberUpdate> {
        let mut list: Vec<MemberUpdate> = Vec::with_capacity(self.members.len() + 1);
        list.push(MemberUpdate {
            node: self.me,
            state: MemberState::Alive,
            name: self.name.clone(),
        });
        list.extend(self.members.iter().map(|(a, m)| m.update(*a)));
        list.sort_unstable_by_key(|u| u.node.addr);
        list
    }
}
