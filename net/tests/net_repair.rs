//! Real `chat` processes catching up after a pause: a node frozen with
//! SIGSTOP for less than the failure-detection time (2 s by default), and
//! one frozen well past it (as a long partition would cut it off) while the
//! others keep chatting. After SIGCONT each must deliver every message it
//! missed, exactly once and in per-sender order.

mod common;

use common::*;
use std::time::Duration;

/// Longest wait for a resumed node to catch up.
const CATCH_UP: Duration = Duration::from_secs(20);

/// The nodes' gap timeout (`--gap-timeout-ms`): a gap that repair did not
/// fill is reported this long after it opened, instead of the default 30 s,
/// so the end of each test can wait it out and see any gap. Repair here
/// takes milliseconds.
const GAP_TIMEOUT: Duration = Duration::from_secs(3);

/// A group of three started with [`GAP_TIMEOUT`].
fn group(prefix: &str) -> Vec<Chat> {
    let gap = GAP_TIMEOUT.as_millis().to_string();
    mesh(prefix, 3, &["--gap-timeout-ms", &gap])
}

/// Waits past the gap timeout (and a few timer ticks) after the last
/// delivery, then asserts that no node gave a gap up: a hole left behind
/// by the pause would have been reported by then.
fn assert_no_gap(nodes: &[&Chat]) {
    pause(GAP_TIMEOUT + Duration::from_secs(1));
    for n in nodes {
        assert!(
            !n.seen().iter().any(|e| e["event"] == "gap"),
            "{} reported a gap",
            n.name
        );
    }
}

/// Each of `senders` sends `n` short messages tagged `tag`; returns them
/// per sender.
fn send_batch(senders: &mut [Chat], tag: &str, n: usize) -> Vec<Vec<String>> {
    senders
        .iter_mut()
        .map(|s| {
            let t = texts(&format!("{tag} from {}", s.name), n, 40);
            for line in &t {
                s.line(line);
            }
            t
        })
        .collect()
}

/// Every node of `receivers` delivers every batch of every sender, each
/// message once, in per-sender order.
fn all_delivered(receivers: &[&Chat], senders: &[Chat], batches: &[Vec<Vec<String>>]) {
    for r in receivers {
        for batch in batches {
            for (s, t) in senders.iter().zip(batch) {
                r.wait_chats(s, t, CATCH_UP);
            }
        }
    }
    for r in receivers {
        for batch in batches {
            for (s, t) in senders.iter().zip(batch) {
                r.assert_delivered_exactly(s, t);
            }
        }
    }
}

/// Waits for `newcomer`'s `recovered` event and checks that it sums up,
/// as a newcomer's catch-up, the `n` history deliveries before it.
fn assert_caught_up(newcomer: &Chat, n: u64) {
    let summed = newcomer.wait_for("the recovered count", CATCH_UP, |e| {
        e["event"] == "recovered"
    });
    let seen = newcomer.seen();
    let at = seen.iter().position(|e| e["event"] == "recovered").unwrap();
    let history = seen[..at]
        .iter()
        .filter(|e| e["event"] == "chat" && e["history"] == true)
        .count() as u64;
    assert_eq!(history, n, "every earlier message came as history");
    assert_eq!(summed["count"].as_u64(), Some(history), "{summed}");
    assert_eq!(summed["newcomer"], true, "{summed}");
}

#[test]
fn a_node_paused_for_less_than_the_detection_time_receives_everything_it_missed() {
    let mut senders = group("short");
    let mut victim = senders.pop().unwrap();
    let addr = victim.addr_str();
    let marks: Vec<usize> = senders.iter().map(Chat::mark).collect();

    let stopped = clock();
    victim.signal("-STOP");
    let missed = send_batch(&mut senders, "missed", 10);
    all_delivered(
        &[&senders[0], &senders[1]],
        &senders,
        std::slice::from_ref(&missed),
    );
    pause(Duration::from_millis(800).saturating_sub(stopped.elapsed()));
    let paused = stopped.elapsed();
    victim.signal("-CONT");

    all_delivered(&[&victim], &senders, &[missed]);
    eprintln!(
        "paused {paused:?}; caught up {:?} after SIGCONT",
        stopped.elapsed() - paused
    );
    // Nobody took the short pause for a death...
    for (s, mark) in senders.iter().zip(&marks) {
        assert!(
            !s.seen()[*mark..]
                .iter()
                .any(|e| e["event"] == "peer_down" && e["addr"] == addr.as_str()),
            "{} declared the paused node down",
            s.name
        );
    }
    // ...and it talks as before.
    let back = texts(&format!("back from {}", victim.name), 3, 40);
    for t in &back {
        victim.line(t);
    }
    for s in &senders {
        s.wait_chats(&victim, &back, DELIVERY);
        s.assert_delivered_exactly(&victim, &back);
    }
    assert_no_gap(&[&victim, &senders[0], &senders[1]]);
}

