//! `no_false_removal`: no node removes as dead a node that is up and
//! reachable.

use super::check::{Check, Counter, End};
use super::facts::{Facts, Life, Removal};
use crate::check_id::CheckId;
use crate::net::Network;
use crate::report::{CheckResult, Kind};
use gossip_chat::Instant;

/// Removals as dead, each judged when it happens.
#[derive(Default)]
pub struct NoFalseRemoval {
    /// Removals as dead judged.
    pub counter: Counter,
}

impl Check for NoFalseRemoval {
    fn id(&self) -> CheckId {
        CheckId::NoFalseRemoval
    }
    fn kind(&self) -> Kind {
        Kind::Always
    }
    /// False when the removed node is up in the same life, both ends were
    /// up over the last detection window, and nothing (a partition or
    /// clog between the two, a loss burst; an attack; the removed node
    /// being slow) excuses it.
    fn removal(&mut self, f: &Facts, r: &Removal, net: &Network) {
        if !r.dead {
            return;
        }
        // Removals by or of a hostile node are the attack's doing; an
        // honest member removed on a hostile node's accusation is a false
        // removal like any other.
        let attacked = f.is_hostile(r.slot) || f.is_hostile(r.peer);
        let mut false_removal = false;
        if r.subject_inc == Some(r.key.incarnation) && !attacked {
            let now = r.now;
            let w = f.spec.detect_within;
            let from = Instant::from_millis(now.as_millis().saturating_sub(w.as_millis()));
            if let Some(pl) = f.current[r.peer as usize] {
                let (obs, subj) = (&f.lives[r.life as usize], &f.lives[pl as usize]);
                let clean = |x: &Life| x.up_over(from.max(x.start), now);
                // A slow node is not a healthy one: removing it is no
                // false removal (a slow node removing a healthy one is).
                false_removal = clean(obs)
                    && clean(subj)
                    && !subj.slow_during(from, now)
                    && !net.excuses_removals(r.slot as usize, r.peer as usize, from, now);
            }
        }
        let (slot, peer, now) = (r.slot, r.peer, r.now);
        self.counter.judge(!false_removal, || {
            format!("n{slot} removed n{peer} as dead at {now} while it was up and reachable")
        });
    }
    fn result(&self, _end: &End) -> CheckResult {
        let figure = format!(
            "{} false removals among {} removals as dead",
            self.counter.failed, self.counter.judged
        );
        self.counter
            .result(self, figure, "no node was removed as dead")
    }
}
