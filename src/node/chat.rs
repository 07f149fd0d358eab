//! Chat: exactly-once, per-sender-order delivery with hold-back, and
//! anti-entropy repair from the bounded history.

use super::*;

impl Node {
    // ---- chat --------------------------------------------------------

    pub(super) fn valid_chat(&mut self, chat: &Chat) -> bool {
        if chat.text.len() > self.cfg.max_text_len || chat.name.len() > 256 || chat.id.seq == 0 {
            self.stats.text_too_long += 1;
            return false;
        }
        true
    }

    pub(super) fn send_chat(&mut self, text: String, out: &mut Vec<Output>) {
        if text.len() > self.cfg.max_text_len {
            out.push(Output::Event(Event::Refused(Refusal::TextTooLong {
                len: text.len(),
                max: self.cfg.max_text_len,
            })));
            return;
        }
        let chat = Chat {
            id: MsgId {
                origin: self.me,
                seq: self.next_seq,
            },
            name: self.name.clone(),
            text: Arc::from(text),
        };
        self.next_seq += 1;
        self.on_chat(chat, None, false, true, out);
    }

    /// Takes in a chat message from anywhere: dedup, hold-back, delivery,
    /// storage and flooding. Returns whether it was new.
    pub(super) fn on_chat(
        &mut self,
        chat: Chat,
        from: Option<ConnId>,
        history: bool,
        forward: bool,
        out: &mut Vec<Output>,
    ) -> bool {
        let key = chat.id.origin;
        let seq = chat.id.seq;
        if !self.streams.map.contains_key(&key)
            && self.streams.map.len() >= self.cfg.max_members * 2
        {
            self.stats.members_refused += 1;
            return false;
        }
        let s = self.streams.map.entry(key).or_default();
        if seq <= s.delivered || s.held.contains_key(&seq) {
            self.stats.duplicates += 1;
            return false;
        }
        s.last_active = self.now;
        let in_order = seq == s.delivered + 1;
        self.store.insert(self.now, &chat);
        if forward {
            self.broadcast(&Message::Chat(chat.clone()), from, out);
        }
        if in_order {
            self.deliver(chat, history, out);
            self.drain_held(key, out);
        } else if let Some(s) = self.streams.map.get_mut(&key) {
            s.held.insert(seq, (chat, history));
            s.waiting_since.get_or_insert(self.now);
            self.streams.waiting.insert(key);
            if s.held.len() > self.cfg.max_holdback {
                self.give_up_gap(key, out);
            }
        }
        true
    }

    pub(super) fn deliver(&mut self, chat: Chat, history: bool, out: &mut Vec<Output>) {
        self.streams
            .set_delivered(chat.id.origin, chat.id.seq, self.now);
        self.stats.delivered += 1;
        out.push(Output::Event(Event::Chat {
            id: chat.id,
            name: chat.name,
            text: chat.text,
            history,
        }));
    }

    pub(super) fn drain_held(&mut self, key: NodeKey, out: &mut Vec<Output>) {
        loop {
            let Some(s) = self.streams.map.get_mut(&key) else {
                return;
            };
            let next = s.delivered + 1;
            match s.held.remove(&next) {
                Some((chat, history)) => self.deliver(chat, history, out),
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
        self.streams.set_delivered(key, last, self.now);
        out.push(Output::Event(Event::Gap {
            origin: key,
            first,
            last,
        }));
        self.drain_held(key, out);
    }

    // ---- anti-entropy ------------------------------------------------

    pub(super) fn on_sync(
        &mut self,
        conn: ConnId,
        members_hash: u64,
        chat_hash: u64,
        out: &mut Vec<Output>,
    ) {
        if members_hash != self.roster_hash() {
            let due = self
                .last_full_sync
                .is_none_or(|t| self.now - t >= self.cfg.full_sync_cooldown);
            if due {
                self.last_full_sync = Some(self.now);
                out.push(Output::Send {
                    conn,
                    msg: Message::PeerList {
                        full: true,
                        members: self.full_list(),
                    },
                });
            }
        }
        if chat_hash != self.chat_hash() {
            out.push(Output::Send {
                conn,
                msg: Message::Digest(Digest {
                    entries: self.streams.digest(),
                    reply: true,
                }),
            });
        }
    }

    pub(super) fn on_digest(&mut self, conn: ConnId, d: Digest, out: &mut Vec<Output>) {
        if d.entries.len() > self.cfg.max_members * 2 {
            self.stats.unexpected += 1;
            return;
        }
        let theirs: BTreeMap<NodeKey, u64> = d.entries.iter().copied().collect();
        let mut chats = Vec::new();
        'streams: for (key, s) in &self.streams.map {
            let have = theirs.get(key).copied().unwrap_or(0);
            if s.delivered > have {
                for (at, c) in self.store.range(*key, have + 1, s.delivered) {
                    if chats.len() >= self.cfg.repair_batch {
                        break 'streams;
                    }
                    // What arrived here within the last sync interval is
                    // most likely still in flight to the peer.
                    if self.now - at >= self.cfg.sync_interval {
                        chats.push(c.clone());
                    }
                }
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
                    entries: self.streams.digest(),
                    reply: false,
                }),
            });
        }
    }

    pub(super) fn on_history(&mut self, conn: ConnId, h: History, out: &mut Vec<Output>) {
        let newcomer = h.baseline.is_some();
        if let Some(base) = h.baseline {
            if !self.joined {
                for (key, seq) in base {
                    if self.streams.map.contains_key(&key) || key.addr == self.me.addr {
                        continue;
                    }
                    let first_sent = h
                        .chats
                        .iter()
                        .filter(|c| c.id.origin == key)
                        .map(|c| c.id.seq)
                        .min();
                    let start = first_sent.map_or(seq, |f| seq.min(f - 1));
                    self.streams.set_delivered(key, start, self.now);
                    if let Some(s) = self.streams.map.get_mut(&key) {
                        s.last_active = self.now;
                    }
                }
                self.joined = true;
            }
        }
        for chat in h
            .chats
            .into_iter()
            .take(self.cfg.repair_batch.max(self.cfg.newcomer_history))
        {
            if self.valid_chat(&chat) {
                self.on_chat(chat, Some(conn), true, !newcomer, out);
            }
        }
    }
}
