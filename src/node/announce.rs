//! Lazy push: the ids announced over links off the broadcast tree
//! (`IHave`), gathered per link and sent in one message per link per
//! `ihave_interval`; and the ids announced to this node that the tree has
//! not brought yet, each with the links that announced it, so that a graft
//! can ask the next announcer when the first does not answer. Also the
//! chat payloads held for tree links under `Config::chat_batch`, written
//! together once per window.

use crate::message::{Chat, MsgId};
use crate::node::ConnId;
use crate::time::{Duration, Instant};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Most ids queued for one link; a full queue is sent at once.
pub(super) const MAX_QUEUED: usize = 512;
/// Most chat payloads held for one tree link; a full batch is written at
/// once.
pub(super) const MAX_HELD_PAYLOADS: usize = 64;
/// Announcers remembered per missing message.
const MAX_ANNOUNCERS: usize = 4;
/// Rounds of asks over a missing message's announcers before it is left
/// to repair.
const ASK_ROUNDS: usize = 2;
/// Announcements over a link whose ids the next one repeats.
const REPEATED: usize = 2;

/// A message announced to this node and not received yet.
#[derive(Clone, Debug)]
pub(super) struct Missing {
    /// The links that announced it, first announcer first.
    pub(super) announcers: Vec<ConnId>,
    /// When the first announcement came.
    pub(super) first: Instant,
    /// When the next graft goes out.
    due: Instant,
    /// Announcers already asked.
    pub(super) asked: usize,
    /// Taken as announced by the link that brought a later message of its
    /// stream ahead of it, where that is not yet a loss (see
    /// `Node::pull_gap`).
    gap: bool,
}

/// Ids gathered for one lazy link, and when they go out.
#[derive(Clone, Debug)]
struct Batch {
    due: Instant,
    ids: Vec<MsgId>,
}

/// Chat payloads held for one tree link, and when they go out.
#[derive(Clone, Debug)]
struct Payloads {
    due: Instant,
    chats: Vec<Chat>,
}

/// The announcement queues, the payloads held for tree links, and the
/// missing table.
#[derive(Clone, Debug, Default)]
pub(super) struct Announce {
    queued: BTreeMap<ConnId, Batch>,
    held: BTreeMap<ConnId, Payloads>,
    missing: BTreeMap<MsgId, Missing>,
    /// The missing messages by graft deadline.
    by_due: BTreeSet<(Instant, MsgId)>,
    /// The new ids of the last [`REPEATED`] announcements sent over each
    /// lazy link lately, oldest first, and when the last went: the next
    /// one over the link repeats them.
    sent: BTreeMap<ConnId, (Instant, VecDeque<Vec<MsgId>>)>,
}

impl Announce {
    /// Queues `id` for `conn`, whose batch goes out `every` after its
    /// first id; returns the batch to send now if the queue is full.
    pub(super) fn queue(
        &mut self,
        conn: ConnId,
        id: MsgId,
        now: Instant,
        every: Duration,
    ) -> Option<Vec<MsgId>> {
        let b = self.queued.entry(conn).or_insert_with(|| Batch {
            due: now + every,
            ids: Vec::new(),
        });
        b.ids.push(id);
        if b.ids.len() >= MAX_QUEUED {
            return self.queued.remove(&conn).map(|b| b.ids);
        }
        None
    }

    /// The announcement to send over `conn` now with `ids`: they, after
    /// the ids of the last [`REPEATED`] sent over it if the last went
    /// out within `keep` (up to [`MAX_QUEUED`] in all, the newest kept).
    /// A lost announcement is made up by the next ones over the same
    /// link, not left to the digest sync, which runs every few seconds
    /// while chat flows: with one announcer per node, two lost in a row
    /// (1 in 400 at 5% loss) held a message that long. Repeats cost
    /// bytes, not messages. Links quiet for `keep` are forgotten.
    pub(super) fn repeating(
        &mut self,
        conn: ConnId,
        ids: Vec<MsgId>,
        now: Instant,
        keep: Duration,
    ) -> Vec<MsgId> {
        self.sent.retain(|_, (t, _)| now - *t < keep);
        let room = MAX_QUEUED.saturating_sub(ids.len());
        let last = self
            .sent
            .entry(conn)
            .or_insert_with(|| (now, VecDeque::new()));
        let mut all: Vec<MsgId> = last.1.iter().flatten().copied().collect();
        all.drain(..all.len().saturating_sub(room));
        all.extend_from_slice(&ids);
        last.0 = now;
        last.1.push_back(ids);
        if last.1.len() > REPEATED {
            last.1.pop_front();
        }
        all
    }

