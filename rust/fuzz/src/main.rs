//! `floopy-fuzz`: fuzzes the native core on the stable toolchain. See README.md.
//!
//! ```text
//! floopy-fuzz [--seconds N] [--iterations N] [--seed N] [TARGET...]   fuzz (all targets by default)
//! floopy-fuzz --repro TARGET FILE                                     replay one saved input
//! floopy-fuzz --list                                                  list the targets
//! ```
//! `--seconds` is the total time, shared equally by the targets. A run is determined by its
//! seed: `--seed S --iterations N` replays the first N inputs of a run exactly.

mod gen;
mod mutate;
mod rng;
mod runner;
mod targets;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runner::Budget;
use targets::{Target, TARGETS};

struct Args {
    seconds: Option<f64>,
    iterations: Option<u64>,
    seed: Option<u64>,
    targets: Vec<&'static Target>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--list") => {
            for target in TARGETS {
                println!("{:<10} {}", target.name, target.about);
            }
            ExitCode::SUCCESS
        }
        Some("--repro") => match args.as_slice() {
            [_, name, file] => repro(name, Path::new(file)),
            _ => usage("--repro takes a target and a file"),
        },
        _ => match parse_args(&args) {
            Ok(args) => fuzz(args),
            Err(message) => usage(&message),
        },
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("floopy-fuzz: {message}");
    eprintln!("usage: floopy-fuzz [--seconds N] [--iterations N] [--seed N] [TARGET...]");
    eprintln!("       floopy-fuzz --repro TARGET FILE | --list");
    ExitCode::from(2)
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args {
        seconds: None,
        iterations: None,
        seed: None,
        targets: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value"))
                .cloned()
        };
        let bad = |name: &str| format!("{name} needs a number");
        match arg.as_str() {
            "--seconds" => parsed.seconds = Some(value(arg)?.parse().map_err(|_| bad(arg))?),
            "--iterations" => parsed.iterations = Some(value(arg)?.parse().map_err(|_| bad(arg))?),
            "--seed" => parsed.seed = Some(value(arg)?.parse().map_err(|_| bad(arg))?),
            name => parsed
                .targets
                .push(targets::find(name).ok_or_else(|| format!("no target named {name:?}"))?),
        }
    }
    if parsed.targets.is_empty() {
        parsed.targets = TARGETS.iter().collect();
    }
    if parsed.seconds.is_none() && parsed.iterations.is_none() {
        parsed.seconds = Some(30.0);
    }
    Ok(parsed)
}

fn fuzz_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/fuzz-crashes` of the workspace, beside the build output, which git ignores.
fn crash_dir() -> PathBuf {
    let workspace = fuzz_dir().ancestors().nth(2).unwrap_or(fuzz_dir());
    workspace.join("target").join("fuzz-crashes")
}

fn fuzz(args: Args) -> ExitCode {
    let seed = args.seed.unwrap_or_else(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.as_nanos() as u64 % 1_000_000_000_000
    });
    let per_target = args
        .seconds
        .map(|seconds| Duration::from_secs_f64(seconds / args.targets.len() as f64));
    let budget = Budget {
        time: per_target,
        iterations: args.iterations,
    };
    let crashes = crash_dir();
    println!("floopy-fuzz: seed {seed}, {} target(s)", args.targets.len());
    let mut failed = 0;
    for target in &args.targets {
        let corpus = fuzz_dir().join("corpus").join(target.name);
        let report = runner::fuzz(target, seed, &budget, &corpus, &crashes);
        let rate = report.iterations as f64 / report.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{:<10} {:>10} iterations in {:>6.1} s ({:>7.0}/s), {:>9} accepted, pool {:>4}, {} failing",
            target.name,
            report.iterations,
            report.elapsed.as_secs_f64(),
            rate,
            report.accepted,
            report.pool,
            report.crashes.len()
        );
        failed += usize::from(!report.crashes.is_empty());
    }
    targets::cleanup();
    println!(
        "fuzz: {} passed, {failed} failed",
        args.targets.len() - failed
    );
    if failed > 0 {
        println!("replay a run: floopy-fuzz --seed {seed} --iterations N TARGET");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn repro(name: &str, file: &Path) -> ExitCode {
    let Some(target) = targets::find(name) else {
        return usage(&format!("no target named {name:?}"));
    };
    let input = match std::fs::read(file) {
        Ok(input) => input,
        Err(err) => return usage(&format!("cannot read {}: {err}", file.display())),
    };
    let outcome = runner::run_one(target, &input);
    targets::cleanup();
    match outcome {
        Ok(accepted) => {
            println!(
                "{name}: passes ({} bytes, accepted: {accepted})",
                input.len()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            println!("{name}: FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}
