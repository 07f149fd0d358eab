//! `chat --tui` in a pseudo-terminal, its screen rebuilt by a terminal
//! emulator (vt100), next to a `--json` node that talks to it. Every wait
//! has a deadline, and every process is killed when its guard drops.

mod common;

use common::terminal::Terminal;
use common::*;
use std::time::Duration;

const ROWS: u16 = 24;

#[test]
fn the_full_screen_shows_members_status_and_chat_and_ctrl_c_leaves() {
    let mut alice = Chat::start("alice", &[]);
    let join = alice.addr_str();
    let mut tui = Terminal::typist(&join, &["--tui"], ROWS);
    // The member list shows alice, alive and a direct neighbour; the status
    // line counts one peer.
    tui.wait_screen("alice in the member list", STARTUP, |t| {
        let rows = t.rows();
        let rows = &rows[..];
        rows.iter().any(|r| r.ends_with("│* alice alive"))
            && rows[usize::from(ROWS) - 2].contains("as typist | 1 peer(s) | settled")
    });
    alice.wait_for("typist's peer_up", STARTUP, |e| {
        e["event"] == "peer_up" && e["name"] == "typist"
    });

    // What is typed shows on the input line, and Enter sends it.
    tui.type_keys("hello from the full screen");
    tui.wait_screen("the typed line", PROMPT, |t| {
        let rows = t.rows();
        let rows = &rows[..];
        rows[usize::from(ROWS) - 1] == "> hello from the full screen"
    });
    tui.type_keys("\r");
    alice.wait_chat_text("hello from the full screen", DELIVERY);
    tui.wait_screen("an empty input line", PROMPT, |t| {
        let rows = t.rows();
        let rows = &rows[..];
        rows[usize::from(ROWS) - 1] == ">"
    });

    // An incoming message lands in the scrollback; /peers answers there.
    alice.line("hi back");
    tui.wait_screen("alice's message", DELIVERY, |t| {
        let rows = t.rows();
        let rows = &rows[..];
        rows.iter().any(|r| r.contains(" alice: hi back"))
    });
    tui.type_keys("/peers\r");
    tui.wait_screen("the /peers answer", PROMPT, |t| {
        let rows = t.rows();
        let rows = &rows[..];
        rows.iter().any(|r| r.contains("* 1 peer(s):"))
    });

    // Ctrl-C leaves gracefully: alice sees typist leave, the program ends
    // with success and gives the terminal back (the main screen again).
    tui.type_keys("\x03");
    alice.wait_for("typist leaving", PROMPT, |e| {
        e["event"] == "peer_down" && e["name"] == "typist" && e["reason"] == "left"
    });
    assert_eq!(tui.wait_exit(PROMPT), 0);
    while let Ok(bytes) = tui.output.recv_timeout(Duration::from_millis(200)) {
        tui.screen.process(&bytes);
    }
    assert!(
        !tui.screen.screen().alternate_screen(),
        "the alternate screen is still on"
    );
}

#[test]
fn help_answers_on_screen_and_quit_leaves() {
    let alice = Chat::start("alice", &[]);
    let join = alice.addr_str();
    let mut tui = Terminal::start(&["--listen", "127.0.0.1:0", "--join", &join, "--tui"], ROWS);
    tui.wait_screen("alice in the member list", STARTUP, |t| {
        let rows = t.rows();
        let rows = &rows[..];
        rows.iter().any(|r| r.ends_with("│* alice alive"))
    });
    tui.type_keys("/help\r");
    tui.wait_screen("the /help answer", PROMPT, |t| {
        let rows = t.rows();
        let rows = &rows[..];
        rows.iter()
            .any(|r| r.contains("/peers   who is in the group"))
    });
    tui.type_keys("/quit\r");
    alice.wait_for("anon leaving", PROMPT, |e| {
        e["event"] == "peer_down" && e["name"] == "anon" && e["reason"] == "left"
    });
    assert_eq!(tui.wait_exit(PROMPT), 0);
}
