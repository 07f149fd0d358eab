//! `sim SCENARIO.toml [--seed N] [--seeds A..B] [--json] [--trace FILE]`
//!
//! Exit 0 when every check holds, 1 when one fails (the replay command is
//! printed), 2 when the arguments or the scenario file are invalid.

use gossip_sim::{report::Report, scenario};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "usage: sim SCENARIO.toml [--seed N] [--seeds A..B] [--json] [--trace FILE]";

struct Args {
    file: String,
    seeds: std::ops::Range<u64>,
    json: bool,
    trace: Option<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut file = None;
    let mut seeds = None;
    let mut json = false;
    let mut trace = None;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seed" => {
                let v = it.next().ok_or("--seed needs a number")?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("--seed {v:?} is not a number"))?;
                seeds = Some(n..n + 1);
            }
            "--seeds" => {
                let v = it.next().ok_or("--seeds needs a range like 0..100")?;
                let (a, b) = v
                    .split_once("..")
                    .ok_or_else(|| format!("--seeds {v:?} is not a range like 0..100"))?;
                let (a, b): (u64, u64) = match (a.parse(), b.parse()) {
                    (Ok(a), Ok(b)) if a < b => (a, b),
                    _ => return Err(format!("--seeds {v:?} is not a range like 0..100")),
                };
                seeds = Some(a..b);
            }
            "--json" => json = true,
            "--trace" => trace = Some(it.next().ok_or("--trace needs a file")?),
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s if file.is_none() => file = Some(s.to_string()),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    let seeds = seeds.unwrap_or(0..1);
    if trace.is_some() && seeds.end - seeds.start != 1 {
        return Err("--trace takes one seed".into());
    }
    Ok(Args {
        file: file.ok_or("no scenario file given")?,
        seeds,
        json,
        trace,
    })
}

/// The one place the simulator reads the wall clock: for the report's wall
/// time and the progress bar, never for the trace.
#[allow(clippy::disallowed_methods)]
fn wall() -> std::time::Instant {
    std::time::Instant::now()
}

fn run_one(sc: &scenario::Scenario, seed: u64, trace: Option<&str>) -> Result<Report, String> {
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
    let mut report = gossip_sim::run_with_progress(sc, seed, out, &mut progress);
    bar.finish_and_clear();
    report.wall_ms = Some(start.elapsed().as_millis() as u64);
    Ok(report)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if e.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sc = match scenario::load(&args.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sim: {e}");
            return ExitCode::from(2);
        }
    };
    let single = args.seeds.end - args.seeds.start == 1;
    let mut reports = Vec::new();
    let mut failed = Vec::new();
    let stdout = std::io::stdout();
    for seed in args.seeds.clone() {
        let report = match run_one(&sc, seed, args.trace.as_deref()) {
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
        let n = args.seeds.end - args.seeds.start;
        println!(
            "{} of {n} seeds passed ({}..{})",
            n - failed.len() as u64,
            args.seeds.start,
            args.seeds.end
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