    /// Whether ids wait for `conn` in the current batch window.
    pub(super) fn has_queued(&self, conn: ConnId) -> bool {
        self.queued.get(&conn).is_some_and(|b| !b.ids.is_empty())
    }

    /// The batch waiting for `conn`, taken out of its window early (it
    /// goes with something else written to that link).
    pub(super) fn take(&mut self, conn: ConnId) -> Option<Vec<MsgId>> {
        self.queued
            .remove(&conn)
            .map(|b| b.ids)
            .filter(|ids| !ids.is_empty())
    }

    /// The batches that are due.
    pub(super) fn due_batches(&mut self, now: Instant) -> Vec<(ConnId, Vec<MsgId>)> {
        take_due(&mut self.queued, now, |b| b.due)
            .into_iter()
            .map(|(c, b)| (c, b.ids))
            .collect()
    }

    /// Holds `chat` for the tree link `conn`, whose payloads were last
    /// written at `last` (if ever): a link written to `every` ago or
    /// longer, with nothing held, gets it at once (returned, to write
    /// now); otherwise it waits until `every` after that write, behind
    /// what is held already (the order each link gets is the order of
    /// arrival). A full batch is returned to write now.
    pub(super) fn hold_payload(
        &mut self,
        conn: ConnId,
        chat: Chat,
        now: Instant,
        every: Duration,
        last: Option<Instant>,
    ) -> Option<Vec<Chat>> {
        if let Some(p) = self.held.get_mut(&conn) {
            p.chats.push(chat);
            if p.chats.len() >= MAX_HELD_PAYLOADS {
                return self.held.remove(&conn).map(|p| p.chats);
            }
            return None;
        }
        match last {
            Some(t) if now < t + every => {
                let p = Payloads {
                    due: t + every,
                    chats: vec![chat],
                };
                self.held.insert(conn, p);
                None
            }
            _ => Some(vec![chat]),
        }
    }

    /// Whether payloads are held for `conn`.
    pub(super) fn has_held(&self, conn: ConnId) -> bool {
        self.held.contains_key(&conn)
    }

    /// The payloads held for `conn`, taken out of their window early (they
    /// go with something else written to that link).
    pub(super) fn take_held(&mut self, conn: ConnId) -> Option<Vec<Chat>> {
        self.held.remove(&conn).map(|p| p.chats)
    }

    /// The held payloads that are due.
    pub(super) fn due_payloads(&mut self, now: Instant) -> Vec<(ConnId, Vec<Chat>)> {
        take_due(&mut self.held, now, |p| p.due)
            .into_iter()
            .map(|(c, p)| (c, p.chats))
            .collect()
    }

    /// Payloads held and ids queued, over all links.
    pub(super) fn outbox_len(&self) -> usize {
        let held: usize = self.held.values().map(|p| p.chats.len()).sum();
        held + self.queued.values().map(|b| b.ids.len()).sum::<usize>()
    }

    /// The earliest instant something here is due.
    pub(super) fn next_due(&self) -> Instant {
        let graft = self.by_due.first().map_or(Instant::MAX, |m| m.0);
        let payload = self.held.values().map(|p| p.due).fold(graft, Instant::min);
        self.queued
            .values()
            .map(|b| b.due)
            .fold(payload, Instant::min)
    }

    /// Messages announced and not received.
    pub(super) fn missing_len(&self) -> usize {
        self.missing.len()
    }

