//! The only place the TCP adapter reads the machine's clocks (the core
//! reads none: see the root `clippy.toml`, which bans clock reads there).

/// Converts the monotonic clock into the core's [`gossip_chat::Instant`]:
/// milliseconds since the adapter started.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: std::time::Instant,
}

impl Clock {
    /// A clock whose origin is now.
    pub(crate) fn start() -> Clock {
        Clock {
            origin: std::time::Instant::now(),
        }
    }

    /// The current time in the core's terms. Every `now` the node sees comes
    /// from here, so real time is converted in exactly one place.
    pub(crate) fn now(&self) -> gossip_chat::Instant {
        let ms = self.origin.elapsed().as_millis();
        gossip_chat::Instant::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// Wall-clock milliseconds since the Unix epoch: the incarnation of a node
/// started now (it grows across restarts) and the time shown next to chat
/// lines.
pub fn wall_clock_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
