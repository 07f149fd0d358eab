//! Same scenario and seed: byte-identical trace and equal fingerprints.
//! Another seed: another run.

use gossip_sim::{load, run, run_traced};

fn traced(name: &str, seed: u64) -> (String, gossip_sim::Report) {
    let path = format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let sc = load(&path).unwrap();
    let (report, trace) = run_traced(&sc, seed);
    (trace, report)
}

#[test]
fn same_seed_gives_a_byte_identical_trace() {
    for name in ["crash", "random-faults", "lossy", "misbehaving"] {
        let (a, ra) = traced(name, 7);
        let (b, rb) = traced(name, 7);
        assert!(a.len() > 10_000, "{name}: trace suspiciously short");
        assert!(a == b, "{name}: traces differ for the same seed");
        assert_eq!(ra.fingerprint, rb.fingerprint);
        assert_eq!(ra.events, rb.events);
    }
}

#[test]
fn the_fingerprint_does_not_depend_on_writing_the_trace() {
    let path = format!("{}/../scenarios/crash.toml", env!("CARGO_MANIFEST_DIR"));
    let sc = load(&path).unwrap();
    let (_, traced) = traced("crash", 3);
    let untraced = run(&sc, 3, None);
    assert_eq!(traced.fingerprint, untraced.fingerprint);
}

#[test]
fn another_seed_takes_another_path() {
    let (a, ra) = traced("random-faults", 1);
    let (b, rb) = traced("random-faults", 2);
    assert_ne!(a, b);
    assert_ne!(ra.fingerprint, rb.fingerprint);
    // Random mode draws a schedule per seed.
    assert_ne!(ra.faults, rb.faults);
}

#[test]
fn every_trace_line_starts_with_its_time() {
    let (text, _) = traced("three-nodes", 0);
    let mut last = 0.0f64;
    for line in text.lines() {
        let time: f64 = line
            .split(' ')
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no time first: {line}"));
        assert!(time >= last, "time went backwards at {line}");
        last = time;
    }
}
