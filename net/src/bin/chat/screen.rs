//! The terminal: a line editor (rustyline) keeps the line being typed at
//! the bottom, with editing and an in-memory history, while incoming lines
//! print above it through the editor's external printer.
//!
//! Used only when stdin and stdout are both terminals; otherwise the
//! program reads and writes plain lines.

use crossbeam_channel::{Receiver, Sender};
use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor, ExternalPrinter};
use std::io::Write;

/// Lines waiting to be printed above the prompt. When full, the driver
/// waits, as it would on a slow stdout.
const SCREEN_QUEUE: usize = 1024;
/// Lines of input history kept (in memory only).
const HISTORY: usize = 1000;
/// The prompt in front of the line being typed.
pub const PROMPT: &str = "> ";

/// A line editor on the terminal, and the queue of lines to print above
/// it.
pub struct Screen {
    editor: DefaultEditor,
    lines: Sender<String>,
}

/// What the user did at the prompt.
pub enum Typed {
    /// A line (without its newline).
    Line(String),
    /// Ctrl-C: leave now.
    Interrupt,
    /// Ctrl-D or the terminal went away: leave.
    End,
}

impl Screen {
    /// Takes over the terminal; `None` if it cannot (then plain lines are
    /// used).
    pub fn open() -> Option<Screen> {
        let config = Config::builder()
            .max_history_size(HISTORY)
            .ok()?
            .auto_add_history(true)
            .build();
        let mut editor = DefaultEditor::with_config(config).ok()?;
        let printer = editor.create_external_printer().ok()?;
        let (lines, queue) = crossbeam_channel::bounded(SCREEN_QUEUE);
        std::thread::Builder::new()
            .name("screen".into())
            .spawn(move || print_lines(printer, queue))
            .ok()?;
        Some(Screen { editor, lines })
    }

    /// Where lines to print above the prompt go.
    pub fn lines(&self) -> Sender<String> {
        self.lines.clone()
    }

    /// Prints `text` (one or more lines) above the prompt.
    pub fn say(&self, text: String) {
        let _ = self.lines.send(text + "\n");
    }

    /// Waits for the next line typed.
    pub fn read(&mut self) -> Typed {
        match self.editor.readline(PROMPT) {
            Ok(line) => Typed::Line(line),
            Err(ReadlineError::Interrupted) => Typed::Interrupt,
            Err(ReadlineError::Eof) => Typed::End,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the terminal, leaving");
                Typed::End
            }
        }
    }
}

/// Hands each queued line to the editor's printer, which clears the
/// prompt line, prints the line and draws the prompt again below it.
fn print_lines(mut printer: impl ExternalPrinter, queue: Receiver<String>) {
    for line in queue {
        if printer.print(line.clone()).is_err() {
            let _ = std::io::stdout().write_all(line.as_bytes());
            let _ = std::io::stdout().flush();
        }
    }
}

/// The terminal's settings as they were at start, to put back when the
/// program ends while the editor holds the terminal in raw mode (the node
/// stopped on a signal).
pub struct SavedTerminal(Option<nix::sys::termios::Termios>);

impl SavedTerminal {
    pub fn now() -> SavedTerminal {
        SavedTerminal(nix::sys::termios::tcgetattr(std::io::stdin()).ok())
    }

    pub fn restore(&self) {
        if let Some(t) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSADRAIN,
                t,
            );
        }
    }
}
