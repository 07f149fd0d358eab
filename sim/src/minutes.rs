//! Traffic minute by minute: the bytes sent in each minute of virtual time,
//! per node up in that minute, so that a report can tell whether repair
//! returns to its idle level after churn, and what a formed group costs
//! once it has settled (the last minute of a long idle run) apart from
//! what forming it cost (the first).

use crate::checks::Life;
use gossip_chat::Instant;
use serde::Serialize;

const MINUTE_MS: u64 = 60_000;

/// Bytes sent (of the kinds counted), by minute of virtual time (one entry
/// per minute of the run: bounded by its duration).
#[derive(Default)]
pub struct BytesByMinute {
    bytes: Vec<u64>,
}

/// Bytes per node per second over chosen minutes of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MinuteTrend {
    /// Per whole minute of the run: bytes per node per second.
    pub per_minute: Vec<f64>,
    /// The quietest minute after the first (the idle baseline): its index
    /// and rate.
    pub quietest: Option<(usize, f64)>,
    /// The last whole minute's rate.
    pub last: Option<f64>,
    /// The busiest minute: its index and rate.
    pub peak: Option<(usize, f64)>,
}

impl BytesByMinute {
    /// Counts `bytes` of repair sent at `now`.
    pub fn sent(&mut self, now: Instant, bytes: usize) {
        let m = (now.as_millis() / MINUTE_MS) as usize;
        if self.bytes.len() <= m {
            self.bytes.resize(m + 1, 0);
        }
        self.bytes[m] += bytes as u64;
    }

    /// The rates over the whole minutes up to `end`, given every life.
    pub fn trend(&self, lives: &[Life], end: Instant) -> MinuteTrend {
        let whole = (end.as_millis() / MINUTE_MS) as usize;
        let per_minute: Vec<f64> = (0..whole)
            .map(|m| {
                let (a, b) = (m as u64 * MINUTE_MS, (m as u64 + 1) * MINUTE_MS);
                let up_ms: u64 = lives.iter().map(|l| up_ms(l, a, b)).sum();
                let bytes = self.bytes.get(m).copied().unwrap_or(0);
                if up_ms == 0 {
                    0.0
                } else {
                    bytes as f64 * 1000.0 / up_ms as f64
                }
            })
            .collect();
        let pick = |better: fn(f64, f64) -> bool| {
            per_minute.iter().copied().enumerate().skip(1).fold(
                None,
                |best: Option<(usize, f64)>, (i, r)| match best {
                    Some((_, b)) if !better(r, b) => best,
                    _ => Some((i, r)),
                },
            )
        };
        MinuteTrend {
            quietest: pick(|r, b| r < b),
            last: per_minute.last().copied(),
            peak: pick(|r, b| r > b),
            per_minute,
        }
    }
}

/// Milliseconds `l` was up (started, not ended, not paused) in `[a, b)`.
fn up_ms(l: &Life, a: u64, b: u64) -> u64 {
    let s = l.start.as_millis().max(a);
    let e = l.end.map_or(b, |e| e.as_millis().min(b));
    if e <= s {
        return 0;
    }
    let paused: u64 = l
        .pauses
        .iter()
        .map(|&(p, q)| {
            let (p, q) = (p.as_millis().max(s), q.as_millis().min(e));
            q.saturating_sub(p)
        })
        .sum();
    (e - s).saturating_sub(paused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Start;
    use crate::net::Bits;

    fn life(start: u64, end: Option<u64>) -> Life {
        Life {
            slot: 0,
            start: Instant::from_millis(start),
            end: end.map(Instant::from_millis),
            pauses: Vec::new(),
            slow: Vec::new(),
            roster: Bits::new(1),
            roster_n: 0,
            known_live: 0,
            view_from: None,
            view_at: None,
            start_kind: Start::Initial,
        }
    }

    #[test]
    fn rates_are_per_node_up_in_each_minute() {
        let mut r = BytesByMinute::default();
        // Two nodes up all along; a third only for the second minute.
        let lives = [life(0, None), life(0, None), life(60_000, Some(120_000))];
        r.sent(Instant::from_millis(1_000), 120_000); // 1000 B/s per node
        r.sent(Instant::from_millis(61_000), 1_800_000); // 10000 B/s per node
        r.sent(Instant::from_millis(179_999), 120); // 1 B/s per node
        let t = r.trend(&lives, Instant::from_millis(200_000));
        assert_eq!(t.per_minute, vec![1000.0, 10_000.0, 1.0]);
        assert_eq!(t.quietest, Some((2, 1.0)));
        assert_eq!(t.peak, Some((1, 10_000.0)));
        assert_eq!(t.last, Some(1.0));
    }
}
