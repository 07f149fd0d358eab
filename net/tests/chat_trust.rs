//! Real `chat` processes and the cluster key: a node without it learns
//! nothing, the key rotates across live nodes without losing a message,
//! and the identity is kept in the data directory.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// A fresh cluster key from `chat --gen-cluster-key`.
fn new_key() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_chat"))
        .arg("--gen-cluster-key")
        .output()
        .expect("run chat");
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(key.len(), 44, "base64 of 32 bytes: {key}");
    key
}

/// Types `/key WORDS` and returns the `keys` answer.
fn key_command(node: &mut Chat, words: &str) -> serde_json::Value {
    let before = node.seen().len();
    node.line(&format!("/key {words}"));
    node.wait_since(before, "keys answer", PROMPT, |e| e["event"] == "keys")
}

#[test]
fn a_node_without_the_cluster_key_learns_nothing_and_the_cluster_logs_a_refusal() {
    let key = new_key();
    let with_key = ["--cluster-key", key.as_str()];
    let mut nodes = mesh("keyed", 2, &with_key);
    let other = new_key();
    let strangers = [
        Chat::start_with("wrongkey", &[&nodes[0]], &["--cluster-key", &other]),
        Chat::start_with("nokey", &[&nodes[0]], &[]),
    ];
    // Each stranger dials the node and is refused: the node logs it, the
    // stranger logs why.
    nodes[0].wait_log("connection refused", DELIVERY);
    strangers[0].wait_log("refused by the peer: no cluster key in common", DELIVERY);
    strangers[1].wait_log("the dialler has no cluster key", DELIVERY);
    strangers[1].wait_log("open mode", PROMPT);
    nodes[0].line("members only");
    nodes[1].wait_chat(&nodes[0], "members only", PROMPT);
    // Both strangers keep retrying meanwhile; by the time the members'
    // chat was delivered and a retry was refused, they have seen no one.
    let refused = nodes[0].log().matches("refused").count();
    let deadline = clock() + DELIVERY;
    while nodes[0].log().matches("refused").count() == refused {
        assert!(clock() < deadline, "no further refusal logged");
        pause(Duration::from_millis(100));
    }
    for s in &strangers {
        let seen = s.seen();
        assert!(
            seen.iter()
                .all(|e| e["event"] != "peer_up" && e["event"] != "chat"),
            "{} learned something: {seen:?}",
            s.name
        );
    }
    for n in &nodes {
        assert!(
            n.seen()
                .iter()
                .all(|e| e["event"] != "peer_up"
                    || (e["name"] != "wrongkey" && e["name"] != "nokey")),
            "{} took a stranger in",
            n.name
        );
    }
}

#[test]
fn the_cluster_key_rotates_across_five_live_nodes_without_losing_a_message() {
    let old = new_key();
    let new = new_key();
    let mut nodes = mesh("rot", 5, &["--cluster-key", &old]);
    let mut sent: Vec<Vec<String>> = vec![Vec::new(); 5];
    let mut round = 0;
    chat_round(&mut nodes, &mut sent, &mut round);
    // Step 1 on every node, chatting between steps.
    for n in &mut nodes {
        let k = key_command(n, &format!("install {new}"));
        assert_eq!(k["changed"], true);
        assert_eq!(k["keys"].as_array().unwrap().len(), 2);
        assert_eq!(k["saved"], true);
        chat_round_now(n, &mut sent, &mut round);
    }
    // A newcomer that holds only the new key gets in already.
    let newcomer = Chat::start_with("rot5", &[&nodes[2]], &["--cluster-key", &new]);
    newcomer.wait_for("peer_up", DELIVERY, |e| e["event"] == "peer_up");
    // Step 2, then step 3, each twice (idempotent), on every node.
    for n in &mut nodes {
        assert_eq!(key_command(n, &format!("use {new}"))["changed"], true);
        assert_eq!(key_command(n, &format!("use {new}"))["changed"], false);
        chat_round_now(n, &mut sent, &mut round);
    }
    for n in &mut nodes {
        let k = key_command(n, &format!("remove {old}"));
        assert_eq!(k["changed"], true);
        assert_eq!(k["keys"].as_array().unwrap().len(), 1);
        assert_eq!(key_command(n, &format!("remove {old}"))["changed"], false);
        chat_round_now(n, &mut sent, &mut round);
    }
    chat_round(&mut nodes, &mut sent, &mut round);
    // Every message reached every node exactly once.
    for n in &nodes {
        for (from, t) in nodes.iter().zip(&sent) {
            n.wait_chats(from, t, DELIVERY);
            n.assert_delivered_exactly(from, t);
        }
    }
    // The old key no longer opens anything.
    let late = Chat::start_with("rotold", &[&nodes[0]], &["--cluster-key", &old]);
    late.wait_log("no cluster key in common", DELIVERY);
    assert!(late.seen().iter().all(|e| e["event"] != "peer_up"));
}

