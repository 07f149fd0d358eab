//! The full-screen view of `chat --tui`: what is on screen is a pure
//! function of a [`TuiState`] (scrollback, members, counters, the line
//! being typed), drawn into a ratatui `Frame`. Reading keys and events is
//! in `tui_run`.

use crate::colour::{colour_of, rgb_of, Colours};
use crate::output::{self, HISTORY_MARK};
use crate::recovered::Recovered;
use crate::wall_time::author_text;
use gossip_chat::{Event, MemberState, NodeKey};
use gossip_chat_net::Member;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, Paragraph};
use ratatui::Frame;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

/// Lines of scrollback kept; older ones are dropped.
pub const SCROLLBACK: usize = 2000;
/// Longest line being typed, in bytes (the core refuses longer messages
/// anyway, with a clear line).
pub const INPUT_MAX: usize = 16 * 1024;
/// Width of the member list, borders included.
const MEMBERS_WIDTH: u16 = 28;

/// One line of scrollback: `prefix`, then a member's name in its colour,
/// then `rest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatLine {
    pub prefix: String,
    /// The member named on the line (the author of a chat).
    pub name: Option<(String, NodeKey)>,
    pub rest: String,
    /// A message delivered from history (a newcomer's catch-up, or
    /// recovered after a split), not live.
    pub history: bool,
}

impl ChatLine {
    fn plain(text: &str) -> ChatLine {
        ChatLine {
            prefix: text.to_owned(),
            name: None,
            rest: String::new(),
            history: false,
        }
    }
}

/// Everything the screen shows.
#[derive(Debug)]
pub struct TuiState {
    /// This node's address and name.
    pub addr: SocketAddr,
    pub name: String,
    lines: VecDeque<ChatLine>,
    /// Every member this node knows of, as `NodeHandle::members` gives them.
    pub members: Vec<Member>,
    /// Messages delivered from history (recovered after a heal).
    pub recovered: u64,
    /// Messages given up as unrecoverable (gaps).
    pub lost: u64,
    /// The line being typed.
    pub input: String,
    /// How many lines up from the newest the scrollback is shown.
    pub scroll: usize,
    /// The node is leaving: the next Ctrl-C ends at once.
    pub leaving: bool,
    /// How names, states and marks are coloured (off with `NO_COLOR`).
    pub colour: Colours,
    /// History deliveries, summed up in bursts.
    bursts: Recovered,
}

impl TuiState {
    pub fn new(addr: SocketAddr, name: &str) -> TuiState {
        TuiState {
            addr,
            name: name.to_owned(),
            lines: VecDeque::new(),
            members: Vec::new(),
            recovered: 0,
            lost: 0,
            input: String::new(),
            scroll: 0,
            leaving: false,
            colour: Colours::Cube,
            bursts: Recovered::new(),
        }
    }

    /// Adds `text` (one or more lines) to the scrollback.
    pub fn say(&mut self, text: &str) {
        for line in text.lines() {
            self.push(ChatLine::plain(line));
        }
    }

