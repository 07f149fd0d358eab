//! The checks are not vacuous: runs that break a property fail the check
//! that names it.

use gossip_sim::{report::Status, run, scenario::parse};

fn status(text: &str, check: &str) -> (Status, String) {
    let sc = parse("case.toml", text).unwrap();
    let r = run(&sc, 1, None);
    let c = r.check(check).unwrap();
    (c.status, r.render())
}

#[test]
fn a_split_that_comes_back_after_the_heal_fails_eventual_delivery() {
    // The liveness phase heals the first split at 30 s; a second one at
    // 30.5 s keeps the sides apart to the end, so what either side said
    // never reaches the other.
    let text = r#"
        duration = "45s"
        liveness = "15s"
        [nodes]
        count = 8
        [workload]
        rate = 4.0
        stop = "40s"
        [[fault]]
        at = "5s"
        kind = "partition"
        groups = [[0, 1, 2, 3]]
        [[fault]]
        at = "30.5s"
        kind = "partition"
        groups = [[0, 1, 2, 3]]
    "#;
    let (s, r) = status(text, "eventual_delivery");
    assert_eq!(s, Status::Fail, "{r}");
}

#[test]
fn convergence_is_measured_against_its_limit() {
    let text = r#"
        duration = "45s"
        liveness = "15s"
        [nodes]
        count = 8
        [[fault]]
        at = "5s"
        kind = "partition"
        shape = "halves"
        [checks]
        converge_within = "1ms"
    "#;
    let (s, r) = status(text, "convergence");
    assert_eq!(s, Status::Fail, "{r}");
    let text = text.replace("converge_within = \"1ms\"", "converge_within = \"5s\"");
    let (s, r) = status(&text, "convergence");
    assert_eq!(s, Status::Pass, "{r}");
}

#[test]
fn a_crash_is_detected_and_measured() {
    let text = r#"
        duration = "30s"
        [nodes]
        count = 6
        [[fault]]
        at = "10s"
        kind = "crash"
        node = 2
    "#;
    let sc = parse("case.toml", text).unwrap();
    let r = run(&sc, 1, None);
    assert!(r.passed, "{}", r.render());
    // Five observers removed it, each after at least the heartbeat silence.
    assert_eq!(r.figures.detection_ms.n, 5);
    assert!(r.figures.detection_ms.p50 >= 1500, "{}", r.render());
    assert!(r.figures.detection_ms.max <= 10_000);
}

#[test]
fn a_pause_past_the_deadline_fails_detection_when_the_deadline_is_short() {
    let text = r#"
        duration = "30s"
        [nodes]
        count = 5
        [[fault]]
        at = "10s"
        kind = "pause"
        node = 1
        for = "15s"
        [checks]
        detect_within = "500ms"
    "#;
    let (s, r) = status(text, "detection");
    assert_eq!(s, Status::Fail, "{r}");
}

#[test]
fn xfail_turns_a_failure_into_an_expected_one() {
    let text = r#"
        duration = "30s"
        [nodes]
        count = 5
        [[fault]]
        at = "10s"
        kind = "crash"
        node = 1
        [checks]
        detect_within = "500ms"
        xfail = ["detection"]
    "#;
    let sc = parse("case.toml", text).unwrap();
    let r = run(&sc, 1, None);
    let c = r.check("detection").unwrap();
    assert_eq!(c.status, Status::Xfail);
    assert!(r.passed);
}

#[test]
fn messages_across_a_partition_are_not_owed_but_the_rest_are() {
    let text = r#"
        duration = "30s"
        [nodes]
        count = 10
        [workload]
        rate = 5.0
        [[fault]]
        at = "8s"
        kind = "partition"
        shape = "halves"
    "#;
    let sc = parse("case.toml", text).unwrap();
    let r = run(&sc, 2, None);
    let d = r.check("delivery").unwrap();
    assert_eq!(d.status, Status::Pass, "{}", r.render());
    assert!(d.judged > 100, "{}", r.render());
}

#[test]
fn a_check_the_scenario_must_judge_fails_the_run_when_it_judged_nothing() {
    // Nobody crashes: detection has nothing to judge. Without a claim it
    // says n/a and the run passes; listed in `judge`, the run fails.
    let text = "duration = \"10s\"\n[nodes]\ncount = 3\n[workload]\nrate = 2.0\n";
    let r = run(&parse("case.toml", text).unwrap(), 1, None);
    let d = r.check("detection").unwrap();
    assert_eq!(d.status, Status::Skip, "{}", r.render());
    assert!(r.passed, "{}", r.render());
    assert!(r.render().contains("  n/a   detection"), "{}", r.render());
    let text = format!("{text}[checks]\njudge = [\"delivery\", \"detection\"]\n");
    let r = run(&parse("case.toml", &text).unwrap(), 1, None);
    assert_eq!(r.check("detection").unwrap().status, Status::Fail);
    assert_eq!(r.check("delivery").unwrap().status, Status::Pass);
    assert!(!r.passed, "{}", r.render());
}

#[test]
fn two_islands_that_never_meet_fail_overlay_connected() {
    // A split from the first instant: each half joins along its chain
    // and never links to the other.
    let text = r#"
        duration = "20s"
        [nodes]
        count = 8
        join = "chain"
        [[fault]]
        at = "0s"
        kind = "partition"
        groups = [[0, 1, 2, 3]]
    "#;
    let (s, r) = status(text, "overlay_connected");
    assert_eq!(s, Status::Fail, "{r}");
    assert!(
        r.contains("2 components over 8 live nodes: sizes 4, 4"),
        "{r}"
    );
    // Healed half way: one overlay at the end.
    let healed = format!("{text}\n        for = \"5s\"\n");
    let (s, r) = status(&healed, "overlay_connected");
    assert_eq!(s, Status::Pass, "{r}");
    assert!(r.contains("1 component over 8 live nodes"), "{r}");
}

#[test]
fn messages_evicted_from_every_history_during_a_split_are_counted() {
    // Each side sends far more than the 100 messages a node keeps while
    // the split lasts: after the heal the early ones are in no history,
    // and no repair can bring them across.
    let text = r#"
        duration = "60s"
        liveness = "25s"
        [nodes]
        count = 8
        [node]
        history_max = 100
        [workload]
        rate = 20.0
        stop = "33s"
        [[fault]]
        at = "5s"
        kind = "partition"
        groups = [[0, 1, 2, 3]]
    "#;
    let r = run(&parse("case.toml", text).unwrap(), 0, None);
    let c = r.check("eventual_delivery").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.render());
    let m = r
        .figures
        .missing
        .expect("a liveness phase reports missing messages");
    assert!(m.msgs > 0 && m.evicted > 0 && m.evicted <= m.msgs, "{m:?}");
    let said = format!(
        "{} of {} missing messages were evicted from every history",
        m.evicted, m.msgs
    );
    assert!(c.figure.contains(&said), "{}", r.render());
    // With the default history every missing message is still held
    // somewhere, and repair delivers it.
    let roomy = text.replace("history_max = 100", "history_max = 10000");
    let r = run(&parse("case.toml", &roomy).unwrap(), 0, None);
    assert_eq!(
        r.check("eventual_delivery").unwrap().status,
        Status::Pass,
        "{}",
        r.render()
    );
}
