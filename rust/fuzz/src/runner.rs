//! The fuzzing loop of one target: fresh structure-aware inputs and mutations of a pool
//! (the seed corpus, then every accepted input), each run under `catch_unwind`. A failing
//! input is shrunk, saved to a file and reported with the command that replays it.

use std::cell::RefCell;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use xxhash_rust::xxh3::xxh3_64;

use crate::mutate::mutate;
use crate::rng::Rng;
use crate::targets::Target;

/// Inputs kept for mutation; past it, accepted inputs replace random ones.
const POOL_SIZE: usize = 1024;
/// Time spent shrinking one failing input.
const SHRINK_TIME: Duration = Duration::from_secs(5);

pub struct Budget {
    pub time: Option<Duration>,
    pub iterations: Option<u64>,
}

pub struct Report {
    pub iterations: u64,
    pub accepted: u64,
    pub pool: usize,
    pub elapsed: Duration,
    pub crashes: Vec<PathBuf>,
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics during fuzzing are recorded for the report instead of printed.
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".to_owned());
            let location = info
                .location()
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(format!("{message}{location}")));
        }));
    });
}

/// Runs one input: `Ok(accepted)`, or the panic's message.
pub fn run_one(target: &Target, input: &[u8]) -> Result<bool, String> {
    quiet_panics();
    panic::catch_unwind(AssertUnwindSafe(|| (target.check)(input))).map_err(|_| {
        LAST_PANIC
            .with(|last| last.borrow_mut().take())
            .unwrap_or_default()
    })
}

pub fn fuzz(target: &Target, seed: u64, budget: &Budget, corpus: &Path, crashes: &Path) -> Report {
    let started = Instant::now();
    let mut rng = Rng::new(seed ^ xxh3_64(target.name.as_bytes()));
    let mut pool = read_corpus(corpus);
    pool.iter_mut()
        .for_each(|input| input.truncate(target.max_len));
    let mut report = Report {
        iterations: 0,
        accepted: 0,
        pool: 0,
        elapsed: Duration::ZERO,
        crashes: Vec::new(),
    };
    loop {
        if budget
            .iterations
            .is_some_and(|limit| report.iterations >= limit)
        {
            break;
        }
        let out_of_time = budget.time.is_some_and(|time| started.elapsed() >= time);
        if report.iterations % 16 == 0 && out_of_time {
            break;
        }
        let input = next_input(target, &mut rng, &pool);
        report.iterations += 1;
        match run_one(target, &input) {
            Ok(false) => {}
            Ok(true) => {
                report.accepted += 1;
                if pool.len() < POOL_SIZE {
                    pool.push(input);
                } else {
                    let slot = rng.below(POOL_SIZE);
                    pool[slot] = input;
                }
            }
            Err(message) => {
                let path = save_crash(target, &input, &message, crashes);
                report.crashes.push(path);
                if report.crashes.len() >= 3 {
                    break;
                }
            }
        }
    }
    report.pool = pool.len();
    report.elapsed = started.elapsed();
    report
}

fn next_input(target: &Target, rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut input = if pool.is_empty() || rng.one_in(4) {
        (target.generate)(rng)
    } else {
        let mut input = pool[rng.below(pool.len())].clone();
        mutate(&mut input, rng, target.dictionary, pool);
        input
    };
    input.truncate(target.max_len);
    input
}

/// Shrinks the input, saves it as `<target>-<hash>.bin` and prints how to replay it.
fn save_crash(target: &Target, input: &[u8], message: &str, crashes: &Path) -> PathBuf {
    let small = shrink(target, input);
    let message = run_one(target, &small)
        .err()
        .unwrap_or_else(|| message.to_owned());
    let path = crashes.join(format!("{}-{:016x}.bin", target.name, xxh3_64(&small)));
    fs::create_dir_all(crashes).expect("the crash directory can be created");
    fs::write(&path, &small).expect("the failing input can be saved");
    eprintln!("\n{} FAILED: {message}", target.name);
    eprintln!(
        "  input ({} bytes, shrunk from {}): {}",
        small.len(),
        input.len(),
        path.display()
    );
    eprintln!(
        "  replay: make fuzz-repro TARGET={} FILE={}",
        target.name,
        path.display()
    );
    path
}

/// Drops ever smaller pieces of the input while it still fails.
fn shrink(target: &Target, input: &[u8]) -> Vec<u8> {
    let started = Instant::now();
    let mut best = input.to_vec();
    let mut piece = best.len().div_ceil(2);
    while piece > 0 && started.elapsed() < SHRINK_TIME {
        let mut at = 0;
        while at < best.len() && started.elapsed() < SHRINK_TIME {
            let mut candidate = best.clone();
            candidate.drain(at..(at + piece).min(best.len()));
            if run_one(target, &candidate).is_err() {
                best = candidate;
            } else {
                at += piece;
            }
        }
        piece /= 2;
    }
    best
}

/// The files of a corpus directory, in name order; none when it does not exist.
pub fn read_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    paths.retain(|path| path.is_file());
    paths.sort();
    paths
        .iter()
        .filter_map(|path| fs::read(path).ok())
        .collect()
}
