//! Connections: dialling, handshakes, one link per pair, slots, and the
//! answer to a newcomer's join.

use super::*;

impl Node {
    // ---- connections -------------------------------------------------

    pub(super) fn hello(&mut self) -> Hello {
        let (chat_mark, chat_hash) = self.chat_hash();
        Hello {
            version: PROTOCOL_VERSION,
            node: self.me,
            addr: self.addr,
            name: self.name.clone(),
            member_version: self.version,
            proof: self.proof,
            degree: self.neighbours.len() as u16,
            members_hash: self.roster_hash(),
            chat_hash,
            chat_mark,
            beacon: self.beacon_mark(),
            bridge: false,
            shortcut: false,
        }
    }

    /// Dials member `id` where it listens, as far as this node knows.
    pub(super) fn dial(&mut self, id: Id, verify: bool, out: &mut Vec<Output>) {
        if let Some(addr) = self.members.get(&id).map(|m| m.addr) {
            self.dial_addr(addr, Some(id), verify, out);
        }
    }

    /// Dials `addr`: member `member`'s, or a seed's.
    pub(super) fn dial_addr(
        &mut self,
        addr: SocketAddr,
        member: Option<Id>,
        verify: bool,
        out: &mut Vec<Output>,
    ) {
        if let Some(d) = self.dialing.get_mut(&addr) {
            // The dial in flight now serves this purpose too (a probe's
            // ping then times out, unless the link speaks first).
            d.verify |= verify;
            d.probe = false;
            d.ping = None;
            d.member = d.member.or(member);
            return;
        }
        self.start_dial(addr, member, verify, false, out);
    }

    /// Whether a dial to member `id` is in flight.
    pub(super) fn dialing_to(&self, id: Id) -> bool {
        self.members
            .get(&id)
            .is_some_and(|m| self.dialing.contains_key(&m.addr))
    }

    /// Dials member `id` at `addr` only to ping it once.
    pub(super) fn start_probe_dial(
        &mut self,
        addr: SocketAddr,
        id: Id,
        nonce: u32,
        out: &mut Vec<Output>,
    ) {
        self.dialing.insert(
            addr,
            Dial {
                member: Some(id),
                since: self.now,
                verify: false,
                probe: false,
                ping: Some(nonce),
            },
        );
        out.push(Output::Connect { addr });
    }

    /// Asks the driver to dial `addr`, which has no dial in flight.
    pub(super) fn start_dial(
        &mut self,
        addr: SocketAddr,
        member: Option<Id>,
        verify: bool,
        probe: bool,
        out: &mut Vec<Output>,
    ) {
        self.dialing.insert(
            addr,
            Dial {
                member,
                since: self.now,
                verify,
                probe,
                ping: None,
            },
        );
        out.push(Output::Connect { addr });
    }

    /// Arrivals batched while `conn` was a tree link go out before it
    /// closes: a batch must not lose the links it was meant for.
    fn flush_before_losing(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        let tree_link = self
            .conns
            .get(&conn)
            .and_then(|c| c.peer.filter(|_| !c.lazy))
            .is_some_and(|p| self.neighbours.get(&p.id) == Some(&conn));
        if tree_link && !self.arrivals.is_empty() {
            self.flush_arrivals(out);
        }
    }

    pub(super) fn close(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        self.close_after(conn, false, out);
    }

    /// Closes `conn`; `bye`: its peer said goodbye over it (see
    /// `forget_link`).
    fn close_after(&mut self, conn: ConnId, bye: bool, out: &mut Vec<Output>) {
        self.flush_before_losing(conn, out);
        if let Some(c) = self.conns.remove(&conn) {
            out.push(Output::Close { conn });
            self.forget_link(conn, &c, bye, out);
        }
    }

    /// Drops a closed connection from the neighbours; if it was on the
    /// broadcast tree, every lazy link is grafted back so the tree
    /// re-forms. A young tree link (open for less than a heartbeat
    /// interval and two of its round trips) that never brought anything
    /// first and was not this node's way to the leader was no way to this
    /// node (a child that only took what this node pushed, or a link
    /// turned away as full soon after it opened): unless it was this
    /// node's last tree link (a joiner's link to a seed that answered and
    /// then made room), one lazy link is grafted, as after a prune. On
    /// slow links, where young links close often while the overlay forms,
    /// grafting every lazy link for those put cycles on the tree until the
    /// next beacon (`wan-far`: 4.7 payload copies per delivery, 2.6
    /// without). An older link counts as carrying even with nothing first
    /// yet: where chat is sparse (after a mass failure) the grafts are
    /// what joins the survivors' tree again.
    ///
    /// A tree link whose peer said goodbye over it (`bye`: it gave the
    /// slot away, left, or keeps another connection to this node) and
    /// that was not this node's way to the leader lost nothing on its way
    /// here (the goodbye came after everything the peer sent), and the
    /// peer mends its own side's tree: only a node left without a tree
    /// link grafts one lazy link. Grafting every one put cycles on the
    /// tree until the next beacon (`wan` seed 162: a member whose child
    /// gave its slot to another dial grafted all its lazy links, 1.35
    /// payload copies per delivery over the run).
    fn forget_link(&mut self, conn: ConnId, c: &Conn, bye: bool, out: &mut Vec<Output>) {
        let Some(p) = c.peer else {
            return;
        };
        if self.neighbours.get(&p.id) != Some(&conn) {
            return;
        }
        self.neighbours.remove(&p.id);
        self.overlay.unshaped = Some(self.now);
        if self.now - c.opened >= self.cfg.reconnect_interval {
            // A neighbour of some standing is gone: look for another at the
            // usual pace.
            self.fill_refused = 0;
            self.next_dial = self.next_dial.min(self.now);
        }
        if c.lazy || self.left {
            return;
        }
        let young = c.rtt.unwrap_or(Duration::ZERO).saturating_mul(2) + self.cfg.ping_interval;
        let way_up = self.tree_parent() == Some(conn);
        let carried = c.firsts > 0 || way_up || self.now - c.opened >= young;
        if carried && (way_up || !bye) {
            // What the peer had on its way here is lost with the link:
            // the links put back on the tree push again what came to them
            // within three round trips of it (a graft's wait at least).
            let rtt = c.rtt.unwrap_or(self.cfg.probe_timeout);
            let replay = rtt.saturating_mul(3).max(self.cfg.graft_timeout);
            let grafted = self.graft_lazy_links(replay, out);
            self.push_in_flight(rtt, c.last_heard, &grafted, out);
            if self.now - c.last_heard >= self.cfg.ping_interval {
                // Closed for silence: what the peer had for this node
                // since it was last heard is lost too, further back than
                // the grafts replay. The next sync round compares chat
                // with every neighbour, as the link may have been this
                // node's only way into a part of the overlay (a bridge
                // whose other neighbours and announcers are all in the
                // other part).
                self.recheck_every_neighbour();
            }
        } else if self.tree_links() == 0 {
            self.graft_one_but(None, out);
        }
    }

