//! `lab SCENARIO.toml [--seed N] [--nodes N] [--compare] [--json] [--chat PATH]`
//!
//! Runs a scenario with real `chat` processes, one per node, each in its
//! own network namespace on a shared bridge, judged by the simulator's
//! checks. Needs root (for the namespaces) and `nft` (`.ci/setup-lab`).
//! Exit 0 when every check holds, 1 when one fails, 2 when the arguments
//! or the scenario are invalid, the scenario asks for what cannot be done
//! for real, or namespaces cannot be created; 130 when interrupted.
//! `lab --clean` removes what labs killed with SIGKILL left behind.

use clap::Parser;
use gossip_sim::lab::{self, LabError, Options};
use gossip_sim::scenario;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const USAGE: &str =
    "lab SCENARIO.toml [--seed N] [--nodes N] [--compare] [--json] [--chat PATH] | lab --clean";

/// Runs a gossip-chat scenario with real chat processes over real TCP.
#[derive(Parser)]
#[command(name = "lab", override_usage = USAGE)]
struct Args {
    /// The scenario file (see scenarios/README.md).
    #[arg(value_name = "SCENARIO.toml", required_unless_present = "clean")]
    file: Option<String>,
    /// The seed for the workload's and the faults' draws (default 0).
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// Run this many initial nodes instead of the file's count.
    #[arg(long, value_name = "N")]
    nodes: Option<u32>,
    /// Also run the simulator on the same scenario and seed, and print
    /// both runs' figures side by side.
    #[arg(long)]
    compare: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// The chat program (default: `chat` next to this program).
    #[arg(long, value_name = "PATH")]
    chat: Option<String>,
    /// Remove the namespaces and processes of labs no longer running.
    #[arg(long, conflicts_with = "file")]
    clean: bool,
}

fn fail(what: impl std::fmt::Display) -> ExitCode {
    eprintln!("lab: {what}");
    ExitCode::from(2)
}

#[allow(clippy::disallowed_methods)]
fn wall() -> std::time::Instant {
    std::time::Instant::now()
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let what = text.split("\n\n").next().unwrap_or("bad arguments");
            let what: Vec<&str> = what.split_whitespace().collect();
            return fail(format!(
                "{} (usage: {USAGE})",
                what.join(" ").trim_start_matches("error: ")
            ));
        }
    };
    if args.clean {
        for ns in lab::fabric::sweep_stale() {
            println!("removed {ns}");
        }
        return ExitCode::SUCCESS;
    }
    let file = args.file.clone().unwrap_or_default();
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => return fail(format!("{file}: cannot read: {e}")),
    };
    let mut sc = match scenario::parse(&file, &text) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if let Some(n) = args.nodes {
        if n == 0 {
            return fail("--nodes must be at least 1");
        }
        sc.nodes.count = n;
    }
    let chat = match &args.chat {
        Some(c) => c.clone(),
        None => match std::env::current_exe() {
            Ok(p) => p.with_file_name("chat").to_string_lossy().into_owned(),
            Err(e) => return fail(format!("cannot find the chat program: {e}")),
        },
    };
    if !std::path::Path::new(&chat).exists() {
        return fail(format!(
            "{chat}: no such program (build it with `cargo build --bin chat`, or give --chat)"
        ));
    }
    // Refuse early, before the network is built; what depends on the
    // kernel (netem) is judged once it is.
    if let Err(e) = lab::check(&sc, &text, args.seed, None) {
        return fail(e);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            return fail(format!("cannot install a signal handler: {e}"));
        }
    }
    let opts = Options {
        chat,
        stop,
        say: Box::new(|what| eprintln!("lab: {what}")),
    };
    let report = match lab::run(&sc, &text, args.seed, opts) {
        Ok(r) => r,
        Err(LabError::Interrupted) => {
            eprintln!("lab: interrupted; every namespace and process of the run removed");
            return ExitCode::from(130);
        }
        Err(e) => return fail(e),
    };
    // After the real run, so a refusal that depends on the kernel does not
    // wait for the simulator.
    let sim = args.compare.then(|| {
        let start = wall();
        let mut r = gossip_sim::run(&sc, args.seed, None);
        r.wall_ms = Some(start.elapsed().as_millis() as u64);
        r
    });
    if args.json {
        let json = match &sim {
            Some(s) => serde_json::json!({
                "sim": s,
                "real": report,
                "side_by_side": lab::compare::rows(s, &report),
            }),
            None => serde_json::json!(report),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    } else {
        print!("{}", report.render());
        if let Some(s) = &sim {
            print!("{}", lab::compare::render(s, &report));
        }
    }
    if report.report.passed {
        ExitCode::SUCCESS
    } else {
        let nodes = args
            .nodes
            .map_or(String::new(), |n| format!(" --nodes {n}"));
        eprintln!(
            "lab: failed; rerun: cargo run --bin lab -- {file} --seed {}{nodes}",
            args.seed
        );
        ExitCode::from(1)
    }
}
