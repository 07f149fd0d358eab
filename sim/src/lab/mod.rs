//! The real lab: the same scenario file, run with real `chat` processes
//! over real TCP, judged by the simulator's own checks.
//!
//! Each node slot gets a network namespace on a shared bridge
//! ([`fabric`]); each node is a `chat --json` process in its namespace
//! (`procs.rs`). The run loop (`run.rs`) follows the simulator's schedule
//! on the wall clock: it types the workload into the nodes' stdin, starts
//! and stops processes (`life.rs`), carries out faults with signals and
//! packet filters (`faults.rs`, [`filter`]),
//! and hands what the nodes print to the simulator's observer
//! (`events.rs`, `held.rs`), so the report has the same checks, format and exit
//! codes. Where the kernel has netem, the model's latency and spikes are
//! added on the nodes' interfaces ([`netem`]). What cannot be carried out
//! for real is refused up front ([`refuse`]). [`compare`] puts a simulated
//! and a real run side by side; figures a real run cannot measure are left
//! out of its report, never given as 0.
//!
//! Every namespace, interface, filter rule and process a run creates is
//! removed when [`run`] returns, however it returns (an error, Ctrl-C
//! through the `stop` flag, or a panic unwinding).

pub mod clock;
pub mod compare;
mod events;
pub mod fabric;
mod faults;
pub mod filter;
mod held;
mod life;
pub mod netem;
mod procs;
pub mod refuse;
mod run;

use crate::report::{Figures, MaxTables, Missing, Report};
use crate::scenario::{FaultKind, Scenario, ScenarioError};
use fabric::{Fabric, FabricError};
use std::sync::atomic::AtomicBool;

/// Why a real run did not produce a report.
#[derive(Debug)]
pub enum LabError {
    /// The scenario asks for what the lab cannot do.
    Refused(Vec<ScenarioError>),
    /// The network could not be built or changed.
    Fabric(String),
    /// Namespaces cannot be created here.
    NoNamespaces(String),
    /// A process could not be started.
    Process(String),
    /// Stopped by Ctrl-C (or SIGTERM).
    Interrupted,
}

impl std::fmt::Display for LabError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabError::Refused(list) => {
                let lines: Vec<String> = list.iter().map(ToString::to_string).collect();
                write!(f, "{}", lines.join("\n"))
            }
            LabError::Fabric(e) | LabError::Process(e) => write!(f, "{e}"),
            LabError::NoNamespaces(e) => write!(f, "{e}"),
            LabError::Interrupted => write!(f, "interrupted"),
        }
    }
}

/// Told how a run goes, one short line at a time.
pub type Say = Box<dyn FnMut(&str)>;

/// How to run.
pub struct Options {
    /// The `chat` program.
    pub chat: String,
    /// Set (by a signal handler) to stop the run early.
    pub stop: std::sync::Arc<AtomicBool>,
    /// Told how the run goes: once the network is up (naming the
    /// namespace prefix) and once every initial node listens.
    pub say: Say,
}

/// Bytes the nodes sent, as the kernel counted them.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Wire {
    /// Ethernet frame bytes per node per second (headers and TCP
    /// acknowledgements included).
    pub frame_bytes_per_node_s: f64,
    /// Frames per node per second.
    pub packets_per_node_s: f64,
    /// TCP payload bytes per node per second: frame bytes less 66 bytes
    /// of Ethernet, IP and TCP (with timestamps) headers per frame; what
    /// the simulator counts as message bytes.
    pub payload_bytes_per_node_s: f64,
}

/// Bytes of headers in one frame: Ethernet 14, IPv4 20, TCP with the
/// timestamp option 32.
const HEADERS: u64 = 66;

/// A real run's report, with how it was carried out.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LabReport {
    /// The checks and figures, in the simulator's format.
    pub report: Report,
    /// How the real run differs from the model.
    pub notes: Vec<String>,
    /// What the lab did, with when.
    pub log: Vec<String>,
    /// The traffic as the kernel counted it.
    pub wire: Wire,
}

impl LabReport {
    /// The readable report: the notes, what was done, then the
    /// simulator's table.
    pub fn render(&self) -> String {
        let mut s = String::from("real run (chat processes in network namespaces):\n");
        for n in &self.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
        for l in &self.log {
            s.push_str(&format!("  {l}\n"));
        }
        let w = &self.wire;
        s.push_str(&format!(
            "  wire: {:.0} B/s of frames, {:.1} frames/s per node; traffic below is TCP payload\n",
            w.frame_bytes_per_node_s, w.packets_per_node_s
        ));
        s.push_str(&self.report.render());
        s
    }
}

/// The node slots a run of `sc` with `faults` needs.
fn slots(sc: &Scenario, faults: &[crate::scenario::Fault]) -> usize {
    let joins: u32 = faults
        .iter()
        .map(|f| match f.kind {
            FaultKind::Join(n, _) => n,
            _ => 0,
        })
        .sum();
    (sc.nodes.count + joins) as usize
}

