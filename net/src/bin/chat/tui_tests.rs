//! The screen drawn into a test backend, read back as text.

use super::*;
use gossip_chat::{Id, MsgId, NodeKey, Via};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

const W: u16 = 80;
const H: u16 = 12;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The key of the member listening on `port` (a member without a key pair).
fn key(port: u16) -> NodeKey {
    NodeKey {
        id: Id::of_addr(addr(port)),
        incarnation: 1,
    }
}

fn member(port: u16, name: &str, state: MemberState, neighbour: bool) -> Member {
    Member {
        node: key(port),
        addr: addr(port),
        name: name.to_owned(),
        state,
        neighbour,
        last_heard: None,
        since: Duration::from_secs(1),
    }
}

/// 2023-11-14 22:13:20 UTC.
const T: u64 = 1_700_000_000_000;

/// Bob at `port` said `text`, at `T`.
fn chat(port: u16, seq: u64, text: &str, via: Via) -> Event {
    chat_at(port, seq, text, via, T)
}

fn chat_at(port: u16, seq: u64, text: &str, via: Via, sent_ms: u64) -> Event {
    Event::Chat {
        id: MsgId {
            origin: key(port),
            seq,
        },
        addr: Some(addr(port)),
        name: Arc::from("bob"),
        text: Arc::from(text),
        sent_ms,
        via,
    }
}

/// `event` seen now, five minutes after `T`.
fn see(s: &mut TuiState, event: &Event) {
    s.event(event, Instant::now(), T + 300_000);
}

fn state() -> TuiState {
    TuiState::new(SocketAddr::from(([127, 0, 0, 1], 7000)), "alice")
}

/// The screen as text, one string per row, trailing blanks trimmed.
fn draw(state: &TuiState) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(W, H)).unwrap();
    terminal.draw(|f| render(state, f)).unwrap();
    let buf = terminal.backend().buffer();
    (0..H)
        .map(|y| {
            let row: String = (0..W).map(|x| buf[(x, y)].symbol()).collect();
            row.trim_end().to_owned()
        })
        .collect()
}

