//! Trace snapshots of the small scenarios: any change in the protocol's
//! behaviour (or in the simulator) shows up as a reviewed diff.

use gossip_sim::{load, run_traced};

fn trace_of(name: &str) -> String {
    let path = format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let sc = load(&path).unwrap();
    let (report, text) = run_traced(&sc, 0);
    assert!(report.passed, "{}", report.render());
    // Heartbeat timeouts add bulk and no insight: keep the rest.
    text.lines()
        .filter(|l| !l.ends_with(" timeout"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn two_nodes_trace() {
    insta::assert_snapshot!(trace_of("two-nodes"));
}

#[test]
fn three_nodes_trace() {
    insta::assert_snapshot!(trace_of("three-nodes"));
}