    /// Puts every lazy link back on the tree, asking each to push again
    /// what came to it in the last `replay`; returns them.
    pub(super) fn graft_lazy_links(
        &mut self,
        replay: Duration,
        out: &mut Vec<Output>,
    ) -> Vec<ConnId> {
        let lazy: Vec<ConnId> = self
            .neighbours
            .values()
            .copied()
            .filter(|n| self.conns.get(n).is_some_and(|c| c.lazy))
            .collect();
        for n in &lazy {
            self.graft_replaying(*n, replay, out);
        }
        lazy
    }

    /// A tree link (round trip `rtt`) closed under what this node pushed
    /// over it last: the peer may have closed it before those came (a full
    /// node making room, a `Bye` crossing them), and the part of the tree behind it
    /// would then wait for an announcement and a graft to get them. So
    /// what came here within two round trips of the link goes at once
    /// over the links just put back on the tree (a copy too many where a
    /// peer had it already; a link lost is rare).
    ///
    /// A link closed for silence (last heard at `heard`) may have lost
    /// everything pushed over it since: the peer answers nothing it got
    /// after a round trip before that. Where the link crossed a cut, the
    /// part of the tree behind it is reached only through some other
    /// neighbour of this node now, which may have had those messages from
    /// no one (a bridge whose tree link and announcers are all on the
    /// other side). The ids that came here since then, older than the
    /// two round trips pushed, are announced over the same links: one
    /// message per link, and a graft only where one is missing.
    fn push_in_flight(
        &mut self,
        rtt: Duration,
        heard: Instant,
        grafted: &[ConnId],
        out: &mut Vec<Output>,
    ) {
        if grafted.is_empty() {
            return;
        }
        let since = self.now.saturating_sub(rtt.saturating_mul(2));
        let unanswered: Vec<MsgId> = self
            .store
            .ids_between(heard.saturating_sub(rtt), since)
            .take(announce::MAX_QUEUED)
            .collect();
        let recent = self.fitting(self.store.since(since));
        for conn in grafted {
            if !unanswered.is_empty() {
                self.send_ihave(*conn, unanswered.clone(), out);
            }
            for chat in &recent {
                out.push(Output::Send {
                    conn: *conn,
                    msg: Message::Chat(chat.clone()),
                });
            }
        }
    }

    /// Puts one neighbour link drawn at random (other than `except`) back
    /// on the tree.
    fn graft_one_but(&mut self, except: Option<ConnId>, out: &mut Vec<Output>) {
        let links: Vec<ConnId> = self
            .neighbours
            .values()
            .copied()
            .filter(|&c| Some(c) != except)
            .collect();
        if !links.is_empty() {
            let i = self.below(links.len());
            self.graft(links[i], out);
        }
    }

