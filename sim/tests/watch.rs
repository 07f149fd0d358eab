//! Watched links: a node heartbeats only the links it picked (and those it
//! is pinged on), and a neighbour that does not watch a hung member still
//! verifies the suspicion and adds its voice, so removal stays fast.

use gossip_chat::{Config, Duration, Event, Instant};
use gossip_sim::addr::id_of;
use gossip_sim::builder::Sim;

/// Eight nodes in a full mesh (seven links each), settled, with the trace
/// recorded.
fn mesh(watched_links: usize) -> Sim {
    let cfg = Config {
        watched_links,
        ..Config::lan()
    };
    let mut sim = Sim::builder()
        .nodes(8)
        .config(cfg)
        .latency(Duration::from_millis(5))
        .seed(7)
        .record_trace()
        .build();
    let deadline = sim.now() + Duration::from_secs(15);
    let done = sim.run_until_true(deadline, Duration::from_millis(10), |sim| {
        sim.up().len() == 8 && sim.converged()
    });
    assert!(done, "the mesh never converged");
    sim.run_for(Duration::from_secs(5));
    sim
}

/// A trace line of a received heartbeat or ping.
fn is_ping(line: &str) -> bool {
    line.contains(" ping ") || line.contains(" heartbeat ")
}

/// Pings and heartbeats received in the trace after `from` (virtual
/// seconds).
fn pings_after(sim: &Sim, from: f64) -> usize {
    sim.trace()
        .lines()
        .filter(|l| is_ping(l))
        .filter(|l| {
            l.split_whitespace()
                .next()
                .and_then(|t| t.parse::<f64>().ok())
                .is_some_and(|t| t >= from)
        })
        .count()
}

/// When node `i` first reported `who` gone.
fn removed_at(sim: &Sim, i: u32, who: u32) -> Option<Instant> {
    sim.events()
        .iter()
        .find(|e| {
            e.node == i && matches!(&e.event, Event::PeerDown { node, .. } if node.id == id_of(who))
        })
        .map(|e| e.at)
}

#[test]
fn an_idle_mesh_heartbeats_only_the_links_its_nodes_watch() {
    let window = 10.0;
    let count = |watched| {
        let mut sim = mesh(watched);
        let from = sim.now().as_millis() as f64 / 1000.0;
        sim.run_for(Duration::from_secs(window as u64));
        (pings_after(&sim, from), sim)
    };
    let (few, sim) = count(2);
    let (all, _) = count(7);
    // Every link watched: 28 links, one exchange each per second (the
    // ping of one end serves both).
    let per_s = 1000.0 / Config::lan().ping_interval.as_millis() as f64;
    assert!(
        all as f64 >= 28.0 * per_s * window * 0.9,
        "all links: {all} pings"
    );
    assert!(
        (all as f64) <= 28.0 * per_s * window * 1.2,
        "all links: {all} pings, more than one exchange per link per interval"
    );
    // Two picked per node: at most 8 x 2 links watched.
    assert!(
        (few as f64) <= 16.0 * per_s * window * 1.1,
        "two per node: {few} pings against {all} with every link watched"
    );
    // At most 16 of the 28 links carry heartbeats (fewer when two ends
    // pick the same link).
    assert!(
        few as f64 <= all as f64 * 16.0 / 28.0 * 1.1,
        "{few} pings against {all}"
    );
    // Yet every node is watched by someone: each pings or is pinged.
    let trace = sim.trace();
    for i in 0..8 {
        let me = format!("n{i} ");
        assert!(
            trace
                .lines()
                .filter(|l| is_ping(l))
                .any(|l| l.contains(&format!(" {me}<-")) || l.contains(&format!("<- {me}"))),
            "n{i} takes part in no heartbeat"
        );
    }
}

/// A hung member is suspected by the few neighbours that watch it; the
/// others verify the suspicion over their own links and accuse too, so the
/// suspicion shrinks to its minimum (Lifeguard) and every survivor removes
/// the member well before a single accuser's `suspect_timeout` would run
/// out after the silence and the check.
#[test]
fn neighbours_that_do_not_watch_a_hung_member_verify_and_hasten_its_removal() {
    let mut sim = mesh(2);
    let cfg = Config::lan();
    let paused_at: Instant = sim.now();
    sim.pause(3);
    sim.run_for(Duration::from_secs(10));
    let single_accuser = cfg.dead_after() + cfg.probe_timeout + cfg.suspect_timeout;
    for i in (0..8).filter(|&i| i != 3) {
        let took =
            removed_at(&sim, i, 3).unwrap_or_else(|| panic!("n{i} never removed n3")) - paused_at;
        assert!(
            took + Duration::from_millis(1000) < single_accuser,
            "n{i} removed n3 after {took:?}; one accuser alone would take {single_accuser:?}"
        );
    }
}

/// A hung member is suspected as soon as its watchers' silence runs out:
/// the check through others overlaps the end of the silence instead of
/// following it. Wherever the hang falls against the last heartbeat
/// exchange, every survivor removes it within a silence and the shortest
/// suspicion of that exchange (and within a second of each other's
/// phases: no phase waits a whole check longer).
#[test]
fn a_hung_member_is_checked_while_its_silence_runs_out() {
    let cfg = Config::lan();
    let bound = cfg.dead_after() + cfg.suspect_min + Duration::from_millis(100);
    let mut slowest = Vec::new();
    for phase in 0..10 {
        let mut sim = mesh(1);
        sim.run_for(Duration::from_millis(100 * phase));
        let paused_at: Instant = sim.now();
        sim.pause(3);
        sim.run_for(Duration::from_secs(8));
        for i in (0..8).filter(|&i| i != 3) {
            let took = removed_at(&sim, i, 3)
                .unwrap_or_else(|| panic!("phase {phase}: n{i} never removed n3"))
                - paused_at;
            assert!(
                took <= bound,
                "phase {phase}: n{i} removed n3 after {took:?}, over {bound:?}"
            );
            if slowest.len() == phase as usize {
                slowest.push(took);
            }
            slowest[phase as usize] = slowest[phase as usize].max(took);
        }
    }
    let ms: Vec<u64> = slowest.iter().map(|d| d.as_millis()).collect();
    println!("hung member gone at every survivor after (ms, by phase): {ms:?}");
}

/// Ten nodes with eight slots each cannot all fill their slots: a node
/// short of its last one is turned away as full by the members it asks.
/// It asks each of them again ever more rarely, and looks for the last
/// slot ever more rarely, instead of dialling a full member every
/// reconnect interval for good.
#[test]
fn a_group_with_no_room_for_the_last_slots_stops_dialling() {
    let mut sim = Sim::builder()
        .nodes(10)
        .config(Config::lan())
        .latency(Duration::from_millis(5))
        .seed(3)
        .record_trace()
        .build();
    sim.run_for(Duration::from_secs(20));
    let from = sim.now().as_millis() as f64 / 1000.0;
    let window = 60.0;
    sim.run_for(Duration::from_secs(window as u64));
    let lines: Vec<&str> = sim
        .trace()
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .and_then(|t| t.parse::<f64>().ok())
                .is_some_and(|t| t >= from)
        })
        .collect();
    let dials = lines.iter().filter(|l| l.contains(" dial ")).count();
    let refused = lines
        .iter()
        .filter(|l| l.contains(" bye ") && l.contains("Full"))
        .count();
    // Random probes alone: one probe round in 32 while calm, each a dial,
    // per node.
    let probes = 10.0 * window / 32.0;
    assert!(
        (dials as f64) <= probes * 1.5,
        "{dials} dials in {window} s ({refused} turned away as full); random probes alone make about {probes}"
    );
}
