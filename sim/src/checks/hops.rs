//! Hops: how many links each chat message crossed to reach each life, and
//! for each message the most over the lives that got it (the *last
//! delivery hop* of the Plumtree paper: how deep the tree that carried it
//! was).
//!
//! A sender holds its own message at hop 0. A life that first receives a
//! message (alone or inside a batch, live or as repair) from a life at hop
//! `h` holds it at `h + 1`; later copies do not change it.

use crate::report::Pct;

/// Hop counts by message and life.
#[derive(Default)]
pub struct Hops {
    /// By message index: each life's hop count plus one (0: not yet).
    by_msg: Vec<Vec<u8>>,
    /// By message index: the deepest hop seen.
    last: Vec<u8>,
}

impl Hops {
    fn row(&mut self, m: u32) -> &mut Vec<u8> {
        let m = m as usize;
        if self.by_msg.len() <= m {
            self.by_msg.resize_with(m + 1, Vec::new);
            self.last.resize(m + 1, 0);
        }
        &mut self.by_msg[m]
    }

    /// `life` sent message `m`: it holds it at hop 0.
    pub fn sent(&mut self, m: u32, life: u32) {
        let row = self.row(m);
        let l = life as usize;
        if row.len() <= l {
            row.resize(l + 1, 0);
        }
        row[l] = 1;
    }

    /// `to` received message `m` from `from`.
    pub fn received(&mut self, m: u32, from: u32, to: u32) {
        let row = self.row(m);
        let Some(&h) = row.get(from as usize).filter(|h| **h > 0) else {
            return;
        };
        let t = to as usize;
        if row.len() <= t {
            row.resize(t + 1, 0);
        }
        if row[t] == 0 {
            let at = h.saturating_add(1);
            row[t] = at;
            let last = &mut self.last[m as usize];
            *last = (*last).max(at - 1);
        }
    }

    /// The hop count at which `life` first got message `m`, if it did.
    pub fn of(&self, m: u32, life: u32) -> Option<u32> {
        let h = *self.by_msg.get(m as usize)?.get(life as usize)?;
        (h > 0).then(|| u32::from(h) - 1)
    }

    /// The last delivery hop of every message that reached anyone but its
    /// sender.
    pub fn last_hop(&self) -> Pct {
        let v: Vec<u32> = self
            .last
            .iter()
            .filter(|h| **h > 0)
            .map(|h| u32::from(*h))
            .collect();
        Pct::of(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::Hops;

    #[test]
    fn first_copy_sets_the_hop_and_the_deepest_is_the_last() {
        let mut h = Hops::default();
        h.sent(0, 0);
        h.received(0, 0, 1);
        h.received(0, 1, 2);
        h.received(0, 2, 3);
        // A later, shorter path does not change what arrived first.
        h.received(0, 0, 3);
        assert_eq!(h.of(0, 3), Some(3));
        // Second message: a star.
        h.sent(1, 5);
        for l in 0..5 {
            h.received(1, 5, l);
        }
        // From a life that never had it: nothing.
        h.received(1, 9, 8);
        assert_eq!(h.of(1, 8), None);
        let p = h.last_hop();
        assert_eq!((p.n, p.p50, p.max), (2, 1, 3));
    }
}
