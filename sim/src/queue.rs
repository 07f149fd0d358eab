//! The event queue: events ordered by (virtual time, sequence number).
//!
//! Time is in whole milliseconds and sequence numbers grow with every push,
//! so the events of one millisecond are simply kept in push order. The next
//! few seconds are a ring of per-millisecond buckets (push and pop in O(1),
//! no sifting); events further ahead wait in a binary heap and move into
//! the ring, in order, as time comes within its reach. Popping jumps from
//! event to event: empty milliseconds cost one bucket check, there is no
//! tick over nodes or links.

use gossip_chat::Instant;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// Milliseconds covered by the ring.
const RING: u64 = 1 << 13;

struct Far<T> {
    at: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Far<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<T> Eq for Far<T> {}
impl<T> PartialOrd for Far<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Far<T> {
    /// Reversed: the heap pops the earliest (time, seq) first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// A queue of `T` ordered by (time, push order).
pub struct Queue<T> {
    ring: Vec<VecDeque<T>>,
    /// The current millisecond: nothing earlier is queued.
    cur: u64,
    far: BinaryHeap<Far<T>>,
    seq: u64,
    len: usize,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Queue<T> {
    /// An empty queue at time zero.
    pub fn new() -> Self {
        Queue {
            ring: (0..RING).map(|_| VecDeque::new()).collect(),
            cur: 0,
            far: BinaryHeap::new(),
            seq: 0,
            len: 0,
        }
    }

    /// Events queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `item` at `at` (never before the last popped time: earlier
    /// times are treated as now).
    pub fn push(&mut self, at: Instant, item: T) {
        let at = at.as_millis().max(self.cur);
        self.len += 1;
        if at - self.cur < RING {
            self.ring[(at % RING) as usize].push_back(item);
        } else {
            self.seq += 1;
            self.far.push(Far {
                at,
                seq: self.seq,
                item,
            });
        }
    }

    /// Moves the cursor back to `to` (before every queued event), so that
    /// events pushed next may again be due from `to` on instead of being
    /// held to the time of the event last popped.
    pub fn rewind(&mut self, to: Instant) {
        let to = to.as_millis();
        if to >= self.cur {
            return;
        }
        // The ring holds times [cur, cur + RING); the new window is
        // [to, to + RING): what lies past it moves to the heap, in order.
        for t in (to + RING).max(self.cur)..self.cur + RING {
            let bucket = &mut self.ring[(t % RING) as usize];
            while let Some(item) = bucket.pop_front() {
                self.seq += 1;
                self.far.push(Far {
                    at: t,
                    seq: self.seq,
                    item,
                });
            }
        }
        self.cur = to;
    }

    /// Puts back the event just popped, at the front of its millisecond.
    pub fn unpop(&mut self, at: Instant, item: T) {
        debug_assert_eq!(at.as_millis(), self.cur);
        self.len += 1;
        self.ring[(self.cur % RING) as usize].push_front(item);
    }

    /// The earliest event and its time.
    pub fn pop(&mut self) -> Option<(Instant, T)> {
        loop {
            if let Some(item) = self.ring[(self.cur % RING) as usize].pop_front() {
                self.len -= 1;
                return Some((Instant::from_millis(self.cur), item));
            }
            // A burst (a join storm) may have grown this bucket: give the
            // memory back rather than keep it in all of them.
            let bucket = &mut self.ring[(self.cur % RING) as usize];
            if bucket.capacity() > 256 {
                bucket.shrink_to(64);
            }
            if self.len == 0 {
                return None;
            }
            // Jump over empty stretches when only far events are left.
            self.cur = match self.far.peek() {
                Some(f) if self.len == self.far.len() => f.at,
                _ => self.cur + 1,
            };
            // Far events now within reach join the ring in order; the
            // buckets they land in are still empty.
            while self.far.peek().is_some_and(|f| f.at < self.cur + RING) {
                let f = self.far.pop().expect("peeked");
                self.ring[(f.at % RING) as usize].push_back(f.item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_rewind_an_earlier_push_pops_first_and_the_rest_keep_order() {
        let mut q = Queue::new();
        let t = Instant::from_millis;
        q.push(t(10), "a");
        q.push(t(RING + 20), "far");
        q.push(t(500), "b");
        q.push(t(500), "c");
        assert_eq!(q.pop(), Some((t(10), "a")));
        let (at, first) = q.pop().unwrap();
        assert_eq!((at, first), (t(500), "b"));
        q.unpop(at, first);
        // In the ring now, past the window once rewound.
        q.push(t(RING + 400), "late");
        q.rewind(t(100));
        q.push(t(120), "early");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            [
                (t(120), "early"),
                (t(500), "b"),
                (t(500), "c"),
                (t(RING + 20), "far"),
                (t(RING + 400), "late")
            ]
        );
    }

    #[test]
    fn pops_in_time_then_push_order_across_ring_and_heap() {
        let mut q = Queue::new();
        let t = Instant::from_millis;
        q.push(t(5), "b");
        q.push(t(RING * 3), "far2");
        q.push(t(RING * 3 - 1), "far1");
        q.push(t(5), "c");
        q.push(t(0), "a");
        q.push(t(RING * 3), "far3");
        let mut got = Vec::new();
        while let Some((at, x)) = q.pop() {
            if x == "b" {
                // Pushed while popping: same millisecond goes last.
                q.push(at, "b2");
                q.push(t(RING * 3), "far4");
            }
            got.push((at.as_millis(), x));
        }
        let names: Vec<&str> = got.iter().map(|g| g.1).collect();
        assert_eq!(names, ["a", "b", "c", "b2", "far1", "far2", "far3", "far4"]);
        assert_eq!(got[4].0, RING * 3 - 1);
        assert!(q.is_empty());
    }
}
