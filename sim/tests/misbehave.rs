//! Misbehaving nodes: the attack really happens, honest nodes refuse it and
//! still pass every check, and the scenario fields are validated.

use gossip_chat::Instant;
use gossip_sim::checks::{Observer, Start};
use gossip_sim::report::Status;
use gossip_sim::scenario::{parse, FaultKind, Mode};
use gossip_sim::{load, run};

fn scenario_file(name: &str) -> String {
    format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn two_hostile_nodes_attack_with_every_mode_and_honest_nodes_refuse_it_all() {
    let sc = load(&scenario_file("misbehaving")).unwrap();
    let r = run(&sc, 1, None);
    assert!(r.passed, "{}", r.render());
    let m = r.figures.misbehave.as_ref().expect("a misbehave tally");
    assert_eq!(m.hostile_nodes, vec![3, 17]);
    // Every mode injected something.
    assert!(m.malformed > 0 && m.oversized > 0, "{}", r.render());
    assert!(
        m.full_lists > 0 && m.full_lists < m.peer_lists,
        "{}",
        r.render()
    );
    assert!(
        m.invented_entries > 0 && m.forged_entries > 0,
        "{}",
        r.render()
    );
    assert!(m.replayed > 0 && m.replayed_chats > 0, "{}", r.render());
    // Honest nodes counted and refused it: garbage and oversized frames,
    // replayed chats, forged deaths (they carry the victim's own proof of
    // its life, so they are taken and refuted; forged departures, which
    // the victim did not sign, are dropped).
    let h = &m.honest;
    assert!(h.malformed > 0 && h.oversized > 0, "{}", r.render());
    assert!(h.duplicates > 0 && h.refutations > 0, "{}", r.render());
    // Invented addresses reached honest tables, which stayed bounded, and
    // were dialled within the core's promises.
    assert!(m.honest_peak_members > 36, "{}", r.render());
    assert!(m.honest_peak_members <= m.max_members);
    assert!(m.ghost_dials > 0, "{}", r.render());
    assert!(m.ghost_dials_listed_max <= sc.config.max_dial_failures);
    let ghosts = r.check("invented_peers").unwrap();
    assert_eq!(ghosts.status, Status::Pass, "{}", r.render());
    // Some honest node dialled an invented address while listing it.
    assert!(m.ghost_dials_listed_max > 0, "{}", r.render());
    // The honest crash during the attack was detected by honest observers.
    assert!(r.figures.detection_ms.n > 0, "{}", r.render());
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["figures"]["misbehave"]["malformed"], m.malformed);
    assert_eq!(
        json["figures"]["misbehave"]["honest"]["duplicates"],
        h.duplicates
    );
    let text = r.render();
    assert!(text.contains("misbehave      n3,n17 injected"), "{text}");
    assert!(text.contains("honest refused malformed"), "{text}");
}

#[test]
fn an_honest_crash_during_an_attack_is_still_judged() {
    // With an impossible detection deadline the crash fails detection: the
    // attack does not excuse honest observers.
    let text = r#"
        duration = "25s"
        [nodes]
        count = 8
        [[fault]]
        at = "3s"
        kind = "misbehave"
        node = 2
        [[fault]]
        at = "8s"
        kind = "crash"
        node = 5
        [checks]
        detect_within = "300ms"
    "#;
    let sc = parse("case.toml", text).unwrap();
    let r = run(&sc, 2, None);
    let d = r.check("detection").unwrap();
    assert_eq!(d.status, Status::Fail, "{}", r.render());
    let text = text.replace("300ms", "10s");
    let sc = parse("case.toml", &text).unwrap();
    let r = run(&sc, 2, None);
    assert!(r.passed, "{}", r.render());
    // Six honest observers (not the crashed node, not the hostile one).
    assert_eq!(r.figures.detection_ms.n, 6, "{}", r.render());
}

