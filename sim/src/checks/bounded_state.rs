//! `bounded_state`: every table the core reports stays within the bound
//! its configuration sets.

use super::check::{Check, Counter, End};
use super::facts::Facts;
use crate::check_id::CheckId;
use crate::report::{CheckResult, Kind};
use gossip_chat::{Config, TableSizes};

/// Membership changes the core keeps for gossip rounds (its `MAX_RECENT`).
pub const MAX_RECENT: usize = 256;
/// Probe dials the core keeps in flight while its member table is nearly
/// full (its `MAX_PROBES`).
pub const MAX_PROBES: usize = 16;
/// Join addresses a simulated node is given (its seeds).
const SEEDS: usize = 1;

/// The bound of each table, derived from a node's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Members, alive and remembered dead: `max_members`.
    pub members: usize,
    /// Handshaken connections: `max_connections`.
    pub neighbours: usize,
    /// Accepted connections waiting for a hello: `max_handshaking`.
    pub accepting: usize,
    /// Dials in flight (see [`Bounds::of`]).
    pub dialing: usize,
    /// Open connections: neighbours + accepting + dials.
    pub connections: usize,
    /// Chat streams: twice `max_members` (members' streams and departed
    /// ones still in history).
    pub streams: usize,
    /// Held-back messages over all streams: `max_holdback`.
    pub held: usize,
    /// Messages kept for repair: `history_max`.
    pub history: usize,
    /// Membership changes queued for gossip: the core's 256.
    pub recent: usize,
}

impl Bounds {
    /// The bounds for `cfg`. Dials in flight: the node fills its free
    /// neighbour slots (its dials count against them, so at most
    /// `max_connections`), re-dials each neighbour whose link dropped
    /// (at most `max_connections` more), keeps at most 16 probes in
    /// flight, starts one reconnect dial per `reconnect_interval` (each
    /// given up after twice `handshake_timeout`), and dials its seed.
    /// A dial that connects becomes a connection that has the
    /// `handshake_timeout` to say hello, so open connections are at most
    /// the neighbours, the accepted ones waiting, and the dials.
    pub fn of(cfg: &Config) -> Bounds {
        let every = cfg.reconnect_interval.as_millis().max(1);
        let reconnects = (2 * cfg.handshake_timeout.as_millis()).div_ceil(every) as usize + 1;
        let dialing = 2 * cfg.max_connections + MAX_PROBES + reconnects + SEEDS;
        Bounds {
            members: cfg.max_members,
            neighbours: cfg.max_connections,
            accepting: cfg.max_handshaking,
            dialing,
            connections: cfg.max_connections + cfg.max_handshaking + dialing,
            streams: cfg.max_members * 2,
            held: cfg.max_holdback,
            history: cfg.history_max,
            recent: MAX_RECENT,
        }
    }
}

/// Table samples, each table judged against its bound.
pub struct BoundedState {
    /// Table readings judged (one per table per sample).
    pub counter: Counter,
    bounds: Bounds,
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
            bounds: Bounds::of(cfg),
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
            "max/limit members {}/{} conns {}/{} neighbours {}/{} accepting {}/{} dialing {}/{} streams {}/{} held {}/{} history {}/{} recent {}/{}; paused-queue {}; {} node samples in {} rounds over {} (about one round per {every})",
            t.members, b.members, t.connections, b.connections, t.neighbours, b.neighbours,
            t.accepting, b.accepting, t.dialing, b.dialing, t.streams, b.streams, t.held, b.held,
            t.history, b.history, t.recent, b.recent, end.max_held, self.samples, self.rounds, end.now
        );
        self.counter
            .result(self, figure, "no table sample was taken")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_allow_eight_neighbours_and_thirty_two_handshaking() {
        let b = Bounds::of(&Config::lan());
        assert_eq!((b.neighbours, b.accepting), (8, 32));
        // 8 slots + 8 verify dials + 16 probes + 4 reconnects + 1 seed.
        assert_eq!(b.dialing, 37);
        assert_eq!(b.connections, 8 + 32 + 37);
    }
}
