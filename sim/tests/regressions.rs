//! Scenario seeds that once failed, each for a cause since fixed in the
//! core, keep passing. Seeds 0 and 1 of every scenario are pinned by
//! `sweep.rs`; these are the ones a sweep over 0..100 or more found.

use gossip_sim::{load, run};

/// (scenario, seed, what failed there).
const ONCE_FAILED: &[(&str, u64, &str)] = &[
    (
        "wan-mixed",
        98,
        "discovery: a slow node and the neighbour it synced with first missed the same arrivals, \
         and its view stayed the same, so it synced again only two rounds later",
    ),
    (
        "bridge-crash",
        66,
        "delivery: the bridge's neighbours were all on one side; chat from the other side \
         reached it only past the limit (its probes of that side now compare chat hashes)",
    ),
    (
        "misbehaving-full",
        42,
        "invented_peers: an invented member first on the ring was dialled as the leader \
         after its fifth failed dial",
    ),
    ("misbehaving-full", 56, "invented_peers: as for seed 42"),
];

#[test]
fn seeds_that_once_failed_pass() {
    let mut failed = Vec::new();
    for (name, seed, cause) in ONCE_FAILED {
        let path = format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        let mut sc = load(&path).unwrap_or_else(|e| panic!("{e}"));
        sc.path = format!("scenarios/{name}.toml");
        let report = run(&sc, *seed, None);
        if !report.passed {
            failed.push(format!("{} (once: {cause})", report.replay_command()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
