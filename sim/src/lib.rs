//! gossip-sim: a seeded, deterministic discrete-event simulator for
//! gossip-chat.
//!
//! A [`Scenario`] (TOML, documented in `scenarios/README.md`) declares the
//! nodes, the network, the chat workload and the faults. [`run`] builds a
//! world of real [`gossip_chat::Node`]s, drives them through the core's
//! contract from one event queue ordered by (virtual time, sequence number),
//! judges the named checks and returns a [`Report`]. The same scenario and
//! seed give the same trace, byte for byte.
//!
//! ```
//! let sc = gossip_sim::scenario::parse("demo.toml", r#"
//!     duration = "10s"
//!     [nodes]
//!     count = 3
//!     [workload]
//!     rate = 2.0
//! "#).unwrap();
//! let report = gossip_sim::run(&sc, 7, None);
//! assert!(report.passed, "{}", report.render());
//! ```
//!
//! # How one event flows
//!
//! 1. The queue (`queue.rs`) pops the earliest event: a node's timer, an
//!    input on its way to a node, a scheduled fault, a workload tick or a
//!    check's deadline.
//! 2. The world (`world/mod.rs`) dispatches it. An input for a node that is
//!    up is delivered (`world/deliver.rs`); one for a paused node is held,
//!    one for a stopped process dropped. Faults run in `world/fault.rs`,
//!    process life cycles in `world/process.rs`, chats in
//!    `world/workload.rs`, hostile frames in `world/misbehave.rs`.
//! 3. The node (`gossip_chat::Node`, in the core) handles the input at the
//!    virtual time and answers with outputs.
//! 4. The world carries out each output: user events go to the trace
//!    (`trace.rs`) and to the observer that judges the checks
//!    (`checks/observer.rs`, one type per check in `checks/`);
//!    sends, dials and closes go to the transport.
//! 5. The transport (`world/transport.rs`) asks the network (`net.rs`) for
//!    each message's fate and latency, and pushes the arrival, the
//!    connection's answer or its close back into the queue as a new event.
//!    The node's next deadline becomes a timer event.
//!
//! The same engine runs from code: [`builder::Sim`] builds a few nodes,
//! runs to a time, breaks things now and inspects the nodes (the
//! network tests of the core run on it, in `sim/tests/`).
//!
//! At the end the world assembles the [`Report`] (`world/report.rs`,
//! `report.rs`). The trace gets one line per step a node sees (start,
//! dial, delivery, timeout, close, user event) and per fault; its
//! fingerprint hashes them all, so two runs that took the same path show
//! the same fingerprint.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod builder;
pub mod check_id;
pub mod checks;
pub mod hostile;
pub mod lab;
pub mod minutes;
pub mod net;
pub mod plot;
pub mod queue;
pub mod random;
pub mod report;
pub mod scenario;
pub mod series;
pub mod trace;
pub mod world;

pub use report::{CheckResult, Report, Status};
pub use scenario::{load, Scenario, ScenarioError};
pub use trace::Trace;

use std::io::Write;

/// Runs `sc` under `seed`; writes the trace to `trace` if given.
pub fn run(sc: &Scenario, seed: u64, trace: Option<Box<dyn Write>>) -> Report {
    run_with_progress(sc, seed, trace, &mut |_| {})
}

/// [`run`], keeping the trace: the report and every trace line.
pub fn run_traced(sc: &Scenario, seed: u64) -> (Report, String) {
    let faults = random::schedule(sc, seed);
    let (report, trace) = world::World::new(sc, seed, &faults, Trace::kept()).run(&mut |_| {});
    (report, trace.into_text())
}

/// [`run`], calling `progress` now and then with the virtual time reached.
pub fn run_with_progress(
    sc: &Scenario,
    seed: u64,
    trace: Option<Box<dyn Write>>,
    progress: &mut dyn FnMut(gossip_chat::Instant),
) -> Report {
    let faults = random::schedule(sc, seed);
    let world = world::World::new(sc, seed, &faults, Trace::new(trace));
    world.run(progress).0
}

/// [`run_with_progress`], also recording the run's time series (for
/// `sim --plot`). The report, trace and fingerprint are those of
/// [`run`]: recording reads the run, it does not steer it.
pub fn run_with_series(
    sc: &Scenario,
    seed: u64,
    trace: Option<Box<dyn Write>>,
    progress: &mut dyn FnMut(gossip_chat::Instant),
) -> (Report, series::Series) {
    let faults = random::schedule(sc, seed);
    let mut world = world::World::new(sc, seed, &faults, Trace::new(trace));
    world.record_series(&faults);
    let (report, _, series) = world.run_with_series(progress);
    (report, series)
}
