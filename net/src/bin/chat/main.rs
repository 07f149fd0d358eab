//! `chat`: a gossip-chat node in a terminal or driven by a script.
//!
//! `chat --listen ADDR [--join ADDR]... [--name NAME] [--json]`; see
//! `chat --help`. Exit code 0 after a graceful leave, 2 for bad arguments or
//! an address that cannot be listened on, 1 for any other failure.

mod cli;
mod output;

use anyhow::Context;
use clap::Parser;
use cli::Args;
use gossip_chat_net::{self as net, StartError};
use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const HELP: &str = "\
Type a line to send it to everyone. Commands:
  /peers   who is in the group
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

fn run(args: &Args) -> Result<(), Usage> {
    let mut cfg = args.net_config().map_err(Usage)?;
    // Ctrl-C (or SIGTERM) asks the node to leave gracefully; a second one
    // ends the program at once.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()))
            .context("cannot install a signal handler")
            .map_err(Usage)?;
    }
    cfg.stop_flag = Some(stop);
    let node =
        net::start_with_sink(cfg, output::Printer::new(args.json)).map_err(|e| Usage(e.into()))?;

    // The main thread reads stdin; the driver prints. Ending here leaves
    // the group; the printer then ends the program.
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
        if line.is_empty() {
            continue;
        }
        if let Some(text) = line.strip_prefix("//") {
            node.send(format!("/{text}"));
            continue;
        }
        match line {
            "/quit" => break,
            "/peers" => println!("{}", output::peers_text(args.json, &node.peers())),
            "/help" => println!("{HELP}"),
            cmd if cmd.starts_with('/') => {
                eprintln!("chat: unknown command {cmd}; /help lists them");
            }
            text => node.send(text),
        }
    }
    node.shutdown();
    Ok(())
}
