//! The fuzz targets. Each checks one part of the core against invariants that must hold for
//! every input, and panics when one does not: a panic of the core itself is a finding too.
//!
//! A check depends on its input bytes alone (anything it varies, such as where a stream is
//! split, is drawn from a generator seeded with the input's hash), so a saved input
//! reproduces its failure.

use xxhash_rust::xxh3::xxh3_64;

use crate::rng::Rng;

mod cache_key;
mod headers;
mod jsonl;
mod parse;
mod sse;

pub struct Target {
    pub name: &'static str,
    /// What the target checks, for `--list`.
    pub about: &'static str,
    /// A structure-aware input, made from scratch.
    pub generate: fn(&mut Rng) -> Vec<u8>,
    /// Runs one input; panics on a broken invariant. True when the input was accepted as
    /// valid, which makes it a good base for further mutation.
    pub check: fn(&[u8]) -> bool,
    /// Tokens that mutations insert.
    pub dictionary: &'static [&'static [u8]],
    /// The longest input worth trying.
    pub max_len: usize,
}

pub const TARGETS: &[Target] = &[
    parse::TARGET,
    headers::TARGET,
    cache_key::TARGET,
    sse::TARGET,
    jsonl::TARGET,
];

pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}

/// The generator a check uses for what it varies: the same input, the same draws.
fn rng_for(input: &[u8]) -> Rng {
    Rng::new(xxh3_64(input))
}

const JSON_DICTIONARY: &[&[u8]] = &[
    b"\"model\"",
    b"\"messages\"",
    b"\"role\"",
    b"\"content\"",
    b"\"user\"",
    b"\"stream\"",
    b"\"stream_options\"",
    b"\"include_usage\"",
    b"\"tools\"",
    b"\"functions\"",
    b"\"text\"",
    b"\"type\"",
    b"null",
    b"true",
    b"false",
    b"[]",
    b"{}",
    b"[[[[",
    b"]]]]",
    b"{\"a\":",
    b"\"\"",
    b"\\u0000",
    b"\\ud800",
    b"\\udc00",
    b"\\ud83d\\ude00",
    b"\\\"",
    b"1e400",
    b"-0.0",
    b"9007199254740993",
    b"18446744073709551616",
    b"1180591620717411303424",
    b"5e-324",
    b"1.7976931348623157e308",
    b"0.30000000000000004",
    b",",
    b":",
    b"\xc3\xa9",
    b"\xff",
];

/// Removes what targets left on disk.
pub fn cleanup() {
    jsonl::remove_scratch();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every target's committed seeds and a few hundred fresh inputs hold their invariants:
    /// the corpus doubles as a regression suite under `cargo test`.
    #[test]
    fn seeds_and_generated_inputs_hold_every_invariant() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        for target in TARGETS {
            let seeds = crate::runner::read_corpus(&corpus.join(target.name));
            assert!(!seeds.is_empty(), "{} has no seeds", target.name);
            for seed in &seeds {
                (target.check)(seed);
            }
            let mut rng = Rng::new(11);
            for _ in 0..300 {
                (target.check)(&(target.generate)(&mut rng));
            }
        }
        cleanup();
    }

    #[test]
    fn names_are_unique() {
        for (index, target) in TARGETS.iter().enumerate() {
            assert!(TARGETS[index + 1..].iter().all(|t| t.name != target.name));
            assert!(find(target.name).is_some());
        }
    }
}
