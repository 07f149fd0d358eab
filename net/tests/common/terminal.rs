//! The `chat` program in a pseudo-terminal (portable-pty), its screen
//! rebuilt by a terminal emulator (vt100), as a person would see it.

use super::clock;
use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};
use std::io::{Read, Write};
use std::time::Duration;

/// Columns of every test terminal.
pub const COLS: u16 = 100;

/// A `chat` process on a pseudo-terminal; killed when dropped.
pub struct Terminal {
    pub child: Box<dyn Child + Send + Sync>,
    /// The node's data directory, removed when dropped.
    data_dir: std::path::PathBuf,
    _master: Box<dyn MasterPty + Send>,
    keys: Box<dyn Write + Send>,
    pub output: crossbeam_channel::Receiver<Vec<u8>>,
    pub screen: vt100::Parser,
}

impl Terminal {
    pub fn start(args: &[&str], rows: u16) -> Terminal {
        Terminal::start_env(args, rows, &[])
    }

    /// Like [`Terminal::start`], with `env` set (and `NO_COLOR` and
    /// `COLORTERM` unset unless `env` sets them).
    pub fn start_env(args: &[&str], rows: u16, env: &[(&str, &str)]) -> Terminal {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pseudo-terminal");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_chat"));
        cmd.args(args);
        cmd.env("TERM", "xterm");
        cmd.env_remove("NO_COLOR");
        cmd.env_remove("COLORTERM");
        let data_dir = super::scratch_dir("terminal");
        cmd.env("GOSSIP_CHAT_DATA_DIR", &data_dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
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
            data_dir,
            _master: pair.master,
            keys,
            output,
            screen: vt100::Parser::new(
                std::num::NonZeroU16::new(rows).unwrap(),
                std::num::NonZeroU16::new(COLS).unwrap(),
                0,
            ),
        }
    }

    /// A node named `typist` joining through `join`, with `extra` flags.
    pub fn typist(join: &str, extra: &[&str], rows: u16) -> Terminal {
        Terminal::typist_env(join, extra, rows, &[])
    }

    /// Like [`Terminal::typist`], with `env` set.
    pub fn typist_env(join: &str, extra: &[&str], rows: u16, env: &[(&str, &str)]) -> Terminal {
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--name",
            "typist",
            "--join",
            join,
        ];
        args.extend_from_slice(extra);
        Terminal::start_env(&args, rows, env)
    }

    pub fn type_keys(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).expect("type");
        self.keys.flush().expect("type");
    }

    /// Takes what the program printed within `within`, answering its
    /// cursor-position queries as a terminal would.
    pub fn pump(&mut self, within: Duration) {
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
    pub fn rows(&self) -> Vec<String> {
        self.screen
            .screen()
            .rows(0, COLS)
            .map(|r| r.trim_end().to_owned())
            .collect()
    }

    /// The row the cursor is on: the prompt and what is being typed.
    pub fn cursor_row(&self) -> usize {
        usize::from(self.screen.screen().cursor_position().0)
    }

    /// Waits until the screen satisfies `pred`.
    pub fn wait_screen(&mut self, what: &str, within: Duration, pred: impl Fn(&Terminal) -> bool) {
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

impl Terminal {
    /// Waits for the process to exit; its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> u32 {
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

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
