//! Random mode draws each fault's target among the nodes it can apply to:
//! a crash, kill, pause or leave hits a node that is up when it fires, a
//! restart a node that is down for good (when there is one).

use gossip_sim::{run_traced, scenario::parse};
use std::collections::BTreeMap;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    Up,
    Paused,
    Down,
}

#[test]
fn random_faults_hit_only_nodes_they_apply_to() {
    let sc = parse(
        "targets.toml",
        r#"
        duration = "60s"
        liveness = "20s"
        [nodes]
        count = 8
        [random]
        faults = [10, 14]
        kinds = ["crash", "kill", "pause", "restart", "leave"]
        start = "5s"
        end = "30s"
        durations = ["2s", "9s"]
        "#,
    )
    .unwrap();
    let (mut hits, mut restarts_of_down) = (0, 0);
    for seed in 0..8 {
        let (_, trace) = run_traced(&sc, seed);
        let mut st: BTreeMap<u32, St> = (0..8).map(|n| (n, St::Up)).collect();
        for line in trace.lines() {
            let mut w = line.split_whitespace().skip(1);
            if w.next() != Some("fault") {
                continue;
            }
            let (Some(what), Some(node)) = (w.next(), w.next()) else {
                continue;
            };
            let Some(n) = node.strip_prefix('n').and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let now = *st.get(&n).unwrap_or(&St::Up);
            let any_down = st.values().any(|s| *s == St::Down);
            match what {
                "crash" | "kill" | "leave" | "pause" => {
                    assert_eq!(
                        now,
                        St::Up,
                        "seed {seed}: {line} hits a node that is {now:?}"
                    );
                    hits += 1;
                    st.insert(
                        n,
                        if what == "pause" {
                            St::Paused
                        } else {
                            St::Down
                        },
                    );
                }
                "restart" => {
                    assert!(
                        now == St::Down || !any_down,
                        "seed {seed}: {line} restarts a node that is {now:?} while others are down"
                    );
                    restarts_of_down += usize::from(now == St::Down);
                    st.insert(n, St::Up);
                }
                "resume" => {
                    st.insert(n, St::Up);
                }
                _ => {}
            }
        }
    }
    assert!(hits > 40, "only {hits} node faults fired");
    assert!(restarts_of_down > 0, "no restart brought a down node back");
}

#[test]
fn random_mode_draws_slow_nodes_only_when_listed() {
    let text = |kinds: &str| {
        format!(
            "duration = \"50s\"\nliveness = \"15s\"\n[nodes]\ncount = 6\n[random]\nfaults = [3, 3]\n{kinds}start = \"5s\"\nend = \"20s\"\n"
        )
    };
    let sc = parse("slow.toml", &text("kinds = [\"slow\"]\n")).unwrap();
    let (report, trace) = run_traced(&sc, 3);
    assert_eq!(report.faults.len(), 4, "{:?}", report.faults);
    assert!(
        report.faults[0].contains("slow 1 random by 1s..3s"),
        "{:?}",
        report.faults
    );
    let slowed = trace
        .lines()
        .filter(|l| l.contains(" fault slow n"))
        .count();
    assert!(slowed >= 3, "{slowed} slow faults fired");
    let sc = parse("all.toml", &text("")).unwrap();
    for seed in 0..20 {
        let f = gossip_sim::random::schedule(&sc, seed);
        assert!(
            !f.iter()
                .any(|f| matches!(f.kind, gossip_sim::scenario::FaultKind::Slow(_))),
            "seed {seed}: slow drawn though not listed"
        );
    }
}