/// Five messages from each node.
fn chat_round(nodes: &mut [Chat], sent: &mut [Vec<String>], round: &mut usize) {
    *round += 1;
    for (i, n) in nodes.iter_mut().enumerate() {
        for t in texts(&format!("rotation round {round} from {i}"), 5, 30) {
            n.line(&t);
            sent[i].push(t);
        }
    }
}

/// Sends one message from `n` (between rotation steps).
fn chat_round_now(n: &mut Chat, sent: &mut [Vec<String>], round: &mut usize) {
    *round += 1;
    let i: usize = n.name.trim_start_matches("rot").parse().unwrap();
    let t = format!("rotation step {round} from {i}");
    n.line(&t);
    sent[i].push(t);
}

#[test]
fn a_restarted_node_keeps_its_identity_and_keys_from_its_data_directory() {
    let dir = scratch("keep");
    let key = new_key();
    let first = Chat::start_in(&dir, "keep", &[], &["--cluster-key", &key]);
    let id = first.wait_for("ready", PROMPT, |e| e["event"] == "ready")["id"].clone();
    assert!(id.as_str().is_some_and(|s| s.len() == 43), "{id}");
    // The member id the group knows it by: 16 hex digits, from the key.
    let member = first.member.clone();
    assert!(
        member.len() == 16 && member.bytes().all(|b| b.is_ascii_hexdigit()),
        "{member}"
    );
    drop(first);
    // No key given this time: the one kept in the directory is used.
    let mut again = Chat::start_in(&dir, "keep", &[], &[]);
    let ready = again.wait_for("ready", PROMPT, |e| e["event"] == "ready");
    assert_eq!(ready["id"], id);
    // On whatever port it listens now, it is the same member.
    assert_eq!(again.member, member);
    let keys = key_command(&mut again, "list");
    assert_eq!(keys["open"], false);
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    let other = Chat::start("other", &[]);
    assert_ne!(
        other.wait_for("ready", PROMPT, |e| e["event"] == "ready")["id"],
        id
    );
    assert_ne!(other.member, member);
    drop(again);
}

/// Runs `chat` with `args` and returns its exit code and stderr.
fn chat_fails(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(args)
        .output()
        .expect("run chat");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_keys_and_unusable_data_directories_are_clear_errors() {
    let dir = scratch("bad");
    let d = dir.to_str().unwrap();
    let listen = ["--listen", "127.0.0.1:0", "--data-dir", d];
    let (code, err) = chat_fails(&[&listen[..], &["--cluster-key", "not-a-key"]].concat());
    assert_eq!(code, Some(2));
    assert!(err.contains("not a cluster key"), "{err}");

    // A directory in use by a running node.
    let running = Chat::start_in(&dir, "holder", &[], &[]);
    let (code, err) = chat_fails(&listen);
    assert_eq!(code, Some(2));
    assert!(err.contains("in use by another chat process"), "{err}");
    drop(running);

    // A corrupt identity file.
    std::fs::write(dir.join("identity"), "gossip-chat identity key v1\n%%%\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("identity"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
    let (code, err) = chat_fails(&listen);
    assert_eq!(code, Some(2));
    assert!(err.contains("corrupt identity file"), "{err}");
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
}
