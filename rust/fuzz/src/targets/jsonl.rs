//! The JSONL spool. Input: a spool file's bytes, torn or corrupt. Invariants: the reader
//! yields exactly the non-empty whole lines, in batches of at most the batch size, whatever
//! the size, and counts one skipped line when the last one is torn; a writer that reopens
//! the file seals a torn line first; records written through rotation all read back, once.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use floopy_core::jsonl::{JsonlReader, JsonlWriter};

use super::{rng_for, Target};
use crate::rng::Rng;

pub const TARGET: Target = Target {
    name: "jsonl",
    about: "JSONL reader and writer: torn and corrupt files, batching, sealing, rotation",
    generate,
    check,
    dictionary: &[
        b"\n",
        b"\n\n",
        b"{}",
        b"{\"a\":1}",
        b"\r\n",
        b"\xff",
        b"\x00",
        b"{\"to",
    ],
    max_len: 8 * 1024,
};

fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.small(20) {
        match rng.below(6) {
            0 => {}
            1 => out.extend((0..rng.small(6)).map(|_| rng.next_u64() as u8)),
            _ => out.extend_from_slice(format!("{{\"n\":{}}}", rng.below(1000)).as_bytes()),
        }
        out.push(b'\n');
    }
    if !out.is_empty() && rng.one_in(2) {
        out.truncate(out.len() - rng.between(1, out.len().min(4)));
    }
    out
}

/// One directory per process, emptied before every input.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("floopy-fuzz-jsonl-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    })
}

pub fn remove_scratch() {
    let _ = fs::remove_dir_all(scratch());
}

fn clear(dir: &Path) {
    for entry in fs::read_dir(dir).expect("the scratch directory").flatten() {
        let _ = fs::remove_file(entry.path());
    }
}

/// The whole lines of a file without their newline, less the empty ones, and whether the
/// last line is torn.
fn expected(file: &[u8]) -> (Vec<Vec<u8>>, u64) {
    let mut lines: Vec<&[u8]> = file.split(|&byte| byte == b'\n').collect();
    let torn = lines.pop().is_some_and(|last| !last.is_empty());
    let whole = lines
        .into_iter()
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec);
    (whole.collect(), u64::from(torn))
}

fn read(path: &Path, batch_size: usize) -> (Vec<Vec<u8>>, u64) {
    let mut reader = JsonlReader::open(path, batch_size).expect("the spool opens");
    let mut records = Vec::new();
    for batch in reader.by_ref() {
        let batch = batch.expect("the spool reads");
        assert!(
            !batch.is_empty() && batch.len() <= batch_size,
            "a batch of {}",
            batch.len()
        );
        records.extend(batch);
    }
    assert!(reader.next_batch().expect("reading past the end").is_none());
    (records, reader.skipped())
}

fn check(file: &[u8]) -> bool {
    let dir = scratch();
    clear(dir);
    let path = dir.join("spool.jsonl");
    fs::write(&path, file).expect("the spool is written");
    let (lines, torn) = expected(file);
    for batch_size in [1, 2, 7, 1000] {
        assert_eq!(
            read(&path, batch_size),
            (lines.clone(), torn),
            "batch size {batch_size}"
        );
    }

    JsonlWriter::new(&path)
        .expect("a writer")
        .write(b"{\"after\":1}")
        .expect("a write after a torn line");
    let mut sealed = file.to_vec();
    if torn == 1 {
        sealed.push(b'\n');
    }
    sealed.extend_from_slice(b"{\"after\":1}\n");
    assert_eq!(
        fs::read(&path).expect("the spool"),
        sealed,
        "the torn line was not sealed"
    );

    let mut rng = rng_for(file);
    clear(dir);
    let max_bytes = rng.between(1, 64) as u64;
    // Enough generations for every record to keep its own file.
    let generations = lines.len() as u32 + 1;
    let writer = JsonlWriter::with_limits(&path, max_bytes, generations).expect("a writer");
    for chunk in lines.chunks(rng.between(1, 4)) {
        writer
            .write_many(chunk)
            .expect("records without newlines are written");
    }
    let read_back: Vec<Vec<u8>> = writer
        .files()
        .iter()
        .flat_map(|generation| {
            let (records, skipped) = read(generation, 1000);
            assert_eq!(skipped, 0, "rotation tore a line");
            records
        })
        .collect();
    assert_eq!(read_back, lines, "rotation lost or reordered records");
    torn == 0
}
