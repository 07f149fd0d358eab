//! The line that says how many messages repair recovered.
//!
//! A *burst* is a run of history deliveries (chats that came by repair or
//! as a newcomer's catch-up, not live) each arriving within [`QUIET`] of
//! the one before; live deliveries in between neither end nor count in it.
//! A burst is over once [`QUIET`] passes without a history delivery, and
//! then one line sums it up: `-- N earlier messages --` when the burst
//! holds a catch-up (what a node is handed as it joins, and whatever repair
//! adds to it then: all written before it was a member), otherwise `-- N
//! messages recovered after a split --`. Repair sends at most one batch per
//! sync interval (1 s by default), so a long repair stays one burst.

use gossip_chat::Via;
use std::time::{Duration, Instant};

/// A burst is over after this long without a history delivery.
pub const QUIET: Duration = Duration::from_secs(2);

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

/// The burst under way.
#[derive(Debug)]
struct Open {
    count: u64,
    last: Instant,
    catch_up: bool,
}

/// Counts history deliveries into bursts.
#[derive(Debug, Default)]
pub struct Recovered {
    open: Option<Open>,
}

impl Recovered {
    /// No burst under way.
    pub fn new() -> Recovered {
        Recovered::default()
    }

    /// A chat was delivered at `now`, the way the event says. Returns the
    /// burst this ends, if the one under way was already over.
    pub fn delivered(&mut self, now: Instant, via: Via) -> Option<Burst> {
        if !via.is_history() {
            return None;
        }
        let ended = self.tick(now);
        let open = self.open.get_or_insert(Open {
            count: 0,
            last: now,
            catch_up: false,
        });
        open.count += 1;
        open.last = now;
        open.catch_up |= via == Via::CatchUp;
        ended
    }

    /// The burst under way if it is over at `now` (call it often: every
    /// time the driver idles, or on a screen tick).
    pub fn tick(&mut self, now: Instant) -> Option<Burst> {
        let open = self.open.as_ref()?;
        if now.saturating_duration_since(open.last) < QUIET {
            return None;
        }
        let open = self.open.take()?;
        Some(if open.catch_up {
            Burst::Joined(open.count)
        } else {
            Burst::Healed(open.count)
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
        let mut r = Recovered::new();
        let heal = t0 + Duration::from_secs(60);
        // 37 repaired deliveries over 3 s, in batches a second apart, with
        // live ones in between.
        for i in 0..37u64 {
            let at = heal + ms(i / 13 * 1000 + i);
            assert_eq!(r.delivered(at, Via::Repair), None);
            assert_eq!(r.delivered(at, Via::Live), None);
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
        let mut r = Recovered::new();
        let a = t0 + Duration::from_secs(10);
        r.delivered(a, Via::Repair);
        r.delivered(a + ms(1), Via::Repair);
        // The next one comes after the first burst went quiet: it ends it
        // (even without a tick in between) and starts another.
        let b = a + QUIET + ms(1);
        assert_eq!(r.delivered(b, Via::Repair), Some(Burst::Healed(2)));
        assert_eq!(r.tick(b + QUIET), Some(Burst::Healed(1)));
        assert_eq!(
            Burst::Healed(1).text(),
            "-- 1 message recovered after a split --"
        );
    }

    #[test]
    fn a_newcomers_catch_up_is_not_a_recovery() {
        let t0 = Instant::now();
        let mut r = Recovered::new();
        // A catch-up, then repair filling in around it: all of it earlier
        // messages.
        for i in 0..20 {
            r.delivered(t0 + ms(300 + i), Via::CatchUp);
        }
        r.delivered(t0 + ms(900), Via::Repair);
        assert_eq!(r.tick(t0 + ms(900) + QUIET), Some(Burst::Joined(21)));
        assert_eq!(Burst::Joined(21).text(), "-- 21 earlier messages --");
        // Live deliveries alone make no burst.
        for i in 0..20 {
            r.delivered(t0 + Duration::from_secs(30) + ms(i), Via::Live);
        }
        assert_eq!(r.tick(t0 + Duration::from_secs(60)), None);
    }

    #[test]
    fn a_split_healed_right_after_start_is_still_a_recovery() {
        // What makes a burst a catch-up is how its messages came, not how
        // soon after start it began.
        let t0 = Instant::now();
        let mut r = Recovered::new();
        for i in 0..5 {
            r.delivered(t0 + ms(100 + i), Via::Repair);
        }
        assert_eq!(r.tick(t0 + ms(104) + QUIET), Some(Burst::Healed(5)));
        // And a catch-up long after start (a node that joined late, or
        // rejoined) is one.
        let late = t0 + Duration::from_secs(600);
        r.delivered(late, Via::CatchUp);
        assert_eq!(r.tick(late + QUIET), Some(Burst::Joined(1)));
    }
}
