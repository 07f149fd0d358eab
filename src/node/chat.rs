//! Chat: exactly-once, per-sender-order delivery with hold-back, and
//! anti-entropy repair from the bounded history.

use super::*;

/// Round trips of a lazy link its announcements are gathered for, at
/// least `ihave_interval` and at most `sync_interval` (see `announce_to`).
const ANNOUNCE_RTTS: u64 = 4;

impl Node {
    // ---- chat --------------------------------------------------------

    pub(super) fn valid_chat(&mut self, chat: &Chat) -> bool {
        if chat.text.len() > self.cfg.max_text_len {
            self.stats.text_too_long += 1;
            return false;
        }
        // Only this node writes its own current stream: a peer's copy of it
        // is a forgery (or a replay of what it already has).
        if chat.id.origin == self.me
            || chat.name.len() > MAX_NAME_LEN
            || chat.id.seq == 0
            || chat.id.seq >= MAX_SEQ
            || chat.id.origin.incarnation >= MAX_INCARNATION
        {
            self.stats.unexpected += 1;
            return false;
        }
        true
    }

    /// Makes room in a full stream table; false if nothing may go.
    ///
    /// A stream's frontier is what keeps its replays out, so only two kinds
    /// go: lives that ended longer ago than any history is kept (`long_gone`
    /// refuses their messages anyway), then, idle longest first, lives this
    /// node never heard of as members (invented senders; an honest sender
    /// is known by the time its messages spread). Members' streams, current
    /// or recently ended, are never evicted.
    fn evict_stream(&mut self) -> bool {
        let me = self.me;
        let victim = self
            .streams
            .map
            .iter()
            .filter(|(k, s)| **k != me && s.held.is_empty())
            .filter_map(|(k, s)| {
                if self.long_gone(*k) {
                    Some((false, s.last_active, *k))
                } else if self.never_known(*k) {
                    Some((true, s.last_active, *k))
                } else {
                    None
                }
            })
            .min()
            .map(|(unknown, _, k)| (unknown, k));
        match victim {
            Some((unknown, k)) => {
                if unknown {
                    self.stats.streams_evicted += 1;
                }
                self.streams.forget(k);
                true
            }
            None => false,
        }
    }

    /// Whether no member entry speaks of this life (or of a later one).
    /// This node's own life is always known.
    fn never_known(&self, key: NodeKey) -> bool {
        key.id != self.me.id
            && self
                .members
                .get(&key.id)
                .is_none_or(|m| m.incarnation < key.incarnation)
    }

    /// How long messages announced over `conn` may take to come over the
    /// tree before they are asked of it: the graft wait, or nothing if
    /// this node put the link back on the tree so lately (within two of
    /// its round trips and the graft timeout) that the peer may have
    /// written the announcement before the graft reached it. The peer
    /// pushes only what comes after the graft, so waiting would only
    /// delay the message (as when the leader's beacon that made this node
    /// graft the link came in one write with the peer's announcement).
    pub(super) fn ihave_wait(&self, conn: ConnId) -> Duration {
        let crossed = self.conns.get(&conn).is_some_and(|c| {
            !c.lazy
                && c.grafted.is_some_and(|t| {
                    self.now - t <= self.rtt(conn).saturating_mul(2) + self.cfg.graft_timeout
                })
        });
        if crossed {
            Duration::ZERO
        } else {
            self.graft_wait(conn)
        }
    }

    /// Ids announced over a pruned link: wait `wait` for the tree to
    /// bring them, then graft (asking the next announcer if the first
    /// does not answer).
    pub(super) fn on_ihave(&mut self, conn: ConnId, ids: Vec<MsgId>, wait: Duration) {
        self.note_announced(conn, ids, wait, false);
    }

    /// Takes `ids` as announced over `conn` (`gap`: by a later message of
    /// their stream that came ahead of them, a loss only if the graft
    /// wait passes without them; see [`Node::pull_gap`]).
    fn note_announced(&mut self, conn: ConnId, ids: Vec<MsgId>, wait: Duration, gap: bool) {
        for id in ids.into_iter().take(MAX_MISSING) {
            if self.announce.missing_len() >= MAX_MISSING && !self.announce.is_missing(&id) {
                return;
            }
            let seen = self
                .streams
                .map
                .get(&id.origin)
                .is_some_and(|s| id.seq <= s.delivered || s.held.contains_key(&id.seq));
            if seen || id.seq == 0 || id.seq >= MAX_SEQ || self.long_gone(id.origin) {
                continue;
            }
            self.announce.announced(id, conn, self.now, wait, gap);
        }
    }