#[test]
fn a_node_paused_past_the_detection_time_rejoins_and_catches_up() {
    let mut senders = group("long");
    let mut victim = senders.pop().unwrap();
    let addr = victim.addr_str();
    let marks: Vec<usize> = senders.iter().map(Chat::mark).collect();

    let stopped = clock();
    victim.signal("-STOP");
    // Sent while its links are still up (they sit in its socket buffers)...
    let before = send_batch(&mut senders, "before", 5);
    let mut old_incarnation = 0;
    for (s, mark) in senders.iter().zip(&marks) {
        let down = s.wait_since(*mark, "peer_down of the paused node", DELIVERY, |e| {
            e["event"] == "peer_down" && e["addr"] == addr.as_str()
        });
        assert_eq!(down["reason"], "dead");
        old_incarnation = down["incarnation"].as_u64().unwrap();
    }
    eprintln!("paused node declared dead after {:?}", stopped.elapsed());
    let downs: Vec<usize> = senders.iter().map(Chat::mark).collect();
    // ...and after the others have cut it off: only repair can bring these.
    let after = send_batch(&mut senders, "after", 5);
    all_delivered(
        &[&senders[0], &senders[1]],
        &senders,
        &[before.clone(), after.clone()],
    );
    pause(Duration::from_secs(5).saturating_sub(stopped.elapsed()));
    let paused = stopped.elapsed();
    let resumed = victim.mark();
    let resumed_ms = gossip_chat_net::wall_clock_millis();
    victim.signal("-CONT");

    all_delivered(&[&victim], &senders, &[before, after.clone()]);
    // What repair brought is summed up in one `recovered` event: the
    // number of history deliveries since the resume, once they went quiet.
    let summed = victim.wait_since(resumed, "the recovered count", CATCH_UP, |e| {
        e["event"] == "recovered"
    });
    let since = victim.seen()[resumed..].to_vec();
    let at = since
        .iter()
        .position(|e| e["event"] == "recovered")
        .unwrap();
    let history = since[..at]
        .iter()
        .filter(|e| e["event"] == "chat" && e["history"] == true)
        .count() as u64;
    assert!(history >= 1, "nothing came by repair");
    assert_eq!(summed["count"].as_u64(), Some(history), "{summed}");
    assert_eq!(summed["newcomer"], false);
    // Each repaired message shows its author's time (sent while the node
    // was frozen), not the time repair brought it.
    for e in since[..at].iter().filter(|e| e["history"] == true) {
        let sent = e["sent_ms"].as_u64().unwrap();
        assert!(sent > 0 && sent < resumed_ms, "{e}");
    }
    eprintln!(
        "paused {paused:?}; caught up {:?} after SIGCONT",
        stopped.elapsed() - paused
    );
    // The others see it up again in the same life: it refuted its death
    // by a higher version, and its chat stream goes on.
    for (s, mark) in senders.iter().zip(&downs) {
        s.wait_since(*mark, "peer_up of the resumed node", CATCH_UP, |e| {
            e["event"] == "peer_up"
                && e["addr"] == addr.as_str()
                && e["incarnation"].as_u64() == Some(old_incarnation)
        });
    }
    eprintln!(
        "resumed node back in every roster {:?} after SIGCONT",
        stopped.elapsed() - paused
    );
    // Messages flow both ways again.
    let back = texts(&format!("back from {}", victim.name), 3, 40);
    for t in &back {
        victim.line(t);
    }
    let welcome = send_batch(&mut senders, "welcome", 3);
    for s in &senders {
        s.wait_chats(&victim, &back, DELIVERY);
        s.assert_delivered_exactly(&victim, &back);
    }
    all_delivered(&[&victim], &senders, &[welcome]);
    assert_no_gap(&[&victim, &senders[0], &senders[1]]);
}

/// A newcomer's catch-up (the recent history it is handed as it joins) is
/// summed up as earlier messages, not as a recovery after a split: the
/// `recovered` event says `newcomer`, and counts exactly the history
/// deliveries.
#[test]
fn a_newcomers_catch_up_is_summed_up_as_earlier_messages() {
    let mut senders = group("catchup");
    let before = send_batch(&mut senders[..2], "before", 4);
    all_delivered(&[&senders[2]], &senders[..2], std::slice::from_ref(&before));
    let newcomer = Chat::start("catchup-new", &[&senders[2]]);
    all_delivered(&[&newcomer], &senders[..2], &[before]);
    assert_caught_up(&newcomer, 8);
}

/// A newcomer that joins more than 5 s after it started (its seed is
/// frozen when it starts, and answers only once thawed) is still handed
/// a catch-up: the `recovered` event says `newcomer`, whatever the time
/// since start.
#[test]
fn a_newcomer_that_joins_late_is_summed_up_as_earlier_messages() {
    // Detection far off (15 s), so the frozen seed stays in the others'
    // rosters.
    let mut senders = mesh(
        "late",
        3,
        &["--gap-timeout-ms", "3000", "--missed-pings", "30"],
    );
    let before = send_batch(&mut senders[..2], "before", 4);
    all_delivered(&[&senders[2]], &senders[..2], std::slice::from_ref(&before));
    let seed = &senders[2];
    seed.signal("-STOP");
    let started = clock();
    let newcomer = Chat::start_with(
        "late-new",
        &[seed],
        &["--connect-timeout-ms", "1000", "--reconnect-ms", "500"],
    );
    pause(Duration::from_secs(6).saturating_sub(started.elapsed()));
    assert!(
        !newcomer.seen().iter().any(|e| e["event"] == "chat"),
        "the newcomer heard from a frozen seed"
    );
    seed.signal("-CONT");
    all_delivered(&[&newcomer], &senders[..2], &[before]);
    assert_caught_up(&newcomer, 8);
    assert!(started.elapsed() > Duration::from_secs(5));
}