#[test]
fn dialling_an_invented_address_past_the_core_bound_fails_invented_peers() {
    let sc = parse("case.toml", "duration = \"10s\"\n[nodes]\ncount = 2\n").unwrap();
    let mut obs = Observer::new(&sc, 2, false);
    obs.start(Instant::ZERO, 0, Start::Initial);
    obs.ghosts_injected();
    obs.ghost_listed(0, 7, true);
    let max = sc.config.max_dial_failures;
    for i in 0..max {
        obs.ghost_dial(Instant::from_millis(1000 * i as u64), 0, 7);
    }
    let status = |obs: &Observer| {
        let r = obs.results(Instant::from_millis(10_000));
        r.into_iter().find(|c| c.name == "invented_peers").unwrap()
    };
    assert_eq!(status(&obs).status, Status::Pass);
    obs.ghost_dial(Instant::from_millis(9000), 0, 7);
    let c = status(&obs);
    assert_eq!(c.status, Status::Fail, "{c:?}");
    // Once given up, probes are allowed one per reconnect interval.
    let mut obs2 = Observer::new(&sc, 2, false);
    obs2.start(Instant::ZERO, 0, Start::Initial);
    obs2.ghosts_injected();
    obs2.ghost_dial(Instant::from_millis(2000), 0, 8);
    obs2.ghost_dial(Instant::from_millis(2000), 0, 9);
    assert_eq!(status(&obs2).status, Status::Pass);
    obs2.ghost_dial(Instant::from_millis(2000), 0, 10);
    assert_eq!(status(&obs2).status, Status::Fail);
    // Listed again after it was taken out: the core counts failed dials
    // anew, and so does the check.
    let mut obs3 = Observer::new(&sc, 2, false);
    obs3.start(Instant::ZERO, 0, Start::Initial);
    obs3.ghosts_injected();
    obs3.ghost_listed(0, 7, true);
    for i in 0..max {
        obs3.ghost_dial(Instant::from_millis(100 * i as u64), 0, 7);
    }
    obs3.ghost_listed(0, 7, false);
    obs3.ghost_listed(0, 7, true);
    for i in 0..max {
        obs3.ghost_dial(Instant::from_millis(5000 + 100 * i as u64), 0, 7);
    }
    let c = status(&obs3);
    assert_eq!(c.status, Status::Pass, "{c:?}");
    // One more in the same listing is one too many.
    obs3.ghost_dial(Instant::from_millis(9000), 0, 7);
    let c = status(&obs3);
    assert_eq!(c.status, Status::Fail, "{c:?}");
}

#[test]
fn a_roster_loss_fails_invented_peers_without_invented_addresses() {
    // Roster samples run under any attack, bogus peer lists or not: a
    // member lost from the table is a failure even when no invented
    // address went out.
    let sc = parse("case.toml", "duration = \"10s\"\n[nodes]\ncount = 2\n").unwrap();
    let mut obs = Observer::new(&sc, 2, false);
    obs.start(Instant::ZERO, 0, Start::Initial);
    obs.start(Instant::ZERO, 1, Start::Initial);
    let check = |obs: &Observer| {
        let r = obs.results(Instant::from_millis(10_000));
        r.into_iter().find(|c| c.name == "invented_peers").unwrap()
    };
    // Nothing judged: skipped.
    assert_eq!(check(&obs).status, Status::Skip);
    obs.roster_lost(0, &[]);
    assert_eq!(check(&obs).status, Status::Pass);
    obs.roster_lost(0, &[1]);
    let c = check(&obs);
    assert_eq!(c.status, Status::Fail, "{c:?}");
    assert_eq!((c.judged, c.failed), (2, 1), "{c:?}");
}

#[test]
fn misbehave_fields_have_defaults() {
    let text = "duration = \"10s\"\n[nodes]\ncount = 3\n[[fault]]\nat = \"1s\"\nkind = \"misbehave\"\nnode = 1\n";
    let sc = parse("x.toml", text).unwrap();
    let FaultKind::Misbehave(m) = &sc.faults[0].kind else {
        panic!("{:?}", sc.faults);
    };
    assert_eq!(m.modes, Mode::INJECTING.to_vec());
    assert_eq!(m.rate, 20.0);
    assert_eq!(m.addresses, 256);
    assert_eq!(m.duration, None);
    let text = text.replace(
        "node = 1\n",
        "node = 1\nmodes = [\"replay\", \"malformed\", \"replay\"]\nfor = \"3s\"\nrate = 5.0\n",
    );
    let sc = parse("x.toml", &text).unwrap();
    let FaultKind::Misbehave(m) = &sc.faults[0].kind else {
        panic!("{:?}", sc.faults);
    };
    assert_eq!(m.modes, vec![Mode::Malformed, Mode::Replay]);
    assert_eq!(m.rate, 5.0);
    assert_eq!(m.duration.map(|d| d.as_millis()), Some(3000));
}

