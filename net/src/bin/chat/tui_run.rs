//! Running `chat --tui`: the terminal in raw mode on the alternate screen,
//! keys read on the main thread, the node's events handed over by a sink
//! on the driver thread, the member list refreshed a few times a second.

use crate::tui::{render, TuiState};
use crate::{command, Reply, HELP};
use crossbeam_channel::{Receiver, Sender};
use crossterm::event::{self, Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use gossip_chat::Event;
use gossip_chat_net::{wall_clock_millis, EventSink, NodeHandle};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Events waiting for the screen. When full, the driver waits, as it would
/// on a slow stdout.
const EVENT_QUEUE: usize = 1024;
/// Longest wait for a key before looking at events again.
const TICK: Duration = Duration::from_millis(50);
/// How often the member list is asked of the node.
const MEMBERS_EVERY: Duration = Duration::from_millis(250);

/// What the driver thread hands the screen.
pub enum Update {
    Ready(SocketAddr),
    Event(Event),
}

/// The node's events, to the screen's queue.
pub struct TuiSink {
    updates: Sender<Update>,
}

/// A sink for the node and the queue the screen reads.
pub fn sink() -> (TuiSink, Receiver<Update>) {
    let (updates, rx) = crossbeam_channel::bounded(EVENT_QUEUE);
    (TuiSink { updates }, rx)
}

impl EventSink for TuiSink {
    fn ready(&mut self, addr: SocketAddr, _name: &str) {
        let _ = self.updates.send(Update::Ready(addr));
    }

    fn event(&mut self, event: Event) {
        // A full queue means the screen is behind: wait for it (an error
        // means it is gone).
        let _ = self.updates.send(Update::Event(event));
    }

    fn stopped(&mut self) {
        // The node has left: give the terminal back and end.
        ratatui::restore();
        std::process::exit(0);
    }
}

/// The full-screen loop, until the node has left (the sink then ends the
/// program) or a second Ctrl-C.
pub fn run(
    node: &NodeHandle,
    keys: &crate::Keys,
    name: &str,
    metrics: Option<SocketAddr>,
    updates: &Receiver<Update>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let mut state = TuiState::new(node.addr(), name);
    state.colour = crate::colour::wanted_here();
    if let Some(m) = metrics {
        state.say(&format!("* metrics on http://{m}/metrics"));
    }
    let mut members_at: Option<Instant> = None;
    loop {
        for update in updates.try_iter().take(EVENT_QUEUE) {
            match update {
                Update::Ready(addr) => {
                    state.addr = addr;
                    state.say(&format!(
                        "* listening on {addr} as {name}; type a message, or /help"
                    ));
                }
                Update::Event(e) => state.event(&e, Instant::now(), wall_clock_millis()),
            }
        }
        state.tick(Instant::now());
        if members_at.is_none_or(|at| at.elapsed() >= MEMBERS_EVERY) {
            state.members = node.members();
            members_at = Some(Instant::now());
        }
        terminal.draw(|frame| render(&state, frame))?;
        if !event::poll(TICK)? {
            continue;
        }
        let height = usize::from(terminal.size()?.height).max(4);
        match event::read()? {
            TermEvent::Key(key) if key.kind != KeyEventKind::Release => {
                match on_key(&mut state, key, node, keys, height) {
                    Key::Stay => {}
                    Key::Interrupt if state.leaving => {
                        // A second Ctrl-C: end at once, as a second signal
                        // does in line mode.
                        ratatui::restore();
                        std::process::exit(1);
                    }
                    Key::Interrupt | Key::Leave => {
                        // The driver sees the flag, leaves, and the sink
                        // ends the program.
                        state.leaving = true;
                        stop.store(true, Ordering::SeqCst);
                    }
                }
            }
            TermEvent::Paste(text) => text.chars().for_each(|c| state.type_char(c)),
            _ => {}
        }
    }
}

/// What a key asks of the loop.
enum Key {
    Stay,
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-D on an empty line, or `/quit`.
    Leave,
}

fn on_key(
    state: &mut TuiState,
    key: KeyEvent,
    node: &NodeHandle,
    keys: &crate::Keys,
    height: usize,
) -> Key {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c') if ctrl => return Key::Interrupt,
        KeyCode::Char('d') if ctrl && state.input.is_empty() => return Key::Leave,
        KeyCode::Char('u') if ctrl => state.input.clear(),
        KeyCode::Char(c) if !ctrl => state.type_char(c),
        KeyCode::Backspace => {
            state.input.pop();
        }
        KeyCode::PageUp => state.scroll_up(height / 2),
        KeyCode::PageDown => state.scroll_down(height / 2),
        KeyCode::Enter => {
            let line = std::mem::take(&mut state.input);
            state.scroll = 0;
            match command(&line, node, keys, false, crate::colour::Colours::Off) {
                Reply::Done => {}
                Reply::Quit => return Key::Leave,
                Reply::Say(text) if text == HELP => {
                    state.say(HELP);
                    state.say("  PgUp/PgDn scroll, Ctrl-U clears the line");
                }
                Reply::Say(text) | Reply::Warn(text) => state.say(&text),
            }
        }
        _ => {}
    }
    Key::Stay
}