/// The scrollback column of a row (left of the member list).
fn left(row: &str) -> String {
    let cut = usize::from(W - MEMBERS_WIDTH);
    row.chars()
        .take(cut)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

/// The member list's column of a row.
fn right(row: &str) -> String {
    let cut = usize::from(W - MEMBERS_WIDTH);
    row.chars()
        .skip(cut)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

#[test]
fn the_member_list_shows_each_state_and_marks_neighbours() {
    let mut s = state();
    s.members = vec![
        member(7003, "dave", MemberState::Dead, false),
        member(7001, "bob", MemberState::Alive, true),
        member(7002, "carol", MemberState::Suspect, false),
        member(7004, "erin", MemberState::Left, false),
    ];
    let rows = draw(&s);
    let panel: Vec<String> = rows.iter().map(|r| right(r)).collect();
    assert_eq!(
        &panel[..5],
        &[
            "│ members (* direct)",
            "│* bob alive",
            "│  carol suspect",
            "│  dave dead",
            "│  erin left",
        ],
        "{rows:#?}"
    );
}

#[test]
fn history_lines_are_marked_counted_and_show_their_authors_time() {
    let mut s = state();
    see(&mut s, &chat(7001, 1, "live one", Via::Live));
    see(
        &mut s,
        &chat_at(7001, 2, "from before the heal", Via::Repair, T - 10_000),
    );
    // From another day: the date too.
    see(
        &mut s,
        &chat_at(7001, 3, "yesterday", Via::Repair, T - 86_400_000),
    );
    let rows = draw(&s);
    assert_eq!(left(&rows[0]), "22:13:20 bob: live one", "{rows:#?}");
    assert_eq!(
        left(&rows[1]),
        "(history) 22:13:10 bob: from before the heal",
        "{rows:#?}"
    );
    assert_eq!(
        left(&rows[2]),
        "(history) 2023-11-13 22:13:20 bob: yesterday",
        "{rows:#?}"
    );
    assert_eq!(s.recovered, 2);
    assert!(rows[H as usize - 2].contains("| 2 recovered"), "{rows:#?}");
}

#[test]
fn a_burst_of_history_is_summed_up_once_quiet() {
    use crate::recovered::QUIET;
    let mut s = state();
    let heal = Instant::now() + Duration::from_secs(60);
    for seq in 1..=3 {
        s.event(&chat(7001, seq, "missed", Via::Repair), heal, T);
    }
    s.event(&chat(7002, 1, "live", Via::Live), heal, T);
    s.tick(heal + QUIET / 2);
    assert!(!draw(&s).iter().any(|r| r.contains("recovered after")));
    s.tick(heal + QUIET);
    let rows = draw(&s);
    assert_eq!(
        left(&rows[4]),
        "-- 3 messages recovered after a split --",
        "{rows:#?}"
    );
    s.tick(heal + QUIET * 3);
    assert_eq!(
        draw(&s)
            .iter()
            .filter(|r| r.contains("recovered after"))
            .count(),
        1,
        "summed up once"
    );
}

#[test]
fn two_members_named_bob_show_in_different_colours_unless_colour_is_off() {
    let mut s = state();
    // Different identities, same name (their colours differ: see
    // `colour::tests`).
    see(&mut s, &chat(7001, 1, "one", Via::Live));
    see(&mut s, &chat(7002, 1, "two", Via::Live));
    let colour_at = |s: &TuiState, y: u16| {
        let mut terminal = Terminal::new(TestBackend::new(W, H)).unwrap();
        terminal.draw(|f| render(s, f)).unwrap();
        let buf = terminal.backend().buffer().clone();
        // The name starts after "22:13:20 ".
        (
            buf[(9, y)].symbol().to_owned(),
            buf[(9, y)].fg,
            buf[(0, y)].fg,
        )
    };
    let (b1, one, time1) = colour_at(&s, 0);
    let (b2, two, _) = colour_at(&s, 1);
    assert_eq!((b1.as_str(), b2.as_str()), ("b", "b"));
    assert_ne!(one, two, "two bobs alike");
    assert!(
        matches!(one, Color::Indexed(c) if crate::colour::PALETTE.contains(&c)),
        "{one:?}"
    );
    assert_eq!(time1, Color::Reset, "only the name is coloured");
    // 24-bit when the terminal says it shows it.
    s.colour = crate::colour::Colours::Rgb;
    let (one, two) = (colour_at(&s, 0).1, colour_at(&s, 1).1);
    assert_ne!(one, two, "two bobs alike");
    let (r, g, b) = crate::colour::rgb_of(key(7001));
    assert_eq!(one, Color::Rgb(r, g, b));
    s.colour = crate::colour::Colours::Off;
    assert_eq!(colour_at(&s, 0).1, Color::Reset);
    assert_eq!(colour_at(&s, 1).1, Color::Reset);
}

#[test]
fn the_status_line_shows_address_peers_and_trouble() {
    let mut s = state();
    s.members = vec![
        member(7001, "bob", MemberState::Alive, true),
        member(7002, "carol", MemberState::Alive, false),
        member(7004, "erin", MemberState::Left, false),
    ];
    let status = draw(&s)[H as usize - 2].clone();
    assert_eq!(status, "127.0.0.1:7000 as alice | 2 peer(s) | settled");

    s.members[1].state = MemberState::Suspect;
    s.members
        .push(member(7003, "dave", MemberState::Dead, false));
    see(
        &mut s,
        &Event::Gap {
            origin: key(7003),
            addr: Some(addr(7003)),
            first: 4,
            last: 6,
        },
    );
    let status = draw(&s)[H as usize - 2].clone();
    assert_eq!(
        status,
        "127.0.0.1:7000 as alice | 2 peer(s) | repair? 1 suspect, 1 dead | 3 lost"
    );
}

#[test]
fn a_long_scrollback_shows_the_newest_lines_and_stays_bounded() {
    let mut s = state();
    for i in 0..SCROLLBACK + 50 {
        s.say(&format!("line {i}"));
    }
    assert_eq!(s.lines.len(), SCROLLBACK);
    let rows = draw(&s);
    // Rows above the status and input lines hold the newest lines, in
    // order, the newest last.
    let shown: Vec<String> = rows[..H as usize - 2].iter().map(|r| left(r)).collect();
    let want: Vec<String> = (SCROLLBACK + 50 - 10..SCROLLBACK + 50)
        .map(|i| format!("line {i}"))
        .collect();
    assert_eq!(shown, want);

    // Scrolled up, older lines come into view and the status says so.
    s.scroll_up(5);
    let rows = draw(&s);
    assert_eq!(
        left(&rows[H as usize - 3]),
        format!("line {}", SCROLLBACK + 44)
    );
    assert!(rows[H as usize - 2].contains("scrolled up 5"));
}

#[test]
fn the_input_line_shows_what_is_typed() {
    let mut s = state();
    for c in "hello there".chars() {
        s.type_char(c);
    }
    s.type_char('\u{7}'); // control characters are not typed
    let rows = draw(&s);
    assert_eq!(rows[H as usize - 1], "> hello there");

    // A line longer than the screen shows its end.
    s.input = "x".repeat(200) + "END";
    let rows = draw(&s);
    let last = &rows[H as usize - 1];
    assert!(last.starts_with("> x") && last.ends_with("END"), "{last}");
    assert!(last.chars().count() <= usize::from(W));
}

#[test]
fn typing_stops_at_the_limit() {
    let mut s = state();
    s.input = "y".repeat(INPUT_MAX);
    s.type_char('z');
    assert_eq!(s.input.len(), INPUT_MAX);
}

#[test]
fn control_characters_from_peers_do_not_reach_the_terminal() {
    let mut s = state();
    see(&mut s, &chat(7001, 1, "clear\x1b[2Jthe screen", Via::Live));
    s.members = vec![member(7001, "b\x1b]0;x\x07ob", MemberState::Alive, true)];
    let rows = draw(&s);
    assert!(
        left(&rows[0]).ends_with(" bob: clear\u{FFFD}[2Jthe screen"),
        "{rows:#?}"
    );
    assert_eq!(right(&rows[1]), "│* b\u{FFFD}]0;x\u{FFFD}ob alive");
    assert!(rows.iter().all(|r| !r.contains('\x1b')));
}