    fn push(&mut self, mut line: ChatLine) {
        line.prefix = printable(&line.prefix);
        line.rest = printable(&line.rest);
        if let Some((name, _)) = &mut line.name {
            *name = printable(name);
        }
        if self.lines.len() == SCROLLBACK {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// What an event from the node, seen at `now` (`now_ms` on the wall
    /// clock), adds: a line, and the counters.
    pub fn event(&mut self, event: &Event, now: Instant, now_ms: u64) {
        match event {
            Event::Chat {
                id,
                name,
                text,
                sent_ms,
                via,
                ..
            } => {
                if let Some(burst) = self.bursts.delivered(now, *via) {
                    self.say(&burst.text());
                }
                if via.is_history() {
                    self.recovered += 1;
                }
                self.push(ChatLine {
                    prefix: format!("{} ", author_text(*sent_ms, now_ms)),
                    name: Some((name.to_string(), id.origin)),
                    rest: format!(": {text}"),
                    history: via.is_history(),
                });
                return;
            }
            Event::Gap { first, last, .. } => {
                self.lost = self
                    .lost
                    .saturating_add(last.saturating_sub(*first).saturating_add(1));
            }
            _ => {}
        }
        self.say(&output::event_text(event, Colours::Off, now_ms));
    }

    /// Time passes: a burst of history deliveries that went quiet is
    /// summed up in a line.
    pub fn tick(&mut self, now: Instant) {
        if let Some(burst) = self.bursts.tick(now) {
            self.say(&burst.text());
        }
    }

    /// Adds a typed character, unless the line is already at its limit.
    pub fn type_char(&mut self, c: char) {
        if !c.is_control() && self.input.len() + c.len_utf8() <= INPUT_MAX {
            self.input.push(c);
        }
    }

    /// Members in the roster (alive or suspect): the peer count.
    pub fn peers(&self) -> usize {
        self.members
            .iter()
            .filter(|m| matches!(m.state, MemberState::Alive | MemberState::Suspect))
            .count()
    }

    /// The status line's text.
    pub fn status(&self) -> String {
        let count = |s: MemberState| self.members.iter().filter(|m| m.state == s).count();
        let (suspect, dead) = (count(MemberState::Suspect), count(MemberState::Dead));
        let mut s = format!("{} as {} | {} peer(s)", self.addr, self.name, self.peers());
        if suspect + dead > 0 {
            s.push_str(&format!(" | repair? {suspect} suspect, {dead} dead"));
        } else {
            s.push_str(" | settled");
        }
        if self.recovered > 0 {
            s.push_str(&format!(" | {} recovered", self.recovered));
        }
        if self.lost > 0 {
            s.push_str(&format!(" | {} lost", self.lost));
        }
        if self.scroll > 0 {
            s.push_str(&format!(" | scrolled up {}", self.scroll));
        }
        if self.leaving {
            s.push_str(" | leaving (Ctrl-C again to end now)");
        }
        s
    }

    /// Scrolls towards older lines by `n` (Page Up), at most to the oldest.
    pub fn scroll_up(&mut self, n: usize) {
        self.scroll = (self.scroll + n).min(self.lines.len().saturating_sub(1));
    }

    /// Scrolls towards newer lines by `n` (Page Down).
    pub fn scroll_down(&mut self, n: usize) {
        self.scroll = self.scroll.saturating_sub(n);
    }
}

/// `text` with control characters (escape sequences from a peer, tabs)
/// shown as U+FFFD, so that nothing a peer sends can drive the terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

fn state_text(state: MemberState) -> &'static str {
    match state {
        MemberState::Alive => "alive",
        MemberState::Suspect => "suspect",
        MemberState::Dead => "dead",
        MemberState::Left => "left",
    }
}

fn state_style(state: MemberState, colour: bool) -> Style {
    if !colour {
        return Style::default();
    }
    match state {
        MemberState::Alive => Style::default().fg(Color::Green),
        MemberState::Suspect => Style::default().fg(Color::Yellow),
        MemberState::Dead => Style::default().fg(Color::Red),
        MemberState::Left => Style::default().fg(Color::DarkGray),
    }
}

/// Draws the whole screen: scrollback on the left, members on the right,
/// the status line, and the input line at the bottom.
pub fn render(state: &TuiState, frame: &mut Frame) {
    let [main, status, input] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let [chat, members] =
        Layout::horizontal([Constraint::Min(1), Constraint::Length(MEMBERS_WIDTH)]).areas(main);
    render_scrollback(state, frame, chat);
    render_members(state, frame, members);
    frame.render_widget(
        Paragraph::new(state.status()).style(Style::default().add_modifier(Modifier::REVERSED)),
        status,
    );
    render_input(state, frame, input);
}

/// The newest lines that fit (or older ones when scrolled up), oldest at
/// the top.
fn render_scrollback(state: &TuiState, frame: &mut Frame, area: Rect) {
    let height = usize::from(area.height);
    let end = state.lines.len().saturating_sub(state.scroll);
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = state
        .lines
        .range(start..end)
        .map(|l| {
            let mut spans = Vec::with_capacity(4);
            if l.history {
                let style = if state.colour.on() {
                    Style::default().fg(Color::Cyan)
                } else {
                    Style::default()
                };
                spans.push(Span::styled(HISTORY_MARK, style));
            }
            spans.push(Span::raw(l.prefix.as_str()));
            if let Some((name, key)) = &l.name {
                spans.push(Span::styled(name.as_str(), name_style(state, *key)));
            }
            spans.push(Span::raw(l.rest.as_str()));
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

/// Roster first (alive, suspect), then members remembered gone; `*` marks
/// a direct neighbour.
fn render_members(state: &TuiState, frame: &mut Frame, area: Rect) {
    let (roster, gone): (Vec<&Member>, Vec<&Member>) = state
        .members
        .iter()
        .partition(|m| matches!(m.state, MemberState::Alive | MemberState::Suspect));
    let items: Vec<ListItem> = roster
        .iter()
        .chain(&gone)
        .map(|m| {
            let mark = if m.neighbour { "* " } else { "  " };
            ListItem::new(Line::from(vec![
                Span::raw(mark),
                Span::styled(printable(&m.name), name_style(state, m.node)),
                Span::raw(" "),
                Span::styled(state_text(m.state), state_style(m.state, state.colour.on())),
            ]))
        })
        .collect();
    let block = Block::default()
        .borders(Borders::LEFT)
        .title(" members (* direct)");
    frame.render_widget(List::new(items).block(block), area);
}

/// A member's name in its colour (an xterm 256-colour index, or 24-bit).
fn name_style(state: &TuiState, node: NodeKey) -> Style {
    match state.colour {
        Colours::Off => Style::default(),
        Colours::Cube => Style::default().fg(Color::Indexed(colour_of(node))),
        Colours::Rgb => {
            let (r, g, b) = rgb_of(node);
            Style::default().fg(Color::Rgb(r, g, b))
        }
    }
}

fn render_input(state: &TuiState, frame: &mut Frame, area: Rect) {
    let prompt = crate::screen::PROMPT;
    // Keep the end of a long line in view.
    let room = usize::from(area.width).saturating_sub(prompt.len() + 1);
    let chars = state.input.chars().count();
    let shown: String = state
        .input
        .chars()
        .skip(chars.saturating_sub(room))
        .collect();
    let cursor_x = area.x + (prompt.len() + shown.chars().count()) as u16;
    frame.render_widget(Paragraph::new(format!("{prompt}{shown}")), area);
    frame.set_cursor_position((cursor_x.min(area.right().saturating_sub(1)), area.y));
}

#[cfg(test)]
#[path = "tui_tests.rs"]
mod tests;
