//! What an idle group costs: arrivals ride the broadcast tree, the ring
//! predecessor is probed over one kept connection, and a quiet view is
//! synced ever more rarely.

use gossip_chat::{Config, Duration};
use gossip_sim::builder::Sim;
use gossip_sim::scenario::InitialJoin;

/// `n` nodes starting 5 ms apart through random members, converged, with
/// the trace recorded.
fn group(n: u32, cfg: Config) -> Sim {
    let mut sim = Sim::builder()
        .nodes(n)
        .config(cfg)
        .join(InitialJoin::Random)
        .stagger(Duration::from_millis(5))
        .latency(Duration::from_millis(5))
        .seed(11)
        .record_trace()
        .build();
    let deadline = sim.now() + Duration::from_secs(20);
    let done = sim.run_until_true(deadline, Duration::from_millis(10), |sim| {
        sim.up().len() == n as usize && sim.converged()
    });
    assert!(done, "the group never converged");
    sim
}

/// Trace lines at or after `from` (virtual seconds).
fn lines_after(sim: &Sim, from: f64) -> impl Iterator<Item = &str> {
    sim.trace().lines().filter(move |l| {
        l.split_whitespace()
            .next()
            .and_then(|t| t.parse::<f64>().ok())
            .is_some_and(|t| t >= from)
    })
}

/// Trace lines of a kind received at or after `from` (virtual seconds).
fn received<'a>(sim: &'a Sim, kind: &'a str, from: f64) -> impl Iterator<Item = &'a str> + 'a {
    lines_after(sim, from).filter(move |l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 5 && f[2] == "<-" && f[5] == kind
    })
}

/// Entries in the peer lists received (`... peers 24B 1 entries`).
fn peer_entries(sim: &Sim) -> usize {
    received(sim, "peers", 0.0)
        .filter_map(|l| l.split_whitespace().nth(7)?.parse::<usize>().ok())
        .sum()
}

#[test]
fn arrivals_ride_the_broadcast_tree() {
    let n = 60;
    let tree = group(n, Config::lan());
    let flood = group(
        n,
        Config {
            prune_duplicates: false,
            ..Config::lan()
        },
    );
    let (t, f) = (peer_entries(&tree), peer_entries(&flood));
    eprintln!("peer list entries received: tree {t}, flood {f}");
    // Flooded, each node hears of each arrival from most of its
    // neighbours; over the tree about once.
    assert!(t * 2 <= f, "tree {t} entries against {f} flooded");
    assert!(
        t >= (n * (n - 1) / 4) as usize,
        "tree {t}: the arrivals came some other way"
    );
}

#[test]
fn the_ring_predecessor_is_probed_over_one_kept_connection() {
    // Few neighbours each, so most ring predecessors are not neighbours.
    let mut sim = group(
        24,
        Config {
            max_connections: 3,
            ..Config::lan()
        },
    );
    let from = sim.now().as_millis() as f64 / 1000.0;
    let window = 20;
    sim.run_for(Duration::from_secs(window));
    let dials = lines_after(&sim, from)
        .filter(|l| l.contains(" dial "))
        .count();
    let probes = received(&sim, "pong", from).count();
    let pings = received(&sim, "ping", from).count();
    let checks = received(&sim, "probe-req", from).count();
    eprintln!(
        "{probes} pongs, {pings} pings, {checks} probe requests, {dials} dials in {window} s"
    );
    // About one probe round a second per node, most of them to the ring
    // predecessor over the kept connection: only the others dial.
    let rounds = 24 * window as usize;
    assert!(probes >= rounds / 2, "{probes} pongs in {rounds} rounds");
    assert!(
        dials * 3 <= rounds,
        "{dials} dials in {rounds} probe rounds"
    );
    // The predecessor pushes its answers (a ping, its answer and an ACK
    // are three packets over TCP; a push and its ACK two): the prober
    // pings it one round in eight, and the pushes come close enough
    // together that no silence is taken for a failure.
    assert!(pings * 3 <= rounds * 2, "{pings} pings in {rounds} rounds");
    assert_eq!(checks, 0, "a healthy idle group checked members");
}

#[test]
fn a_quiet_view_is_synced_ever_more_rarely() {
    let mut sim = group(8, Config::lan());
    sim.run_for(Duration::from_secs(20));
    let from = sim.now().as_millis() as f64 / 1000.0;
    let window = 16;
    sim.run_for(Duration::from_secs(window));
    let syncs = received(&sim, "sync", from).count();
    eprintln!("{syncs} syncs in {window} s");
    // One every eighth round, against one a round while the view changes.
    let rounds = 8 * window as usize;
    assert!(syncs * 4 <= rounds, "{syncs} syncs in {rounds} rounds");
    assert!(syncs >= rounds / 16, "{syncs} syncs in {rounds} rounds");
}

/// An idle group's beacons go over the broadcast tree only: once the
/// overlay has settled, a beacon costs about one message per node. Ten
/// nodes with eight slots each leave some slots free, so their nodes keep
/// dialling and are turned away as full (a link opened and closed again
/// changes nothing), and a node whose links did change pushes a beacon
/// over every link once: each end that holds such a link off the tree
/// prunes it back, or the pusher goes on pushing beacons, and chat, over
/// it.
#[test]
fn an_idle_groups_beacons_cost_one_message_per_node() {
    let n = 10;
    let cfg = Config::lan();
    let mut sim = group(n, cfg.clone());
    let from = sim.now() + Duration::from_secs(30);
    sim.run_until(from + cfg.beacon_interval.saturating_mul(3));
    let beacons = received(&sim, "beacon", from.as_millis() as f64 / 1000.0).count();
    let rounds = 3;
    eprintln!("{beacons} beacons received in {rounds} rounds");
    // Per round: one copy per node but the leader, and one more where two
    // paths tie.
    assert!(
        beacons <= rounds * n as usize,
        "{beacons} beacon copies in {rounds} rounds of {n} nodes"
    );
    assert!(
        beacons >= rounds * (n as usize - 1),
        "{beacons}: beacons missing"
    );
}
