//! `sim --plot`: the time series of a run and its SVG. Recording the series
//! must leave the run alone (same fingerprint), and the series must show
//! what happened: the partition scenario's split and its re-merge.

mod common;

use common::sim;

const PARTITION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/partition.toml");

fn fingerprint(report: &str) -> &str {
    let line = report
        .lines()
        .find(|l| l.contains("fingerprint"))
        .unwrap_or_else(|| panic!("no fingerprint in:\n{report}"));
    line.split_whitespace()
        .skip_while(|w| !w.contains("fingerprint"))
        .nth(1)
        .unwrap_or(line)
}

#[test]
fn the_series_shows_the_split_and_the_re_merge() {
    let sc = gossip_sim::load(PARTITION).unwrap();
    let (report, s) = gossip_sim::run_with_series(&sc, 0, None, &mut |_| {});
    assert!(report.passed, "{}", report.render());
    assert_eq!(
        report.fingerprint,
        gossip_sim::run(&sc, 0, None).fingerprint
    );
    assert!(s.points.len() > 50 && s.points.len() <= gossip_sim::series::MAX_POINTS + 1);
    assert_eq!(s.points.last().map(|p| p.t_ms), Some(70_000));
    // Before the split the views agree; during it each side removes the
    // other; after the heal at 30 s they agree again.
    assert_eq!(s.max_views(5_000, 10_000), 1);
    assert!(s.max_views(14_000, 30_000) > 1, "{:?}", s.points);
    assert!(s.in_range(20_000, 30_000).all(|p| p.views >= 2));
    assert!(s.in_range(45_000, 70_001).all(|p| p.views == 1));
    assert!(s.in_range(5_000, 70_001).all(|p| p.live == 20));
    // Traffic and latency are there while chats flow (2 s..60 s).
    let mid: Vec<_> = s.in_range(5_000, 60_000).collect();
    assert!(mid.iter().map(|p| p.chats_sent).sum::<u64>() > 100);
    assert!(mid.iter().map(|p| p.deliveries).sum::<u64>() > 1000);
    assert!(mid.iter().any(|p| p.p99_ms.is_some_and(|l| l > 0)));
    let chat = s.kinds.iter().position(|k| *k == "chat").unwrap();
    assert!(mid
        .iter()
        .any(|p| p.bytes.get(chat).is_some_and(|&b| b > 0)));
    let marks: Vec<_> = s.marks.iter().map(|m| (m.t_ms, m.label.as_str())).collect();
    assert_eq!(marks[0].0, 10_000);
    assert!(marks[0].1.starts_with("partition"), "{marks:?}");
    assert_eq!(marks[1].0, 30_000);
}

#[test]
fn plot_writes_an_svg_and_keeps_the_report() {
    let dir = std::env::temp_dir().join(format!("gossip-sim-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("p.svg");
    let file = file.to_str().unwrap();
    let (code, plain, _) = sim(&["scenarios/partition.toml", "--seed", "1"]);
    assert_eq!(code, 0, "{plain}");
    let (code, plotted, err) = sim(&["scenarios/partition.toml", "--seed", "1", "--plot", file]);
    assert_eq!(code, 0, "{plotted}{err}");
    assert_eq!(fingerprint(&plain), fingerprint(&plotted));
    let svg = std::fs::read_to_string(file).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.trim_end().ends_with("</svg>"));
    for label in ["partition halves", "liveness", "Distinct membership views"] {
        assert!(svg.contains(label), "{label} missing from the SVG");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plot_takes_one_seed() {
    let (code, _, err) = sim(&[
        "scenarios/partition.toml",
        "--seeds",
        "0..2",
        "--plot",
        "x.svg",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--plot takes one seed"), "{err}");
}

#[test]
fn an_unwritable_plot_file_exits_2() {
    let (code, _, err) = sim(&[
        "scenarios/two-nodes.toml",
        "--plot",
        "/nonexistent-dir/p.svg",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot write"), "{err}");
}
