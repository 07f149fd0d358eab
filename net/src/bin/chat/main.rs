//! `chat`: a gossip-chat node in a terminal or driven by a script.
//!
//! `chat --listen ADDR [--join ADDR]... [--name NAME] [--json | --tui]`; see
//! `chat --help`. Exit code 0 after a graceful leave, 2 for bad arguments or
//! an address that cannot be listened on, 1 for any other failure.

mod cli;
mod colour;
mod metrics;
mod output;
mod recovered;
mod screen;
mod tui;
mod tui_run;
mod wall_time;

use anyhow::{anyhow, Context};
use clap::Parser;
use cli::Args;
use gossip_chat_net::keys::{default_data_dir, DataDirError};
use gossip_chat_net::{
    self as net, ClusterKey, DataDir, KeyChange, KeyError, Keyring, NodeHandle, NodeIdentity,
    SnapshotBoard, StartError,
};
use output::{Out, Printer};
use screen::{SavedTerminal, Screen, Typed};
use std::io::{BufRead, IsTerminal};
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const HELP: &str = "\
Type a line to send it to everyone. Commands:
  /peers   who is in the group: state, direct or not, last heard
  /stats   this node's counters and table sizes
  /key     the cluster keys (fingerprints) and this node's id
  /key install KEY | /key use KEY | /key remove KEY
           rotate the cluster key: install the new key on every node,
           then use it on every node, then remove the old one
  /quit    leave the group and exit (so do Ctrl-C and end of input)
  /help    this text
  //text   send a line that starts with '/'";

