//! The JSONL spool that keeps log records while the log store is unreachable (DESIGN
//! section 5): one record per line, appended, rotated through a fixed number of generations
//! when a file reaches its size cap, then read back in batches for replay.
//!
//! Durability choices:
//! - Each write hands its bytes to the OS before returning (no buffer is kept across calls),
//!   so a crash of the gateway loses nothing that a write returned from; `sync` also forces
//!   them to disk.
//! - A failed write is cut back off the file, and a torn line left by a crash is sealed with
//!   a newline when the file is reopened, so the next record always starts on its own line.
//! - A reader never touches the live file of a running writer: it takes rotated generations
//!   only, which no writer appends to. `hand_over` rotates early once the reader has taken
//!   generation 1, so records reach it without waiting for the size cap; while the reader is
//!   away, the files fill to the cap and rotate as usual, the oldest dropped and counted.
//! - A live file deleted or renamed by hand is noticed at the next `hand_over`, which starts
//!   a fresh one.
//!
//! Writers of one path in one process share a single file state behind one lock, so records
//! from concurrent writers never interleave. Several processes must not share a path.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use memchr::memchr;

use crate::{Error, Result};

mod reader;

pub use reader::JsonlReader;

pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
pub const DEFAULT_GENERATIONS: u32 = 3;
pub const DEFAULT_BATCH_SIZE: usize = 1000;

/// Appends records to `<name>.jsonl`, rotating to `<name>.jsonl.1`, `.2`, ... as it fills.
#[derive(Debug)]
pub struct JsonlWriter {
    path: PathBuf,
    limits: Limits,
    shared: Arc<SharedFile>,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_bytes: u64,
    generations: u32,
}

/// The one state of a path, shared by all its writers in the process.
#[derive(Debug)]
struct SharedFile {
    /// Canonical, so that two spellings of one path share one lock.
    path: PathBuf,
    state: Mutex<FileState>,
}

#[derive(Debug, Default)]
struct FileState {
    /// Opened lazily, at the first write after start, rotation, `close` or a replacement.
    file: Option<File>,
    size: u64,
}

impl JsonlWriter {
    pub fn new(path: impl AsRef<Path>) -> Result<Self> {
        Self::with_limits(path, DEFAULT_MAX_BYTES, DEFAULT_GENERATIONS)
    }

