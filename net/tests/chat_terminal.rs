//! The `chat` program on a terminal: a real process in a pseudo-terminal,
//! its screen rebuilt by a terminal emulator (vt100), next to a `--json`
//! node that talks to it. Every wait has a deadline, and every process is
//! killed when its guard drops, also when a test fails.

mod common;

use common::terminal::Terminal;
use common::*;

const ROWS: u16 = 40;

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
    let mut term = Terminal::typist(&join, &[], ROWS);
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
    // The printer writes each line and then redraws the prompt: wait for
    // the screen to settle with both (a broken prompt never settles).
    term.wait_screen("all 20 messages and the prompt redrawn", DELIVERY, |t| {
        let rows = t.rows();
        texts
            .iter()
            .all(|x| rows.iter().any(|r| is_chat_row(r, "alice", x)))
            && rows[t.cursor_row()] == format!("> {}", typed.trim_end())
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
    // The name is coloured on a terminal (from the 256-colour cube).
    let name_col = rows[at[0]].find("alice").unwrap() as u16;
    let cell = term.screen.screen().cell(at[0] as u16, name_col).unwrap();
    assert!(
        matches!(cell.fgcolor(), vt100::Color::Idx(16..=231)),
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
    let mut term = Terminal::typist(&join, &[], ROWS);
    term.wait_screen("alice joining", STARTUP, |t| {
        t.rows().iter().any(|r| r.contains("* alice joined ("))
    });
    term.wait_screen("the prompt", PROMPT, |t| t.rows()[t.cursor_row()] == ">");
    term.type_keys("\x04");
    alice.wait_for("typist leaving", PROMPT, |e| {
        e["event"] == "peer_down" && e["name"] == "typist" && e["reason"] == "left"
    });
    assert_eq!(term.wait_exit(PROMPT), 0, "exit code after Ctrl-D");
}

/// `HH:MM:SS` (UTC) of a wall-clock time in milliseconds.
fn hms(ms: u64) -> String {
    let secs = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

#[test]
fn history_shows_marked_with_its_authors_time_and_no_color_turns_colour_off() {
    let mut alice = Chat::start("alice", &[]);
    let said: Vec<String> = (1..=3)
        .map(|i| format!("said before you came {i}"))
        .collect();
    for t in &said {
        alice.line(t);
    }
    // Alice's own deliveries carry the times her node gave them.
    let times: Vec<u64> = said
        .iter()
        .map(|t| alice.wait_chat_text(t, PROMPT)["sent_ms"].as_u64().unwrap())
        .collect();
    let join = alice.addr_str();
    let mut term = Terminal::typist_env(&join, &[], ROWS, &[("NO_COLOR", "1")]);
    // Each old message on a row of its own: marked, with alice's time.
    term.wait_screen("the history, marked and timed", DELIVERY, |t| {
        said.iter().zip(&times).all(|(x, at)| {
            t.rows().iter().any(|r| {
                r.starts_with("(history) ") && r.ends_with(&format!("{} alice: {x}", hms(*at)))
            })
        })
    });
    // The catch-up is summed up once it has been quiet for a while.
    term.wait_screen("the catch-up summed up", DELIVERY, |t| {
        t.rows().iter().any(|r| r == "-- 3 earlier messages --")
    });
    // A live message is not marked.
    alice.line("now live");
    term.wait_screen("a live line", DELIVERY, |t| {
        t.rows().iter().any(|r| is_chat_row(r, "alice", "now live"))
    });
    // NO_COLOR: the name in the terminal's default colour.
    let rows = term.rows();
    let y = rows
        .iter()
        .position(|r| r.ends_with("alice: now live"))
        .unwrap();
    let x = rows[y].find("alice").unwrap() as u16;
    let cell = term.screen.screen().cell(y as u16, x).unwrap();
    assert_eq!(cell.contents(), "a");
    assert_eq!(
        cell.fgcolor(),
        vt100::Color::Default,
        "coloured despite NO_COLOR"
    );
}

/// A terminal whose `COLORTERM` says `truecolor` shows names in 24-bit
/// colour, the same for every line of one member, readable on dark and
/// light backgrounds (3:1 against black and white).
#[test]
fn a_truecolor_terminal_shows_names_in_24_bit_colour() {
    let mut alice = Chat::start("alice", &[]);
    let join = alice.addr_str();
    let mut term = Terminal::typist_env(&join, &[], ROWS, &[("COLORTERM", "truecolor")]);
    term.wait_screen("alice joining", STARTUP, |t| {
        t.rows().iter().any(|r| r.contains("* alice joined ("))
    });
    // Both ends hold the link before alice speaks: a line sent while her
    // end is still in the handshake reaches the typist by repair, shown
    // as history.
    alice.wait_for("typist's peer_up", STARTUP, |e| {
        e["event"] == "peer_up" && e["name"] == "typist"
    });
    let texts = ["first in colour", "second in colour"];
    for t in texts {
        alice.line(t);
    }
    term.wait_screen("both lines", DELIVERY, |t| {
        texts
            .iter()
            .all(|x| t.rows().iter().any(|r| is_chat_row(r, "alice", x)))
    });
    let rows = term.rows();
    let colours: Vec<vt100::Color> = texts
        .iter()
        .map(|x| {
            let y = rows
                .iter()
                .position(|r| is_chat_row(r, "alice", x))
                .unwrap();
            let col = rows[y].find("alice").unwrap() as u16;
            term.screen.screen().cell(y as u16, col).unwrap().fgcolor()
        })
        .collect();
    assert_eq!(colours[0], colours[1], "one member, one colour");
    let vt100::Color::Rgb(r, g, b) = colours[0] else {
        panic!("name colour {:?}, not 24-bit", colours[0]);
    };
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    assert!(
        (l + 0.05) / 0.05 >= 2.99 && 1.05 / (l + 0.05) >= 2.99,
        "({r}, {g}, {b}) is hard to read on black or white"
    );
}
