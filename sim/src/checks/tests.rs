//! Every check fails on synthetic facts that break it, and says `n/a`
//! (never `ok`) when it judged nothing.

use super::observer::ids_in_order;
use super::*;
use crate::addr::id_of;
use crate::check_id::CheckId;
use crate::net::Network;
use crate::report::{CheckResult, Status};
use crate::scenario::{parse, Scenario};
use gossip_chat::{DownReason, Instant, MsgId, NodeKey, TableSizes};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

const SLOTS: usize = 3;

fn scenario(checks: &str) -> Scenario {
    let text = format!("duration = \"60s\"\n[nodes]\ncount = 2\n[checks]\n{checks}\n");
    parse("case.toml", &text).unwrap()
}

fn net(sc: &Scenario) -> Network {
    Network::new(&sc.network, SLOTS, ChaCha8Rng::seed_from_u64(0))
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn key(slot: u32) -> NodeKey {
    NodeKey {
        id: id_of(slot),
        incarnation: 1,
    }
}

fn msg(slot: u32, seq: u64) -> MsgId {
    MsgId {
        origin: key(slot),
        seq,
    }
}

fn result(obs: &Observer, id: CheckId) -> CheckResult {
    obs.results(at(60_000))
        .into_iter()
        .find(|c| c.name == id.name())
        .unwrap()
}

fn status(obs: &Observer, id: CheckId) -> Status {
    result(obs, id).status
}

/// Two initial nodes up from 0 s that know each other.
fn pair(sc: &Scenario) -> Observer {
    let mut obs = Observer::new(sc, SLOTS, false);
    obs.start(at(0), 0, Start::Initial);
    obs.start(at(0), 1, Start::Initial);
    obs.discovery_begins(at(0));
    obs.peer_up(at(100), 0, 1);
    obs.peer_up(at(100), 1, 0);
    obs
}

#[test]
fn checks_come_in_report_order() {
    let obs = Observer::new(&scenario(""), SLOTS, false);
    assert_eq!(ids_in_order(&obs), CheckId::ALL.to_vec());
}

#[test]
fn a_check_that_judged_nothing_says_na() {
    let sc = scenario("");
    let obs = Observer::new(&sc, SLOTS, false);
    for c in obs.results(at(60_000)) {
        assert_eq!(c.status, Status::Skip, "{c:?}");
        assert_eq!(c.judged, 0, "{c:?}");
    }
}

#[test]
fn a_check_the_scenario_must_judge_fails_when_it_judged_nothing() {
    let sc = scenario("judge = [\"detection\", \"order\"]");
    let mut obs = pair(&sc);
    obs.chat(at(1000), 0, msg(0, 1), true);
    obs.chat(at(1100), 1, msg(0, 1), false);
    let d = result(&obs, CheckId::Detection);
    assert_eq!(d.status, Status::Fail, "{d:?}");
    assert!(d.figure.contains("judged nothing"), "{d:?}");
    assert_eq!(status(&obs, CheckId::Order), Status::Pass);
    // Not listed: n/a, and the run does not fail for it.
    assert_eq!(status(&obs, CheckId::Join), Status::Skip);
}

#[test]
fn an_incomplete_view_at_the_deadline_fails_discovery() {
    let sc = scenario("");
    let net = net(&sc);
    let mut obs = Observer::new(&sc, SLOTS, false);
    obs.start(at(0), 0, Start::Initial);
    obs.start(at(0), 1, Start::Initial);
    obs.discovery_begins(at(0));
    obs.peer_up(at(100), 0, 1);
    obs.view_deadline(at(5000), 0, &net);
    assert_eq!(status(&obs, CheckId::Discovery), Status::Pass);
    // n1 never learnt of n0.
    obs.view_deadline(at(5000), 1, &net);
    let c = result(&obs, CheckId::Discovery);
    assert_eq!(
        (c.status, c.judged, c.failed),
        (Status::Fail, 2, 1),
        "{c:?}"
    );
}

#[test]
fn a_joiner_that_does_not_learn_the_group_fails_join() {
    let sc = scenario("");
    let net = net(&sc);
    let mut obs = pair(&sc);
    let l = obs.start(at(10_000), 2, Start::Joiner);
    obs.peer_up(at(10_100), 2, 0);
    obs.view_deadline(at(13_000), l, &net);
    let c = result(&obs, CheckId::Join);
    assert_eq!((c.status, c.judged), (Status::Fail, 1), "{c:?}");
    // Knowing both in time passes.
    let mut obs = pair(&sc);
    let l = obs.start(at(10_000), 2, Start::Joiner);
    obs.peer_up(at(10_100), 2, 0);
    obs.peer_up(at(10_200), 2, 1);
    obs.view_deadline(at(13_000), l, &net);
    assert_eq!(status(&obs, CheckId::Join), Status::Pass);
}

#[test]
fn a_crashed_node_still_listed_at_the_deadline_fails_detection() {
    let sc = scenario("");
    let net = net(&sc);
    let mut obs = pair(&sc);
    let d = obs.gone(at(5000), 1, Gone::Crash).unwrap();
    obs.down_deadline(at(15_000), d, &net);
    let c = result(&obs, CheckId::Detection);
    assert_eq!((c.status, c.judged), (Status::Fail, 1), "{c:?}");
    let mut obs = pair(&sc);
    let d = obs.gone(at(5000), 1, Gone::Crash).unwrap();
    obs.peer_down(at(7000), 0, 1, key(1), DownReason::Dead, None, &net);
    obs.down_deadline(at(15_000), d, &net);
    assert_eq!(status(&obs, CheckId::Detection), Status::Pass);
}

#[test]
fn removing_a_live_reachable_node_as_dead_fails_no_false_removal() {
    let sc = scenario("");
    let net = net(&sc);
    let mut obs = pair(&sc);
    // n1 crashed and restarted (life 2): removing life 1 is right.
    obs.peer_down(at(20_000), 0, 1, key(1), DownReason::Dead, Some(2), &net);
    let c = result(&obs, CheckId::NoFalseRemoval);
    assert_eq!((c.status, c.judged), (Status::Pass, 1), "{c:?}");
    obs.peer_up(at(20_100), 0, 1);
    // The same life, up and reachable all along.
    obs.peer_down(at(30_000), 0, 1, key(1), DownReason::Dead, Some(1), &net);
    let c = result(&obs, CheckId::NoFalseRemoval);
    assert_eq!(
        (c.status, c.judged, c.failed),
        (Status::Fail, 2, 1),
        "{c:?}"
    );
    // A graceful leave is not a removal as dead: nothing judged.
    let mut obs = pair(&sc);
    obs.peer_down(at(30_000), 0, 1, key(1), DownReason::Left, Some(1), &net);
    assert_eq!(status(&obs, CheckId::NoFalseRemoval), Status::Skip);
}

/// A partition excuses a removal only when it gave the remover a reason:
/// n0 removing n1 while a cut isolates n2 alone (stale news from n2 once
/// it is back) is false, and so is n0 removing n1 while both are cut off
/// together from the others, or while n0 bridges the sides; while a cut
/// separates n0 and n1 it is not (see `net.rs`).
#[test]
fn a_partition_excuses_only_removals_across_it() {
    let sc = scenario("");
    let mut net = net(&sc);
    let mut obs = pair(&sc);
    obs.start(at(0), 2, Start::Initial);
    let elsewhere = net.cut(vec![1, 1, 2], false, at(20_000));
    net.heal(Some(elsewhere), at(25_000));
    obs.peer_down(at(26_000), 0, 1, key(1), DownReason::Dead, Some(1), &net);
    let c = result(&obs, CheckId::NoFalseRemoval);
    assert_eq!((c.status, c.failed), (Status::Fail, 1), "{c:?}");
    for sides in [vec![1, 1, 2, 2], vec![0, 1, 2]] {
        let mut obs = pair(&sc);
        let mut net = self::net(&sc);
        obs.start(at(0), 2, Start::Initial);
        let group = net.cut(sides.clone(), false, at(20_000));
        net.heal(Some(group), at(25_000));
        obs.peer_down(at(26_000), 0, 1, key(1), DownReason::Dead, Some(1), &net);
        let c = result(&obs, CheckId::NoFalseRemoval);
        assert_eq!((c.judged, c.failed), (1, 1), "{sides:?}: {c:?}");
    }
    let mut obs = pair(&sc);
    let mut net = self::net(&sc);
    let between = net.cut(vec![1, 2, 1], false, at(20_000));
    net.heal(Some(between), at(25_000));
    obs.peer_down(at(26_000), 0, 1, key(1), DownReason::Dead, Some(1), &net);
    let c = result(&obs, CheckId::NoFalseRemoval);
    assert_eq!(
        (c.status, c.judged, c.failed),
        (Status::Pass, 1, 0),
        "{c:?}"
    );
}

#[test]
fn a_message_missing_at_its_deadline_fails_delivery() {
    let sc = scenario("");
    let net = net(&sc);
    let mut obs = pair(&sc);
    obs.chat(at(3000), 0, msg(0, 1), true);
    let m = obs.last_msg();
    obs.delivery_deadline(at(8000), m, &net);
    let c = result(&obs, CheckId::Delivery);
    assert_eq!(
        (c.status, c.judged, c.failed),
        (Status::Fail, 1, 1),
        "{c:?}"
    );
    let mut obs = pair(&sc);
    obs.chat(at(3000), 0, msg(0, 1), true);
    let m = obs.last_msg();
    obs.chat(at(3050), 1, msg(0, 1), false);
    obs.delivery_deadline(at(8000), m, &net);
    assert_eq!(status(&obs, CheckId::Delivery), Status::Pass);
}

#[test]
fn a_later_message_before_an_earlier_one_fails_order() {
    let sc = scenario("");
    let mut obs = pair(&sc);
    obs.chat(at(1000), 0, msg(0, 1), true);
    obs.chat(at(1100), 0, msg(0, 2), true);
    obs.chat(at(1200), 1, msg(0, 1), false);
    obs.chat(at(1300), 1, msg(0, 2), false);
    let c = result(&obs, CheckId::Order);
    assert_eq!((c.status, c.judged), (Status::Pass, 4), "{c:?}");
    let mut obs = pair(&sc);
    obs.chat(at(1000), 0, msg(0, 1), true);
    obs.chat(at(1100), 0, msg(0, 2), true);
    obs.chat(at(1200), 1, msg(0, 2), false);
    obs.chat(at(1300), 1, msg(0, 1), false);
    let c = result(&obs, CheckId::Order);
    assert_eq!(
        (c.status, c.judged, c.failed),
        (Status::Fail, 4, 1),
        "{c:?}"
    );
}

#[test]
fn a_message_handed_over_twice_or_never_sent_fails_no_duplicates() {
    let sc = scenario("");
    let mut obs = pair(&sc);
    obs.chat(at(1000), 0, msg(0, 1), true);
    obs.chat(at(1200), 1, msg(0, 1), false);
    let c = result(&obs, CheckId::NoDuplicates);
    assert_eq!((c.status, c.judged), (Status::Pass, 2), "{c:?}");
    obs.chat(at(1300), 1, msg(0, 1), false);
    let c = result(&obs, CheckId::NoDuplicates);
    assert_eq!(
        (c.status, c.judged, c.failed),
        (Status::Fail, 3, 1),
        "{c:?}"
    );
    let mut obs = pair(&sc);
    obs.chat(at(1300), 1, msg(0, 9), false);
    assert_eq!(status(&obs, CheckId::NoDuplicates), Status::Fail);
}

#[test]
fn bounded_state_allows_eight_neighbours_and_thirty_two_handshaking() {
    let sc = scenario("");
    let mut obs = pair(&sc);
    let full = TableSizes {
        members: 2,
        connections: 40,
        neighbours: 8,
        accepting: 32,
        ..TableSizes::default()
    };
    obs.tables(0, full);
    obs.tables(1, full);
    let c = result(&obs, CheckId::BoundedState);
    assert_eq!((c.status, c.judged), (Status::Pass, 22), "{c:?}");
    assert!(c.figure.contains("2 node samples in 1 rounds"), "{c:?}");
    for over in [
        TableSizes {
            neighbours: 9,
            ..full
        },
        TableSizes {
            accepting: 33,
            ..full
        },
        TableSizes {
            held: sc.config.max_holdback + 1,
            ..full
        },
        TableSizes {
            history: sc.config.history_max + 1,
            ..full
        },
        TableSizes {
            members: sc.config.max_members + 1,
            ..full
        },
        TableSizes {
            recent: 257,
            ..full
        },
        TableSizes {
            probing: gossip_chat::MAX_PROBING + 1,
            ..full
        },
        TableSizes {
            outbox: sc.config.table_bounds(1).outbox + 1,
            ..full
        },
    ] {
        let mut obs = pair(&sc);
        obs.tables(0, over);
        let c = result(&obs, CheckId::BoundedState);
        assert_eq!((c.status, c.failed), (Status::Fail, 1), "{over:?}: {c:?}");
    }
}

#[test]
fn views_that_never_agree_fail_convergence() {
    let sc = scenario("");
    let mut obs = pair(&sc);
    // No liveness phase: nothing to judge.
    obs.check_convergence(at(50_000), &net(&sc));
    obs.finish(at(60_000), &|_, _| false);
    assert_eq!(status(&obs, CheckId::Convergence), Status::Skip);
    let mut obs = pair(&sc);
    obs.liveness_begins(at(30_000));
    obs.peer_down(at(30_500), 1, 0, key(0), DownReason::Left, None, &net(&sc));
    obs.check_convergence(at(31_000), &net(&sc));
    assert!(!obs.converged());
    obs.finish(at(60_000), &|_, _| false);
    let c = result(&obs, CheckId::Convergence);
    assert_eq!(c.status, Status::Fail, "{c:?}");
    assert!(c.examples[0].contains("misses up nodes [n0]"), "{c:?}");
}

#[test]
fn a_message_missing_at_the_end_fails_eventual_delivery() {
    let sc = scenario("");
    let mut obs = pair(&sc);
    obs.liveness_begins(at(30_000));
    obs.chat(at(10_000), 0, msg(0, 1), true);
    obs.finish(at(60_000), &|_, _| false);
    let c = result(&obs, CheckId::EventualDelivery);
    assert_eq!(
        (c.status, c.judged, c.failed),
        (Status::Fail, 1, 1),
        "{c:?}"
    );
    let mut obs = pair(&sc);
    obs.liveness_begins(at(30_000));
    obs.chat(at(10_000), 0, msg(0, 1), true);
    obs.chat(at(10_100), 1, msg(0, 1), false);
    obs.finish(at(60_000), &|_, _| false);
    assert_eq!(status(&obs, CheckId::EventualDelivery), Status::Pass);
}

#[test]
fn views_that_disagree_again_after_converging_fail_convergence() {
    let sc = scenario("converge_within = \"5s\"");
    let n = net(&sc);
    let mut obs = pair(&sc);
    obs.liveness_begins(at(30_000));
    obs.check_convergence(at(30_100), &n);
    assert!(obs.converged());
    obs.check_convergence(at(30_200), &n);
    // Nothing happened, yet n1 drops n0: every later sample fails.
    obs.peer_down(at(40_000), 1, 0, key(0), DownReason::Dead, None, &n);
    obs.check_convergence(at(40_100), &n);
    obs.check_convergence(at(40_200), &n);
    obs.finish(at(60_000), &|_, _| false);
    let c = result(&obs, CheckId::Convergence);
    assert_eq!((c.status, c.failed), (Status::Fail, 2), "{c:?}");
    assert_eq!(c.examples.len(), 1, "one example per stretch: {c:?}");
    assert!(c.examples[0].starts_with("at 40.1"), "{c:?}");
    assert!(c.examples[0].contains("misses up nodes [n0]"), "{c:?}");
    assert!(c.figure.contains("disagreed again in 2 of 3"), "{c:?}");

    // A crash after converging: the views may take `converge_within` to
    // follow it, but not longer.
    let mut obs = pair(&sc);
    obs.liveness_begins(at(30_000));
    obs.check_convergence(at(30_100), &n);
    obs.gone(at(40_000), 0, Gone::Crash);
    obs.check_convergence(at(44_000), &n);
    obs.finish(at(60_000), &|_, _| false);
    assert_eq!(status(&obs, CheckId::Convergence), Status::Pass);
    let mut obs = pair(&sc);
    obs.liveness_begins(at(30_000));
    obs.check_convergence(at(30_100), &n);
    obs.gone(at(40_000), 0, Gone::Crash);
    obs.check_convergence(at(46_000), &n);
    obs.finish(at(60_000), &|_, _| false);
    let c = result(&obs, CheckId::Convergence);
    assert_eq!(c.status, Status::Fail, "{c:?}");
    assert!(c.examples[0].contains("lists down nodes [n0]"), "{c:?}");
}

#[test]
fn a_split_overlay_fails_overlay_connected() {
    let sc = scenario("");
    // Both nodes up, every roster complete, but no link between them.
    let mut obs = pair(&sc);
    obs.overlay(at(60_000), &|_| Vec::new());
    obs.finish(at(60_000), &|_, _| false);
    let c = result(&obs, CheckId::OverlayConnected);
    assert_eq!(
        (c.status, c.judged, c.failed),
        (Status::Fail, 1, 1),
        "{c:?}"
    );
    assert!(c.figure.contains("2 components"), "{c:?}");
    let mut obs = pair(&sc);
    obs.overlay(at(60_000), &|s| vec![1 - s]);
    obs.finish(at(60_000), &|_, _| false);
    let c = result(&obs, CheckId::OverlayConnected);
    assert_eq!(c.status, Status::Pass, "{c:?}");
    assert_eq!(c.figure, "1 component over 2 live nodes");
    // Nobody sampled: nothing judged.
    let mut obs = pair(&sc);
    obs.finish(at(60_000), &|_, _| false);
    assert_eq!(status(&obs, CheckId::OverlayConnected), Status::Skip);
}

#[test]
fn eventual_delivery_counts_the_missing_messages_no_history_holds() {
    let sc = scenario("");
    let figure = |holds: &dyn Fn(u32, &MsgId) -> bool| {
        let mut obs = pair(&sc);
        obs.liveness_begins(at(30_000));
        obs.chat(at(10_000), 0, msg(0, 1), true);
        obs.chat(at(10_000), 0, msg(0, 2), true);
        obs.chat(at(10_100), 1, msg(0, 2), false);
        obs.finish(at(60_000), holds);
        assert_eq!(obs.missing_msgs(), (1, u64::from(!holds(0, &msg(0, 1)))));
        result(&obs, CheckId::EventualDelivery).figure
    };
    let f = figure(&|_, _| false);
    assert!(f.contains("1 of 1 missing messages were evicted"), "{f}");
    let f = figure(&|slot, id| slot == 0 && id.seq == 1);
    assert!(f.contains("0 of 1 missing messages were evicted"), "{f}");
}

#[test]
fn a_message_crossing_between_a_node_without_the_key_and_a_member_fails_admission() {
    let sc = scenario("");
    let net = net(&sc);
    // Node 1 lacks the key from 1 s on: a member's message it got, or one
    // of its own a member got, fails; one it did not get passes.
    let leak = |member_sends: bool, delivered: bool| {
        let mut obs = pair(&sc);
        obs.no_key(1, at(1000), Instant::MAX);
        let (from, to) = if member_sends { (0, 1) } else { (1, 0) };
        obs.chat(at(3000), from, msg(from, 1), true);
        let m = obs.last_msg();
        if delivered {
            obs.chat(at(3050), to, msg(from, 1), false);
        }
        obs.delivery_deadline(at(8000), m, &net);
        let c = result(&obs, CheckId::Admission);
        (c.status, c.judged, c.failed)
    };
    assert_eq!(leak(true, true), (Status::Fail, 1, 1));
    assert_eq!(leak(false, true), (Status::Fail, 1, 1));
    assert_eq!(leak(true, false), (Status::Pass, 1, 0));
    assert_eq!(leak(false, false), (Status::Pass, 1, 0));
    // Without a node lacking the key there is nothing to judge.
    let mut obs = pair(&sc);
    obs.chat(at(3000), 0, msg(0, 1), true);
    let m = obs.last_msg();
    obs.delivery_deadline(at(8000), m, &net);
    assert_eq!(status(&obs, CheckId::Admission), Status::Skip);
}

#[test]
fn a_chat_its_author_never_sent_fails_forgery() {
    let sc = scenario("");
    let hash = |text: &str| content_hash("n0", text, 0);
    // n0 sends a message; n1 gets it as sent, then (after a forgery was
    // injected) the next id of n0's stream that n0 never sent.
    let mut obs = pair(&sc);
    obs.forgery_injected(1);
    obs.chat_content(at(1000), 0, msg(0, 1), true, Some(hash("hi")));
    obs.chat_content(at(1100), 1, msg(0, 1), false, Some(hash("hi")));
    let c = result(&obs, CheckId::Forgery);
    assert_eq!((c.status, c.judged), (Status::Pass, 2), "{c:?}");
    obs.chat_content(at(1200), 1, msg(0, 2), false, Some(hash("forged")));
    let c = result(&obs, CheckId::Forgery);
    assert_eq!(
        (c.status, c.judged, c.failed),
        (Status::Fail, 3, 1),
        "{c:?}"
    );
    assert!(c.examples[0].contains("never sent"), "{c:?}");
    // An id its author sent, with another text.
    let mut obs = pair(&sc);
    obs.forgery_injected(1);
    obs.chat_content(at(1000), 0, msg(0, 1), true, Some(hash("hi")));
    obs.chat_content(at(1100), 1, msg(0, 1), false, Some(hash("forged")));
    let c = result(&obs, CheckId::Forgery);
    assert_eq!(
        (c.status, c.judged, c.failed),
        (Status::Fail, 2, 1),
        "{c:?}"
    );
    assert!(c.examples[0].contains("did not send"), "{c:?}");
    // A hostile node's own deliveries are not judged.
    let mut obs = pair(&sc);
    obs.forgery_injected(1);
    obs.misbehaves(1, at(500));
    obs.chat_content(at(1000), 0, msg(0, 1), true, Some(hash("hi")));
    obs.chat_content(at(1100), 1, msg(0, 1), false, Some(hash("forged")));
    let c = result(&obs, CheckId::Forgery);
    assert_eq!((c.status, c.judged), (Status::Pass, 1), "{c:?}");
}

#[test]
fn forgery_judges_nothing_until_something_was_forged() {
    let sc = scenario("");
    let mut obs = pair(&sc);
    obs.chat(at(1000), 0, msg(0, 1), true);
    obs.chat(at(1100), 1, msg(0, 1), false);
    let c = result(&obs, CheckId::Forgery);
    assert_eq!((c.status, c.judged), (Status::Skip, 0), "{c:?}");
    // A message nobody sent still fails no_duplicates, but forgery only
    // judges once a forgery is about.
    obs.chat(at(1200), 1, msg(0, 5), false);
    assert_eq!(status(&obs, CheckId::Forgery), Status::Skip);
    assert_eq!(status(&obs, CheckId::NoDuplicates), Status::Fail);
    // From the first forgery on, deliveries without a known content (as
    // in a real run) are judged by their id alone.
    obs.forgery_injected(3);
    obs.chat(at(1300), 0, msg(0, 2), true);
    obs.chat(at(1400), 1, msg(0, 2), false);
    let c = result(&obs, CheckId::Forgery);
    assert_eq!((c.status, c.judged), (Status::Pass, 2), "{c:?}");
    assert!(c.figure.contains("3 forgeries sent"), "{c:?}");
}

#[test]
fn a_table_holding_state_a_member_did_not_sign_fails_forged_state() {
    let sc = scenario("");
    let mut obs = pair(&sc);
    // Nothing sampled: nothing judged.
    let c = result(&obs, CheckId::ForgedState);
    assert_eq!((c.status, c.judged), (Status::Skip, 0), "{c:?}");
    obs.state_forgery_injected();
    obs.state_sample(0, &[]);
    let c = result(&obs, CheckId::ForgedState);
    assert_eq!((c.status, c.judged), (Status::Pass, 1), "{c:?}");
    assert!(c.figure.contains("forged state sent"), "{c:?}");
    obs.state_sample(
        1,
        &["n0 at life 9 version 0 (its own: life 1 version 0)".into()],
    );
    let c = result(&obs, CheckId::ForgedState);
    assert_eq!(
        (c.status, c.judged, c.failed),
        (Status::Fail, 2, 1),
        "{c:?}"
    );
    assert!(c.examples[0].contains("n1 holds n0 at life 9"), "{c:?}");
}
