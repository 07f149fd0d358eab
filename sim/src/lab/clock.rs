//! The lab's one clock: real time since the run began, as the core's
//! [`Instant`], so the checks judge a real run in the units they judge a
//! simulated one. Wall-clock times the nodes print (`ts_ms`, milliseconds
//! since the Unix epoch) map onto it by the wall time it started at.

use gossip_chat::Instant;

/// Milliseconds since the run began.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: std::time::Instant,
    /// The wall clock (Unix milliseconds) when it read zero.
    start_epoch_ms: u64,
}

// The lab runs real processes: it is the one part of the simulator crate
// that must read the wall clock.
#[allow(clippy::disallowed_methods)]
impl Clock {
    /// A clock that reads zero now.
    pub fn start() -> Clock {
        Clock {
            start: std::time::Instant::now(),
            start_epoch_ms: Self::epoch_ms(),
        }
    }

    /// A clock that read zero at wall time `epoch_ms` (for tests: the
    /// monotonic reading is now).
    pub fn started_at(epoch_ms: u64) -> Clock {
        Clock {
            start: std::time::Instant::now(),
            start_epoch_ms: epoch_ms,
        }
    }

    /// The reading at wall time `epoch_ms` (Unix milliseconds); `None`
    /// before the clock started.
    pub fn at_wall(&self, epoch_ms: u64) -> Option<Instant> {
        epoch_ms
            .checked_sub(self.start_epoch_ms)
            .map(Instant::from_millis)
    }

    /// Time since the start.
    pub fn now(&self) -> Instant {
        Instant::from_millis(self.start.elapsed().as_millis() as u64)
    }

    /// Milliseconds since the Unix epoch (the unit `chat` draws its
    /// incarnations from).
    pub fn epoch_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// The wall time the run has taken.
    pub fn elapsed(&self) -> std::time::Duration {
        self.start.elapsed()
    }
}
