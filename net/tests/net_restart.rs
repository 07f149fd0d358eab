//! A node killed and started again on another port with the same data
//! directory is the same member everywhere: the others replace its earlier
//! life with the new one (`peer_restarted`, with its new address) without
//! waiting to find the earlier life dead, and chat goes on both ways.
//!
//! Real processes: `chat --json`, each killed by a guard when dropped.

mod common;

use common::*;

#[test]
fn a_node_killed_and_restarted_on_another_port_is_the_same_member_everywhere() {
    let others = mesh("re", 4, &[]);
    let dir = scratch("bob");
    let bob = Chat::start_in(&dir, "bob", &[&others[0]], &[]);
    let (member, first_addr) = (bob.member.clone(), bob.addr_str());
    for o in &others {
        o.wait_for("bob up", STARTUP, |e| {
            e["event"] == "peer_up" && e["member"] == member.as_str()
        });
    }
    // Killed: no goodbye, so the others still list its first life.
    bob.signal("-KILL");
    drop(bob);
    let marks: Vec<usize> = others.iter().map(|o| o.mark()).collect();
    let bob = Chat::start_in(&dir, "bob", &[&others[1]], &[]);
    let started = clock();
    assert_eq!(bob.member, member, "the data directory keeps the member id");
    assert_ne!(
        bob.addr_str(),
        first_addr,
        "port 0 picked the same port again"
    );
    let mut slowest = std::time::Duration::ZERO;
    for (o, mark) in others.iter().zip(&marks) {
        let e = o.wait_since(*mark, "bob restarted", STARTUP, |e| {
            e["event"] == "peer_restarted" && e["member"] == member.as_str()
        });
        slowest = slowest.max(started.elapsed());
        assert_eq!(e["addr"], bob.addr_str(), "{}: {e}", o.name);
        assert_eq!(e["previous_addr"], first_addr.as_str(), "{}: {e}", o.name);
        assert_eq!(e["name"], "bob");
    }
    // The figure the README quotes: from bob's `ready` to the last of the
    // four `peer_restarted` lines.
    println!("every node had bob's new life {slowest:?} after it was ready");
    // Neither life was reported down: the earlier one was replaced.
    for (o, mark) in others.iter().zip(&marks) {
        let downs = o.seen()[*mark..]
            .iter()
            .filter(|e| e["event"] == "peer_down" && e["member"] == member.as_str())
            .count();
        assert_eq!(downs, 0, "{} reported bob down", o.name);
    }
    // Chat goes both ways with the new life.
    let mut bob = bob;
    bob.line("back again");
    for o in &others {
        o.wait_chat(&bob, "back again", DELIVERY);
    }
    let mut others = others;
    others[2].line("welcome back");
    bob.wait_chat(&others[2], "welcome back", DELIVERY);
    drop(bob);
}
