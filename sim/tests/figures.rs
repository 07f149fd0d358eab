//! The dissemination figures of the report: messages per chat sent and
//! hops to the last node.

use gossip_sim::scenario::{parse, Scenario};

/// Two nodes; node 0 sends one chat at 1 s; the run lasts `duration`.
fn two_nodes_one_chat(duration: &str) -> Scenario {
    parse(
        "two.toml",
        &format!(
            r#"
            duration = "{duration}"
            [nodes]
            count = 2
            [[workload.send]]
            at = "1s"
            from = 0
            text = "hi"
            "#
        ),
    )
    .expect("valid scenario")
}

/// Two nodes, one chat: every message of the run is the one chat's cost,
/// and the chat crosses exactly one link.
#[test]
fn one_chat_between_two_nodes_costs_every_message_of_the_run() {
    let sc = two_nodes_one_chat("5s");
    let r = gossip_sim::run(&sc, 3, None);
    let f = &r.figures;
    assert_eq!(f.chats_sent, 1);
    // Node 1 starts 10 ms after node 0: 9.99 node-seconds in all.
    let total: f64 = f
        .by_kind
        .as_ref()
        .expect("by kind")
        .iter()
        .map(|k| k.msgs_per_node_s * 9.99)
        .sum();
    let per_chat = f.msgs_per_chat.expect("measured");
    assert!(per_chat > 1.0, "{per_chat}");
    assert!((per_chat - total).abs() < 0.5, "{per_chat} vs {total}");
    // The frames one step hands a connection leave in one write: the join
    // answer (history and the full list at once), a heartbeat with the sync
    // probe. At least the chat and the join answer's first frame are each
    // a write of their own.
    let writes = f.writes_per_chat.expect("measured");
    assert!(
        writes >= 2.0 && writes <= per_chat - 2.0,
        "{writes} writes, {per_chat} msgs"
    );
    let h = f.last_hop.expect("measured");
    assert_eq!((h.n, h.p50, h.max), (1, 1, 1));
}

/// Three nodes with the link between 0 and 2 lost both ways: what 0 sends
/// reaches 2 through 1, two hops; what 1 sends, one hop.
#[test]
fn a_chat_around_a_cut_link_takes_two_hops() {
    let sc = parse(
        "cut.toml",
        r#"
        duration = "8s"
        [nodes]
        count = 3
        join = "chain"
        [[network.link]]
        from = [0]
        to = [2]
        loss = 1.0
        [[network.link]]
        from = [2]
        to = [0]
        loss = 1.0
        [[workload.send]]
        at = "3s"
        from = 0
        text = "around"
        [[workload.send]]
        at = "3.5s"
        from = 0
        text = "around again"
        [[workload.send]]
        at = "4s"
        from = 1
        text = "direct"
        "#,
    )
    .expect("valid scenario");
    let r = gossip_sim::run(&sc, 1, None);
    let h = r.figures.last_hop.expect("measured");
    assert_eq!(r.figures.deliveries, 6, "{}", r.render());
    assert_eq!((h.n, h.p50, h.max), (3, 2, 2), "{}", r.render());
}

/// The slow-links preset writes a busy tree link's payloads once per
/// `chat_batch` window, and the ring predecessor's answer is pushed
/// every 2 s instead of heartbeats: on 100 ms links at 10 chats a second
/// it meets its bar (at most 20 writes per chat sent, counted as writes
/// per second per node times 25 nodes over 10 chats a second for the
/// whole run, the group's forming included; delivery p50 under 1 s and
/// max under 2 s: 18.5 writes, 570 ms and 1.6 s at seed 0; 15.4 writes
/// while chat flows), about half the writes of the same preset writing
/// each payload at once (30.2 while chat flows).
#[test]
fn the_slow_links_preset_gathers_payloads_into_fewer_writes() {
    let run = |batch: Option<&str>| {
        let mut text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/wan-slow-links.toml"
        ))
        .expect("scenario");
        if let Some(batch) = batch {
            text = text.replace(
                "preset = \"slow-links\"",
                &format!("preset = \"slow-links\"\nchat_batch = \"{batch}\""),
            );
        }
        let sc = parse("wan-slow-links.toml", &text).expect("valid scenario");
        let r = gossip_sim::run(&sc, 0, None);
        for c in &r.checks {
            assert!(!c.status.failed(), "{batch:?}: {}", c.figure);
        }
        let f = &r.figures;
        // The run's writes over the chats a 30 s run at 10 a second
        // stands for.
        let over_run = f.writes_per_chat.expect("measured") * f.chats_sent as f64 / 300.0;
        (
            f.writes_per_chat_flowing.expect("measured"),
            over_run,
            f.delivery_ms.p50,
            f.delivery_ms.max,
        )
    };
    let (batched, over_run, p50, max) = run(None);
    let (each, _, _, _) = run(Some("0ms"));
    assert!(over_run <= 20.0, "{over_run} writes per chat over the run");
    assert!(
        batched <= 20.0,
        "{batched} writes per chat while chat flows"
    );
    assert!(
        batched <= each * 0.6,
        "{batched} writes per chat against {each}"
    );
    assert!(p50 < 1000, "delivery p50 {p50} ms");
    assert!(max < 2000, "delivery max {max} ms");
}

/// Ten nodes chat at 5 messages a second for 4 s, after the group formed
/// for 2 s or for 12 s. Over the whole run the longer idle forming costs
/// more per chat; while chat flows the cost is the same, and each chat
/// then costs at least the nine copies that reach the other nodes.
#[test]
fn chat_cost_while_it_flows_leaves_out_the_forming_before_it() {
    let run = |start: u32| {
        let sc = parse(
            "ten.toml",
            &format!(
                r#"
                duration = "{}s"
                [nodes]
                count = 10
                [workload]
                rate = 5.0
                start = "{start}s"
                stop = "{}s"
                "#,
                start + 6,
                start + 4
            ),
        )
        .expect("valid scenario");
        let r = gossip_sim::run(&sc, 2, None);
        let f = &r.figures;
        assert!(f.chats_sent >= 10, "{}", r.render());
        assert!(r.render().contains("while chat flows"), "{}", r.render());
        (
            f.msgs_per_chat.expect("measured"),
            f.msgs_per_chat_flowing.expect("measured"),
            f.writes_per_chat_flowing.expect("measured"),
        )
    };
    let (early_all, early_flowing, early_writes) = run(2);
    let (late_all, late_flowing, _) = run(12);
    for flowing in [early_flowing, late_flowing] {
        assert!(
            flowing >= 9.0 * 0.9,
            "{flowing} msgs per chat while it flows"
        );
    }
    assert!(
        early_writes <= early_flowing,
        "{early_writes} writes, {early_flowing} msgs"
    );
    assert!(
        late_all > early_all * 1.2,
        "whole run: {late_all} after 12 s of forming, {early_all} after 2 s"
    );
    assert!(
        (late_flowing - early_flowing).abs() < early_flowing * 0.15,
        "while chat flows: {late_flowing} after 12 s of forming, {early_flowing} after 2 s"
    );
    assert!(late_flowing < late_all, "{late_flowing} against {late_all}");
}

/// One chat: nothing flows between a first and a last, and the report
/// says nothing of it rather than a figure of zero.
#[test]
fn a_single_chat_has_no_cost_while_chat_flows() {
    let sc = two_nodes_one_chat("4s");
    let r = gossip_sim::run(&sc, 3, None);
    assert_eq!(r.figures.msgs_per_chat_flowing, None);
    assert_eq!(r.figures.writes_per_chat_flowing, None);
    assert!(!r.render().contains("while chat flows"), "{}", r.render());
}