    /// Whether `id` is announced and not received.
    pub(super) fn is_missing(&self, id: &MsgId) -> bool {
        self.missing.contains_key(id)
    }

    /// `conn` announced `id`, not received yet (`gap`: a later message
    /// of its stream came over `conn` ahead of it, and that is a loss
    /// only if `id` is not here by the graft deadline): the first
    /// announcement sets the graft deadline, later ones queue up as
    /// fallbacks.
    pub(super) fn announced(
        &mut self,
        id: MsgId,
        conn: ConnId,
        now: Instant,
        wait: Duration,
        gap: bool,
    ) {
        match self.missing.get_mut(&id) {
            Some(m) => {
                m.gap |= gap;
                if m.announcers.len() < MAX_ANNOUNCERS && !m.announcers.contains(&conn) {
                    m.announcers.push(conn);
                }
            }
            None => {
                let due = now + wait;
                self.missing.insert(
                    id,
                    Missing {
                        announcers: vec![conn],
                        first: now,
                        due,
                        asked: 0,
                        gap,
                    },
                );
                self.by_due.insert((due, id));
            }
        }
    }

    /// The missing messages whose next announcer is `conn`, at most
    /// `MAX_QUEUED` of them, taken as asked of it now: they go in the graft
    /// that puts its link back on the tree. Each is asked of its next
    /// announcer if it has not come `retry` from now (plus `rtt`, the
    /// link's round trip, when it was the last announcer: see
    /// [`Announce::due_grafts`]).
    pub(super) fn ask_of(
        &mut self,
        conn: ConnId,
        now: Instant,
        retry: Duration,
        rtt: Duration,
    ) -> Vec<MsgId> {
        let mut asked = Vec::new();
        for (id, m) in &mut self.missing {
            if asked.len() >= MAX_QUEUED {
                break;
            }
            if m.announcers.get(m.asked) != Some(&conn) {
                continue;
            }
            self.by_due.remove(&(m.due, *id));
            m.asked += 1;
            m.due = now + retry;
            if m.asked >= m.announcers.len() {
                m.due += rtt;
            }
            self.by_due.insert((m.due, *id));
            asked.push(*id);
        }
        asked
    }

    /// Whether `id` is a message a later one of its stream came ahead of,
    /// asked for the first time just now (by [`Announce::due_grafts`]):
    /// nothing brought it within the graft wait, so it was lost, not on
    /// its way over a slower path.
    pub(super) fn gap_first_asked(&self, id: &MsgId) -> bool {
        self.missing.get(id).is_some_and(|m| m.gap && m.asked == 1)
    }

    /// `id` arrived: what was known of its announcements, if anything.
    pub(super) fn arrived(&mut self, id: &MsgId) -> Option<Missing> {
        let m = self.missing.remove(id)?;
        self.by_due.remove(&(m.due, *id));
        Some(m)
    }

    /// The grafts due now: for each message, the next announcer to ask.
    /// A message with announcers left is asked again after `retry`. Once
    /// each was asked, the round starts again, up to [`ASK_ROUNDS`]: on
    /// a lossy network a graft, or its answer, is lost too, and the few
    /// announcers a node keeps (`Config::announcers`) announce each id
    /// once. An ask past the first round waits `retry` plus the link's
    /// round trip (`rtt`) for its answer, so that one in flight is not
    /// asked for again.
    ///
    /// Also says whether a message was left after its last round: a
    /// message announced that no announcer's answer brought.
    pub(super) fn due_grafts(
        &mut self,
        now: Instant,
        retry: Duration,
        rtt: impl Fn(ConnId) -> Duration,
    ) -> (Vec<(ConnId, MsgId)>, bool) {
        let mut asks = Vec::new();
        let mut left = false;
        while let Some(&(due, id)) = self.by_due.first() {
            if due > now {
                break;
            }
            self.by_due.pop_first();
            let Some(m) = self.missing.get_mut(&id) else {
                continue;
            };
            let n = m.announcers.len();
            if n == 0 || m.asked >= n * ASK_ROUNDS {
                left |= n > 0;
                self.missing.remove(&id);
                continue;
            }
            // Asked; if it does not answer in time, the next announcer
            // (one that announces later counts too).
            let conn = m.announcers[m.asked % n];
            asks.push((conn, id));
            m.asked += 1;
            m.due = now + retry;
            if m.asked >= n {
                m.due += rtt(conn);
            }
            self.by_due.insert((m.due, id));
        }
        (asks, left)
    }
}