/// Checks that the lab can carry out `sc` (whose file reads `text`) on a
/// kernel with or without netem (`None`: not known yet, so what depends
/// on it is left for the run): the refusals, or the notes on what
/// differs.
pub fn check(
    sc: &Scenario,
    text: &str,
    seed: u64,
    netem: Option<&netem::Netem>,
) -> Result<Vec<String>, LabError> {
    let faults = crate::random::schedule(sc, seed);
    let v = refuse::judge(sc, text, &faults, slots(sc, &faults), netem);
    if v.refused.is_empty() {
        Ok(v.notes)
    } else {
        Err(LabError::Refused(v.refused))
    }
}

/// Runs `sc` (whose file reads `text`) under `seed` with real processes.
pub fn run(sc: &Scenario, text: &str, seed: u64, mut opts: Options) -> Result<LabReport, LabError> {
    check(sc, text, seed, None)?;
    let faults = crate::random::schedule(sc, seed);
    let n = slots(sc, &faults);
    let fabric = Fabric::create(n).map_err(|e| match e {
        FabricError::NoNamespaces(_) => LabError::NoNamespaces(e.to_string()),
        e => LabError::Fabric(e.to_string()),
    })?;
    // Now that the kernel is known: latency and spikes.
    let notes = check(sc, text, seed, Some(fabric.netem()))?;
    if fabric.netem().present() {
        for slot in 0..n {
            fabric
                .delay_out(slot, sc.network.latency, gossip_chat::Duration::ZERO)
                .map_err(LabError::Fabric)?;
        }
    }
    (opts.say)(&format!("running in namespaces {}*", fabric.prefix()));
    let mut lab = run::Lab::new(sc, seed, &faults, &fabric, n, opts.chat.clone(), &opts.stop);
    lab.say = Some(opts.say);
    lab.run()?;
    let wall = lab.clock.elapsed();
    let report = report(&mut lab, &faults)?;
    let secs = lab.obs.node_seconds(lab.end).max(1e-9);
    let sent = fabric.sent().map_err(LabError::Fabric)?;
    let (bytes, packets): (u64, u64) = sent
        .iter()
        .fold((0, 0), |a, s| (a.0 + s.bytes, a.1 + s.packets));
    let wire = Wire {
        frame_bytes_per_node_s: bytes as f64 / secs,
        packets_per_node_s: packets as f64 / secs,
        payload_bytes_per_node_s: bytes.saturating_sub(packets * HEADERS) as f64 / secs,
    };
    let mut report = report;
    report.figures.bytes_per_node_s = wire.payload_bytes_per_node_s;
    report.wall_ms = Some(wall.as_millis() as u64);
    let log = std::mem::take(&mut lab.log);
    drop(lab);
    drop(fabric);
    Ok(LabReport {
        report,
        notes,
        log,
        wire,
    })
}

/// The report of a finished run, in the simulator's format.
fn report(lab: &mut run::Lab, faults: &[crate::scenario::Fault]) -> Result<Report, LabError> {
    let end = lab.now;
    // The nodes' histories cannot be asked for: every message some node
    // missed counts as missing, none as evicted.
    lab.obs.finish(end, &|_, _| true);
    let checks = lab.obs.results(end);
    let passed = !checks.iter().any(|c| c.status.failed());
    let mt = lab.obs.max_tables;
    let sc = lab.sc;
    let mut schedule: Vec<String> = faults.iter().map(crate::world::describe).collect();
    if sc.liveness.as_millis() > 0 {
        schedule.push(format!(
            "at {}: liveness phase: heal the network, resume paused nodes",
            gossip_chat::Duration::from_millis(sc.duration.as_millis() - sc.liveness.as_millis())
        ));
    }
    let figures = Figures {
        // A real run counts bytes on the wire (filled in by the caller) and
        // what the nodes print, not the messages they send: the figures
        // drawn from those are not measured.
        end_tables: None,
        repair_trend: crate::minutes::MinuteTrend::default(),
        traffic_trend: crate::minutes::MinuteTrend::default(),
        msgs_per_node_s: None,
        bytes_per_node_s: 0.0,
        idle_bytes_per_node_s: None,
        repair_bytes_per_node_s: None,
        by_kind: None,
        copies_per_delivery: None,
        msgs_per_chat: None,
        writes_per_chat: None,
        msgs_per_chat_flowing: None,
        writes_per_chat_flowing: None,
        last_hop: None,
        chats_sent: lab.obs.msgs_sent(),
        deliveries: lab.obs.deliveries(),
        delivery_ms: lab.obs.delivery_pct(),
        detection_ms: lab.obs.detection_pct(),
        leave_ms: lab.obs.leave_pct(),
        join_ms: lab.obs.join_pct(),
        max_tables: MaxTables {
            members: mt.members,
            connections: mt.connections,
            neighbours: mt.neighbours,
            streams: mt.streams,
            held: mt.held,
            history: mt.history,
            paused_queue: None,
        },
        max_queue: None,
        missing: lab.obs.facts().liveness_from.map(|_| {
            let (msgs, evicted) = lab.obs.missing_msgs();
            Missing { msgs, evicted }
        }),
        misbehave: None,
    };
    Ok(Report {
        scenario: sc.name.clone(),
        file: sc.path.clone(),
        seed: lab.seed(),
        nodes: sc.nodes.count,
        slots: lab.slots.len(),
        virtual_s: end.as_millis() as f64 / 1000.0,
        events: lab.lines_read,
        fingerprint: "real run (no trace)".into(),
        faults: schedule,
        checks,
        figures,
        wall_ms: None,
        passed,
    })
}
