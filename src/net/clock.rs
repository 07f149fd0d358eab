//! The only place the TCP adapter reads the machine's clocks.

/// Converts the monotonic clock into the core's [`crate::Instant`]:
/// milliseconds since the adapter started.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: std::time::Instant,
}

impl Clock {
    /// A clock whose origin is now.
    #[allow(clippy::disallowed_methods)] // the adapter's one monotonic clock read
    pub(crate) fn start() -> Clock {
        Clock {
            origin: std::time::Instant::now(),
        }
    }

    /// The current time in the core's terms. Every `now` the node sees comes
    /// from here, so real time is converted in exactly one place.
    #[allow(clippy::disallowed_methods)] // the adapter's one monotonic clock read
    pub(crate) fn now(&self) -> crate::Instant {
        let ms = self.origin.elapsed().as_millis();
        crate::Instant::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// Wall-clock milliseconds since the Unix epoch: the incarnation of a node
/// started now (it grows across restarts) and the time shown next to chat
/// lines.
#[allow(clippy::disallowed_methods)] // wall clock, never fed to the core as `now`
pub fn wall_clock_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