    /// Message `seq` of stream `key` came live over `from` ahead of
    /// earlier ones this node lacks. The peer passed it on after those
    /// (a link keeps order), so it has them unless it lacks them too:
    /// they are taken as announced by it, and asked of it if neither the
    /// tree nor anyone else brings them within the graft wait (a negative
    /// acknowledgement, as in NACK-based reliable multicast). A message
    /// lost on one tree link is then back within about a round trip of
    /// the next one of its stream, where announcements over the lazy
    /// links (`lazy_fanout` of them per message) may all miss this node.
    /// Only the first few past the frontier are asked for (they hold up
    /// delivery): a peer that floods ahead of a gap it never fills gets
    /// one small graft per graft wait, not one per message.
    fn pull_gap(&mut self, key: NodeKey, seq: u64, from: ConnId) {
        let delivered = self.streams.map.get(&key).map_or(0, |s| s.delivered);
        let ids: Vec<MsgId> = (delivered.saturating_add(1)..seq)
            .take(MAX_GAP_PULL)
            .map(|seq| MsgId { origin: key, seq })
            .collect();
        // Where tree links hold payloads for a window (`chat_batch`), the
        // earlier ones may still be held on a slower path: a loss only if
        // the graft wait passes without them (see `graft_missing`).
        // Elsewhere the gap is taken for a loss at once, so that this
        // node hears from every lazy link while a cut or lossy links take
        // chat from it.
        let held = self.cfg.chat_batch > Duration::ZERO;
        if !held && !ids.is_empty() {
            self.last_loss = Some(self.now);
        }
        let wait = self.graft_wait(from);
        self.note_announced(from, ids, wait, held);
    }

    /// The link's round trip, as measured at its handshake (zero if not
    /// measured).
    pub(super) fn rtt(&self, conn: ConnId) -> Duration {
        self.conns
            .get(&conn)
            .and_then(|c| c.rtt)
            .unwrap_or(Duration::ZERO)
    }

    /// How long a message announced over `conn` may take to come over the
    /// tree before this node asks for it: `graft_timeout` plus the link's
    /// round trip, since on slow links the tree's path and the
    /// announcer's differ by about that much without anything lost; and
    /// where tree links hold payloads (`Config::chat_batch`), a window
    /// more for the hops where the message waited, unless this node finds
    /// messages lost lately (then an announcement is more likely a loss
    /// than a message held on its way). One window, not one per hop: a
    /// message skipped while the tree moved would wait that much longer.
    fn graft_wait(&self, conn: ConnId) -> Duration {
        let held = if self.lossy() {
            Duration::ZERO
        } else {
            self.cfg.chat_batch
        };
        self.cfg.graft_timeout + self.rtt(conn) + held
    }

