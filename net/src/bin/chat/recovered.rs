//! The line that says how many messages repair recovered.
//!
//! A *burst* is a run of history deliveries (chats marked `history`: sent
//! again by a neighbour's repair, or to a newcomer) each arriving within
//! [`QUIET`] of the one before; live deliveries in between neither end nor
//! count in it. A burst is over once [`QUIET`] passes without a history
//! delivery, and then one line sums it up: `-- N messages recovered after a
//! split --`, or, for a burst that began within [`JOINING`] of the node's
//! start (the catch-up a newcomer gets), `-- N earlier messages --`.
//! Repair sends at most one batch per sync interval (1 s by default), so
//! a long repair stays one burst.

use std::time::{Duration, Instant};

/// A burst is over after this long without a history delivery.
pub const QUIET: Duration = Duration::from_secs(2);
/// A burst that begins this soon after start is a newcomer's catch-up.
pub const JOINING: Duration = Duration::from_secs(5);

/// What a finished burst was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Burst {
    /// A newcomer's catch-up: this many messages from before it joined.
    Joined(u64),
    /// This many messages recovered by repair (after a split, a pause, a
    /// broken link).
    Healed(u64),
}

impl Burst {
    /// The line shown for it.
    pub fn text(self) -> String {
        match self {
            Burst::Joined(1) => "-- 1 earlier message --".to_owned(),
            Burst::Joined(n) => format!("-- {n} earlier messages --"),
            Burst::Healed(1) => "-- 1 message recovered after a split --".to_owned(),
            Burst::Healed(n) => format!("-- {n} messages recovered after a split --"),
        }
    }

    /// The number of messages and whether it was a newcomer's catch-up.
    pub fn parts(self) -> (u64, bool) {
        match self {
            Burst::Joined(n) => (n, true),
            Burst::Healed(n) => (n, false),
        }
    }
}

/// Counts history deliveries into bursts.
#[derive(Debug)]
pub struct Recovered {
    started: Instant,
    /// The burst under way: when it began, its count, its last delivery.
    open: Option<(Instant, u64, Instant)>,
}

impl Recovered {
    /// Counting from a node started at `started`.
    pub fn new(started: Instant) -> Recovered {
        Recovered {
            started,
            open: None,
        }
    }

    /// A chat was delivered at `now`; `history` as the event says. Returns
    /// the burst this ends, if the one under way was already over.
    pub fn delivered(&mut self, now: Instant, history: bool) -> Option<Burst> {
        if !history {
            return None;
        }
        let ended = self.tick(now);
        let (_, count, last) = self.open.get_or_insert((now, 0, now));
        *count += 1;
        *last = now;
        ended
    }

    /// The burst under way if it is over at `now` (call it often: every
    /// time the driver idles, or on a screen tick).
    pub fn tick(&mut self, now: Instant) -> Option<Burst> {
        let (began, count, last) = self.open?;
        if now.saturating_duration_since(last) < QUIET {
            return None;
        }
        self.open = None;
        Some(if began.saturating_duration_since(self.started) < JOINING {
            Burst::Joined(count)
        } else {
            Burst::Healed(count)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_is_summed_up_once_it_has_been_quiet() {
        let t0 = Instant::now();
        let mut r = Recovered::new(t0);
        let heal = t0 + Duration::from_secs(60);
        // 37 history deliveries over 3 s, in batches a second apart, with
        // live ones in between.
        for i in 0..37u64 {
            let at = heal + ms(i / 13 * 1000 + i);
            assert_eq!(r.delivered(at, true), None);
            assert_eq!(r.delivered(at, false), None);
        }
        let last = heal + ms(2000 + 36);
        assert_eq!(r.tick(last + QUIET - ms(1)), None, "not quiet yet");
        assert_eq!(r.tick(last + QUIET), Some(Burst::Healed(37)));
        assert_eq!(r.tick(last + QUIET * 10), None, "summed up once");
        assert_eq!(
            Burst::Healed(37).text(),
            "-- 37 messages recovered after a split --"
        );
    }

    #[test]
    fn two_bursts_apart_are_two_lines() {
        let t0 = Instant::now();
        let mut r = Recovered::new(t0);
        let a = t0 + Duration::from_secs(10);
        r.delivered(a, true);
        r.delivered(a + ms(1), true);
        // The next one comes after the first burst went quiet: it ends it
        // (even without a tick in between) and starts another.
        let b = a + QUIET + ms(1);
        assert_eq!(r.delivered(b, true), Some(Burst::Healed(2)));
        assert_eq!(r.tick(b + QUIET), Some(Burst::Healed(1)));
        assert_eq!(
            Burst::Healed(1).text(),
            "-- 1 message recovered after a split --"
        );
    }

    #[test]
    fn a_newcomers_catch_up_is_not_a_recovery() {
        let t0 = Instant::now();
        let mut r = Recovered::new(t0);
        for i in 0..20 {
            r.delivered(t0 + ms(300 + i), true);
        }
        assert_eq!(r.tick(t0 + ms(319) + QUIET), Some(Burst::Joined(20)));
        assert_eq!(Burst::Joined(20).text(), "-- 20 earlier messages --");
        // Live deliveries alone make no burst.
        for i in 0..20 {
            r.delivered(t0 + Duration::from_secs(30) + ms(i), false);
        }
        assert_eq!(r.tick(t0 + Duration::from_secs(60)), None);
    }
}
