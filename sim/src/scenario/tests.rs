//! Scenario parsing: errors name the line, node indices are checked, and
//! each fault kind takes only the fields that mean something to it.

use super::*;
use gossip_chat::Duration;

const HEAD: &str = "duration = \"10s\"\n[nodes]\ncount = 11\n";

/// A scenario of 11 nodes with one fault (the `[[fault]]` line is line 4).
fn with_fault(fields: &str) -> Result<Scenario, ScenarioError> {
    parse(
        "x.toml",
        &format!("{HEAD}[[fault]]\nat = \"1s\"\n{fields}\n"),
    )
}

fn refused(fields: &str, why: &str) {
    let e = with_fault(fields).unwrap_err();
    assert_eq!(e.line, Some(4), "{e}");
    assert!(e.to_string().starts_with("x.toml:4: "), "{e}");
    assert!(e.message.contains(why), "{fields}: {e}");
}

fn only_fault(fields: &str) -> FaultKind {
    let sc = with_fault(fields).unwrap_or_else(|e| panic!("{fields}: {e}"));
    sc.faults[0].kind.clone()
}

#[test]
fn errors_name_the_line() {
    let text =
        "duration = \"10s\"\n[nodes]\ncount = 3\n\n[[fault]]\nat = \"1s\"\nkind = \"explode\"\n";
    let e = parse("x.toml", text).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.message.contains("explode"), "{e}");
    let e = parse(
        "x.toml",
        "duration = \"10s\"\n[nodes]\ncount = 3\ncolour = 1\n",
    )
    .unwrap_err();
    assert_eq!(e.line, Some(4), "{e}");
    let e = parse("x.toml", "duration = \"10\"\n[nodes]\ncount = 3\n").unwrap_err();
    assert_eq!(e.line, Some(1), "{e}");
    assert!(e.to_string().starts_with("x.toml:1: "), "{e}");
}

#[test]
fn fault_nodes_must_exist() {
    let text = "duration = \"10s\"\n[nodes]\ncount = 3\n[[fault]]\nat = \"1s\"\nkind = \"crash\"\nnode = 7\n";
    let e = parse("x.toml", text).unwrap_err();
    assert_eq!(e.line, Some(4), "{e}");
    assert!(e.message.contains("node 7"), "{e}");
}

#[test]
fn decimal_durations_in_a_file_are_exact() {
    let sc = parse(
        "x.toml",
        "duration = \"64.4s\"\nliveness = \"16.1s\"\n[nodes]\ncount = 3\n[checks]\nconverge_within = \"32.2s\"\n",
    )
    .unwrap();
    assert_eq!(sc.duration, Duration::from_millis(64_400));
    assert_eq!(sc.liveness, Duration::from_millis(16_100));
    assert_eq!(sc.checks.converge_within, Duration::from_millis(32_200));
    let e = parse("x.toml", "duration = \"1.0005s\"\n[nodes]\ncount = 3\n").unwrap_err();
    assert_eq!(e.line, Some(1), "{e}");
    assert!(e.message.contains("whole number of milliseconds"), "{e}");
}

#[test]
fn a_node_on_a_partition_is_honoured_where_it_means_something() {
    let shape = |fields: &str| match only_fault(fields) {
        FaultKind::Partition { shape, .. } => shape,
        k => panic!("{k:?}"),
    };
    assert_eq!(
        shape("kind = \"partition\"\nshape = \"bridge\"\nnode = 4"),
        Shape::Bridge(Some(4))
    );
    assert_eq!(
        shape("kind = \"partition\"\nshape = \"bridge\""),
        Shape::Bridge(None)
    );
    assert_eq!(
        shape("kind = \"partition\"\nshape = \"isolate\"\nnode = 10"),
        Shape::Isolate(Some(10))
    );
    for s in ["halves", "majority"] {
        refused(
            &format!("kind = \"partition\"\nshape = \"{s}\"\nnode = 2"),
            "means nothing",
        );
    }
    refused("kind = \"partition\"\nnode = 2", "means nothing");
    refused(
        "kind = \"partition\"\ngroups = [[0, 1]]\nnode = 2",
        "means nothing",
    );
    for s in ["bridge", "isolate"] {
        refused(
            &format!("kind = \"partition\"\nshape = \"{s}\"\nnode = 99"),
            "node 99 does not exist (11 nodes",
        );
    }
}

