//! `sim SCENARIO.toml [--seed N] [--seeds A..B] [--json] [--trace FILE] [--plot FILE.svg]`
//!
//! Exit 0 when every check holds, 1 when one fails (the replay command is
//! printed), 2 when the arguments or the scenario file are invalid.

use clap::Parser;
use gossip_sim::{report::Report, scenario};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::ops::Range;
use std::process::ExitCode;

const USAGE: &str =
    "sim SCENARIO.toml [--seed N] [--seeds A..B] [--json] [--trace FILE] [--plot FILE.svg]";

/// Runs a gossip-chat scenario in the deterministic simulator.
#[derive(Parser)]
#[command(name = "sim", override_usage = USAGE)]
struct Args {
    /// The scenario file (see scenarios/README.md).
    #[arg(value_name = "SCENARIO.toml")]
    file: String,
    /// Run this one seed (default 0).
    #[arg(long, value_name = "N", conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run every seed in A..B (B excluded).
    #[arg(long, value_name = "A..B", value_parser = seed_range)]
    seeds: Option<Range<u64>>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Write the trace of the (single) run to FILE.
    #[arg(long, value_name = "FILE")]
    trace: Option<String>,
    /// Draw the (single) run over virtual time as an SVG to FILE: live
    /// nodes, distinct membership views, chats, latency, bytes by kind,
    /// with the faults marked.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<String>,
}

impl Args {
    fn seeds(&self) -> Range<u64> {
        match (&self.seeds, self.seed) {
            (Some(r), _) => r.clone(),
            (None, Some(n)) => n..n.saturating_add(1),
            (None, None) => 0..1,
        }
    }
}

fn seed_range(v: &str) -> Result<Range<u64>, String> {
    match v.split_once("..").map(|(a, b)| (a.parse(), b.parse())) {
        Some((Ok(a), Ok(b))) if a < b => Ok(a..b),
        _ => Err("not a range like 0..100 (start below end)".into()),
    }
}

/// The arguments, or the exit code when there is nothing to run: help is
/// printed and exits 0; a bad argument is one line on stderr and exits 2.
fn parse_args() -> Result<Args, ExitCode> {
    let args = Args::try_parse().map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        // clap's message up to its usage block, on one line.
        let text = e.to_string();
        let what = text.split("\n\n").next().unwrap_or("bad arguments");
        let what: Vec<&str> = what.split_whitespace().collect();
        let what = what.join(" ");
        eprintln!(
            "sim: {} (usage: {USAGE})",
            what.trim_start_matches("error: ")
        );
        ExitCode::from(2)
    })?;
    if args.trace.is_some() && args.seeds().end - args.seeds().start != 1 {
        eprintln!("sim: --trace takes one seed (usage: {USAGE})");
        return Err(ExitCode::from(2));
    }
    if args.plot.is_some() && args.seeds().end - args.seeds().start != 1 {
        eprintln!("sim: --plot takes one seed (usage: {USAGE})");
        return Err(ExitCode::from(2));
    }
    Ok(args)
}

/// The one place the simulator reads the wall clock: for the report's wall
/// time and the progress bar, never for the trace.
#[allow(clippy::disallowed_methods)]
fn wall() -> std::time::Instant {
    std::time::Instant::now()
}

fn run_one(
    sc: &scenario::Scenario,
    seed: u64,
    trace: Option<&str>,
    plot: Option<&str>,
) -> Result<Report, String> {
    let out: Option<Box<dyn Write>> = match trace {
        None => None,
        Some(path) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("cannot create {path}: {e}"))?,
        ))),
    };
    let start = wall();
    let bar =
        ProgressBar::with_draw_target(Some(sc.duration.as_millis()), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} virtual ms ({eta})")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} seed {seed}", sc.name));
    let mut shown = false;
    let mut progress = |t: gossip_chat::Instant| {
        if !shown && start.elapsed().as_secs_f64() > 2.0 {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            shown = true;
        }
        bar.set_position(t.as_millis());
    };
    let mut report = match plot {
        None => gossip_sim::run_with_progress(sc, seed, out, &mut progress),
        Some(path) => {
            let (report, series) = gossip_sim::run_with_series(sc, seed, out, &mut progress);
            let svg = gossip_sim::plot::svg(&series)?;
            std::fs::write(path, svg).map_err(|e| format!("cannot write {path}: {e}"))?;
            report
        }
    };
    bar.finish_and_clear();
    report.wall_ms = Some(start.elapsed().as_millis() as u64);
    Ok(report)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let seeds = args.seeds();
    let sc = match scenario::load(&args.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sim: {e}");
            return ExitCode::from(2);
        }
    };
    let single = seeds.end - seeds.start == 1;
    let mut reports = Vec::new();
    let mut failed = Vec::new();
    let stdout = std::io::stdout();
    for seed in seeds.clone() {
        let report = match run_one(&sc, seed, args.trace.as_deref(), args.plot.as_deref()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("sim: {e}");
                return ExitCode::from(2);
            }
        };
        if !report.passed {
            failed.push(seed);
        }
        if !args.json {
            let mut out = stdout.lock();
            let text = if single || !report.passed {
                report.render()
            } else {
                let w = report.wall_ms.unwrap_or(0) as f64 / 1000.0;
                format!(
                    "seed {seed}: PASS  fingerprint {}  {} events  {w:.2} s\n",
                    report.fingerprint, report.events
                )
            };
            if out.write_all(text.as_bytes()).is_err() {
                // A closed pipe is a clean stop.
                return ExitCode::SUCCESS;
            }
        }
        reports.push(report);
    }
    if args.json {
        let json = if single {
            serde_json::to_string_pretty(&reports[0])
        } else {
            serde_json::to_string_pretty(&reports)
        };
        match json {
            Ok(j) => {
                let _ = writeln!(stdout.lock(), "{j}");
            }
            Err(e) => {
                eprintln!("sim: {e}");
                return ExitCode::from(2);
            }
        }
    } else if !single {
        let n = seeds.end - seeds.start;
        println!(
            "{} of {n} seeds passed ({}..{})",
            n - failed.len() as u64,
            seeds.start,
            seeds.end
        );
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        for seed in &failed {
            eprintln!(
                "sim: seed {seed} failed; replay: cargo run --release --bin sim -- {} --seed {seed}",
                args.file
            );
        }
        ExitCode::from(1)
    }
}