/// An error in what the user asked for: exit code 2.
#[derive(Debug)]
struct Usage(anyhow::Error);

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One clear line: clap's message up to its usage block, joined.
            let text = e.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let line = message.join(" ");
            eprintln!("chat: {}", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    init_logging(args.verbose);
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Usage(e)) if is_usage(&e) => {
            eprintln!("chat: {e:#}");
            ExitCode::from(2)
        }
        Err(Usage(e)) => {
            eprintln!("chat: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether an error is the user's to fix (exit code 2).
fn is_usage(e: &anyhow::Error) -> bool {
    match e.downcast_ref::<StartError>() {
        Some(StartError::Thread(_)) => false,
        Some(_) => true,
        None => e.downcast_ref::<std::io::Error>().is_none(),
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match verbose {
        0 => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        1 => EnvFilter::new("info"),
        2 => EnvFilter::new("debug"),
        _ => EnvFilter::new("trace"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The data directory (if one can be used), the identity and the keyring
/// this run starts with.
fn credentials(args: &Args) -> Result<(Option<DataDir>, NodeIdentity, Keyring), Usage> {
    let dir = match (&args.data_dir, default_data_dir()) {
        (Some(path), _) => Some(DataDir::open(path).map_err(|e| Usage(e.into()))?),
        (None, Some(path)) => match DataDir::open(&path) {
            Ok(dir) => Some(dir),
            Err(DataDirError::InUse(_)) => {
                tracing::warn!(
                    "{} is in use by another chat process: this node runs with a temporary identity and keeps no keys (give it --data-dir to keep them)",
                    path.display()
                );
                None
            }
            Err(e) => return Err(Usage(e.into())),
        },
        (None, None) => {
            tracing::warn!("no per-user data directory here: this node runs with a temporary identity (give it --data-dir to keep one)");
            None
        }
    };
    let Some(dir) = dir else {
        let ring = args
            .cluster_key
            .clone()
            .map(Keyring::with_key)
            .unwrap_or_default();
        return Ok((None, NodeIdentity::generate(), ring));
    };
    let (identity, created) = dir.identity().map_err(|e| Usage(e.into()))?;
    if created {
        tracing::info!(dir = %dir.path().display(), id = %identity.id(), "created an identity");
    }
    let mut ring = dir.keyring().map_err(|e| Usage(e.into()))?;
    if let Some(key) = &args.cluster_key {
        let installed = ring.install(key.clone()).map_err(|e| Usage(e.into()))?;
        let used = ring.use_key(key).map_err(|e| Usage(e.into()))?;
        if installed || used {
            dir.save_keyring(&ring).map_err(|e| Usage(e.into()))?;
        }
    }
    Ok((Some(dir), identity, ring))
}

fn run(args: &Args) -> Result<(), Usage> {
    if args.gen_cluster_key {
        println!("{}", ClusterKey::generate());
        return Ok(());
    }
    if args.tui && args.json {
        return Err(Usage(anyhow!(
            "--tui and --json do not go together: --json is for scripts, --tui for a terminal"
        )));
    }
    if args.tui && !std::io::stdout().is_terminal() {
        return Err(Usage(anyhow!(
            "--tui needs a terminal on stdout; without it, chat prints plain lines"
        )));
    }
    let mut cfg = args.net_config().map_err(Usage)?;
    let (dir, identity, ring) = credentials(args)?;
    let id = identity.id();
    cfg.identity = Some(identity);
    cfg.keyring = ring;
    let keys = Keys { dir };
    // Ctrl-C (or SIGTERM) asks the node to leave gracefully; a second one
    // ends the program at once.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()))
            .context("cannot install a signal handler")
            .map_err(Usage)?;
    }
    cfg.stop_flag = Some(stop.clone());
    let metrics = match args.metrics {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .map_err(|e| Usage(anyhow!("cannot listen on {addr} for metrics: {e}")))?;
            let bound = listener
                .local_addr()
                .map_err(|e| Usage(anyhow!("cannot listen on {addr} for metrics: {e}")))?;
            let board = SnapshotBoard::new();
            cfg.snapshots = Some(board.clone());
            Some((listener, bound, board))
        }
        None => None,
    };

    let metrics_addr = metrics.as_ref().map(|m| m.1);
    if args.tui {
        let (sink, updates) = tui_run::sink();
        let node = net::start_with_sink(cfg, sink).map_err(|e| Usage(e.into()))?;
        if let Some((listener, _, board)) = metrics {
            metrics::serve(listener, board)
                .context("cannot start the metrics thread")
                .map_err(Usage)?;
        }
        // The loop ends only on a terminal failure; leaving ends the
        // program from the sink.
        let result = tui_run::run(&node, &keys, &args.name, metrics_addr, &updates, &stop);
        ratatui::restore();
        node.shutdown();
        return result.context("the terminal failed").map_err(Usage);
    }

    // A terminal on both sides gets the line editor; anything else (a
    // script, a pipe, `--json`) gets plain lines.
    let interactive =
        !args.json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    // Names in colour on a terminal, unless NO_COLOR says otherwise.
    let colour = if args.json {
        colour::Colours::Off
    } else {
        colour::wanted_here()
    };
    let saved = SavedTerminal::now();
    let screen = if interactive { Screen::open() } else { None };
    let mut printer = match &screen {
        Some(s) => Printer::new(args.json, colour, Out::Screen(s.lines()))
            // The node may stop (on a signal) while the editor holds the
            // terminal in raw mode: give it back as it was.
            .on_stop(move || saved.restore()),
        None => Printer::new(args.json, colour, Out::plain()),
    };
    printer = printer.with_metrics(metrics_addr).with_id(id);
    let node = net::start_with_sink(cfg, printer).map_err(|e| Usage(e.into()))?;
    if let Some((listener, _, board)) = metrics {
        metrics::serve(listener, board)
            .context("cannot start the metrics thread")
            .map_err(Usage)?;
    }

    // The main thread reads stdin; the driver prints. Ending here leaves
    // the group; the printer then ends the program.
    match screen {
        Some(screen) => read_terminal(screen, &node, &keys, &stop, colour),
        None => read_lines(&node, &keys, args.json, colour),
    }
    node.shutdown();
    Ok(())
}

/// What a typed line asks for.
enum Reply {
    /// Nothing to show (sent, or empty).
    Done,
    /// Leave and exit.
    Quit,
    /// An answer for stdout.
    Say(String),
    /// A complaint for stderr.
    Warn(String),
}

/// Where the keyring is kept, if anywhere.
pub(crate) struct Keys {
    dir: Option<DataDir>,
}

impl Keys {
    /// Carries out `/key ...` (the words after `/key`).
    fn command(&self, words: &[&str], node: &NodeHandle, json: bool) -> Reply {
        let parse = |k: &str| k.parse::<ClusterKey>();
        let change: Result<KeyChange, KeyError> =
            match words {
                [] | ["list"] => Ok(KeyChange {
                    changed: false,
                    keyring: node.keyring(),
                }),
                ["install", k] => parse(k).and_then(|k| node.install_key(k)),
                ["use", k] => parse(k).and_then(|k| node.use_key(&k)),
                ["remove", k] => parse(k).and_then(|k| node.remove_key(&k)),
                _ => return Reply::Warn(
                    "chat: usage: /key [list] | /key install KEY | /key use KEY | /key remove KEY"
                        .into(),
                ),
            };
        let change = match change {
            Ok(c) => c,
            Err(e) => return Reply::Warn(format!("chat: {e}")),
        };
        let mut saved = true;
        if change.changed {
            if let Some(dir) = &self.dir {
                if let Err(e) = dir.save_keyring(&change.keyring) {
                    return Reply::Warn(format!(
                        "chat: the keyring changed for this run but could not be saved: {e}"
                    ));
                }
            } else {
                saved = false;
            }
        }
        Reply::Say(output::keys_text(json, node.id(), &change, saved))
    }
}

/// Carries out one typed line.
fn command(
    line: &str,
    node: &NodeHandle,
    keys: &Keys,
    json: bool,
    colour: colour::Colours,
) -> Reply {
    if line.is_empty() {
        return Reply::Done;
    }
    if line == "/key" || line.starts_with("/key ") {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        return keys.command(&words, node, json);
    }
    if let Some(text) = line.strip_prefix("//") {
        node.send(format!("/{text}"));
        return Reply::Done;
    }
    match line {
        "/quit" => Reply::Quit,
        "/peers" => Reply::Say(output::peers_text(json, colour, &node.members())),
        "/stats" => match (node.stats(), node.table_sizes()) {
            (Some(stats), Some(tables)) => Reply::Say(output::stats_text(json, &stats, &tables)),
            _ => Reply::Done,
        },
        "/help" if json => Reply::Say(output::help_json(HELP)),
        "/help" => Reply::Say(HELP.to_owned()),
        cmd if cmd.starts_with('/') => {
            Reply::Warn(format!("chat: unknown command {cmd}; /help lists them"))
        }
        text => {
            node.send(text);
            Reply::Done
        }
    }
}

/// Plain lines from stdin, answers on stdout, until end of input or
/// `/quit`.
fn read_lines(node: &NodeHandle, keys: &Keys, json: bool, colour: colour::Colours) {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match input.read_until(b'\n', &mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read stdin, leaving");
                break;
            }
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\n', '\r']);
        match command(line, node, keys, json, colour) {
            Reply::Done => {}
            Reply::Quit => break,
            Reply::Say(text) => println!("{text}"),
            Reply::Warn(text) => eprintln!("{text}"),
        }
    }
}

/// The line editor, until Ctrl-D, Ctrl-C or `/quit`. Answers print above
/// the prompt, like incoming messages.
fn read_terminal(
    mut screen: Screen,
    node: &NodeHandle,
    keys: &Keys,
    stop: &AtomicBool,
    colour: colour::Colours,
) {
    loop {
        let line = match screen.read() {
            Typed::Line(line) => line,
            Typed::End => break,
            Typed::Interrupt => {
                // As a signal would: the node leaves, and a second Ctrl-C
                // (the terminal is back in its normal mode by then) ends
                // the program at once.
                stop.store(true, Ordering::SeqCst);
                break;
            }
        };
        match command(
            line.trim_end_matches(['\n', '\r']),
            node,
            keys,
            false,
            colour,
        ) {
            Reply::Done => {}
            Reply::Quit => break,
            Reply::Say(text) | Reply::Warn(text) => screen.say(text),
        }
    }
}
