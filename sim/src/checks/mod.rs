//! The checks: named properties of a run, each judged from the facts the
//! world reports.
//!
//! The world tells the [`Observer`] when lives start, pause, resume and
//! end, what every node hands its user, and what crosses the network. The
//! observer keeps the shared [`Facts`] (lives, rosters, departures,
//! messages) and forwards each fact to the checks, one type per check,
//! each with its own counters and figure. A check that judged nothing says
//! `n/a`, never `ok`. The definitions (what "live", "connected" and "owed"
//! mean) are spelled out in `scenarios/README.md`.

mod admission;
mod bounded_state;
mod check;
mod components;
mod convergence;
mod delivery;
mod detection;
mod discovery;
mod eventual_delivery;
mod facts;
mod forged_state;
mod forgery;
mod hops;
mod invented_peers;
mod join;
mod no_duplicates;
mod no_false_removal;
mod observer;
mod order;
mod overlay_connected;
#[cfg(test)]
mod tests;

pub use crate::report::Kind;
pub use admission::Admission;
pub use bounded_state::BoundedState;
pub use check::{Check, Counter, End, EXAMPLES};
pub use components::Components;
pub use convergence::Convergence;
pub use delivery::Delivery;
pub use detection::Detection;
pub use discovery::Discovery;
pub use eventual_delivery::EventualDelivery;
pub use facts::{Facts, Life, Removal};
pub use forged_state::{unsigned, ForgedState};
pub use forgery::Forgery;
pub use hops::Hops;
pub use invented_peers::InventedPeers;
pub use join::Join;
pub use no_duplicates::NoDuplicates;
pub use no_false_removal::NoFalseRemoval;
pub use observer::{Observer, Traffic};
pub use order::Order;
pub use overlay_connected::OverlayConnected;

use gossip_chat::{Duration, MsgId};

/// Why a life is owed a complete view within a deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// An initial node (judged by `discovery`).
    Initial,
    /// A node joining later, or a restart (judged by `join`).
    Joiner,
}

/// Why a node went away, for the detection figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gone {
    /// Silent crash.
    Crash,
    /// Killed: connections reset.
    Kill,
    /// Paused.
    Pause,
    /// Graceful leave.
    Leave,
}

fn ms(d: Duration) -> u32 {
    d.as_millis().min(u32::MAX as u64) as u32
}

/// `n3/1#7`: sender slot, incarnation and seq.
fn show(id: MsgId) -> String {
    let slot = crate::addr::slot_of_id(&id.origin.id, usize::MAX)
        .map_or_else(|| id.origin.id.to_string(), |s| format!("n{s}"));
    format!("{slot}/{}#{}", id.origin.incarnation, id.seq)
}

/// A hash of what an author signs besides a chat's id: its name, text and
/// time. Two deliveries of one id with different hashes are not the same
/// message.
pub fn content_hash(name: &str, text: &str, sent_ms: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (name, text, sent_ms).hash(&mut h);
    h.finish()
}

fn ratio(a: u64, b: u64) -> String {
    if b == 0 {
        "none owed".into()
    } else {
        format!("{:.2}%", a as f64 * 100.0 / b as f64)
    }
}
