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
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod check_id;
pub mod checks;
pub mod hostile;
pub mod net;
pub mod queue;
pub mod random;
pub mod report;
pub mod scenario;
pub mod trace;
pub mod world;

pub use report::{CheckResult, Report, Status};
pub use scenario::{load, Scenario, ScenarioError};
pub use trace::Trace;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

/// Runs `sc` under `seed`; writes the trace to `trace` if given.
pub fn run(sc: &Scenario, seed: u64, trace: Option<Box<dyn Write>>) -> Report {
    run_with_progress(sc, seed, trace, &mut |_| {})
}

/// [`run`], keeping the trace: the report and every trace line.
pub fn run_traced(sc: &Scenario, seed: u64) -> (Report, String) {
    let buf = Memory::default();
    let report = run(sc, seed, Some(Box::new(buf.clone())));
    let bytes = buf.0.take();
    // Trace lines are built from `format!`, so they are UTF-8.
    (report, String::from_utf8_lossy(&bytes).into_owned())
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

/// A trace sink in memory that [`run_traced`] reads back after the run
/// (the trace owns its writer until then).
#[derive(Clone, Default)]
struct Memory(Rc<RefCell<Vec<u8>>>);

impl Write for Memory {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
