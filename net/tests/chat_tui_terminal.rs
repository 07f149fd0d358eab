//! `chat --tui` in a pseudo-terminal, its screen rebuilt by a terminal
//! emulator (vt100), next to a `--json` node that talks to it. Every wait
//! has a deadline, and every process is killed when its guard drops.

mod common;

use common::*;
use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};
use std::io::{Read, Write};
use std::time::Duration;

const ROWS: u16 = 24;
const COLS: u16 = 100;

/// A `chat --tui` process on a pseudo-terminal; killed when dropped.
struct Screen {
    child: Box<dyn Child + Send + Sync>,
    _master: Box<dyn MasterPty + Send>,
    keys: Box<dyn Write + Send>,
    output: crossbeam_channel::Receiver<Vec<u8>>,
    screen: vt100::Parser,
}

impl Screen {
    fn start(args: &[&str]) -> Screen {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pseudo-terminal");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_chat"));
        cmd.args(args);
        cmd.env("TERM", "xterm");
        let child = pair.slave.spawn_command(cmd).expect("start chat");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let keys = pair.master.take_writer().expect("pty writer");
        let (tx, output) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Screen {
            child,
            _master: pair.master,
            keys,
            output,
            screen: vt100::Parser::new(
                std::num::NonZeroU16::new(ROWS).unwrap(),
                std::num::NonZeroU16::new(COLS).unwrap(),
                0,
            ),
        }
    }

    fn type_keys(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).expect("type");
        self.keys.flush().expect("type");
    }

    /// Takes what the program drew within `within`, answering
    /// cursor-position queries as a terminal would.
    fn pump(&mut self, within: Duration) {
        let Ok(bytes) = self.output.recv_timeout(within) else {
            return;
        };
        self.screen.process(&bytes);
        for _ in 0..bytes.windows(4).filter(|w| w == b"\x1b[6n").count() {
            let (row, col) = self.screen.screen().cursor_position();
            let answer = format!("\x1b[{};{}R", row + 1, col + 1);
            self.type_keys(&answer);
        }
    }

    fn rows(&self) -> Vec<String> {
        self.screen
            .screen()
            .rows(0, COLS)
            .map(|r| r.trim_end().to_owned())
            .collect()
    }

    fn wait_screen(&mut self, what: &str, within: Duration, pred: impl Fn(&[String]) -> bool) {
        let deadline = clock() + within;
        while !pred(&self.rows()) {
            let left = deadline.saturating_duration_since(clock());
            assert!(
                !left.is_zero(),
                "screen never showed {what} within {within:?}:\n{}",
                self.rows().join("\n")
            );
            self.pump(left.min(Duration::from_millis(50)));
        }
    }

    /// Waits for the process to exit; its exit code.
    fn wait_exit(&mut self, within: Duration) -> u32 {
        let deadline = clock() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.exit_code();
            }
            assert!(clock() < deadline, "chat did not exit within {within:?}");
            self.pump(Duration::from_millis(50));
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_full_screen_shows_members_status_and_chat_and_ctrl_c_leaves() {
    let mut alice = Chat::start("alice", &[]);
    let join = alice.addr_str();
    let mut tui = Screen::start(&[
        "--listen",
        "127.0.0.1:0",
        "--name",
        "typist",
        "--join",
        &join,
        "--tui",
    ]);
    // The member list shows alice, alive and a direct neighbour; the status
    // line counts one peer.
    tui.wait_screen("alice in the member list", STARTUP, |rows| {
        rows.iter().any(|r| r.ends_with("│* alice alive"))
            && rows[usize::from(ROWS) - 2].contains("as typist | 1 peer(s) | settled")
    });
    alice.wait_for("typist's peer_up", STARTUP, |e| {
        e["event"] == "peer_up" && e["name"] == "typist"
    });

    // What is typed shows on the input line, and Enter sends it.
    tui.type_keys("hello from the full screen");
    tui.wait_screen("the typed line", PROMPT, |rows| {
        rows[usize::from(ROWS) - 1] == "> hello from the full screen"
    });
    tui.type_keys("\r");
    alice.wait_chat_text("hello from the full screen", DELIVERY);
    tui.wait_screen("an empty input line", PROMPT, |rows| {
        rows[usize::from(ROWS) - 1] == ">"
    });

    // An incoming message lands in the scrollback; /peers answers there.
    alice.line("hi back");
    tui.wait_screen("alice's message", DELIVERY, |rows| {
        rows.iter().any(|r| r.contains(" alice: hi back"))
    });
    tui.type_keys("/peers\r");
    tui.wait_screen("the /peers answer", PROMPT, |rows| {
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
    let mut tui = Screen::start(&["--listen", "127.0.0.1:0", "--join", &join, "--tui"]);
    tui.wait_screen("alice in the member list", STARTUP, |rows| {
        rows.iter().any(|r| r.ends_with("│* alice alive"))
    });
    tui.type_keys("/help\r");
    tui.wait_screen("the /help answer", PROMPT, |rows| {
        rows.iter()
            .any(|r| r.contains("/peers   who is in the group"))
    });
    tui.type_keys("/quit\r");
    alice.wait_for("anon leaving", PROMPT, |e| {
        e["event"] == "peer_down" && e["name"] == "anon" && e["reason"] == "left"
    });
    assert_eq!(tui.wait_exit(PROMPT), 0);
}