#[test]
fn overlapping_groups_are_kept_as_written() {
    let k = only_fault("kind = \"partition\"\ngroups = [[0, 1, 2], [2, 3, 4]]");
    assert!(
        matches!(&k, FaultKind::Partition { shape: Shape::Groups(g), .. }
            if g == &vec![vec![0, 1, 2], vec![2, 3, 4]]),
        "{k:?}"
    );
    refused(
        "kind = \"partition\"\ngroups = [[0], [12]]",
        "node 12 does not exist",
    );
    let many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("[{}]", i % 11)).collect();
    refused(
        &format!("kind = \"partition\"\ngroups = [{}]", many.join(", ")),
        "at most 63 groups",
    );
}

#[test]
fn link_faults_take_from_to_oneway_loss_and_for() {
    assert_eq!(
        only_fault("kind = \"link\"\nfrom = 1\nto = 2\nfor = \"3s\""),
        FaultKind::Link(LinkFault {
            from: 1,
            to: 2,
            oneway: false,
            loss: 1.0,
            duration: Some(Duration::from_secs(3)),
            excused: true,
        })
    );
    assert_eq!(
        only_fault(
            "kind = \"link\"\nfrom = 3\nto = 0\noneway = true\nloss = 0.25\nexcused = false"
        ),
        FaultKind::Link(LinkFault {
            from: 3,
            to: 0,
            oneway: true,
            loss: 0.25,
            duration: None,
            excused: false,
        })
    );
    refused("kind = \"link\"\nfrom = 1", "needs from and to");
    refused("kind = \"link\"\nfrom = 1\nto = 1", "to itself");
    refused(
        "kind = \"link\"\nfrom = 1\nto = 11",
        "node 11 does not exist",
    );
    refused("kind = \"link\"\nfrom = 1\nto = 2\nloss = 0.0", "(0, 1]");
    refused("kind = \"link\"\nfrom = 1\nto = 2\nloss = 1.5", "(0, 1]");
    refused("kind = \"link\"\nfrom = 1\nto = 2\nnode = 3", "not node");
    refused("kind = \"crash\"\nfrom = 1", "kind = \"link\" only");
    refused("kind = \"partition\"\nloss = 0.5", "kind = \"link\" only");
}

#[test]
fn slow_faults_take_for_and_a_delay_or_a_range() {
    assert_eq!(
        only_fault("kind = \"slow\"\ncount = 2\nfor = \"30s\"\ndelay = [\"1s\", \"3s\"]"),
        FaultKind::Slow(Slow {
            target: Target::Random(2),
            duration: Duration::from_secs(30),
            delay: (Duration::from_secs(1), Duration::from_secs(3)),
        })
    );
    assert_eq!(
        only_fault("kind = \"slow\"\nnode = 3\nfor = \"5s\"\ndelay = \"2s\""),
        FaultKind::Slow(Slow {
            target: Target::Nodes(vec![3]),
            duration: Duration::from_secs(5),
            delay: (Duration::from_secs(2), Duration::from_secs(2)),
        })
    );
    refused(
        "kind = \"slow\"\nnode = 3\ndelay = \"2s\"",
        "slow needs for",
    );
    refused(
        "kind = \"slow\"\nnode = 3\nfor = \"5s\"",
        "slow needs delay",
    );
    refused(
        "kind = \"slow\"\nnode = 3\nfor = \"5s\"\ndelay = [\"3s\", \"1s\"]",
        "the shortest comes first",
    );
    refused(
        "kind = \"slow\"\nnode = 3\nfor = \"5s\"\ndelay = \"0s\"",
        "must be more than 0",
    );
    refused(
        "kind = \"slow\"\nnode = 3\nfor = \"5s\"\ndelay = \"2m\"",
        "at most",
    );
    refused(
        "kind = \"pause\"\nnode = 3\ndelay = \"2s\"",
        "delay goes with",
    );
    let e = with_fault("kind = \"slow\"\nnode = 30\nfor = \"5s\"\ndelay = \"1s\"").unwrap_err();
    assert!(e.message.contains("node 30"), "{e}");
}