    /// `max_bytes` caps a file (a single batch larger than that still goes whole into a fresh
    /// file); `generations` counts the files kept, the live one included.
    pub fn with_limits(path: impl AsRef<Path>, max_bytes: u64, generations: u32) -> Result<Self> {
        if max_bytes == 0 {
            return Err(Error::invalid_field(
                "max_bytes",
                "max_bytes must be at least 1",
            ));
        }
        if generations == 0 {
            return Err(Error::invalid_field(
                "generations",
                "generations must be at least 1",
            ));
        }
        let path = std::path::absolute(path.as_ref())?;
        let canonical = canonical_file_path(&path)?;
        Ok(Self {
            path,
            limits: Limits {
                max_bytes,
                generations,
            },
            shared: shared_file(canonical),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn max_bytes(&self) -> u64 {
        self.limits.max_bytes
    }

    pub fn generations(&self) -> u32 {
        self.limits.generations
    }

    /// Appends one record and its newline. A record holding a newline, or empty, is refused.
    /// Returns how many older records rotation dropped to make room.
    pub fn write(&self, record: &[u8]) -> Result<u64> {
        let mut line = Vec::with_capacity(record.len() + 1);
        push_record(&mut line, record, || "record".to_owned())?;
        self.append(&line)
    }

    /// Appends records in one locked write; nothing is written if any record is refused.
    /// Returns how many older records rotation dropped to make room.
    pub fn write_many<R: AsRef<[u8]>>(&self, records: &[R]) -> Result<u64> {
        let size = records.iter().map(|r| r.as_ref().len() + 1).sum();
        let mut lines = Vec::with_capacity(size);
        for (position, record) in records.iter().enumerate() {
            push_record(&mut lines, record.as_ref(), || {
                format!("records.{position}")
            })?;
        }
        if lines.is_empty() {
            return Ok(0);
        }
        self.append(&lines)
    }

    /// The hand-over to a reader: when generation 1 does not exist (the reader took it, or
    /// none was made yet) and the live file holds records, rotates now, so the reader can take
    /// the records without ever touching a file a writer appends to. Returns whether it
    /// rotated. Also notices a live file deleted or renamed by hand, and starts a fresh one.
    pub fn hand_over(&self) -> Result<bool> {
        let mut state = self.lock();
        state.hand_over(&self.shared.path, self.limits)
    }

    /// Writes reach the OS as they are made; this flushes what a platform may still hold.
    pub fn flush(&self) -> Result<()> {
        match self.lock().file.as_mut() {
            Some(file) => Ok(file.flush()?),
            None => Ok(()),
        }
    }

    /// Forces the written records to disk.
    pub fn sync(&self) -> Result<()> {
        match self.lock().file.as_ref() {
            Some(file) => Ok(file.sync_data()?),
            None => Ok(()),
        }
    }

    /// Releases the file handle (for every writer of the path); a later write reopens it.
    pub fn close(&self) {
        self.lock().file = None;
    }

    /// The generations that exist, oldest first: the order to replay them in.
    pub fn files(&self) -> Vec<PathBuf> {
        let _rotation = self.lock();
        (0..self.limits.generations)
            .rev()
            .map(|generation| generation_path(&self.path, generation))
            .filter(|path| path.exists())
            .collect()
    }

    fn append(&self, lines: &[u8]) -> Result<u64> {
        let mut state = self.lock();
        state.append(&self.shared.path, lines, self.limits)
    }

    fn lock(&self) -> MutexGuard<'_, FileState> {
        // A panic while holding the lock leaves the state usable: the size is re-read at the
        // next open and a torn line is sealed then.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl FileState {
    /// Appends `lines`; returns how many records rotation dropped to make room.
    fn append(&mut self, path: &Path, lines: &[u8], limits: Limits) -> Result<u64> {
        self.open(path)?;
        let mut dropped = 0;
        if self.size > 0 && self.size + lines.len() as u64 > limits.max_bytes {
            dropped = self.rotate(path, limits.generations)?;
            self.open(path)?;
        }
        let file = self.file.as_mut().expect("opened above");
        if let Err(err) = file.write_all(lines) {
            // Cut the partial batch off so the next record starts on a line of its own.
            let _ = file.set_len(self.size);
            return Err(err.into());
        }
        self.size += lines.len() as u64;
        Ok(dropped)
    }

    /// Rotates early when the reader has taken generation 1 and the live file holds records,
    /// so they can be taken too; first notices a live file deleted or renamed by hand.
    fn hand_over(&mut self, path: &Path, limits: Limits) -> Result<bool> {
        if !self.still_named(path)? {
            self.file = None;
            self.size = 0;
            return Ok(false);
        }
        if self.size == 0 || limits.generations < 2 || generation_path(path, 1).exists() {
            return Ok(false);
        }
        self.rotate(path, limits.generations)?;
        Ok(true)
    }

    fn open(&mut self, path: &Path) -> Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut size = file.metadata()?.len();
        if size > 0 && !ends_with_newline(&mut file)? {
            file.write_all(b"\n")?;
            size += 1;
        }
        self.file = Some(file);
        self.size = size;
        Ok(())
    }

    /// Whether `path` still names the open file (it may have been deleted or renamed by
    /// hand).
    fn still_named(&self, path: &Path) -> Result<bool> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        match fs::metadata(path) {
            Ok(on_disk) => Ok(same_file(&file.metadata()?, &on_disk)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// `.jsonl.{g-1}` is dropped, each `.jsonl.{k}` becomes `.jsonl.{k+1}`, `.jsonl` becomes
    /// `.jsonl.1`; the next open starts a fresh `.jsonl`.
    fn rotate(&mut self, path: &Path, generations: u32) -> Result<u64> {
        self.file = None;
        self.size = 0;
        let oldest = generation_path(path, generations - 1);
        let dropped = records_in(&oldest)?;
        remove_if_exists(&oldest)?;
        for generation in (0..generations - 1).rev() {
            let from = generation_path(path, generation);
            rename_if_exists(&from, &generation_path(path, generation + 1))?;
        }
        Ok(dropped)
    }
}

fn push_record(lines: &mut Vec<u8>, record: &[u8], param: impl FnOnce() -> String) -> Result<()> {
    if record.is_empty() {
        return Err(Error::invalid_field(
            param(),
            "a JSONL record must not be empty",
        ));
    }
    if memchr(b'\n', record).is_some() {
        return Err(Error::invalid_field(
            param(),
            "a JSONL record must not contain a newline",
        ));
    }
    lines.extend_from_slice(record);
    lines.push(b'\n');
    Ok(())
}

/// `<path>` for generation 0, `<path>.<generation>` after it.
fn generation_path(path: &Path, generation: u32) -> PathBuf {
    if generation == 0 {
        return path.to_path_buf();
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{generation}"));
    PathBuf::from(name)
}

/// Creates the parent directories, then resolves them; the file itself may not exist yet.
fn canonical_file_path(path: &Path) -> Result<PathBuf> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Error::invalid_field(
            "path",
            "the JSONL path must name a file",
        ));
    };
    fs::create_dir_all(parent)?;
    Ok(fs::canonicalize(parent)?.join(name))
}

/// The process-wide registry that makes writers of one path share one file state.
fn shared_file(path: PathBuf) -> Arc<SharedFile> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Weak<SharedFile>>>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(Mutex::default);
    let mut registry = registry.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(shared) = registry.get(&path).and_then(Weak::upgrade) {
        return shared;
    }
    registry.retain(|_, shared| shared.strong_count() > 0);
    let shared = Arc::new(SharedFile {
        path: path.clone(),
        state: Mutex::default(),
    });
    registry.insert(path, Arc::downgrade(&shared));
    shared
}

fn ends_with_newline(file: &mut File) -> io::Result<bool> {
    let mut last = [0u8; 1];
    file.seek(SeekFrom::End(-1))?;
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &fs::Metadata, _: &fs::Metadata) -> bool {
    // Where file identity is not at hand, only a deleted file is noticed.
    true
}

/// The records (lines) in a file; zero if there is no such file.
fn records_in(path: &Path) -> io::Result<u64> {
    match fs::read(path) {
        Ok(data) => Ok(memchr::memchr_iter(b'\n', &data).count() as u64),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(err),
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::thread;

    use super::*;

    /// A fresh directory per test, removed when dropped.
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new() -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("floopy-jsonl-{}-{unique}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        pub(crate) fn file(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    pub(crate) fn read_all(path: &Path) -> (Vec<Vec<u8>>, u64) {
        let mut reader = JsonlReader::open(path, 1000).unwrap();
        let records = reader.by_ref().flat_map(Result::unwrap).collect();
        (records, reader.skipped())
    }

    fn record(n: usize) -> Vec<u8> {
        format!("{{\"n\":{n:04}}}").into_bytes()
    }

    #[test]
    fn records_are_appended_one_per_line() {
        let dir = TempDir::new();
        let path = dir.file("requests.jsonl");
        let writer = JsonlWriter::new(&path).unwrap();
        writer.write(b"{\"a\":1}").unwrap();
        writer
            .write_many(&[b"{\"b\":2}".as_slice(), b"{\"c\":3}"])
            .unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"
        );
    }

    #[test]
    fn parent_directories_are_created() {
        let dir = TempDir::new();
        let path = dir.file("deep/er/spool.jsonl");
        JsonlWriter::new(&path).unwrap().write(b"{}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}\n");
    }

    #[test]
    fn records_with_newlines_or_empty_are_refused_whole() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        let writer = JsonlWriter::new(&path).unwrap();
        let err = writer.write(b"{\"a\":\n1}").unwrap_err();
        assert_eq!(err.param(), Some("record"));
        let err = writer.write_many(&[b"{}".as_slice(), b""]).unwrap_err();
        assert_eq!(err.param(), Some("records.1"));
        assert!(!path.exists() || fs::read(&path).unwrap().is_empty());
    }

