//! The `sim` command line: exit codes, error lines and replay commands.

mod common;

use common::sim;

fn temp(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("gossip-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn a_passing_scenario_exits_0_and_prints_every_check_with_its_figure() {
    let (code, out, _) = sim(&["scenarios/two-nodes.toml", "--seed", "3"]);
    assert_eq!(code, 0, "{out}");
    for check in gossip_sim::check_id::CheckId::ALL.map(|c| c.name()) {
        assert!(out.contains(check), "{check} missing from:\n{out}");
    }
    assert!(out.contains("fingerprint"), "{out}");
    assert!(out.contains("result: PASS"), "{out}");
}

#[test]
fn an_invalid_file_exits_2_with_file_and_line() {
    let p = temp(
        "bad.toml",
        "duration = \"10s\"\n[nodes]\ncount = 3\n\n[[fault]]\nat = \"1s\"\nkind = \"crash\"\nnode = 9\n",
    );
    let (code, _, err) = sim(&[&p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{p}:5:")), "{err}");
    assert!(err.contains("node 9 does not exist"), "{err}");
    let p = temp(
        "bad2.toml",
        "duration = \"10 seconds\"\n[nodes]\ncount = 3\n",
    );
    let (code, _, err) = sim(&[&p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{p}:1:")), "{err}");
}

#[test]
fn bad_arguments_exit_2() {
    assert_eq!(sim(&["scenarios/two-nodes.toml", "--seeds", "5..2"]).0, 2);
    assert_eq!(sim(&["scenarios/two-nodes.toml", "--colour"]).0, 2);
    assert_eq!(sim(&[]).0, 2);
}

#[test]
fn a_failing_check_exits_1_with_the_replay_command() {
    // Nobody can detect a crash within 100 ms with 2 s heartbeats.
    let p = temp(
        "strict.toml",
        "duration = \"20s\"\n[nodes]\ncount = 4\n[[fault]]\nat = \"5s\"\nkind = \"crash\"\nnode = 1\n[checks]\ndetect_within = \"100ms\"\n",
    );
    let (code, out, err) = sim(&[&p, "--seed", "4"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  detection"), "{out}");
    let replay = format!("cargo run --release --bin sim -- {p} --seed 4");
    assert!(out.contains(&replay), "{out}");
    assert!(err.contains(&replay), "{err}");
}

#[test]
fn json_has_checks_figures_and_fingerprint() {
    let (code, out, _) = sim(&["scenarios/two-nodes.toml", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["checks"].as_array().unwrap().len(),
        gossip_sim::check_id::CheckId::ALL.len()
    );
    assert!(v["fingerprint"].as_str().unwrap().len() == 16);
    assert!(v["figures"]["delivery_ms"]["p99"].is_number());
    assert!(v["figures"]["bytes_per_node_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_seed_range_reports_each_seed() {
    let (code, out, _) = sim(&["scenarios/two-nodes.toml", "--seeds", "0..3"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("seed 2: PASS"), "{out}");
    assert!(out.contains("3 of 3 seeds passed"), "{out}");
}

#[test]
fn trace_files_are_byte_identical_across_runs() {
    let dir = std::env::temp_dir().join(format!("gossip-sim-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = dir.join("a.trace").to_string_lossy().into_owned();
    let b = dir.join("b.trace").to_string_lossy().into_owned();
    assert_eq!(
        sim(&["scenarios/crash.toml", "--seed", "5", "--trace", &a]).0,
        0
    );
    assert_eq!(
        sim(&["scenarios/crash.toml", "--seed", "5", "--trace", &b]).0,
        0
    );
    let (ta, tb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(ta.len() > 1000);
    assert!(ta == tb, "trace files differ");
}
