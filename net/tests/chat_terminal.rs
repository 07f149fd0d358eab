//! The `chat` program on a terminal: a real process in a pseudo-terminal,
//! its screen rebuilt by a terminal emulator (vt100), next to a `--json`
//! node that talks to it. Every wait has a deadline, and every process is
//! killed when its guard drops, also when a test fails.

mod common;

use common::*;
use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};
use std::io::{Read, Write};
use std::time::Duration;

const ROWS: u16 = 40;
const COLS: u16 = 100;

/// A `chat` process on a pseudo-terminal; killed when dropped.
struct Terminal {
    child: Box<dyn Child + Send + Sync>,
    _master: Box<dyn MasterPty + Send>,
    keys: Box<dyn Write + Send>,
    output: crossbeam_channel::Receiver<Vec<u8>>,
    screen: vt100::Parser,
}

impl Terminal {
    fn start(args: &[&str]) -> Terminal {
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
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Terminal {
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

    /// Takes what the program printed within `within`, answering its
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

    /// Every row of the screen, trailing blanks cut.
    fn rows(&self) -> Vec<String> {
        self.screen
            .screen()
            .rows(0, COLS)
            .map(|r| r.trim_end().to_owned())
            .collect()
    }

    /// The row the cursor is on: the prompt and what is being typed.
    fn cursor_row(&self) -> usize {
        usize::from(self.screen.screen().cursor_position().0)
    }

    /// Waits until the screen satisfies `pred`.
    fn wait_screen(&mut self, what: &str, within: Duration, pred: impl Fn(&Terminal) -> bool) {
        let deadline = clock() + within;
        while !pred(self) {
            let left = deadline.saturating_duration_since(clock());
            assert!(
                !left.is_zero(),
                "screen never showed {what} within {within:?}:\n{}",
                self.rows().join("\n")
            );
            self.pump(left.min(Duration::from_millis(50)));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `row` is exactly a chat line `HH:MM:SS name: text`.
fn is_chat_row(row: &str, name: &str, text: &str) -> bool {
    let Some((time, rest)) = row.split_once(' ') else {
        return false;
    };
    time.len() == 8
        && time.bytes().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                b == b':'
            } else {
                b.is_ascii_digit()
            }
        })
        && rest == format!("{name}: {text}")
}

#[test]
fn incoming_lines_print_above_the_line_being_typed() {
    let mut alice = Chat::start("alice", &[]);
    let join = alice.addr_str();
    let mut term = Terminal::start(&[
        "--listen",
        "127.0.0.1:0",
        "--name",
        "typist",
        "--join",
        &join,
    ]);
    term.wait_screen("alice joining", STARTUP, |t| {
        t.rows().iter().any(|r| r.contains("* alice joined ("))
    });
    alice.wait_for("typist's peer_up", STARTUP, |e| {
        e["event"] == "peer_up" && e["name"] == "typist"
    });

    // Half a line typed, then a burst of incoming messages.
    let typed = "half of a line, ";
    term.type_keys(typed);
    term.wait_screen("the half line at the prompt", PROMPT, |t| {
        t.rows()[t.cursor_row()] == format!("> {}", typed.trim_end())
    });
    let texts: Vec<String> = (1..=20)
        .map(|i| format!("message {i:02} from alice"))
        .collect();
    for t in &texts {
        alice.line(t);
    }
    term.wait_screen("all 20 messages", DELIVERY, |t| {
        let rows = t.rows();
        texts
            .iter()
            .all(|x| rows.iter().any(|r| is_chat_row(r, "alice", x)))
    });

    // Each message whole on a row of its own, in order, above the prompt;
    // the prompt still holds exactly what was typed.
    let rows = term.rows();
    let prompt = term.cursor_row();
    let at: Vec<usize> = texts
        .iter()
        .map(|x| {
            rows.iter()
                .position(|r| is_chat_row(r, "alice", x))
                .unwrap()
        })
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] + 1 == w[1]),
        "rows {at:?}:\n{}",
        rows.join("\n")
    );
    assert!(
        at[19] < prompt,
        "messages below the prompt:\n{}",
        rows.join("\n")
    );
    assert_eq!(
        rows[prompt],
        format!("> {}", typed.trim_end()),
        "\n{}",
        rows.join("\n")
    );
    assert_eq!(
        term.screen.screen().cursor_position().1 as usize,
        2 + typed.len(),
        "cursor not at the end of the typed text"
    );
    // The name is coloured on a terminal (ANSI colours 1 to 6).
    let name_col = rows[at[0]].find("alice").unwrap() as u16;
    let cell = term.screen.screen().cell(at[0] as u16, name_col).unwrap();
    assert!(
        matches!(cell.fgcolor(), vt100::Color::Idx(1..=6)),
        "name colour {:?}",
        cell.fgcolor()
    );

    // Finishing the line sends it whole.
    term.type_keys("and the rest\r");
    let sent = alice.wait_for("typist's line", PROMPT, |e| {
        e["event"] == "chat" && e["name"] == "typist"
    });
    assert_eq!(sent["text"], "half of a line, and the rest");
    term.wait_screen("an empty prompt", PROMPT, |t| {
        t.rows()[t.cursor_row()] == ">"
    });
}

#[test]
fn ctrl_d_leaves_the_group_and_exits() {
    let alice = Chat::start("alice", &[]);
    let join = alice.addr_str();
    let mut term = Terminal::start(&[
        "--listen",
        "127.0.0.1:0",
        "--name",
        "typist",
        "--join",
        &join,
    ]);
    term.wait_screen("alice joining", STARTUP, |t| {
        t.rows().iter().any(|r| r.contains("* alice joined ("))
    });
    term.wait_screen("the prompt", PROMPT, |t| t.rows()[t.cursor_row()] == ">");
    term.type_keys("\x04");
    alice.wait_for("typist leaving", PROMPT, |e| {
        e["event"] == "peer_down" && e["name"] == "typist" && e["reason"] == "left"
    });
    let deadline = clock() + PROMPT;
    loop {
        if let Some(status) = term.child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(clock() < deadline, "chat did not exit after Ctrl-D");
        term.pump(Duration::from_millis(50));
    }
}