#[test]
fn a_bad_mode_name_is_an_error_naming_the_field_and_the_line() {
    let text = "duration = \"10s\"\n[nodes]\ncount = 3\n\n[[fault]]\nat = \"1s\"\nkind = \"misbehave\"\nmodes = [\"malformed\", \"spoof\"]\n";
    let e = parse("x.toml", text).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.message.contains("misbehave.modes"), "{e}");
    assert!(e.message.contains("\"spoof\""), "{e}");
    assert!(e.message.contains("bogus-peers"), "{e}");
    let e = parse("x.toml", &text.replace("\"malformed\", \"spoof\"", "")).unwrap_err();
    assert!(e.message.contains("misbehave.modes is empty"), "{e}");
    let e = parse(
        "x.toml",
        &text.replace("modes = [\"malformed\", \"spoof\"]", "rate = 0.0"),
    )
    .unwrap_err();
    assert!(e.message.contains("misbehave.rate"), "{e}");
    let e = parse(
        "x.toml",
        &text.replace("modes = [\"malformed\", \"spoof\"]", "node = 9"),
    )
    .unwrap_err();
    assert!(e.message.contains("node 9"), "{e}");
}

#[test]
fn random_mode_draws_misbehave_only_when_listed() {
    let base = r#"
        duration = "60s"
        liveness = "20s"
        [nodes]
        count = 8
        [random]
        faults = [6, 6]
        start = "5s"
        end = "20s"
        durations = ["1s", "10s"]
    "#;
    let sc = parse("x.toml", base).unwrap();
    for seed in 0..20 {
        let f = gossip_sim::random::schedule(&sc, seed);
        assert!(!f.iter().any(|f| matches!(f.kind, FaultKind::Misbehave(_))));
    }
    let sc = parse("x.toml", &format!("{base}kinds = [\"misbehave\"]\n")).unwrap();
    let f = gossip_sim::random::schedule(&sc, 0);
    assert!(f.iter().all(|f| matches!(f.kind, FaultKind::Misbehave(_))));
    let r = run(&sc, 0, None);
    assert!(r.passed, "{}", r.render());
    assert!(r.figures.misbehave.is_some());
    let e = parse("x.toml", &format!("{base}kinds = [\"meddle\"]\n")).unwrap_err();
    assert!(e.message.contains("random.kinds"), "{e}");
    assert!(e.message.contains("misbehave"), "{e}");
}

#[test]
fn nodes_without_the_cluster_key_are_refused_and_the_members_carry_on() {
    let sc = load(&scenario_file("no-key")).unwrap();
    let r = run(&sc, 3, None);
    assert!(r.passed, "{}", r.render());
    let m = r.figures.misbehave.as_ref().expect("a misbehave tally");
    assert_eq!(m.hostile_nodes, vec![5, 15, 25, 35]);
    // The strangers kept dialling and every dial was refused; they
    // injected nothing.
    assert!(m.strangers_refused > 10, "{}", r.render());
    assert_eq!(m.refused_handshakes, m.strangers_refused);
    assert_eq!(m.malformed + m.peer_lists + m.replayed, 0);
    // Nothing crossed, judged over every message sent meanwhile.
    let a = r.check("admission").unwrap();
    assert_eq!(a.status, Status::Pass, "{}", r.render());
    assert!(a.judged > 1000, "{a:?}");
    assert!(r.render().contains("admission      "));
    // The members met, chatted and detected the crash.
    for c in ["discovery", "delivery", "detection", "overlay_connected"] {
        assert_eq!(r.check(c).unwrap().status, Status::Pass, "{c}");
    }
}

#[test]
fn a_node_that_loses_the_key_mid_run_is_cut_off() {
    // Five nodes, one of which loses the key at 10 s: its links are cut,
    // every dial either way is refused, and the members remove it.
    let text = "duration = \"40s\"\n[nodes]\ncount = 5\n[workload]\nrate = 2.0\nstart = \"2s\"\n\
        [[fault]]\nat = \"10s\"\nkind = \"misbehave\"\nnode = 2\nmodes = [\"no-key\"]\n";
    let sc = parse("cut.toml", text).unwrap();
    let r = run(&sc, 0, None);
    assert!(r.passed, "{}", r.render());
    let m = r.figures.misbehave.as_ref().unwrap();
    assert!(m.refused_handshakes > 0, "{}", r.render());
    let a = r.check("admission").unwrap();
    assert_eq!(a.status, Status::Pass, "{a:?}");
    assert!(a.judged > 0, "{a:?}");
    assert!(
        r.render().contains("misbehave n2: no-key"),
        "{}",
        r.render()
    );
}

