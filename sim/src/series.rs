//! Time series of a run, for `sim --plot`: per sampling interval the live
//! nodes, how many distinct membership views they hold, chats sent and
//! delivered, delivery latency and bytes by message kind.
//!
//! Recording is off unless asked for. When on, it only reads the run's
//! state at interval boundaries and counts what the observer already
//! sees: it writes no trace line, queues no event and draws no
//! randomness, so the run's path and fingerprint stay the same.

use std::collections::BTreeSet;

/// Most points a series holds; the interval is chosen to stay under it.
pub const MAX_POINTS: usize = 400;
/// Most latencies kept per interval (later ones in the same interval are
/// counted in [`Point::deliveries`] but not in its percentiles).
const MAX_LATENCIES: usize = 100_000;
/// Most message kinds tracked (the core has 14).
const MAX_KINDS: usize = 32;
/// Longest fault label kept, in characters.
const MAX_LABEL: usize = 48;

/// The state of the run at one sampling instant and the traffic of the
/// interval that ended there.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Point {
    /// End of the interval, virtual milliseconds.
    pub t_ms: u64,
    /// Nodes up.
    pub live: u32,
    /// Distinct membership views among honest live nodes (a view: the
    /// node itself and the members it lists as up).
    pub views: u32,
    /// Chats sent by users in the interval.
    pub chats_sent: u64,
    /// Chats delivered to users (first copies, own excluded).
    pub deliveries: u64,
    /// Delivery latency of the interval's deliveries, 50th percentile, ms.
    pub p50_ms: Option<u32>,
    /// 99th percentile, ms.
    pub p99_ms: Option<u32>,
    /// Bytes sent in the interval, by kind (indexed as [`Series::kinds`]).
    pub bytes: Vec<u64>,
}

/// A scheduled fault, for marking the time axis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// When, virtual milliseconds.
    pub t_ms: u64,
    /// What, short.
    pub label: String,
}

/// The time series of one run.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Scenario name and seed, for the title.
    pub title: String,
    /// Sampling interval, ms.
    pub every_ms: u64,
    /// End of the run, ms.
    pub end_ms: u64,
    /// Message kinds, in first-seen order.
    pub kinds: Vec<&'static str>,
    /// One point per interval.
    pub points: Vec<Point>,
    /// The fault schedule.
    pub marks: Vec<Mark>,
}

impl Series {
    /// The largest distinct-view count among points in `[from, to)` ms.
    pub fn max_views(&self, from: u64, to: u64) -> u32 {
        self.in_range(from, to).map(|p| p.views).max().unwrap_or(0)
    }

    /// The points with `t_ms` in `[from, to)`.
    pub fn in_range(&self, from: u64, to: u64) -> impl Iterator<Item = &Point> {
        self.points
            .iter()
            .filter(move |p| p.t_ms >= from && p.t_ms < to)
    }
}

/// The sampling interval for a run of `end_ms`: a round step that keeps
/// the points under [`MAX_POINTS`].
pub fn interval_for(end_ms: u64) -> u64 {
    const STEPS: [u64; 12] = [
        100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 300_000, 600_000, 3_600_000,
    ];
    STEPS
        .into_iter()
        .find(|&s| end_ms / s < MAX_POINTS as u64)
        .unwrap_or_else(|| end_ms / MAX_POINTS as u64 + 1)
}

/// Collects a [`Series`] while a run goes on.
#[derive(Debug)]
pub struct Recorder {
    series: Series,
    /// Next sampling instant, ms.
    next_ms: u64,
    chats_sent: u64,
    deliveries: u64,
    latencies: Vec<u32>,
    bytes: Vec<u64>,
}

impl Recorder {
    /// A recorder for a run ending at `end_ms` with the fault marks
    /// `marks` (label texts are shortened).
    pub fn new(title: String, end_ms: u64, marks: Vec<Mark>) -> Self {
        let every_ms = interval_for(end_ms);
        let marks = marks
            .into_iter()
            .map(|m| Mark {
                t_ms: m.t_ms,
                label: shorten(&m.label),
            })
            .collect();
        Recorder {
            series: Series {
                title,
                every_ms,
                end_ms,
                marks,
                ..Series::default()
            },
            next_ms: every_ms,
            chats_sent: 0,
            deliveries: 0,
            latencies: Vec::new(),
            bytes: Vec::new(),
        }
    }