    /// Announced messages the tree did not bring in time: ask their
    /// announcers, and put those links back on the tree.
    ///
    /// A message that no announcer's answer brought after every round of
    /// asks is a loss this node knows of (its grafts or their answers
    /// were lost, or its announcers lost their links): chat is lost
    /// lately (see [`Node::lossy`]), and this node's digest goes to a
    /// neighbour at once, which answers with what it holds past it.
    /// Otherwise the message waits for the next sync round that compares
    /// chat, every fourth round while chat flows with nothing lost (a
    /// last message of a stream has no later one to show the gap): on
    /// links losing 5% with one announcer per node, 7.8 s.
    pub(super) fn graft_missing(&mut self, out: &mut Vec<Output>) {
        let retry = self.cfg.graft_timeout;
        let mut asks: BTreeMap<ConnId, Vec<MsgId>> = BTreeMap::new();
        let conns = &self.conns;
        let rtt = |c| conns.get(&c).and_then(|c| c.rtt).unwrap_or(Duration::ZERO);
        let (due, left) = self.announce.due_grafts(self.now, retry, rtt);
        let mut lost = left;
        for (conn, id) in due {
            lost |= self.announce.gap_first_asked(&id);
            asks.entry(conn).or_default().push(id);
        }
        if lost {
            // A gap where tree links hold payloads, which nothing filled
            // within the graft wait: chat is lost lately.
            self.last_loss = Some(self.now);
        }
        if left {
            self.stats.announced_lost += 1;
            self.digest_to_random_neighbour(out);
        }
        for (conn, ids) in asks {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.mend |= c.lazy;
                c.lazy = false;
                c.grafted = Some(self.now);
                out.push(Output::Send {
                    conn,
                    msg: Message::Graft(Graft::ids(ids)),
                });
            }
        }
    }

    /// Writes `chats` over the tree link `conn` (in one write: they leave
    /// in the same step).
    pub(super) fn write_payloads(&mut self, conn: ConnId, chats: Vec<Chat>, out: &mut Vec<Output>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.payload_sent = Some(self.now);
        out.extend(chats.into_iter().map(|chat| Output::Send {
            conn,
            msg: Message::Chat(chat),
        }));
    }

    /// Sends the announcements gathered for each lazy link, and the
    /// payloads held for each tree link, if due.
    pub(super) fn flush_announcements(&mut self, out: &mut Vec<Output>) {
        for (conn, chats) in self.announce.due_payloads(self.now) {
            self.write_payloads(conn, chats, out);
        }
        for (conn, ids) in self.announce.due_batches(self.now) {
            if self.conns.contains_key(&conn) {
                self.send_ihave(conn, ids, out);
            }
        }
    }

    /// Sends an announcement of `ids` over `conn`, with the ids of the last
    /// one over it (see [`announce::Announce::repeating`]) for as long as
    /// the digest sync takes to come round while chat flows.
    pub(super) fn send_ihave(&mut self, conn: ConnId, ids: Vec<MsgId>, out: &mut Vec<Output>) {
        let keep = self.cfg.sync_interval.saturating_mul(1 << CHAT_SYNC_PACE);
        let ids = self.announce.repeating(conn, ids, self.now, keep);
        out.push(Output::Send {
            conn,
            msg: Message::IHave(ids),
        });
    }

    /// The lazy links a message is announced over: all of them, or
    /// `Config::lazy_fanout` of them, those with a batch already waiting
    /// first (so a batch window reaches about that many links), then
    /// others at random. Links whose peers asked for quiet are left out,
    /// except for this node's own messages (`own`) while fewer than
    /// `Config::announcers` links listen: lost on its first tree link, a
    /// message is had by no one else, and a leaf of the tree whose lazy
    /// neighbours all picked other announcers would be the only one to
    /// know of it until repair.
    fn pick_announcers(&mut self, mut lazy: Vec<ConnId>, own: bool) -> Vec<ConnId> {
        // Where chat gets lost (this node found a gap or needed repair
        // lately), its neighbours likely miss messages too: every lazy
        // link hears of each one, as in Plumtree. Without losses a few
        // announcers are enough, and cost a message per link each.
        let lossy = self.lossy();
        if !lossy {
            // The peers that asked for quiet have enough announcers.
            let quiet = |c: &ConnId| self.conns.get(c).is_none_or(|c| c.quiet);
            let (mut quiet, listening): (Vec<ConnId>, Vec<ConnId>) =
                lazy.drain(..).partition(quiet);
            let short = if own {
                self.cfg.announcers.saturating_sub(listening.len())
            } else {
                0
            };
            lazy = listening;
            quiet.truncate(short);
            lazy.append(&mut quiet);
        }
        let k = if lossy { 0 } else { self.cfg.lazy_fanout };
        if k == 0 || lazy.len() <= k {
            return lazy;
        }
        let (mut picked, mut rest): (Vec<ConnId>, Vec<ConnId>) =
            lazy.drain(..).partition(|c| self.announce.has_queued(*c));
        picked.truncate(k);
        while picked.len() < k && !rest.is_empty() {
            let i = self.below(rest.len());
            picked.push(rest.swap_remove(i));
        }
        picked
    }

    /// Whether this node found chat lost within the last `LOSS_MEMORY`
    /// (a gap ahead of a live message, or a message only repair brought;
    /// where tree links hold payloads, a gap the graft wait did not
    /// fill).
    pub(super) fn lossy(&self) -> bool {
        self.last_loss.is_some_and(|t| self.now - t < LOSS_MEMORY)
    }

    /// Keeps `Config::announcers` of this node's lazy neighbour links
    /// announcing to it and asks the others to stay quiet
    /// (`Message::Listen`), or asks every one to announce while this node
    /// finds chat lost. Those that announce already stay; more are taken
    /// fastest first (an announcement that comes sooner mends sooner).
    /// Run after each step: links leave and join the tree, close and
    /// open, and only a change is sent.
    pub(super) fn choose_announcers(&mut self, out: &mut Vec<Output>) {
        let k = self.cfg.announcers;
        let all = k == 0 || self.lossy() || self.stands_between();
        // Run after every step: counted first, without allocating, and
        // done when nothing is to change (the usual case).
        let (mut lazy_links, mut listening) = (0, 0);
        for x in self.neighbours.values().filter_map(|c| self.conns.get(c)) {
            if x.lazy {
                lazy_links += 1;
                listening += usize::from(!x.hushed);
            }
        }
        let wanted = if all { lazy_links } else { k.min(lazy_links) };
        if listening == wanted {
            return;
        }
        let mut lazy: Vec<(bool, Duration, ConnId)> = self
            .neighbours
            .values()
            .filter_map(|c| {
                let x = self.conns.get(c).filter(|x| x.lazy)?;
                Some((x.hushed, x.rtt.unwrap_or(Duration::ZERO), *c))
            })
            .collect();
        lazy.sort_unstable();
        for (i, (hushed, _, conn)) in lazy.into_iter().enumerate() {
            let listen = all || i < k;
            if listen == hushed {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.hushed = !listen;
                }
                out.push(Output::Send {
                    conn,
                    msg: Message::Listen(listen),
                });
            }
        }
    }

    /// Announces `id` over the lazy link `conn`: at once, or in the link's
    /// next batch. A batch window lasts `ihave_interval`, or
    /// `ANNOUNCE_RTTS` round trips of the link if that is longer, but no
    /// longer than `sync_interval`. Mending a broken tree over a link
    /// takes about two and a half round trips after the announcement
    /// leaves, plus `graft_timeout` (it travels, the graft waits a round
    /// trip more than that, the graft and the message travel). With a
    /// window of four round trips, a tree broken on 100 ms links is
    /// mended within about 1.45 s instead of 0.85 s, and one announcement
    /// carries every message of 800 ms (`wan`: 72 messages per chat sent
    /// against 109 with a window of one round trip). Past
    /// `sync_interval`, waiting saves little: the digest sync that goes
    /// out that often finds what the tree missed too.
    fn announce_to(&mut self, conn: ConnId, id: MsgId, out: &mut Vec<Output>) {
        let every = self.announce_window(conn);
        if every == Duration::ZERO {
            self.send_ihave(conn, vec![id], out);
        } else if let Some(ids) = self.announce.queue(conn, id, self.now, every) {
            self.send_ihave(conn, ids, out);
        }
    }

    /// How long ids for the lazy link `conn` are gathered (see
    /// [`Node::announce_to`]).
    fn announce_window(&self, conn: ConnId) -> Duration {
        self.cfg.ihave_interval.max(
            self.rtt(conn)
                .saturating_mul(ANNOUNCE_RTTS)
                .min(self.cfg.sync_interval),
        )
    }

    /// The peer asks this node to announce over `conn` while it is off the
    /// tree (`on`), or to stay quiet. A peer that starts to listen missed
    /// what this node passed on meanwhile, while its own announcers
    /// changed too: what came within a window and a round trip of the
    /// link is announced to it as well.
    pub(super) fn on_listen(&mut self, conn: ConnId, on: bool, out: &mut Vec<Output>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let started = on && c.quiet && c.lazy;
        c.quiet = !on;
        if !started {
            return;
        }
        let since = self
            .now
            .saturating_sub(self.announce_window(conn) + self.rtt(conn));
        let ids: Vec<MsgId> = self
            .store
            .since(since)
            .map(|c| c.id)
            .take(announce::MAX_QUEUED)
            .collect();
        for id in ids {
            self.announce_to(conn, id, out);
        }
    }

    /// `id` came over the tree link `from` noticeably later than a lazy
    /// link announced it (Plumtree's optimization): the announcer's path
    /// is the faster one, so its link joins the tree and `from` leaves it.
    /// The threshold keeps two paths of about the same speed from
    /// swapping back and forth.
    fn reroute(&mut self, from: ConnId, m: &announce::Missing, out: &mut Vec<Output>) {
        let Some(threshold) = self.cfg.optimize_threshold else {
            return;
        };
        if m.asked > 0 || self.now - m.first < threshold || m.announcers.contains(&from) {
            return;
        }
        let Some(&faster) = m.announcers.first() else {
            return;
        };
        let from_eager = self.conns.get(&from).is_some_and(|c| !c.lazy);
        if !from_eager || !self.conns.contains_key(&faster) {
            return;
        }
        self.stats.rerouted += 1;
        // Only the announcer starts pushing: this node's own pushes over
        // that link stay as they were.
        out.push(Output::Send {
            conn: faster,
            msg: Message::Graft(Graft::ids(Vec::new())),
        });
        self.prune(from, out);
    }

    /// A neighbour asks to be back on the tree, and for these messages.
    pub(super) fn on_graft(&mut self, conn: ConnId, g: Graft, out: &mut Vec<Output>) {
        self.set_lazy(conn, false);
        let asked = g.ids.iter().filter_map(|id| self.store.get(id));
        // Replayed no further back than a link's slowest answer; and a
        // payload window more where tree links hold payloads
        // (`chat_batch`): what came here that long ago may have gone out
        // only a window later, while the peer's old way was still its way.
        let replay = Duration::from_millis(u64::from(g.replay_ms))
            .min(self.cfg.probe_timeout.saturating_mul(4))
            + self.cfg.chat_batch;
        let since = if g.replay_ms == 0 {
            Instant::MAX
        } else {
            self.now.saturating_sub(replay)
        };
        let replayed = self.store.since(since).filter(|c| !g.ids.contains(&c.id));
        for chat in self.fitting(asked.chain(replayed)) {
            out.push(Output::Send {
                conn,
                msg: Message::Chat(chat),
            });
        }
    }

    /// Copies of `chats`, in order, as many as fit in one frame.
    pub(super) fn fitting<'a>(&self, chats: impl Iterator<Item = &'a Chat>) -> Vec<Chat> {
        let budget = self.frame_budget();
        let mut used = 0;
        chats
            .take_while(|c| {
                used += chat_size(c);
                used <= budget
            })
            .cloned()
            .collect()
    }

    /// The chat digest without the streams of lives that ended longer
    /// ago than any history is kept (gc forgets those).
    pub(super) fn live_digest(&self) -> Vec<(NodeKey, u64)> {
        let mut d = self.streams.digest();
        d.retain(|(k, _)| !self.long_gone(*k));
        d
    }

    /// Whether `key` is a life that ended longer ago than any history is
    /// kept (superseded, dead or departed).
    pub(super) fn long_gone(&self, key: NodeKey) -> bool {
        self.members.get(&key.id).is_some_and(|m| {
            let ended = m.incarnation > key.incarnation
                || (m.incarnation == key.incarnation && !m.in_roster());
            ended && self.now - m.since >= self.cfg.history_max_age
        })
    }

    pub(super) fn send_chat(&mut self, text: String, wall_ms: u64, out: &mut Vec<Output>) {
        if text.len() > self.cfg.max_text_len {
            out.push(Output::Event(Event::Refused(Refusal::TextTooLong {
                len: text.len(),
                max: self.cfg.max_text_len,
            })));
            return;
        }
        let id = MsgId {
            origin: self.me,
            seq: self.next_seq,
        };
        let chat = Chat::signed(&self.key, id, self.name.clone(), Arc::from(text), wall_ms);
        self.next_seq += 1;
        self.on_chat(chat, None, Via::Live, true, out);
    }

    /// Takes in a chat message from anywhere: dedup, hold-back, delivery,
    /// storage and flooding. Returns whether it was new.
    pub(super) fn on_chat(
        &mut self,
        chat: Chat,
        from: Option<ConnId>,
        via: Via,
        forward: bool,
        out: &mut Vec<Output>,
    ) -> bool {
        let key = chat.id.origin;
        let seq = chat.id.seq;
        // Seen before (past the frontier, held back, or kept in the
        // history while the hold-back was full): a copy, not checked again.
        let seen = self
            .streams
            .map
            .get(&key)
            .is_some_and(|s| seq <= s.delivered || s.held.contains_key(&seq));
        if seen || self.store.get(&chat.id).is_some() {
            self.stats.duplicates += 1;
            return false;
        }
        // Nothing is stored, passed on or delivered unless its author
        // signed it.
        if key != self.me && !self.authenticity.authentic(&chat) {
            self.stats.forged += 1;
            return false;
        }
        let frontier = self.streams.map.get(&key).map_or(0, |s| s.delivered);
        if seq > frontier.saturating_add(MAX_SEQ_JUMP) {
            self.stats.unexpected += 1;
            return false;
        }
        if !self.streams.map.contains_key(&key) {
            if self.long_gone(key) {
                // No honest node still holds messages of this life: a replay.
                self.stats.duplicates += 1;
                return false;
            }
            if self.streams.map.len() >= self.cfg.max_members * 2 && !self.evict_stream() {
                self.stats.members_refused += 1;
                return false;
            }
        }
        let s = self.streams.map.entry(key).or_default();
        // Past the frontier, held back, or kept in the history while the
        // hold-back was full: seen before.
        if seq <= s.delivered || s.held.contains_key(&seq) || !self.store.insert(self.now, &chat) {
            self.stats.duplicates += 1;
            return false;
        }
        s.last_active = self.now;
        self.last_new_chat = self.now;
        if via == Via::Repair {
            // Chat was lost on the way here: so the lazy links hear of
            // this one too (see `pick_announcers`), not only of those
            // that come after it.
            self.last_loss = Some(self.now);
        }
        let in_order = seq == s.delivered + 1;
        if let Some(m) = self.announce.arrived(&chat.id) {
            if let (Some(from), Via::Live) = (from, via) {
                self.reroute(from, &m, out);
            }
        }
        if forward {
            // The tree gets the message, pruned links its id.
            let msg = Message::Chat(chat.clone());
            let mut lazy = Vec::new();
            let mut tree = Vec::new();
            for (&conn, c) in &self.conns {
                let Some(peer) = c.peer else {
                    continue;
                };
                if Some(conn) != from && peer.id != key.id {
                    if c.lazy {
                        lazy.push(conn);
                    } else if self.cfg.chat_batch == Duration::ZERO {
                        out.push(Output::Send {
                            conn,
                            msg: msg.clone(),
                        });
                    } else {
                        tree.push((conn, c.payload_sent));
                    }
                }
            }
            for (conn, last) in tree {
                let every = self.cfg.chat_batch;
                if let Some(chats) =
                    self.announce
                        .hold_payload(conn, chat.clone(), self.now, every, last)
                {
                    self.write_payloads(conn, chats, out);
                }
            }
            for conn in self.pick_announcers(lazy, key == self.me) {
                self.announce_to(conn, chat.id, out);
            }
        }
        if !in_order && via == Via::Live {
            if let Some(from) = from {
                self.pull_gap(key, seq, from);
            }
        }
        if in_order {
            self.deliver(chat, via, out);
            self.drain_held(key, out);
        } else if let Some(s) = self.streams.map.get_mut(&key) {
            s.held.insert(seq, (chat, via));
            s.waiting_since.get_or_insert(self.now);
            self.streams.waiting.insert(key);
            self.streams.held_total += 1;
            // Bounded over all streams: past the bound the newest stays in
            // the history store only, and is delivered from there once the
            // gap fills.
            if self.streams.held_total > self.cfg.max_holdback {
                if s.held.pop_last().is_some() {
                    self.streams.held_total = self.streams.held_total.saturating_sub(1);
                }
                self.stats.held_dropped += 1;
            }
        }
        true
    }

    pub(super) fn deliver(&mut self, chat: Chat, via: Via, out: &mut Vec<Output>) {
        let live = via == Via::Live;
        if via == Via::Repair {
            self.last_loss = Some(self.now);
        }
        self.streams
            .set_delivered(chat.id.origin, chat.id.seq, self.now, chat.sent_ms, live);
        self.stats.delivered += 1;
        let addr = self.addr_of(chat.id.origin.id);
        out.push(Output::Event(Event::Chat {
            id: chat.id,
            addr,
            name: chat.name,
            text: chat.text,
            sent_ms: chat.sent_ms,
            via,
        }));
    }

    /// Delivers what follows the frontier: held messages, or messages the
    /// history store kept when the hold-back was full.
    pub(super) fn drain_held(&mut self, key: NodeKey, out: &mut Vec<Output>) {
        loop {
            let Some(s) = self.streams.map.get_mut(&key) else {
                return;
            };
            let next = s.delivered + 1;
            if let Some((chat, via)) = s.held.remove(&next) {
                self.streams.held_total = self.streams.held_total.saturating_sub(1);
                self.deliver(chat, via, out);
                continue;
            }
            let id = MsgId {
                origin: key,
                seq: next,
            };
            match self.store.get(&id) {
                Some(chat) => {
                    let chat = chat.clone();
                    self.deliver(chat, Via::Live, out);
                }
                None => break,
            }
        }
        if let Some(s) = self.streams.map.get_mut(&key) {
            if s.held.is_empty() {
                s.waiting_since = None;
                self.streams.waiting.remove(&key);
            } else {
                s.waiting_since = Some(self.now);
            }
        }
    }

    pub(super) fn give_up_gap(&mut self, key: NodeKey, out: &mut Vec<Output>) {
        let Some(s) = self.streams.map.get(&key) else {
            return;
        };
        let Some(&first_held) = s.held.keys().next() else {
            return;
        };
        let first = s.delivered + 1;
        let last = first_held - 1;
        self.stats.gaps += 1;
        self.streams.set_delivered(key, last, self.now, 0, false);
        out.push(Output::Event(Event::Gap {
            origin: key,
            addr: self.addr_of(key.id),
            first,
            last,
        }));
        self.drain_held(key, out);
    }

    // ---- anti-entropy ------------------------------------------------

    /// A neighbour's hashes: its roster's, and its chat hash at its mark
    /// (`None` over a ring link, where chat is not repaired). The chat
    /// hash is compared with this node's at the same mark, so messages
    /// still in flight do not look like losses and a mismatch is answered
    /// at once; a mark this node has not reached yet goes unanswered (the
    /// peer is sent this node's own, older mark to compare), and one older
    /// than any it remembers is compared with its hash now.
    pub(super) fn on_sync(
        &mut self,
        conn: ConnId,
        members_hash: u64,
        chat: Option<(u64, u64)>,
        handshake: bool,
        out: &mut Vec<Output>,
    ) {
        if members_hash != self.roster_hash() {
            self.repair_roster(conn, handshake, out);
        }
        let Some((mark, theirs)) = chat else {
            return;
        };
        let (now_mark, now_hash) = self.chat_hash();
        match self.streams.hash_at(mark) {
            Some(h) if h != theirs => {
                self.chat_repaired = Some(self.now);
                out.push(Output::Send {
                    conn,
                    msg: Message::Digest(Digest {
                        entries: self.live_digest(),
                        reply: true,
                    }),
                })
            }
            None if !handshake && theirs != now_hash => {
                // The peer is further on: it compares this node's mark
                // instead (a node that syncs rarely, or has not learnt the
                // authors' clock from a live message, may lack what the
                // peer has).
                let sync = Sync {
                    members_hash: self.roster_hash(),
                    chat_hash: now_hash,
                    chat_mark: now_mark,
                };
                out.push(Output::Send {
                    conn,
                    msg: Message::Sync(sync),
                });
            }
            _ => {}
        }
    }

    /// Whether a message has waited behind a gap for `d` or longer.
    fn gap_waited(&self, d: Duration) -> bool {
        self.streams.waiting.iter().any(|k| {
            self.streams
                .map
                .get(k)
                .and_then(|s| s.waiting_since)
                .is_some_and(|t| self.now - t >= d)
        })
    }

    /// A message waits behind a gap that no longer looks like messages in
    /// flight (it has waited as long as a message may take to reach
    /// everyone, `settle_wait`): this node's digest goes to a random
    /// neighbour each sync round, which answers with what it holds past
    /// it. Its own `Sync` would not do: a held message moves no frontier,
    /// so the chat hash stays as it was until the mark passes the gap.
    pub(super) fn ask_for_gaps(&mut self, out: &mut Vec<Output>) {
        if self.gap_waited(self.settle_wait()) {
            self.digest_to_random_neighbour(out);
        }
    }

    /// Sends this node's chat digest to a neighbour drawn at random,
    /// which answers with what it holds past it.
    fn digest_to_random_neighbour(&mut self, out: &mut Vec<Output>) {
        if let Some(conn) = self.random_neighbour() {
            out.push(Output::Send {
                conn,
                msg: Message::Digest(Digest {
                    entries: self.live_digest(),
                    reply: false,
                }),
            });
        }
    }

    /// A neighbour's membership hash differs from this node's. Changes
    /// travel by flood (and accusations also by gossip rounds): a
    /// mismatch is most often news in flight. So a handshake only marks
    /// the link to be checked again at the next sync round (by the side
    /// that dialled); a [`Sync`] that still differs is answered with the
    /// digest by bucket, and the two sides then trade the entries of the
    /// buckets that differ, not their whole views. At most one digest per
    /// link per `full_sync_cooldown`.
    fn repair_roster(&mut self, conn: ConnId, handshake: bool, out: &mut Vec<Output>) {
        let now = self.now;
        let cooldown = self.cfg.full_sync_cooldown;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if handshake {
            c.recheck |= c.dialed.is_some();
            return;
        }
        if c.last_repair.is_some_and(|t| now - t < cooldown) {
            return;
        }
        c.last_repair = Some(now);
        out.push(Output::Send {
            conn,
            msg: Message::Buckets(self.roster_buckets()),
        });
    }

    pub(super) fn on_digest(&mut self, conn: ConnId, d: Digest, out: &mut Vec<Output>) {
        if d.entries.len() > self.cfg.max_members * 2 {
            self.stats.unexpected += 1;
            return;
        }
        self.chat_repaired = Some(self.now);
        let theirs: BTreeMap<NodeKey, u64> = d.entries.iter().copied().collect();
        let mut chats = Vec::new();
        let mut used = 0;
        let mut held_back = false;
        let budget = self.frame_budget();
        // What arrived here within that long is most likely still in
        // flight to the peer; nothing is over a bridge just made.
        let mut in_flight = self.in_flight(conn);
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.bridge && self.now - c.opened < in_flight)
        {
            in_flight = Duration::ZERO;
        }
        'streams: for (key, s) in &self.streams.map {
            if self.long_gone(*key) {
                // Forgotten at the next gc: not handed on meanwhile (a
                // newcomer could not tell its messages from new ones).
                continue;
            }
            let have = theirs.get(key).copied().unwrap_or(0);
            if s.delivered > have {
                for (at, c) in self.store.range(*key, have + 1, s.delivered) {
                    if chats.len() >= self.cfg.repair_batch || used + chat_size(c) > budget {
                        break 'streams;
                    }
                    if self.now - at >= in_flight {
                        used += chat_size(c);
                        chats.push(c.clone());
                    } else {
                        held_back = true;
                    }
                }
            }
        }
        if held_back {
            // Only on a link just made: within one overlay the held-back
            // messages are on their way by other paths.
            let (now, due) = (self.now, self.now + in_flight);
            if let Some(c) = self
                .conns
                .get_mut(&conn)
                .filter(|c| now - c.opened < in_flight)
            {
                c.held_back.get_or_insert(due);
            }
        }
        let behind = theirs
            .iter()
            .any(|(k, seq)| *seq > self.streams.delivered(k));
        if !chats.is_empty() {
            self.stats.repaired_sent += chats.len() as u64;
            out.push(Output::Send {
                conn,
                msg: Message::History(History {
                    chats,
                    baseline: None,
                }),
            });
        }
        if d.reply && behind {
            out.push(Output::Send {
                conn,
                msg: Message::Digest(Digest {
                    entries: self.live_digest(),
                    reply: false,
                }),
            });
        }
    }

    /// How long a message that reached this node may still be on its way
    /// to the peer over `conn` with nothing lost, by the measured
    /// latencies. On the leader's first-arrival tree (`Config::rooted_tree`)
    /// this node sits `at` from the leader (its beacon's way, half of each
    /// link's round trip summed), and a neighbour no further than `at`
    /// plus half the link's round trip, so the tree's way between them is
    /// at most `2 at` plus that half; the peer's digest left it half a
    /// round trip before it came, and each hop may hold a message for
    /// `chat_batch`. At least four round trips of the link (an
    /// announcement, a graft and its answer), and `graft_timeout` (how
    /// late the tree may be before a message counts as lost there, which
    /// also covers links whose round trip is not measured yet). Without a
    /// place on the tree (no beacon within two intervals, or no rooted
    /// tree) a sync interval, or two round trips if longer. Doubling the
    /// estimate held messages back past a sync interval on a 40-node tree
    /// of 20-120 ms links, and a bridge between two halves then got one
    /// half's messages only 5.5 s later (`wan-bridges` seeds 2 and 12).
    pub(super) fn in_flight(&self, conn: ConnId) -> Duration {
        let rtt = self.rtt(conn);
        let Some((at, hops)) = self.tree_place().filter(|_| self.cfg.rooted_tree) else {
            return self.cfg.sync_interval.max(rtt.saturating_mul(2));
        };
        let hops = u64::from(hops) * 2 + 1;
        let way = at.saturating_mul(2) + rtt + self.cfg.chat_batch.saturating_mul(hops);
        way.max(rtt.saturating_mul(4)).max(self.cfg.graft_timeout)
    }

    /// Sync round: over each link just made where the first repair held
    /// messages back as still in flight to the peer (they came here
    /// moments before), and they would have landed by now, this node sends
    /// its digest, asking for the peer's: the peer answers with what it
    /// still lacks, which is sent then. Within one overlay such messages
    /// are on their way by other paths; a link just made between two parts
    /// of it (after a split, or to a bridge) has no other path, and the
    /// last messages before it came up would otherwise wait for a later
    /// message of their sender to show the gap.
    pub(super) fn recheck_held_back(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        let due: Vec<ConnId> = self
            .neighbours
            .values()
            .copied()
            .filter(|c| {
                self.conns.get_mut(c).is_some_and(|c| {
                    let due = c.held_back.is_some_and(|t| t <= now);
                    if due {
                        c.held_back = None;
                    }
                    due
                })
            })
            .collect();
        if due.is_empty() {
            return;
        }
        let entries = self.live_digest();
        for conn in due {
            out.push(Output::Send {
                conn,
                msg: Message::Digest(Digest {
                    entries: entries.clone(),
                    reply: true,
                }),
            });
        }
    }

    pub(super) fn on_history(&mut self, conn: ConnId, h: History, out: &mut Vec<Output>) {
        let newcomer = h.baseline.is_some();
        // A join's answer is a catch-up only for a join sent before this
        // node was ever a member; one sent to get back in (after a split
        // took every link) brings what it missed as a member: a repair.
        let catch_up = newcomer && self.conns.get(&conn).is_some_and(|c| c.first_join);
        let mut chats = h.chats;
        chats.truncate(self.cfg.repair_batch.max(self.cfg.newcomer_history));
        chats.retain(|c| self.valid_chat(c));
        if let Some(base) = h.baseline {
            if !self.joined {
                for (key, seq) in base {
                    if self.streams.map.contains_key(&key)
                        || key.id == self.me.id
                        || key.incarnation >= MAX_INCARNATION
                        || seq >= MAX_SEQ
                    {
                        continue;
                    }
                    if self.streams.map.len() >= self.cfg.max_members * 2 {
                        self.stats.members_refused += 1;
                        break;
                    }
                    let first_sent = chats
                        .iter()
                        .filter(|c| c.id.origin == key)
                        .map(|c| c.id.seq)
                        .min();
                    let start = first_sent.map_or(seq, |f| seq.min(f.saturating_sub(1)));
                    self.streams.set_delivered(key, start, self.now, 0, false);
                    if let Some(s) = self.streams.map.get_mut(&key) {
                        s.last_active = self.now;
                    }
                }
            }
        }
        let mut new = false;
        for chat in chats {
            let via = if catch_up { Via::CatchUp } else { Via::Repair };
            new |= self.on_chat(chat, Some(conn), via, !newcomer, out);
        }
        if new && !newcomer {
            // The tree did not bring these: pull this link back onto it.
            self.graft(conn, out);
        }
    }
}