    pub(super) fn set_lazy(&mut self, conn: ConnId, lazy: bool) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.lazy = lazy;
            c.mend = false;
        }
    }

    /// A duplicate came over `conn` (or a faster path was found): take it
    /// off the tree, both ends. The peer is told even when this end
    /// already pushed nothing over it: it was pushing.
    pub(super) fn prune(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        if !self.cfg.prune_duplicates {
            return;
        }
        let now = self.now;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.lazy = true;
            c.mend = false;
            c.pruned = Some(now);
            out.push(Output::Send {
                conn,
                msg: Message::Prune,
            });
        }
    }

    /// A chat came first over `conn`: the link is on some sender's
    /// fastest path.
    pub(super) fn first_over(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.firsts = c.firsts.saturating_add(1);
            decay(c);
        }
    }

    /// A chat came again over `conn`. The tree is shared by every sender,
    /// and with many chats in flight several links of one cycle see
    /// duplicates at once: pruning each at its first duplicate cuts the
    /// tree apart, and the grafts that mend it make new cycles. So a link
    /// leaves the tree once duplicates make up most of what it brought,
    /// after at least `PRUNE_AFTER` of them.
    fn duplicate_over(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.dups = c.dups.saturating_add(1);
        decay(c);
        if self.cfg.rooted_tree {
            // The leader's beacons shape the tree; but a peer that pushes
            // over a link this end holds off the tree (a prune and a graft
            // that crossed) is told. Not again for copies the peer pushed
            // before this node's last prune reached it (a round trip's
            // worth: on slow links with chat flowing, one prune per copy
            // would cross the peer's own prunes and grafts).
            if c.lazy {
                let rtt = c.rtt.unwrap_or(Duration::ZERO);
                if c.pruned
                    .is_none_or(|t| self.now - t > rtt + self.cfg.graft_timeout)
                {
                    self.prune(conn, out);
                }
                return;
            }
            // A copy again means the tree delivers: the links this node's
            // grafts for missing messages put on it are redundant now, and
            // each would carry every later message a second time until
            // the next beacon (on slow links, where the tree's path and an
            // announcer's differ by more than the graft wait, that is most
            // of them). They leave it; the beacons' links stay.
            let mends: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, x)| x.mend && !x.lazy)
                .map(|(&k, _)| k)
                .collect();
            for m in mends {
                self.stats.mends_pruned += 1;
                self.prune(m, out);
            }
            return;
        }
        if c.dups >= PRUNE_AFTER && (self.cfg.strict_prune || c.dups > c.firsts) {
            c.dups = 0;
            c.firsts = 0;
            self.prune(conn, out);
        }
    }

    /// How many neighbour links are on the broadcast tree.
    pub(super) fn tree_links(&self) -> usize {
        self.neighbours
            .values()
            .filter(|c| self.conns.get(c).is_some_and(|c| !c.lazy))
            .count()
    }

    /// The peer took `conn` off the tree. With many senders at once,
    /// prunes for different messages can leave a node with no tree link
    /// at all: then it puts another link back on.
    ///
    /// A prune that comes within a round trip of the link after this end
    /// grafted it crossed the graft: the peer sent it before the graft
    /// reached it, and puts its end back on the tree when it does (and
    /// pushes). Taken as it is, the prune would leave this end off the
    /// tree while the peer pushes: chat from this side would no longer
    /// cross the link until the next beacon, and nothing would tell (what
    /// the peer pushes comes first, not again). So it is left unheeded.
    fn on_prune(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        let crossed = self.conns.get(&conn).is_some_and(|c| {
            !c.lazy
                && c.grafted
                    .is_some_and(|t| self.now - t < c.rtt.unwrap_or(Duration::ZERO))
        });
        if crossed {
            self.stats.prunes_crossed += 1;
            return;
        }
        self.set_lazy(conn, true);
        if self.cfg.rooted_tree && self.tree_parent() == Some(conn) {
            // The link the leader's beacon came by first is this node's
            // way to the rest: a peer that prunes it does not know it is
            // this node's parent (its prune crossed the beacon, or it
            // pruned a link it had grafted for a missing message). Put
            // back at once, with what came meanwhile, or this node and
            // its subtree hear nothing until the next beacon.
            self.graft_way_up(conn, out);
            return;
        }
        if self.tree_links() == 0 {
            self.graft_one_but(Some(conn), out);
        }
    }

    /// Puts `conn` back on the tree, asking the peer for the messages it
    /// announced that this node still waits for (Plumtree's graft names
    /// them): the peer pushes only what comes after.
    pub(super) fn graft(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        self.graft_replaying(conn, Duration::ZERO, out);
    }

    /// [`Node::graft`], asking the peer to push again what came to it in
    /// the last `replay` too.
    pub(super) fn graft_replaying(
        &mut self,
        conn: ConnId,
        replay: Duration,
        out: &mut Vec<Output>,
    ) {
        let now = self.now;
        let Some(c) = self
            .conns
            .get_mut(&conn)
            .filter(|c| c.lazy || c.peer_holds_off())
        else {
            return;
        };
        c.lazy = false;
        c.mend = false;
        c.grafted = Some(now);
        let rtt = c.rtt.unwrap_or(Duration::ZERO);
        let ids = self.announce.ask_of(conn, now, self.cfg.graft_timeout, rtt);
        let replay_ms = u32::try_from(replay.as_millis()).unwrap_or(u32::MAX);
        out.push(Output::Send {
            conn,
            msg: Message::Graft(Graft { ids, replay_ms }),
        });
    }

    pub(super) fn bye(&mut self, conn: ConnId, reason: ByeReason, out: &mut Vec<Output>) {
        self.flush_before_losing(conn, out);
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
        proven: Option<Id>,
        out: &mut Vec<Output>,
    ) {
        // A connection for a dial no longer in flight counts as accepted.
        let dial = dialed.and_then(|addr| self.dialing.remove(&addr).map(|d| (addr, d)));
        let dialed = dial.as_ref().map(|(addr, _)| *addr);
        let wanted = dial.as_ref().and_then(|(_, d)| d.member);
        let rtt = dial.as_ref().map(|(_, d)| self.now - d.since);
        if let (Some(id), Some(rtt)) = (wanted, rtt) {
            // A connection takes a round trip to open.
            self.note_rtt(id, rtt);
        }
        if let Some((_, Dial { ping: Some(n), .. })) = dial {
            if self.conns.contains_key(&conn) {
                self.stats.unexpected += 1;
                return;
            }
            self.probe_connected(conn, n, proven, out);
            return;
        }
        if let Some((_, Dial { probe: true, .. })) = dial {
            // Someone answers there: the member is real. Nothing to say.
            if let Some(m) = wanted.and_then(|id| self.members.get_mut(&id)) {
                m.failures = 0;
                m.out_of_reach_until = self.now;
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
            // slots. When they are all taken, the oldest goes if it had a
            // probe timeout to speak (an honest peer's hello follows at
            // once, so idle connections cannot hold the port); otherwise the
            // newcomer is told when to come back and whom to try meanwhile,
            // so that a crowd joining at once spreads out instead of
            // re-dialling in step. The node's own dials never take these
            // slots.
            let waiting = self.conns.iter().filter(|(_, c)| c.accepting());
            if waiting.clone().count() >= self.cfg.max_handshaking {
                let oldest = waiting
                    .min_by_key(|(id, c)| (c.opened, **id))
                    .map(|(id, c)| (*id, c.opened));
                self.stats.conns_refused += 1;
                match oldest {
                    Some((id, opened)) if self.now - opened >= self.cfg.probe_timeout => {
                        self.close(id, out);
                    }
                    _ => {
                        let busy = self.busy();
                        out.push(Output::Send {
                            conn,
                            msg: Message::Busy(busy),
                        });
                        out.push(Output::Close { conn });
                        return;
                    }
                }
            }
        }
        self.conns.insert(
            conn,
            Conn {
                dialed,
                wanted,
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
                lazy: false,
                quiet: false,
                hushed: false,
                grafted: None,
                mend: false,
                pruned: None,
                payload_sent: None,
                probe: false,
                rtt,
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
        // Both sides speak at once: a driver may report a dial only once
        // the other side's first bytes arrive (proof that a process, not
        // just a kernel, answers there).
        self.send_hello(conn, out);
    }

    /// Opens the handshake on `conn`: a join while this node has not joined.
    fn send_hello(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        let mut hello = self.hello();
        let c = self.conns.get(&conn);
        let dialed = c.and_then(|c| c.dialed);
        let wanted = c.and_then(|c| c.wanted);
        hello.bridge = wanted.is_some() && wanted == self.overlay.bridging;
        if hello.bridge {
            self.overlay.bridging = None;
        } else if wanted.is_some() && wanted == self.overlay.tree.dial.map(|d| d.to) {
            hello.shortcut = true;
        } else if wanted.is_some() && wanted == self.overlay.ring_bridge {
            self.overlay.ring_bridge = None;
            hello.bridge = true;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.bridge = hello.bridge;
        }
        // Only a dialled seed is asked to let this node in: a connection
        // accepted while joining is most likely a newcomer as new as this
        // node, whose view would only repeat the seed's.
        let msg = match dialed {
            Some(seed) if !self.joined => {
                self.asked_to_join(conn);
                self.await_join(seed, conn);
                Message::Join(hello)
            }
            _ => Message::Hello(hello),
        };
        out.push(Output::Send { conn, msg });
    }

    /// This node asks seed `seed` to let it in over `conn`: it asks again
    /// (or dials it again) only once the answer had time to come, the
    /// heartbeat's back-off plus two of the link's round trips (a join
    /// answer is a round trip away, a slow seed's view takes longer, and
    /// on links of hundreds of milliseconds one back-off alone would ask
    /// every time before the answer could land).
    pub(super) fn await_join(&mut self, seed: SocketAddr, conn: ConnId) {
        let at = self.now + self.cfg.dial_backoff + self.rtt(conn).saturating_mul(2);
        if let Some(due) = self.seeds.get_mut(&seed) {
            *due = at;
        }
    }

    /// This node sends a join over `conn`: notes whether the answer will
    /// be its first catch-up.
    pub(super) fn asked_to_join(&mut self, conn: ConnId) {
        let member = self.member;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.first_join |= !member;
        }
    }

    /// What a node too busy for a connection says: come back in a jittered
    /// while (longer the more it turns away), or try these members.
    fn busy(&mut self) -> Busy {
        let base = self.cfg.probe_timeout.as_millis();
        let retry_ms =
            (base + self.below(base as usize * 2 + 1) as u64).min(u32::MAX as u64) as u32;
        let mut others = Vec::new();
        for _ in 0..SAMPLE_TRIES {
            if others.len() >= BUSY_OTHERS || self.members.len() == 0 {
                break;
            }
            let i = self.below(self.members.len());
            if let Some((_, m)) = self.members.get_index(i) {
                if m.state == MemberState::Alive && !others.contains(&m.addr) {
                    others.push(m.addr);
                }
            }
        }
        Busy { retry_ms, others }
    }

    /// The node dialled is busy: come back later, and while joining, try
    /// the members it named.
    pub(super) fn on_busy(&mut self, conn: ConnId, b: Busy, out: &mut Vec<Output>) {
        let (addr, wanted) = match self.conns.get(&conn) {
            Some(c) => (c.dialed, c.wanted),
            None => (None, None),
        };
        self.close(conn, out);
        let Some(addr) = addr else {
            return;
        };
        let wait = Duration::from_millis((b.retry_ms as u64).min(60_000));
        let jitter = Duration::from_millis(self.below(wait.as_millis() as usize + 1) as u64);
        let at = self.now + wait + jitter;
        if let Some(s) = self.seeds.get_mut(&addr) {
            *s = at;
        }
        if let Some(m) = wanted.and_then(|id| self.members.get_mut(&id)) {
            m.retry_at = m.retry_at.max(at);
        }
        if !self.joined {
            for a in b.others.into_iter().take(BUSY_OTHERS) {
                if a != self.addr && self.seeds.len() < MAX_SEEDS {
                    self.seeds.entry(a).or_insert(self.now);
                }
            }
            self.maintain(out);
        }
    }

    /// The driver could not connect to `addr`, or (`answered` false) it
    /// never answered the dial at all (see `maintain`).
    pub(super) fn on_connect_failed(
        &mut self,
        addr: SocketAddr,
        answered: bool,
        out: &mut Vec<Output>,
    ) {
        let Some(dial) = self.dialing.remove(&addr) else {
            return;
        };
        self.seed_dial_failed(addr);
        let Some(id) = dial.member else {
            return;
        };
        self.overlay_dial_failed(id, out);
        if self.members.get(&id).is_some_and(|m| m.addr != addr) {
            // The member has moved since (a new life elsewhere): where it
            // used to listen says nothing of where it listens now.
            if let Some(n) = dial.ping {
                self.detector.drop_ping(n);
            }
            return;
        }
        if let Some(n) = dial.ping {
            self.probe_dial_failed(id, n, out);
            return;
        }
        self.dial_failed(id, true, out);
        if (dial.verify || (answered && self.alarmed())) && !self.neighbours.contains_key(&id) {
            // A neighbour's link dropped and it cannot be dialled back, or
            // deaths are about and a member held alive could not be
            // dialled (to fill a slot): as for a ping left unanswered
            // (SWIM), ask others whether they reach it before suspecting
            // it. After a mass failure most dials to fill slots go to the
            // dead, and each one found so is found without waiting for
            // its watchers, who may have died with it. (In calm times a
            // failed dial only backs off, up to `max_dial_failures`.)
            self.check(id, None, out);
        }
    }

    /// A dial to seed `addr` failed or ended before a handshake: tried
    /// again after a jittered back-off, so that joiners turned away
    /// together come back apart.
    fn seed_dial_failed(&mut self, addr: SocketAddr) {
        if self.seeds.contains_key(&addr) {
            let base = self.cfg.dial_backoff;
            let jitter = Duration::from_millis(self.below(base.as_millis() as usize + 1) as u64);
            self.seeds.insert(addr, self.now + base + jitter);
        }
    }

    /// Backs off dialling member `id`. A member that could not be reached
    /// `max_dial_failures` times in a row is checked through others (and
    /// suspected if none reaches it), so invented addresses in a peer list
    /// cannot keep the node dialling.
    pub(super) fn dial_failed(&mut self, id: Id, unreachable: bool, out: &mut Vec<Output>) {
        let base = self.cfg.dial_backoff;
        let max = self.cfg.dial_backoff_max;
        let mut give_up = false;
        if let Some(m) = self.members.get_mut(&id) {
            m.failures = m.failures.saturating_add(1);
            let wait = base
                .saturating_mul(1u64 << m.failures.min(20).saturating_sub(1))
                .min(max);
            m.retry_at = self.now + wait;
            give_up = unreachable && m.failures >= self.cfg.max_dial_failures && m.in_roster();
        }
        if give_up {
            self.check(id, None, out);
        }
    }

    /// The node at `addr` (member `member`, if it was dialled as one)
    /// turned this node's dial away: it has all the neighbours it wants. It is reachable, so nothing counts against it; it is just
    /// not asked again to fill a slot for a while, longer each time (a
    /// small group where every node wants more neighbours than the others
    /// have room for would otherwise redial forever).
    fn turned_away(&mut self, addr: Option<SocketAddr>, member: Option<Id>) {
        let base = self.cfg.reconnect_interval;
        let max = self.cfg.dial_backoff_max;
        let jitter = Duration::from_millis(self.below(base.as_millis() as usize + 1) as u64);
        let now = self.now;
        self.fill_refused = self.fill_refused.saturating_add(1);
        if let Some(m) = member.and_then(|id| self.members.get_mut(&id)) {
            m.refusals = m.refusals.saturating_add(1);
            let wait = base
                .saturating_mul(1u64 << m.refusals.min(16).saturating_sub(1))
                .min(max);
            m.full_until = now + wait + jitter;
        }
        if let Some(addr) = addr.filter(|a| self.seeds.contains_key(a)) {
            // Jittered, so that joiners turned away together come back apart.
            let base = self.cfg.dial_backoff;
            let jitter = Duration::from_millis(self.below(base.as_millis() as usize + 1) as u64);
            self.seeds.insert(addr, now + base + jitter);
        }
    }

    pub(super) fn on_disconnected(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if c.probe {
            // Its ping times out on its own.
            return;
        }
        match c.peer {
            None => {
                if let Some(addr) = c.dialed {
                    self.seed_dial_failed(addr);
                }
                if let Some(id) = c.wanted {
                    self.dial_failed(id, true, out);
                }
            }
            Some(peer) => {
                if self.neighbours.get(&peer.id) != Some(&conn) {
                    return;
                }
                self.forget_link(conn, &c, false, out);
                // The link dropped without a goodbye: check at once whether
                // the node is still there; a failed dial means it is dead.
                // (Its life may have moved on by a refutation over this link.)
                if self.members.get(&peer.id).is_some_and(|m| {
                    m.state == MemberState::Alive && m.incarnation >= peer.incarnation
                }) {
                    self.dial(peer.id, true, out);
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
        let silence = self.silence();
        let probe_timeout = self.cfg.probe_timeout;
        let Some(c) = self.conns.get_mut(&conn) else {
            self.stats.unexpected += 1;
            return;
        };
        if let (Message::Pong(n), Some(sent)) = (&msg, c.ping_sent) {
            if *n == c.ping_nonce && c.ping_nonce != detector::PUSHED {
                c.answered_late = self.now - sent > answer_due(c, probe_timeout);
            }
        }
        c.last_heard = self.now;
        c.awaiting = None;
        c.awaiting_other = None;
        self.detector.note_heard(self.now, silence);
        // What only a neighbour link carries (a prober sends pings, syncs
        // and repair, never these), over a connection accepted and taken
        // for a prober's (looked at only there).
        let link_only = c.probe
            && c.dialed.is_none()
            && matches!(
                msg,
                Message::Heartbeat(_)
                    | Message::Chat(_)
                    | Message::IHave(_)
                    | Message::Beacon(_)
                    | Message::Prune
                    | Message::Graft(_)
                    | Message::Listen(_)
            );
        // A heartbeat is a ping that also asks to be watched back (before
        // the handshake it is taken as a ping: the hello may be late).
        let msg = match msg {
            Message::Heartbeat(n) => {
                c.pinged = Some(self.now);
                Message::Ping(n)
            }
            msg => msg,
        };
        let established = c.peer.is_some();
        let accepted = c.dialed.is_none();
        if c.probe && accepted && matches!(msg, Message::Hello(_) | Message::Join(_)) {
            // Taken for a prober's connection because a ping came first: it
            // is a dialler whose hello was late (or lost and sent again).
            c.probe = false;
        }
        if link_only {
            // Kept for a prober because a ping came first, yet the peer
            // speaks as over a link: it is a dialler whose hello was lost,
            // which took this node's hello for the handshake and holds the
            // link (its first heartbeat came as the ping). Kept, the
            // connection would drop the chat the peer pushes over it for
            // as long as the peer heartbeats. Closed, the peer forgets the
            // link and refills its slot.
            self.stats.unexpected += 1;
            self.close(conn, out);
            return;
        }
        if c.probe {
            // A probe connection carries pings and their answers; the
            // other side's hello, if any, is not a handshake.
            match msg {
                Message::Pong(n) => self.on_pong(conn, n, out),
                Message::ProbePong {
                    nonce: detector::PUSHED,
                    beacon,
                    chat,
                } if !accepted => self.on_pushed_answer(conn, beacon, chat, out),
                Message::ProbePong {
                    nonce,
                    beacon,
                    chat,
                } => {
                    // Only the answer to this node's own ping counts.
                    let target = self.detector.probed_over(nonce, conn);
                    let beacon = self.answer_beacon(conn, beacon);
                    self.on_pong(conn, nonce, out);
                    if let Some(id) = target {
                        self.beacon_from_probe(id, beacon, out);
                        self.chat_from_probe(id, chat, out);
                        self.stranded_probe(id, out);
                    }
                }
                Message::Ping(n) if accepted => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.pinged = Some(self.now);
                    }
                    let msg = self.probe_pong(conn, n);
                    out.push(Output::Send { conn, msg });
                }
                // The member's hello says how many neighbours it has.
                Message::Hello(h) | Message::Join(h) if !accepted => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.degree = h.degree;
                    }
                }
                // A ring link also compares membership views (see
                // `sync_target`); chat is repaired over the overlay.
                Message::Sync(s) => self.on_sync(conn, s.members_hash, None, false, out),
                Message::Buckets(b) => self.on_buckets(conn, b, out),
                Message::RosterPart { buckets, members } => {
                    self.on_peer_list(conn, Cover::Buckets(buckets), members, out)
                }
                Message::PeerList {
                    full: false,
                    members,
                } => self.on_peer_list(conn, Cover::Delta, members, out),
                Message::Prints { buckets, prints } => self.on_prints(conn, buckets, prints, out),
                Message::Want(w) => self.on_want(conn, w, out),
                _ => {}
            }
            return;
        }
        match msg {
            Message::Join(h) => self.on_hello(conn, h, true, out),
            Message::Hello(h) => self.on_hello(conn, h, false, out),
            Message::Busy(b) if !accepted => self.on_busy(conn, b, out),
            // A probe: answered before any handshake. The prober may keep
            // the connection for its next probes (its ring predecessor):
            // it no longer holds a handshake slot, up to a bound.
            Message::Ping(n) if !established && accepted => {
                let msg = self.probe_pong(conn, n);
                out.push(Output::Send { conn, msg });
                let kept = self.conns.values().filter(|c| c.probe).count();
                if kept < MAX_PROBE_LINKS {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.probe = true;
                    }
                } else {
                    self.close(conn, out);
                }
            }
            _ if !established => {
                self.stats.unexpected += 1;
                self.close(conn, out);
            }
            // (A heartbeat arrives here as the ping it was turned into.)
            Message::Ping(n) | Message::Heartbeat(n) => out.push(Output::Send {
                conn,
                msg: Message::Pong(n),
            }),
            // The ring predecessor's answer pushed over its link (see
            // `Config::ring_push_interval`).
            Message::ProbePong {
                nonce: detector::PUSHED,
                beacon,
                chat,
            } if self.cfg.ring_push_interval.is_some() => {
                self.on_pushed_answer(conn, beacon, chat, out)
            }
            Message::Pong(n) | Message::ProbePong { nonce: n, .. } => self.on_pong(conn, n, out),
            Message::ProbeReq { nonce, target } => self.on_probe_req(conn, nonce, target, out),
            Message::ProbeAck { nonce, target } => self.on_probe_ack(nonce, target, out),
            Message::ProbeNack { nonce, target } => self.on_probe_nack(conn, nonce, target, out),
            Message::Busy(b) => self.on_busy(conn, b, out),
            Message::PeerList { full, members } => {
                let cover = if full { Cover::Full } else { Cover::Delta };
                self.on_peer_list(conn, cover, members, out)
            }
            Message::RosterPart { buckets, members } => {
                self.on_peer_list(conn, Cover::Buckets(buckets), members, out)
            }
            Message::Buckets(b) => {
                self.sync.quiet = 0;
                self.on_buckets(conn, b, out)
            }
            Message::Prints { buckets, prints } => self.on_prints(conn, buckets, prints, out),
            Message::Want(w) => self.on_want(conn, w, out),
            Message::Beacon(b) => self.on_beacon(conn, b, out),
            Message::Chat(chat) => {
                if self.valid_chat(&chat) {
                    let dups = self.stats.duplicates;
                    let origin = chat.id.origin.id;
                    self.on_chat(chat, Some(conn), Via::Live, true, out);
                    self.pushed_over(conn, out);
                    // A sender's own link is the shortest path for its
                    // messages: never pruned for a duplicate.
                    let from_origin = self
                        .conns
                        .get(&conn)
                        .and_then(|c| c.peer)
                        .is_some_and(|p| p.id == origin);
                    if self.stats.duplicates > dups {
                        if !from_origin {
                            self.duplicate_over(conn, out);
                        }
                    } else {
                        self.first_over(conn);
                    }
                }
            }
            Message::Leave(key) => self.on_leave(conn, *key, out),
            Message::Bye(reason) => {
                let c = self.conns.get(&conn);
                let (peer, dialed) = (c.and_then(|c| c.peer), c.and_then(|c| c.dialed));
                self.close_after(conn, true, out);
                if let (Some(p), ByeReason::Full) = (peer, reason) {
                    self.turned_away(dialed, Some(p.id));
                    self.shortcut_refused(p.id);
                }
            }
            Message::Prune => self.on_prune(conn, out),
            Message::Listen(on) => self.on_listen(conn, on, out),
            Message::Graft(g) => self.on_graft(conn, g, out),
            Message::IHave(ids) => {
                let wait = self.ihave_wait(conn);
                self.on_ihave(conn, ids, wait)
            }
            Message::Sync(s) => {
                let chat = Some((s.chat_mark, s.chat_hash));
                self.on_sync(conn, s.members_hash, chat, false, out)
            }
            Message::Digest(d) => {
                self.sync.quiet = 0;
                self.on_digest(conn, d, out)
            }
            Message::History(h) => self.on_history(conn, h, out),
        }
    }

    pub(super) fn on_hello(&mut self, conn: ConnId, h: Hello, join: bool, out: &mut Vec<Output>) {
        if h.version != PROTOCOL_VERSION {
            self.stats.bad_version += 1;
            self.close(conn, out);
            return;
        }
        let now = self.now;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.rtt.is_none() && c.dialed.is_none() {
            // Both sides speak at once: the dialler's hello left when this
            // node's connection was half a round trip old.
            let rtt = now - c.opened;
            c.rtt = Some(rtt);
            self.note_rtt(h.node.id, rtt);
        }
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if join && c.peer == Some(h.node) {
            // The same peer asks again: our first answer went missing.
            self.answer_join(conn, out);
            return;
        }
        let dialed_by_me = c.dialed.is_some();
        if c.proven.is_some_and(|id| id != h.node.id) {
            // It claims to be someone its handshake did not prove.
            self.stats.impostors += 1;
            self.close(conn, out);
            return;
        }
        let had_peer = c.peer.is_some();
        if !self.proven(&h.entry()) {
            // Its life, version, address or name is not its own word.
            self.close(conn, out);
            return;
        }
        if had_peer
            || h.node.id == self.me.id
            || h.name.len() > MAX_NAME_LEN
            || h.node.incarnation >= MAX_INCARNATION
            || h.member_version >= MAX_VERSION
        {
            self.stats.unexpected += 1;
            self.close(conn, out);
            return;
        }
        let peer = h.node;

        // What we know of it: a restart or a first meeting is news; a node we
        // hold dead in this very life is told so, so that it refutes.
        let stranger = !self.knows_alive(&peer.id);
        self.learn_direct(&h, conn, out);

        // One connection per pair: the one dialled by the lower id wins.
        if let Some(&other) = self.neighbours.get(&peer.id) {
            let other_conn = self.conns.get(&other);
            let other_dialed_by_me = other_conn.is_some_and(|c| c.dialed.is_some());
            let other_life = other_conn.and_then(|c| c.peer).map_or(0, |p| p.incarnation);
            // Two dials that cross are a round trip apart at most; a peer
            // that dials long after the link came up no longer holds it
            // (its end never finished the handshake, say): the new link
            // replaces it.
            let stale = other_conn.is_some_and(|c| {
                let race =
                    self.cfg.probe_timeout + c.rtt.unwrap_or(Duration::ZERO).saturating_mul(2);
                now - c.opened > race
            });
            let keep_new =
                if other_life < peer.incarnation || dialed_by_me == other_dialed_by_me || stale {
                    true
                } else {
                    dialed_by_me == (self.me.id < peer.id)
                };
            let loser = if keep_new { other } else { conn };
            self.bye(loser, ByeReason::Duplicate, out);
            if !keep_new {
                return;
            }
        }

        // A peer whose part of the overlay no longer hears this node's
        // leader: the link joins two parts, and must stay on the tree.
        let joins_parts = h.bridge || self.beacon_behind(h.beacon);
        if self.neighbours.len() >= self.cfg.max_connections {
            // Make room for links that matter: ones this node asked for,
            // newcomers, poorly connected nodes, nodes this node did not
            // hold alive (the other side of a healed split), and a node with
            // a single link whose view differs from this node's (most
            // likely the overlay is cut in two, and its part knows things
            // this part does not: with few slots per node, nobody else
            // would take it).
            // So is a node whose part of the overlay no longer hears the
            // leader's beacons: this link joins the two parts.
            let cut_off = (h.degree <= 1 && h.members_hash != self.roster_hash()) || joins_parts;
            // Off the tree first: a tree link lost cuts the broadcast
            // tree until it re-forms. This end pushes nothing over a link
            // it holds off the tree, but the far end may still push over
            // it: this node's way to the leader is never off the tree, and
            // never given away while it speaks: on a node that bridges two
            // parts of the network it may be the only link to the leader's
            // part (a silent one still goes, below).
            let parent = self.tree_parent();
            let off_tree =
                |c: &ConnId| Some(*c) != parent && self.conns.get(c).is_some_and(|x| x.lazy);
            let victim = self
                .neighbours
                .values()
                .copied()
                .filter(|c| *c != conn && Some(*c) != parent)
                .max_by_key(|c| {
                    let degree = self.conns.get(c).map_or(0, |x| x.degree);
                    (off_tree(c), degree, *c)
                });
            // A shortcut on the tree (asked for by the peer or by this
            // node) is worth a link off it, not one on it.
            let own_shortcut =
                dialed_by_me && self.overlay.tree.dial.is_some_and(|d| d.to == peer.id);
            let shortcut = (h.shortcut || own_shortcut) && victim.as_ref().is_some_and(off_tree);
            let needy = (dialed_by_me && !own_shortcut)
                || join
                || stranger
                || cut_off
                || shortcut
                || (h.degree as usize) < self.cfg.max_connections / 2;
            // A neighbour that has left something unanswered for a heartbeat
            // interval (and two round trips of its link), or is being
            // checked while its link is as quiet, is most likely dead
            // (after a mass failure a node's slots fill with such links,
            // and in a cut, those to the far side): it gives its slot to
            // a dial, the longest silent first. One checked on others'
            // word while its link speaks is not: this link may be the only
            // one by which its refutation can reach this side (a bridge
            // between the sides of a cut). A shortcut on the tree, which
            // no one needs, takes no silent link's slot (only one off the
            // tree, above): a child on the tree that does not chat answers
            // none of the chat pushed to it, and its link is pinged only
            // at the next heartbeat tick, so it looks silent now and then;
            // a dead link's slot comes free when its silence closes it.
            let only_shortcut = (h.shortcut || own_shortcut) && !(join || stranger || cut_off);
            let silent = if only_shortcut {
                None
            } else {
                self.silent_links(true).filter(|(_, c)| *c != conn).min()
            };
            match silent.map(|(_, c)| c).or(victim) {
                Some(v) if needy || silent.is_some() => {
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
            c.bridge |= joins_parts;
        }
        self.neighbours.insert(peer.id, conn);
        self.overlay.unshaped = Some(self.now);
        self.member |= self.joined;
        if self.detector.ring_link.is_some_and(|(a, _)| a == peer.id) {
            // Probed over its link from now on.
            self.drop_ring_link(None, out);
        }
        if let Some(m) = self.members.get_mut(&peer.id) {
            m.failures = 0;
            m.out_of_reach_until = self.now;
            m.retry_at = self.now;
        }
        let keep = dialed_by_me || join || joins_parts || h.shortcut;
        self.off_tree_if_covered(conn, keep, h.degree, out);
        if dialed_by_me {
            self.took_shortcut(conn, peer.id, out);
        }
        if join {
            self.defer_join(conn, out);
        } else if self.joined {
            let chat = Some((h.chat_mark, h.chat_hash));
            self.on_sync(conn, h.members_hash, chat, true, out);
            // This link may be the first way to a part whose members this
            // node suspects (a cut that just healed): the accused hear of
            // it now, not after the next sync round's repair, as their
            // refutations race the suspicions' ends. The peer's view may
            // be the same (a suspect is still in the roster on both sides).
            let held = self.held_suspicions();
            if !held.is_empty() {
                self.send_peer_list(conn, false, held, out);
            }
        }
        self.share_beacon(conn, h.beacon, out);
        self.hand_vouch(conn, peer.id, out);
    }

    /// Neighbour links that have left something unanswered for a
    /// heartbeat interval (and two round trips of the link), or whose peer
    /// is being checked while its link is as quiet, each with the time it
    /// went silent: most likely dead or cut off, though not yet for the
    /// whole silence that closes a link.
    ///
    /// `for_slot`: only as a slot to give a dial. A link this node pushes
    /// chat over (on the tree at this end) awaits an answer to chat that
    /// asks for none, as its child on the tree may simply not chat: it
    /// counts only once its latest heartbeat went unanswered past the time
    /// its answer was due, or while its peer is checked.
    pub(super) fn silent_links(
        &self,
        for_slot: bool,
    ) -> impl Iterator<Item = (Instant, ConnId)> + '_ {
        let now = self.now;
        self.neighbours.iter().filter_map(move |(a, c)| {
            let x = self.conns.get(c)?;
            let wait = self.silent_wait(x);
            // (For a slot, a child whose heartbeat went unanswered counts
            // from the chat pushed to it, as any other link: see below.)
            let since = if for_slot {
                x.awaiting
            } else {
                self.awaited_since(x)
            };
            let since = since.filter(|t| now >= *t + wait);
            let quiet = now - x.last_heard >= wait;
            let checked = (quiet && self.detector.is_checking(*a)).then_some(x.last_heard);
            if for_slot && !x.lazy && checked.is_none() && !self.heartbeat_overdue(x) {
                return None;
            }
            since.or(checked).map(|t| (t, *c))
        })
    }

    /// Whether the latest heartbeat over `x` went unanswered past the time
    /// its answer was due (see [`answer_due`]).
    fn heartbeat_overdue(&self, x: &Conn) -> bool {
        let due = answer_due(x, self.cfg.probe_timeout);
        x.ping_sent
            .filter(|t| x.last_heard < *t)
            .is_some_and(|t| self.now >= t + due)
    }

    /// How long a neighbour link may leave something unanswered before it
    /// is silent (see `silent_links`), from [`Node::awaited_since`].
    pub(super) fn silent_wait(&self, c: &Conn) -> Duration {
        self.cfg.ping_interval + c.rtt.unwrap_or(Duration::ZERO).saturating_mul(2)
    }

    /// Since when `c` awaits an answer, as its silence counts: from the
    /// first message sent over it since anything came back, except that
    /// chat pushed over a tree link, over a round trip shorter than the
    /// probe timeout, to a peer whose latest answer came in time, counts
    /// a `dead_after` later (anything else sent since counts from when it
    /// went).
    ///
    /// A child on the tree that does not chat answers nothing pushed to
    /// it, so the link is pinged for an answer. Whether the child lives is
    /// its observers' job (its ring neighbours and the links picked to
    /// watch it); what only this end can tell is that the link stopped
    /// carrying chat one way, and the child finds that out too, from its
    /// announcer, and grafts another link. So this end waits twice the
    /// silence, and pings once per that: about one ping in three to four
    /// seconds instead of one in one to two (`wan`: 35.5 to 33.9 messages
    /// per chat sent while chat flows). Not over slower links: there every
    /// check stretches past the silence (`slack`), and a pusher's
    /// accusation is among the first to come (`wan-far`, 500 ms links:
    /// removal of a crashed node took 0.8 s longer, 10.35 s in seed 12).
    /// Nor to a peer that answered late (it handles its input late, like
    /// a starved process): its silence is what moves chat off a path
    /// through it before the next beacon does (`slow-nodes` seed 1: with
    /// the longer wait, a message took 5.27 s, limit 5 s).
    pub(super) fn awaited_since(&self, c: &Conn) -> Option<Instant> {
        let since = c.awaiting?;
        let pushed =
            !c.lazy && !c.answered_late && c.rtt.unwrap_or(Duration::ZERO) < self.cfg.probe_timeout;
        if !pushed {
            return Some(since);
        }
        let chat = since + self.cfg.dead_after();
        Some(c.awaiting_other.map_or(chat, |t| t.min(chat)))
    }

    /// Neighbour links whose latest heartbeat has gone unanswered for as
    /// long as a ping waits for its answer (see `ping_wait`), each with
    /// when it is past that wait (later than now while it still waits).
    /// Anything else sent over a link may leave it quiet for a while (a
    /// chat or a sync asks for no answer, and a quiet link is pinged only
    /// at the next heartbeat tick): only an unanswered heartbeat tells.
    pub(super) fn unanswered_links(&self) -> impl Iterator<Item = Instant> + '_ {
        self.neighbours.iter().filter_map(|(a, c)| {
            let x = self.conns.get(c)?;
            let sent = x.ping_sent.filter(|t| x.last_heard < *t)?;
            Some(sent + self.ping_wait(*a))
        })
    }

    /// A handshake is first-hand evidence that the speaker is alive.
    pub(super) fn learn_direct(&mut self, h: &Hello, conn: ConnId, out: &mut Vec<Output>) {
        let known = self.members.get(&h.node.id).cloned();
        match known {
            Some(m)
                if m.incarnation == h.node.incarnation
                    && (!m.in_roster()
                        || (m.state == MemberState::Suspect && m.version >= h.member_version)) =>
            {
                // We hold it dead or gone in this life, or suspect it at the
                // version it speaks for: tell it, it refutes (Lifeguard's
                // buddy system, on every link it opens: a member whose links
                // nearly all went to the far side of a cut may otherwise
                // hear of its suspicion only after the suspicion ran out).
                out.push(Output::Send {
                    conn,
                    msg: Message::PeerList {
                        full: false,
                        members: vec![m.update(h.node.id, self.now)],
                    },
                });
            }
            Some(m) if m.incarnation >= h.node.incarnation => {}
            _ => {
                // Its proof was checked with the hello.
                let u = h.entry();
                if self.apply_proven(&u, out) {
                    self.flood_updates(vec![u], Some(conn), out);
                }
            }
        }
    }

    pub(super) fn answer_join(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        // History first: the newcomer has its baseline before it dials
        // anyone else (the streams of lives that ended long ago are
        // forgotten already: nothing to hand on).
        let baseline = self.live_digest();
        let room = self
            .frame_budget()
            .saturating_sub(baseline.len() * 32)
            .max(self.frame_budget() / 2);
        let chats = self
            .store
            .latest(self.cfg.newcomer_history, chat_size, room);
        // The authors' entries go ahead of their messages, so that the
        // newcomer knows where each listens when it delivers them.
        let cutoff = self.spread_cutoff();
        let mut authors: Vec<MemberUpdate> = Vec::new();
        for c in &chats {
            let id = c.id.origin.id;
            if id != self.me.id && !authors.iter().any(|u| u.node.id == id) {
                if let Some(m) = self.members.get(&id).filter(|m| m.spread(cutoff)) {
                    authors.push(m.update(id, self.now));
                }
            }
        }
        if !authors.is_empty() {
            self.send_peer_list(conn, false, authors, out);
        }
        out.push(Output::Send {
            conn,
            msg: Message::History(History {
                chats,
                baseline: Some(baseline),
            }),
        });
        // The roster, and of the deaths only those whose streams are in the
        // baseline: the newcomer must know those lives ended, or it would
        // take their messages as new once it forgets the streams. Older
        // deaths are not handed on.
        let list = self.full_list(|k| self.streams.map.contains_key(k));
        self.send_peer_list(conn, true, list, out);
    }

    /// The whole view, this node included, sorted by id (so that a list
    /// split over several frames covers id ranges): the roster,
    /// and the deaths and departures still spread of the lives that
    /// `tombstone` keeps.
    pub(super) fn full_list(&self, tombstone: impl Fn(&NodeKey) -> bool) -> Vec<MemberUpdate> {
        let mut list: Vec<MemberUpdate> = Vec::with_capacity(self.members.len() + 1);
        list.push(self.my_update());
        let cutoff = self.spread_cutoff();
        list.extend(
            self.members
                .iter()
                .filter(|(a, m)| m.in_roster() || (m.spread(cutoff) && tombstone(&m.key(**a))))
                .map(|(a, m)| m.update(*a, self.now)),
        );
        list.sort_unstable_by_key(|u| u.node.id);
        list
    }
}

/// Duplicates a tree link brings (most of what it brings) before it is
/// pruned.
const PRUNE_AFTER: u16 = 1;

/// Halves a link's first and duplicate counts once they add up to 64, so
/// they follow what the link brings lately.
fn decay(c: &mut Conn) {
    if c.firsts + c.dups >= 64 {
        c.firsts /= 2;
        c.dups /= 2;
    }
}

/// When the answer to a heartbeat over `c` is due: two round trips of the
/// link after it, with half a probe timeout to spare (not the stretched
/// wait of a check, which the next tick's heartbeat would put off for
/// good).
fn answer_due(c: &Conn, probe_timeout: Duration) -> Duration {
    c.rtt.unwrap_or(Duration::ZERO).saturating_mul(2)
        + Duration::from_millis(probe_timeout.as_millis() / 2)
}
