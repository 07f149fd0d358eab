//! `bounded_state`: every table the core reports stays within the bound
//! its configuration sets ([`Config::table_bounds`], derived by the core
//! from the same limits it enforces).

use super::check::{Check, Counter, End};
use super::facts::Facts;
use crate::check_id::CheckId;
use crate::report::{CheckResult, Kind};
use gossip_chat::{Config, TableSizes};

/// Join addresses a simulated node is given (its seeds).
const SEEDS: usize = 1;

/// Table samples, each table judged against its bound.
pub struct BoundedState {
    /// Table readings judged (one per table per sample).
    pub counter: Counter,
    bounds: TableSizes,
    /// Largest of each table seen.
    max: TableSizes,
    /// Node samples taken.
    samples: u64,
    /// Sampling rounds (a round samples every up node in slot order).
    rounds: u64,
    last_slot: Option<u32>,
}

impl BoundedState {
    /// Judges tables against the bounds of `cfg`.
    pub fn new(cfg: &Config) -> Self {
        BoundedState {
            counter: Counter::default(),
            bounds: cfg.table_bounds(SEEDS),
            max: TableSizes::default(),
            samples: 0,
            rounds: 0,
            last_slot: None,
        }
    }
}

impl Check for BoundedState {
    fn id(&self) -> CheckId {
        CheckId::BoundedState
    }
    fn kind(&self) -> Kind {
        Kind::Always
    }
    fn tables(&mut self, _f: &Facts, slot: u32, t: &TableSizes) {
        self.samples += 1;
        if self.last_slot.is_none_or(|s| slot <= s) {
            self.rounds += 1;
        }
        self.last_slot = Some(slot);
        let b = &self.bounds;
        let m = &mut self.max;
        let readings = [
            ("members", t.members, &mut m.members, b.members),
            (
                "connections",
                t.connections,
                &mut m.connections,
                b.connections,
            ),
            ("neighbours", t.neighbours, &mut m.neighbours, b.neighbours),
            ("accepting", t.accepting, &mut m.accepting, b.accepting),
            ("dialing", t.dialing, &mut m.dialing, b.dialing),
            ("streams", t.streams, &mut m.streams, b.streams),
            ("held", t.held, &mut m.held, b.held),
            ("history", t.history, &mut m.history, b.history),
            ("recent", t.recent, &mut m.recent, b.recent),
            ("probing", t.probing, &mut m.probing, b.probing),
            ("outbox", t.outbox, &mut m.outbox, b.outbox),
        ];
        for (name, v, max, bound) in readings {
            *max = (*max).max(v);
            self.counter
                .judge(v <= bound, || format!("n{slot}: {name} = {v} > {bound}"));
        }
    }
    fn result(&self, end: &End) -> CheckResult {
        let (t, b) = (&self.max, &self.bounds);
        let every = end
            .now
            .as_millis()
            .checked_div(self.rounds)
            .map_or_else(|| "n/a".to_string(), |ms| format!("{ms} ms"));
        let figure = format!(
            "max/limit members {}/{} conns {}/{} neighbours {}/{} accepting {}/{} dialing {}/{} streams {}/{} held {}/{} history {}/{} recent {}/{} probing {}/{} outbox {}/{}; paused-queue {}; {} node samples in {} rounds over {} (about one round per {every})",
            t.members, b.members, t.connections, b.connections, t.neighbours, b.neighbours,
            t.accepting, b.accepting, t.dialing, b.dialing, t.streams, b.streams, t.held, b.held,
            t.history, b.history, t.recent, b.recent, t.probing, b.probing, t.outbox, b.outbox, end.max_held, self.samples, self.rounds, end.now
        );
        self.counter
            .result(self, figure, "no table sample was taken")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_are_the_cores() {
        let cfg = Config::lan();
        let b = BoundedState::new(&cfg).bounds;
        assert_eq!(b, cfg.table_bounds(1));
        assert_eq!(b.recent, gossip_chat::MAX_RECENT);
        assert_eq!(b.probing, gossip_chat::MAX_PROBING);
        assert_eq!(
            b.dialing,
            2 * 8 + gossip_chat::MAX_PROBES + gossip_chat::MAX_PROBING + 4 + 16
        );
    }
}