    /// The next instant to sample at, ms.
    pub fn next_ms(&self) -> u64 {
        self.next_ms
    }

    /// A user sent a chat.
    pub fn chat_sent(&mut self) {
        self.chats_sent += 1;
    }

    /// A chat reached a user after `latency_ms` (if it counts toward
    /// latency).
    pub fn delivered(&mut self, latency_ms: Option<u32>) {
        self.deliveries += 1;
        if let Some(l) = latency_ms {
            if self.latencies.len() < MAX_LATENCIES {
                self.latencies.push(l);
            }
        }
    }

    /// One message of `kind` and `bytes` went on the wire.
    pub fn sent(&mut self, kind: &'static str, bytes: usize) {
        let kinds = &mut self.series.kinds;
        let i = match kinds.iter().position(|k| *k == kind) {
            Some(i) => i,
            None if kinds.len() < MAX_KINDS => {
                kinds.push(kind);
                kinds.len() - 1
            }
            None => return,
        };
        if self.bytes.len() <= i {
            self.bytes.resize(i + 1, 0);
        }
        self.bytes[i] += bytes as u64;
    }

    /// Closes the interval ending now: `live` nodes up, `views` the
    /// membership views of honest live nodes.
    pub fn sample(&mut self, live: u32, views: &[Vec<u32>]) {
        let distinct: BTreeSet<&Vec<u32>> = views.iter().collect();
        self.latencies.sort_unstable();
        let pct = |q: usize| -> Option<u32> {
            let n = self.latencies.len();
            (n > 0).then(|| self.latencies[((n - 1) * q / 100).min(n - 1)])
        };
        let point = Point {
            t_ms: self.next_ms,
            live,
            views: distinct.len() as u32,
            chats_sent: self.chats_sent,
            deliveries: self.deliveries,
            p50_ms: pct(50),
            p99_ms: pct(99),
            bytes: std::mem::take(&mut self.bytes),
        };
        if self.series.points.len() < MAX_POINTS + 1 {
            self.series.points.push(point);
        }
        self.chats_sent = 0;
        self.deliveries = 0;
        self.latencies.clear();
        self.next_ms += self.series.every_ms;
    }

    /// The series collected.
    pub fn finish(self) -> Series {
        self.series
    }
}

/// `label` cut to [`MAX_LABEL`] characters.
fn shorten(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL {
        return label.to_string();
    }
    let mut s: String = label.chars().take(MAX_LABEL - 1).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::{interval_for, Mark, Recorder, MAX_POINTS};

    #[test]
    fn interval_keeps_points_bounded() {
        assert_eq!(interval_for(10_000), 100);
        assert_eq!(interval_for(70_000), 200);
        assert_eq!(interval_for(150_000), 500);
        for end in [1, 999, 70_000, 3_600_000, 86_400_000, u64::MAX / 2] {
            assert!(end / interval_for(end) <= MAX_POINTS as u64, "{end}");
        }
    }

    #[test]
    fn an_interval_counts_its_own_traffic_and_views() {
        let mark = Mark {
            t_ms: 10,
            label: "x".repeat(100),
        };
        let mut r = Recorder::new("t".into(), 1000, vec![mark]);
        r.chat_sent();
        for l in [5, 1, 9, 3] {
            r.delivered(Some(l));
        }
        r.delivered(None);
        r.sent("ping", 10);
        r.sent("chat", 30);
        r.sent("ping", 10);
        r.sample(3, &[vec![0, 1, 2], vec![0, 1, 2], vec![0, 1]]);
        r.sample(3, &vec![vec![0, 1, 2]; 3]);
        let s = r.finish();
        assert_eq!(s.kinds, ["ping", "chat"]);
        let (a, b) = (&s.points[0], &s.points[1]);
        assert_eq!((a.t_ms, a.live, a.views), (100, 3, 2));
        assert_eq!((a.chats_sent, a.deliveries), (1, 5));
        assert_eq!((a.p50_ms, a.p99_ms), (Some(3), Some(5)));
        assert_eq!(a.bytes, [20, 30]);
        assert_eq!((b.t_ms, b.views, b.deliveries, b.p50_ms), (200, 1, 0, None));
        assert!(b.bytes.is_empty());
        assert!(s.marks[0].label.chars().count() <= 48);
    }
}