    #[test]
    fn invalid_limits_are_refused() {
        let dir = TempDir::new();
        let err = JsonlWriter::with_limits(dir.file("x.jsonl"), 0, 3).unwrap_err();
        assert_eq!(err.param(), Some("max_bytes"));
        let err = JsonlWriter::with_limits(dir.file("x.jsonl"), 10, 0).unwrap_err();
        assert_eq!(err.param(), Some("generations"));
    }

    #[test]
    fn rotation_keeps_exactly_three_generations_and_drops_the_oldest() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        // Each record line is 11 bytes; 25 bytes hold two lines.
        let writer = JsonlWriter::with_limits(&path, 25, 3).unwrap();
        for n in 0..9 {
            writer.write(&record(n)).unwrap();
        }
        let names: Vec<_> = writer
            .files()
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["x.jsonl.2", "x.jsonl.1", "x.jsonl"]);
        assert!(!dir.file("x.jsonl.3").exists());
        let contents: Vec<_> = writer.files().iter().map(|p| read_all(p).0).collect();
        assert_eq!(
            contents,
            [
                vec![record(4), record(5)],
                vec![record(6), record(7)],
                vec![record(8)]
            ]
        );
    }

    #[test]
    fn a_single_generation_starts_over() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        let writer = JsonlWriter::with_limits(&path, 12, 1).unwrap();
        writer.write(&record(1)).unwrap();
        writer.write(&record(2)).unwrap();
        assert_eq!(writer.files(), vec![path.clone()]);
        assert_eq!(read_all(&path).0, [record(2)]);
    }

    #[test]
    fn a_batch_larger_than_the_cap_goes_whole_into_a_fresh_file() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        let writer = JsonlWriter::with_limits(&path, 15, 3).unwrap();
        writer.write(&record(0)).unwrap();
        writer
            .write_many(&[record(1), record(2), record(3)])
            .unwrap();
        assert_eq!(read_all(&dir.file("x.jsonl.1")).0, [record(0)]);
        assert_eq!(read_all(&path).0, [record(1), record(2), record(3)]);
    }

    #[test]
    fn existing_size_counts_towards_the_cap() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        fs::write(&path, b"{\"old\":true}\n").unwrap();
        let writer = JsonlWriter::with_limits(&path, 20, 3).unwrap();
        writer.write(&record(1)).unwrap();
        assert_eq!(
            fs::read(dir.file("x.jsonl.1")).unwrap(),
            b"{\"old\":true}\n"
        );
    }

    #[test]
    fn a_torn_line_left_by_a_crash_is_sealed_before_appending() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        fs::write(&path, b"{\"a\":1}\n{\"tor").unwrap();
        JsonlWriter::new(&path)
            .unwrap()
            .write(b"{\"b\":2}")
            .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\"a\":1}\n{\"tor\n{\"b\":2}\n");
    }

    #[test]
    fn a_file_deleted_under_the_writer_is_recreated() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        let writer = JsonlWriter::new(&path).unwrap();
        writer.write(b"{\"a\":1}").unwrap();
        fs::remove_file(&path).unwrap();
        assert!(!writer.hand_over().unwrap(), "noticed at the hand-over");
        writer.write(b"{\"b\":2}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\"b\":2}\n");
    }

    #[test]
    fn hand_over_rotates_only_once_the_reader_took_generation_one() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        let first = dir.file("x.jsonl.1");
        let writer = JsonlWriter::new(&path).unwrap();
        assert!(
            !writer.hand_over().unwrap(),
            "nothing written: nothing to hand over"
        );
        writer.write(b"{\"a\":1}").unwrap();
        assert!(writer.hand_over().unwrap());
        assert_eq!(fs::read(&first).unwrap(), b"{\"a\":1}\n");
        writer.write(b"{\"b\":2}").unwrap();
        assert!(!writer.hand_over().unwrap(), "generation 1 not taken yet");
        fs::rename(&first, dir.file("taken.jsonl")).unwrap();
        assert!(writer.hand_over().unwrap());
        assert_eq!(fs::read(&first).unwrap(), b"{\"b\":2}\n");
        assert!(!path.exists(), "the next write starts a fresh file");
    }

    #[test]
    fn rotation_counts_the_records_it_drops() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        let writer = JsonlWriter::with_limits(&path, 8, 2).unwrap();
        assert_eq!(writer.write(b"{\"a\":1}").unwrap(), 0);
        assert_eq!(writer.write(b"{\"b\":2}").unwrap(), 0, "a into .1");
        assert_eq!(
            writer.write(b"{\"c\":3}").unwrap(),
            1,
            "a dropped, b into .1"
        );
    }

    #[test]
    fn close_releases_the_handle_and_writing_reopens() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        let writer = JsonlWriter::new(&path).unwrap();
        writer.write(b"1").unwrap();
        writer.close();
        writer.write(b"2").unwrap();
        writer.flush().unwrap();
        writer.sync().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"1\n2\n");
    }

    #[test]
    fn writers_of_one_path_share_one_state() {
        let dir = TempDir::new();
        let a = JsonlWriter::new(dir.file("x.jsonl")).unwrap();
        let b = JsonlWriter::new(dir.0.join("sub/../x.jsonl")).unwrap();
        assert!(Arc::ptr_eq(&a.shared, &b.shared));
        let c = JsonlWriter::new(dir.file("y.jsonl")).unwrap();
        assert!(!Arc::ptr_eq(&a.shared, &c.shared));
    }

    #[test]
    fn concurrent_threads_through_two_writers_write_whole_lines() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        let writers = [
            JsonlWriter::new(&path).unwrap(),
            JsonlWriter::new(&path).unwrap(),
        ];
        let (threads, per_thread) = (8, 250);
        thread::scope(|scope| {
            for t in 0..threads {
                let writer = &writers[t % 2];
                scope.spawn(move || {
                    for n in 0..per_thread {
                        let line = format!(
                            "{{\"thread\":{t},\"n\":{n},\"pad\":\"{}\"}}",
                            "x".repeat(n % 50)
                        );
                        if n % 10 == 0 {
                            writer
                                .write_many(&[line.as_bytes(), b"{\"batch\":true}"])
                                .unwrap();
                        } else {
                            writer.write(line.as_bytes()).unwrap();
                        }
                    }
                });
            }
        });
        let (records, skipped) = read_all(&path);
        assert_eq!(skipped, 0);
        assert_eq!(records.len(), threads * (per_thread + per_thread / 10));
        for line in &records {
            let text = std::str::from_utf8(line).unwrap();
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "torn line {text}"
            );
        }
    }

    #[test]
    fn concurrent_rotation_loses_and_tears_nothing_while_generations_last() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        let writers = [
            JsonlWriter::with_limits(&path, 200, 1000).unwrap(),
            JsonlWriter::with_limits(&path, 200, 1000).unwrap(),
        ];
        thread::scope(|scope| {
            for t in 0..4 {
                let writer = &writers[t % 2];
                scope.spawn(move || {
                    for n in 0..100 {
                        writer.write(&record(t * 100 + n)).unwrap();
                    }
                });
            }
        });
        let mut all: Vec<_> = writers[0]
            .files()
            .iter()
            .flat_map(|p| read_all(p).0)
            .collect();
        all.sort();
        assert_eq!(all, (0..400).map(record).collect::<Vec<_>>());
    }
}
