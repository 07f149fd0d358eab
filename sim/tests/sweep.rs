//! Every scenario passes its checks over a seed sweep.
//!
//! CI runs a small sweep (seeds 0..2). For the long one:
//! `GOSSIP_SIM_SEEDS=0..100 cargo test --release -p gossip-sim --test sweep`
//! (add `GOSSIP_SIM_SCALE=1` to include the 1000-node scenario).

use gossip_sim::{load, run};
use std::ops::Range;

fn seeds() -> Range<u64> {
    let spec = std::env::var("GOSSIP_SIM_SEEDS").unwrap_or_else(|_| "0..2".into());
    let (a, b) = spec
        .split_once("..")
        .expect("GOSSIP_SIM_SEEDS looks like 0..100");
    a.parse().expect("seed range start")..b.parse().expect("seed range end")
}

fn sweep(name: &str, seeds: Range<u64>) {
    let path = format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let mut sc = load(&path).unwrap_or_else(|e| panic!("{e}"));
    sc.path = format!("scenarios/{name}.toml");
    let mut failures = Vec::new();
    for seed in seeds {
        let report = run(&sc, seed, None);
        if !report.passed {
            let failed: Vec<String> = report
                .checks
                .iter()
                .filter(|c| c.status.failed())
                .map(|c| format!("{}: {}", c.name, c.figure))
                .collect();
            failures.push(format!(
                "{}\n    {}",
                report.replay_command(),
                failed.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "failing seeds:\n{}",
        failures.join("\n")
    );
}

#[test]
fn two_nodes() {
    sweep("two-nodes", seeds());
}

#[test]
fn three_nodes() {
    sweep("three-nodes", seeds());
}

#[test]
fn join_any() {
    sweep("join-any", seeds());
}

#[test]
fn crash() {
    sweep("crash", seeds());
}

#[test]
fn partition() {
    sweep("partition", seeds());
}

#[test]
fn restart() {
    sweep("restart", seeds());
}

#[test]
fn lossy() {
    sweep("lossy", seeds());
}

#[test]
fn random_faults() {
    sweep("random-faults", seeds());
}

#[test]
fn misbehaving() {
    sweep("misbehaving", seeds());
}

#[test]
fn misbehaving_full() {
    sweep("misbehaving-full", seeds());
}

#[test]
fn churn() {
    // Hundreds of nodes: one seed unless a sweep is asked for.
    let s = seeds();
    if std::env::var_os("GOSSIP_SIM_SEEDS").is_some() {
        sweep("churn", s);
    } else {
        sweep("churn", s.start..s.start + 1);
    }
}

#[test]
fn scale_1000() {
    // Ten virtual minutes of 1000 nodes: only on request.
    if std::env::var_os("GOSSIP_SIM_SCALE").is_none() {
        return;
    }
    let s = seeds();
    sweep("scale-1000", s);
}
