//! A slow node handles every input late by its delay, in order, at the
//! virtual time it finally handles it; when the slowness ends, the backlog
//! drains and inputs are handled on time again.

use gossip_sim::{run_traced, scenario::parse};

/// The times at which `node`'s user got n0's chats #1, #2, ...
fn chats_at(trace: &str, node: &str) -> Vec<(u64, f64)> {
    let mut out = Vec::new();
    for line in trace.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 4 && w[1] == node && w[2] == "chat" {
            if let Some(seq) = w[3].strip_prefix("n0/1#") {
                out.push((seq.parse().unwrap(), w[0].parse().unwrap()));
            }
        }
    }
    out
}

fn two_nodes(fault: &str) -> String {
    format!(
        r#"
        duration = "40s"
        [node]
        missed_pings = 40
        [nodes]
        count = 2
        [network]
        latency = "5ms"
        [[workload.send]]
        at = "12s"
        from = 0
        [[workload.send]]
        at = "12.2s"
        from = 0
        [[workload.send]]
        at = "14s"
        from = 0
        [[workload.send]]
        at = "30s"
        from = 0
        {fault}
        "#
    )
}

#[test]
fn a_slow_node_handles_its_inputs_late_and_in_order() {
    let slow =
        "[[fault]]\nat = \"10s\"\nkind = \"slow\"\nnode = 1\nfor = \"10s\"\ndelay = \"1.5s\"";
    let sc = parse("slow.toml", &two_nodes(slow)).unwrap();
    let (_, trace) = run_traced(&sc, 0);
    assert!(
        trace.contains("fault slow n1 by 1500ms for 10s"),
        "the fault is in the trace"
    );
    assert!(
        trace.contains("fault slow n1 ends"),
        "its end is in the trace"
    );
    // Sent at 12, 12.2 and 14 s, 5 ms away: handled 1.5 s late, in order;
    // the one sent at 30 s, after the slowness, on time.
    assert_eq!(
        chats_at(&trace, "n1"),
        vec![(1, 13.505), (2, 13.705), (3, 15.505), (4, 30.005)]
    );
    // Its own timeouts are late too: the first one due after 10 s waits
    // 1.5 s, so n1 handles none between 10 s and 11.5 s.
    let timeouts: Vec<f64> = trace
        .lines()
        .filter(|l| l.ends_with(" n1 timeout"))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(
        !timeouts.iter().any(|&t| (10.0..11.5).contains(&t)),
        "n1 handled a timeout on time while slow: {timeouts:?}"
    );
    assert!(timeouts.iter().any(|&t| (11.5..12.1).contains(&t)));

    // The same run without the fault: on time.
    let sc = parse("fast.toml", &two_nodes("")).unwrap();
    let (_, trace) = run_traced(&sc, 0);
    assert_eq!(
        chats_at(&trace, "n1"),
        vec![(1, 12.005), (2, 12.205), (3, 14.005), (4, 30.005)]
    );
}

/// Starved nodes hear everything late, their own timeouts included: they
/// must neither remove a healthy member on their own stale evidence nor
/// hold on to a dead one that the healthy nodes removed. Seeds of
/// `slow-nodes.toml` that once failed: 33 and 45 (a starved node removed
/// healthy members after its suspicion ran out before the refutation
/// reached it) and 68 (a starved node kept a crashed neighbour 23 s,
/// trusting its own late "first-hand" news of it over the others' death
/// notice).
#[test]
fn starved_nodes_remove_no_healthy_member_and_keep_no_dead_one() {
    let path = format!(
        "{}/../scenarios/slow-nodes.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let sc = gossip_sim::load(&path).unwrap();
    for seed in [33, 45, 68] {
        let report = gossip_sim::run(&sc, seed, None);
        for name in ["no_false_removal", "detection"] {
            let c = report.checks.iter().find(|c| c.name == name).unwrap();
            assert!(!c.status.failed(), "seed {seed}: {name}: {}", c.figure);
        }
    }
}

/// Nodes starved past the suspicion timeout (2-5 s behind, against 1-3 s
/// in `slow-nodes.toml`) once confirmed each other's accusations into
/// deaths of healthy members: 239, 112 and 128 false removals at seeds 0,
/// 6 and 9. A node that runs a heartbeat or more behind now accuses no
/// one. (Their own removal of the crashed member can still come late: the
/// others removed them, so the news reaches them only once they rejoin.)
#[test]
fn nodes_starved_past_the_suspicion_timeout_remove_no_healthy_member() {
    let path = format!(
        "{}/../scenarios/slow-nodes.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let longer = text.replace(r#"delay = ["1s", "3s"]"#, r#"delay = ["2s", "5s"]"#);
    assert_ne!(text, longer, "the delay line moved");
    let sc = parse("slow-nodes-2-5s.toml", &longer).unwrap();
    for seed in [0, 6, 9] {
        let report = gossip_sim::run(&sc, seed, None);
        let c = report
            .checks
            .iter()
            .find(|c| c.name == "no_false_removal")
            .unwrap();
        assert!(!c.status.failed(), "seed {seed}: {}", c.figure);
    }
}