#[test]
fn loss_faults_take_inbound_and_excused() {
    assert_eq!(
        only_fault(
            "kind = \"loss\"\nnode = 4\nrate = 0.25\nfor = \"9s\"\ninbound = true\nexcused = false"
        ),
        FaultKind::Loss(LossBurst {
            target: Target::Nodes(vec![4]),
            rate: 0.25,
            duration: Duration::from_secs(9),
            inbound: true,
            excused: false,
        })
    );
    assert_eq!(
        only_fault("kind = \"loss\"\ncount = 11\nrate = 0.5\nfor = \"30s\""),
        FaultKind::Loss(LossBurst {
            target: Target::Random(11),
            rate: 0.5,
            duration: Duration::from_secs(30),
            inbound: false,
            excused: true,
        })
    );
    refused("kind = \"crash\"\ninbound = true", "inbound goes with");
    refused(
        "kind = \"link\"\nfrom = 1\nto = 2\ninbound = true",
        "inbound goes with",
    );
    refused("kind = \"partition\"\nexcused = false", "excused goes with");
    refused("kind = \"loss\"\nrate = 0.5", "loss needs for");
}

#[test]
fn a_fault_repeats_times_every_apart_and_joins_add_slots_each_time() {
    let sc = with_fault("kind = \"join\"\ncount = 2\nevery = \"2s\"\ntimes = 4").unwrap();
    let at: Vec<u64> = sc.faults.iter().map(|f| f.at.as_millis()).collect();
    assert_eq!(at, vec![1000, 3000, 5000, 7000]);
    // 11 initial nodes and 4 x 2 joiners: node 18 exists, 19 does not.
    let text = format!(
        "{HEAD}[[fault]]\nat = \"1s\"\nkind = \"join\"\ncount = 2\nevery = \"2s\"\ntimes = 4\n[[fault]]\nat = \"9s\"\nkind = \"crash\"\nnode = 19\n"
    );
    let e = parse("x.toml", &text).unwrap_err();
    assert!(e.message.contains("node 19"), "{e}");
    assert!(parse("x.toml", &text.replace("node = 19", "node = 18")).is_ok());
    refused(
        "kind = \"crash\"\nevery = \"2s\"",
        "every and times go together",
    );
    refused("kind = \"crash\"\ntimes = 3", "every and times go together");
    refused("kind = \"crash\"\nevery = \"0s\"\ntimes = 3", "more than 0");
    refused(
        "kind = \"crash\"\nevery = \"5s\"\ntimes = 3",
        "at or after the end",
    );
}

#[test]
fn node_intervals_override_the_preset() {
    let sc = parse(
        "x.toml",
        &format!(
            "{HEAD}[node]\npreset = \"slow-links\"\nprobe_interval = \"3s\"\nbeacon_interval = \"20s\"\nping_interval = \"2s\"\n"
        ),
    )
    .unwrap();
    let base = gossip_chat::Config::slow_links();
    assert_eq!(sc.config.probe_interval, Duration::from_secs(3));
    assert_eq!(sc.config.beacon_interval, Duration::from_secs(20));
    assert_eq!(sc.config.ping_interval, Duration::from_secs(2));
    assert_eq!(sc.config.chat_batch, base.chat_batch);
    let e = parse(
        "x.toml",
        &format!("{HEAD}[node]\nprobe_interval = \"5ms\"\n"),
    )
    .unwrap_err();
    assert!(e.message.contains("probe_interval"), "{e}");
}