/// Takes out of `map` the entries whose `due` instant has come.
fn take_due<T>(
    map: &mut BTreeMap<ConnId, T>,
    now: Instant,
    due: impl Fn(&T) -> Instant,
) -> Vec<(ConnId, T)> {
    let ready: Vec<ConnId> = map
        .iter()
        .filter(|(_, v)| due(v) <= now)
        .map(|(c, _)| *c)
        .collect();
    ready
        .into_iter()
        .filter_map(|c| map.remove(&c).map(|v| (c, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Id, NodeKey};

    fn id(seq: u64) -> MsgId {
        MsgId {
            origin: NodeKey {
                id: Id::of_addr("10.0.0.1:7000".parse().expect("addr")),
                incarnation: 1,
            },
            seq,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A chat with this id (unsigned: nothing here looks at it).
    fn chat_of(seq: u64) -> Chat {
        Chat {
            id: id(seq),
            name: "n".into(),
            text: "t".into(),
            sent_ms: 0,
            key: [0; 32],
            sig: ed25519_dalek::Signature::from_bytes(&[0; 64]),
        }
    }

    #[test]
    fn a_busy_link_holds_payloads_until_its_window_ends() {
        let mut a = Announce::default();
        let t0 = Instant::from_millis(1000);
        // Never written, or written a window ago or more: at once.
        assert_eq!(
            a.hold_payload(ConnId(1), chat_of(1), t0, ms(100), None)
                .map(|v| v.len()),
            Some(1)
        );
        let last = Some(t0);
        assert!(a
            .hold_payload(ConnId(1), chat_of(2), t0 + ms(30), ms(100), last)
            .is_none());
        // Behind a held one even once the window is over.
        assert!(a
            .hold_payload(ConnId(1), chat_of(3), t0 + ms(150), ms(100), last)
            .is_none());
        assert!(a.has_held(ConnId(1)));
        assert_eq!(a.outbox_len(), 2);
        assert_eq!(a.next_due(), t0 + ms(100));
        assert!(a.due_payloads(t0 + ms(99)).is_empty());
        let due = a.due_payloads(t0 + ms(100));
        let seqs: Vec<u64> = due[0].1.iter().map(|c| c.id.seq).collect();
        assert_eq!((due.len(), due[0].0, seqs), (1, ConnId(1), vec![2, 3]));
        assert_eq!(a.next_due(), Instant::MAX);
        // A full batch goes at once.
        let busy = Some(t0 + ms(100));
        let mut full = None;
        for seq in 0..MAX_HELD_PAYLOADS as u64 {
            full = a.hold_payload(ConnId(2), chat_of(seq), t0 + ms(101), ms(100), busy);
        }
        assert_eq!(full.map(|v| v.len()), Some(MAX_HELD_PAYLOADS));
        assert!(!a.has_held(ConnId(2)));
    }

    #[test]
    fn announcements_go_out_in_one_batch_per_link_per_window() {
        let mut a = Announce::default();
        let t0 = Instant::from_millis(1000);
        assert!(a.queue(ConnId(1), id(1), t0, ms(50)).is_none());
        assert!(a.queue(ConnId(1), id(2), t0 + ms(10), ms(50)).is_none());
        // A slower link's window is longer, and starts with its first id.
        assert!(a.queue(ConnId(2), id(1), t0 + ms(20), ms(200)).is_none());
        assert_eq!(a.next_due(), t0 + ms(50));
        assert!(a.due_batches(t0 + ms(49)).is_empty());
        let b = a.due_batches(t0 + ms(50));
        assert_eq!(b, vec![(ConnId(1), vec![id(1), id(2)])]);
        assert_eq!(a.next_due(), t0 + ms(220));
        assert!(a.due_batches(t0 + ms(219)).is_empty());
        assert_eq!(a.due_batches(t0 + ms(220)), vec![(ConnId(2), vec![id(1)])]);
        assert_eq!(a.next_due(), Instant::MAX);
    }

    #[test]
    fn each_announcement_repeats_the_last_two_over_its_link_for_a_while() {
        let mut a = Announce::default();
        let t0 = Instant::from_millis(1000);
        let keep = ms(4000);
        assert_eq!(a.repeating(ConnId(1), vec![id(1)], t0, keep), vec![id(1)]);
        assert_eq!(a.repeating(ConnId(2), vec![id(1)], t0, keep), vec![id(1)]);
        // Link 1's next carries the one before (lost, for all it knows).
        assert_eq!(
            a.repeating(ConnId(1), vec![id(2), id(3)], t0 + ms(800), keep),
            vec![id(1), id(2), id(3)]
        );
        // And the one before that: two lost in a row are made up too.
        assert_eq!(
            a.repeating(ConnId(1), vec![id(4)], t0 + ms(1600), keep),
            vec![id(1), id(2), id(3), id(4)]
        );
        assert_eq!(
            a.repeating(ConnId(1), vec![id(5)], t0 + ms(2400), keep),
            vec![id(2), id(3), id(4), id(5)]
        );
        // Past `keep` the sync has come round: nothing repeated, and a
        // link quiet that long is forgotten.
        assert_eq!(
            a.repeating(ConnId(1), vec![id(6)], t0 + ms(6400), keep),
            vec![id(6)]
        );
        assert_eq!(a.sent.len(), 1);
        // A repeat never makes an announcement longer than a full batch,
        // and keeps the newest ids.
        let most: Vec<MsgId> = (10..9 + MAX_QUEUED as u64).map(id).collect();
        let all = a.repeating(ConnId(1), most.clone(), t0 + ms(6500), keep);
        assert_eq!(all[0], id(6));
        assert_eq!(all[1..], most[..]);
        let full: Vec<MsgId> = (100..100 + MAX_QUEUED as u64).map(id).collect();
        let all = a.repeating(ConnId(1), full.clone(), t0 + ms(6600), keep);
        assert_eq!(all, full);
        let all = a.repeating(ConnId(1), vec![id(7)], t0 + ms(6700), keep);
        assert_eq!(all.len(), MAX_QUEUED);
        assert_eq!(all[..MAX_QUEUED - 1], full[1..]);
    }

    #[test]
    fn a_batch_taken_early_leaves_the_others_waiting() {
        let mut a = Announce::default();
        let t0 = Instant::from_millis(1000);
        assert!(a.queue(ConnId(1), id(1), t0, ms(50)).is_none());
        assert!(a.queue(ConnId(2), id(2), t0, ms(80)).is_none());
        assert_eq!(a.take(ConnId(1)), Some(vec![id(1)]));
        assert_eq!(a.take(ConnId(1)), None);
        assert!(!a.has_queued(ConnId(1)));
        assert_eq!(a.next_due(), t0 + ms(80));
        assert_eq!(a.due_batches(t0 + ms(80)), vec![(ConnId(2), vec![id(2)])]);
    }

    #[test]
    fn a_full_queue_goes_out_at_once() {
        let mut a = Announce::default();
        let t0 = Instant::from_millis(1000);
        for s in 1..MAX_QUEUED as u64 {
            assert!(a.queue(ConnId(1), id(s), t0, ms(50)).is_none());
        }
        let full = a.queue(ConnId(1), id(MAX_QUEUED as u64), t0, ms(50));
        assert_eq!(full.map(|b| b.len()), Some(MAX_QUEUED));
    }

    #[test]
    fn a_graft_asks_the_next_announcer_when_the_first_does_not_answer() {
        let mut a = Announce::default();
        let t0 = Instant::from_millis(1000);
        a.announced(id(1), ConnId(1), t0, ms(150), false);
        a.announced(id(1), ConnId(2), t0 + ms(5), ms(150), false);
        a.announced(id(1), ConnId(2), t0 + ms(6), ms(150), false);
        assert_eq!(
            a.due_grafts(t0 + ms(149), ms(80), |_| ms(40)),
            (vec![], false)
        );
        assert_eq!(
            a.due_grafts(t0 + ms(150), ms(80), |_| ms(40)),
            (vec![(ConnId(1), id(1))], false)
        );
        assert_eq!(
            a.due_grafts(t0 + ms(230), ms(80), |_| ms(40)),
            (vec![(ConnId(2), id(1))], false)
        );
        // Both asked: the second round waits a round trip more for each.
        assert_eq!(
            a.due_grafts(t0 + ms(349), ms(80), |_| ms(40)),
            (vec![], false)
        );
        assert_eq!(
            a.due_grafts(t0 + ms(350), ms(80), |_| ms(40)),
            (vec![(ConnId(1), id(1))], false)
        );
        assert_eq!(
            a.due_grafts(t0 + ms(470), ms(80), |_| ms(40)),
            (vec![(ConnId(2), id(1))], false)
        );
        // Asked of both in both rounds: left, and said so.
        assert_eq!(
            a.due_grafts(t0 + ms(590), ms(80), |_| ms(40)),
            (vec![], true)
        );
        assert_eq!(a.missing_len(), 0);
    }

    #[test]
    fn a_graft_over_a_link_asks_what_it_announced_first() {
        let mut a = Announce::default();
        let t0 = Instant::from_millis(1000);
        a.announced(id(1), ConnId(1), t0, ms(150), false);
        a.announced(id(2), ConnId(2), t0, ms(150), false);
        a.announced(id(2), ConnId(1), t0, ms(150), false);
        // Link 1 announced both, but was first only for message 1.
        assert_eq!(
            a.ask_of(ConnId(1), t0 + ms(10), ms(80), ms(40)),
            vec![id(1)]
        );
        assert!(a.ask_of(ConnId(1), t0 + ms(10), ms(80), ms(40)).is_empty());
        // Message 1 has no other announcer: asked of it again once its
        // retry and a round trip pass; message 2 is asked of link 2 at its
        // own deadline.
        let rtt = |_| ms(40);
        assert_eq!(a.due_grafts(t0 + ms(129), ms(80), rtt), (vec![], false));
        assert_eq!(
            a.due_grafts(t0 + ms(130), ms(80), rtt),
            (vec![(ConnId(1), id(1))], false)
        );
        assert_eq!(
            a.due_grafts(t0 + ms(150), ms(80), rtt),
            (vec![(ConnId(2), id(2))], false)
        );
        assert_eq!(
            a.due_grafts(t0 + ms(230), ms(80), rtt),
            (vec![(ConnId(1), id(2))], false)
        );
        assert_eq!(a.missing_len(), 2);
        // Message 1 was asked of its one announcer in both rounds: once
        // the last ask's answer is due, it is left, and said so.
        assert_eq!(a.due_grafts(t0 + ms(249), ms(80), rtt), (vec![], false));
        assert_eq!(a.due_grafts(t0 + ms(250), ms(80), rtt), (vec![], true));
        assert_eq!(a.missing_len(), 1);
    }

    #[test]
    fn an_arrival_ends_the_wait() {
        let mut a = Announce::default();
        let t0 = Instant::from_millis(1000);
        a.announced(id(1), ConnId(1), t0, ms(150), false);
        let m = a.arrived(&id(1)).expect("was missing");
        assert_eq!((m.announcers, m.first, m.asked), (vec![ConnId(1)], t0, 0));
        assert_eq!(
            a.due_grafts(t0 + ms(500), ms(80), |_| ms(40)),
            (vec![], false)
        );
        assert!(!a.is_missing(&id(1)));
    }
}
