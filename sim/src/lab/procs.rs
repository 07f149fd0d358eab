//! The `chat` processes of a run: spawned inside their node's namespace,
//! typed into through stdin, read line by line from stdout, each line
//! stamped with the lab's clock as it arrives (the time the run loop uses
//! for a line without the node's own `ts_ms`, and the latest it can have
//! been printed).
//!
//! [`Procs`] owns every child it spawned and kills and reaps them all on
//! drop, stopped ones included (SIGKILL ends a stopped process too).
//! Children run in their own process group, so a Ctrl-C at the terminal
//! reaches only the lab, which then ends them itself.

use super::clock::Clock;
use gossip_chat::Instant;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender};

/// One line a process printed, or the end of its output.
pub struct Line {
    /// The process (index in spawn order).
    pub proc: usize,
    /// When the lab read it.
    pub at: Instant,
    /// The line, or `None` at the end of its output.
    pub text: Option<String>,
}

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Reaped already.
    done: bool,
}

/// Every process of a run.
pub struct Procs {
    list: Vec<Proc>,
    tx: Sender<Line>,
    clock: Clock,
}

/// Longest line read from a process; longer ones are cut (a node's output
/// is untrusted like its peers).
const MAX_LINE: usize = 1 << 20;

impl Procs {
    /// No processes yet; lines will arrive on the returned receiver.
    pub fn new(clock: Clock) -> (Procs, Receiver<Line>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (
            Procs {
                list: Vec::new(),
                tx,
                clock,
            },
            rx,
        )
    }

    /// Runs `program ARGS` in namespace `ns`; returns its index.
    pub fn spawn(&mut self, ns: &str, program: &str, args: &[String]) -> Result<usize, String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {program} in {ns}: {e}"))?;
        let id = self.list.len();
        let stdout = child.stdout.take();
        let stdin = child.stdin.take();
        self.list.push(Proc {
            child,
            stdin,
            done: false,
        });
        let (tx, clock) = (self.tx.clone(), self.clock);
        if let Some(out) = stdout {
            std::thread::Builder::new()
                .name(format!("lab-read-{id}"))
                .spawn(move || read(id, out, &tx, clock))
                .map_err(|e| format!("cannot start a reader thread: {e}"))?;
        }
        Ok(id)
    }

    /// Sends `sig` to process `id` (ignored once it has exited).
    pub fn signal(&mut self, id: usize, sig: Signal) {
        let p = &mut self.list[id];
        if p.done || matches!(p.child.try_wait(), Ok(Some(_))) {
            p.done = true;
            return;
        }
        let _ = kill(Pid::from_raw(p.child.id() as i32), sig);
    }

    /// Kills process `id` and reaps it.
    pub fn kill(&mut self, id: usize) {
        self.signal(id, Signal::SIGKILL);
        let p = &mut self.list[id];
        if !p.done {
            let _ = p.child.wait();
            p.done = true;
        }
        p.stdin = None;
    }

    /// Types `line` into process `id` (a newline is added).
    pub fn type_line(&mut self, id: usize, line: &str) {
        if let Some(stdin) = &mut self.list[id].stdin {
            let mut text = String::with_capacity(line.len() + 1);
            text.push_str(line);
            text.push('\n');
            if stdin.write_all(text.as_bytes()).is_err() {
                self.list[id].stdin = None;
            }
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for id in 0..self.list.len() {
            self.kill(id);
        }
        let _ = std::fs::remove_dir_all(data_root());
    }
}

/// Where this run's processes keep their data directories (one per slot,
/// so a restarted node keeps its identity); removed with the processes.
pub fn data_root() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gossip-lab-{}", std::process::id()))
}

fn read(id: usize, out: std::process::ChildStdout, tx: &Sender<Line>, clock: Clock) {
    let mut r = BufReader::new(out);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.by_ref().take(MAX_LINE as u64).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let at = clock.now();
                let text = String::from_utf8_lossy(&buf).trim_end().to_string();
                if tx
                    .send(Line {
                        proc: id,
                        at,
                        text: Some(text),
                    })
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    let _ = tx.send(Line {
        proc: id,
        at: clock.now(),
        text: None,
    });
}