#[test]
fn forged_chats_are_dropped_before_anyone_delivers_them() {
    let sc = load(&scenario_file("forge-chat")).unwrap();
    let r = run(&sc, 1, None);
    assert!(r.passed, "{}", r.render());
    let m = r.figures.misbehave.as_ref().expect("a misbehave tally");
    assert_eq!(m.hostile_nodes, vec![5, 15, 25, 35]);
    // Single chats, repair batches and far seqs all went out.
    assert!(m.forged_chats > m.forged_frames, "{}", r.render());
    assert!(m.forged_in_batches > 0 && m.far_seqs > 0, "{}", r.render());
    assert_eq!(
        m.impostor_hellos + m.malformed + m.peer_lists + m.replayed,
        0
    );
    // The honest nodes checked the signatures and dropped them (a forgery
    // of a seq they already had is a duplicate, not checked again).
    assert!(m.honest.forged > m.forged_chats / 2, "{}", r.render());
    // Nothing forged reached a user, judged over every honest delivery.
    let f = r.check("forgery").unwrap();
    assert_eq!(f.status, Status::Pass, "{}", r.render());
    assert!(f.judged > 10_000, "{f:?}");
    assert!(r.render().contains("forgery        "), "{}", r.render());
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["figures"]["misbehave"]["forged_chats"], m.forged_chats);
    assert_eq!(
        json["figures"]["misbehave"]["honest"]["forged"],
        m.honest.forged
    );
}

#[test]
fn impostor_hellos_are_closed_and_an_own_id_at_another_address_moves_nobody() {
    let sc = load(&scenario_file("impersonate")).unwrap();
    let r = run(&sc, 1, None);
    assert!(r.passed, "{}", r.render());
    let m = r.figures.misbehave.as_ref().expect("a misbehave tally");
    assert!(m.impostor_hellos > 1000, "{}", r.render());
    assert!(
        m.impostor_other_ids > 0 && m.impostor_other_ids < m.impostor_hellos,
        "{}",
        r.render()
    );
    assert_eq!(m.forged_chats, 0);
    // Each hello naming another member was closed as an impostor.
    assert!(m.honest.impostors > 0, "{}", r.render());
    assert!(m.honest.impostors <= m.impostor_other_ids, "{}", r.render());
    assert!(
        m.impostor_other_ids - m.honest.impostors < 10,
        "{}",
        r.render()
    );
    // No honest view lost or gained a member: the crash was detected, no
    // live node removed, the views converged.
    for c in ["no_false_removal", "detection", "convergence", "forgery"] {
        assert_eq!(
            r.check(c).unwrap().status,
            Status::Pass,
            "{c}: {}",
            r.render()
        );
    }
    // And every honest node still has every member at its own address:
    // a hello giving another's address moved nobody.
    let faults = gossip_sim::random::schedule(&sc, 1);
    let mut w = gossip_sim::world::World::new(&sc, 1, &faults, gossip_sim::Trace::new(None));
    w.advance(Instant::from_millis(60_000), &mut |_| {});
    let mut checked = 0;
    for slot in w.up() {
        if [5, 15, 25, 35].contains(&slot) {
            continue;
        }
        for m in w.node(slot).unwrap().members() {
            let at = gossip_sim::addr::slot_of_id(&m.node.id, w.slots()).unwrap();
            assert_eq!(m.addr, gossip_sim::addr::addr_of(at), "n{slot} lists n{at}");
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}

#[test]
fn the_forging_modes_are_named_and_off_unless_listed() {
    let text = "duration = \"10s\"\n[nodes]\ncount = 3\n[[fault]]\nat = \"1s\"\nkind = \"misbehave\"\nnode = 1\nmodes = [\"impersonate\", \"far-seq\", \"forge-chat\"]\n";
    let sc = parse("x.toml", text).unwrap();
    let FaultKind::Misbehave(m) = &sc.faults[0].kind else {
        panic!("{:?}", sc.faults);
    };
    assert_eq!(
        m.modes,
        vec![Mode::ForgeChat, Mode::FarSeq, Mode::Impersonate]
    );
    for mode in [
        Mode::ForgeChat,
        Mode::FarSeq,
        Mode::Impersonate,
        Mode::NoKey,
    ] {
        assert!(!Mode::INJECTING.contains(&mode), "{mode:?}");
        assert!(gossip_sim::scenario::MODE_NAMES.contains(&mode.name()));
    }
}
