//! Stopping a bench run cleanly: SIGINT or SIGTERM sets a flag that every
//! wait checks, so the run returns an error and its guards kill the
//! processes it started and delete their namespace.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn now() -> Instant {
    Instant::now()
}

/// Set by SIGINT or SIGTERM: the run stops waiting and cleans up.
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn install() -> Stop {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, flag.clone()).expect("signal handler");
        }
        Stop(flag)
    }

    /// Waits `d`; an error if told to stop meanwhile.
    pub fn wait(&self, d: Duration) -> Result<(), String> {
        let until = now() + d;
        while now() < until {
            self.check()?;
            let left = until.saturating_duration_since(now());
            let _ = crossbeam_channel::after(left.min(Duration::from_millis(100))).recv();
        }
        self.check()
    }

    pub fn check(&self) -> Result<(), String> {
        if self.0.load(Ordering::Relaxed) {
            Err("interrupted".into())
        } else {
            Ok(())
        }
    }
}
