//! Link faults and partition shapes, seen in the trace: what is cut, in
//! which direction, and when it heals.

use gossip_sim::{run_traced, scenario::parse};

/// `(time in ms, from, to, why)` of every message the network dropped.
fn drops(trace: &str) -> Vec<(u64, u32, u32, String)> {
    trace
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            let why = *w.last()?;
            if w.len() < 6 || w[2] != "->" || !(why == "cut" || why == "lost") {
                return None;
            }
            let ms = (w[0].parse::<f64>().ok()? * 1000.0).round() as u64;
            let n = |s: &str| s.strip_prefix('n')?.parse().ok();
            Some((ms, n(w[1])?, n(w[3])?, why.to_string()))
        })
        .collect()
}

fn traced(fault: &str, nodes: u32) -> String {
    let text = format!(
        "duration = \"20s\"\n[nodes]\ncount = {nodes}\njoin = \"first\"\n[workload]\nrate = 5.0\n[[fault]]\nat = \"5s\"\n{fault}\n"
    );
    let sc = parse("link.toml", &text).unwrap();
    run_traced(&sc, 1).1
}

#[test]
fn a_oneway_link_cut_drops_that_direction_only_until_it_heals() {
    let t = traced(
        "kind = \"link\"\nfrom = 0\nto = 1\noneway = true\nfor = \"5s\"",
        4,
    );
    assert!(t.contains("fault link #1 n0->n1 cut"), "{t}");
    assert!(t.contains("10.000 fault heal #1"), "{t}");
    let d = drops(&t);
    assert!(d.len() > 3, "the cut dropped nothing: {d:?}");
    for (ms, a, b, why) in &d {
        assert_eq!((*a, *b, why.as_str()), (0, 1, "cut"), "at {ms}");
        assert!(
            (5000..10_000).contains(ms),
            "dropped at {ms} ms, outside the cut"
        );
    }
}

#[test]
fn a_two_way_lossy_link_loses_on_both_directions_of_that_link_only() {
    let t = traced(
        "kind = \"link\"\nfrom = 2\nto = 1\nloss = 0.5\nfor = \"8s\"",
        4,
    );
    let d = drops(&t);
    let pair = |a: u32, b: u32| d.iter().any(|x| (x.1, x.2) == (a, b));
    assert!(pair(2, 1) && pair(1, 2), "{d:?}");
    for (ms, a, b, why) in &d {
        assert!([(2, 1), (1, 2)].contains(&(*a, *b)), "{a}->{b} at {ms}");
        assert_eq!(why, "lost");
        assert!((5000..13_000).contains(ms), "lost at {ms} ms");
    }
}

#[test]
fn a_node_in_two_groups_reaches_both() {
    let t = traced(
        "kind = \"partition\"\ngroups = [[0, 1, 2], [2, 3, 4]]\nfor = \"5s\"",
        6,
    );
    assert!(
        t.contains("group[n0,n1,n2] | group[n2,n3,n4] | group[n5]"),
        "{t}"
    );
    let d = drops(&t);
    let cut = |a: u32, b: u32| {
        d.iter()
            .any(|x| (x.1, x.2) == (a, b) || (x.1, x.2) == (b, a))
    };
    assert!(cut(0, 3) && cut(1, 4), "{d:?}");
    for (ms, a, b, _) in &d {
        assert!(*a != 2 || *b == 5, "n2 cut from n{b} at {ms}");
        assert!(*b != 2 || *a == 5, "n2 cut from n{a} at {ms}");
    }
}

#[test]
fn a_bridge_partition_uses_the_given_node_as_its_bridge() {
    for seed_shift in 0..3 {
        let t = traced(
            &format!(
                "kind = \"partition\"\nshape = \"bridge\"\nnode = {}",
                3 + seed_shift
            ),
            7,
        );
        let note = t
            .lines()
            .find(|l| l.contains("fault partition #1"))
            .unwrap();
        assert!(
            note.contains(&format!("bridge[n{}]", 3 + seed_shift)),
            "{note}"
        );
        let bridge = 3 + seed_shift;
        assert!(drops(&t).iter().all(|x| x.1 != bridge && x.2 != bridge));
    }
}

#[test]
fn an_inbound_loss_drops_only_messages_into_its_node() {
    let t = traced(
        "kind = \"loss\"\nnode = 2\nrate = 0.5\ninbound = true\nfor = \"8s\"",
        4,
    );
    assert!(
        t.contains("fault loss 0.5 #1 on links into n2 for 8s"),
        "{t}"
    );
    let d = drops(&t);
    assert!(d.len() > 3, "the loss dropped nothing: {d:?}");
    for (ms, a, b, why) in &d {
        assert_eq!((*b, why.as_str()), (2, "lost"), "n{a}->n{b} at {ms}");
        assert!((5000..13_000).contains(ms), "lost at {ms} ms");
    }
    // Both ways, the node's own messages are lost too.
    let t = traced("kind = \"loss\"\nnode = 2\nrate = 0.5\nfor = \"8s\"", 4);
    assert!(drops(&t).iter().any(|x| x.1 == 2), "nothing from n2 lost");
}

#[test]
fn a_fault_marked_not_excused_leaves_removals_judged() {
    use gossip_chat::Instant;
    use gossip_sim::net::{Bits, Network};
    use rand_core::SeedableRng;
    let sc = parse("n.toml", "duration = \"10s\"\n[nodes]\ncount = 3\n").unwrap();
    let rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut net = Network::new(&sc.network, 3, rng);
    let (t0, t1, t2) = (
        Instant::from_millis(1000),
        Instant::from_millis(2000),
        Instant::from_millis(3000),
    );
    let burst = net.burst(
        Bits::of(3, &[0, 1, 2]),
        gossip_chat::Duration::ZERO,
        0.5,
        t0,
    );
    net.bursts[0].excused = false;
    let link = net.link(0, 1, true, 1.0, t0);
    net.links[0].excused = false;
    assert!(
        net.disturbed(t0, t1),
        "the faults still disturb the network"
    );
    assert!(
        !net.excuses_removals(0, 1, t0, t1),
        "yet they excuse no removal"
    );
    net.heal(Some(burst), t1);
    net.heal(Some(link), t1);
    let excused = net.burst(Bits::of(3, &[2]), gossip_chat::Duration::ZERO, 0.5, t2);
    assert!(
        net.excuses_removals(0, 1, t2, t2),
        "a default burst excuses"
    );
    assert!(!net.excuses_removals(0, 1, t1, t1 + gossip_chat::Duration::from_millis(500)));
    net.heal(Some(excused), t2);
}
