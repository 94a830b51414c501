//! Reading the spool back for replay.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use crate::{Error, Result};

/// Reads a JSONL file back in batches of whole lines (without their newline). A torn last
/// line, the trace of a crash mid-write or of a write still in progress, is skipped and
/// counted; blank lines carry no record and are passed over.
#[derive(Debug)]
pub struct JsonlReader {
    lines: BufReader<File>,
    batch_size: usize,
    skipped: u64,
    finished: bool,
    /// Bytes of the file read through the last complete line returned (or passed over).
    position: u64,
}

impl JsonlReader {
    pub fn open(path: impl AsRef<Path>, batch_size: usize) -> Result<Self> {
        Self::open_at(path, batch_size, 0)
    }

    /// Starts reading at byte `offset`: a position returned earlier by `position`, where a
    /// reader that stopped (or crashed) after storing it goes on from.
    pub fn open_at(path: impl AsRef<Path>, batch_size: usize, offset: u64) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::invalid_field(
                "batch_size",
                "batch_size must be at least 1",
            ));
        }
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Self {
            lines: BufReader::new(file),
            batch_size,
            skipped: 0,
            finished: false,
            position: offset,
        })
    }

    /// The byte offset just past the last complete line read: once the records returned so
    /// far are safely stored, reading again from here (`open_at`) yields only the rest.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Torn lines skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The next batch of up to `batch_size` records; `None` once the file is read.
    pub fn next_batch(&mut self) -> Result<Option<Vec<Vec<u8>>>> {
        let mut batch = Vec::new();
        while !self.finished && batch.len() < self.batch_size {
            match self.next_line()? {
                Some(line) if line.is_empty() => {}
                Some(line) => batch.push(line),
                None => self.finished = true,
            }
        }
        Ok((!batch.is_empty()).then_some(batch))
    }

    fn next_line(&mut self) -> Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        self.lines.read_until(b'\n', &mut line)?;
        if line.last() == Some(&b'\n') {
            self.position += line.len() as u64;
            line.pop();
            return Ok(Some(line));
        }
        if !line.is_empty() {
            self.skipped += 1;
        }
        Ok(None)
    }
}

impl Iterator for JsonlReader {
    type Item = Result<Vec<Vec<u8>>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::jsonl::tests::{read_all, TempDir};

    #[test]
    fn reader_yields_batches_and_skips_a_torn_last_line() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        fs::write(&path, b"1\n2\n\n3\n4\n5\n{\"torn").unwrap();
        let mut reader = JsonlReader::open(&path, 2).unwrap();
        let batches: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
        assert_eq!(
            batches,
            [
                vec![b"1".to_vec(), b"2".to_vec()],
                vec![b"3".to_vec(), b"4".to_vec()],
                vec![b"5".to_vec()]
            ]
        );
        assert_eq!(reader.skipped(), 1);
        assert!(reader.next_batch().unwrap().is_none());
    }

    #[test]
    fn a_torn_last_line_of_one_byte_is_skipped_and_counted() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        fs::write(&path, b"1\n{").unwrap();
        assert_eq!(read_all(&path), (vec![b"1".to_vec()], 1));
        fs::write(&path, b"{").unwrap();
        assert_eq!(read_all(&path), (vec![], 1));
        fs::write(&path, b"\n\n}").unwrap();
        assert_eq!(read_all(&path), (vec![], 1));
    }

    #[test]
    fn a_reader_opened_at_a_stored_position_yields_only_the_rest() {
        let dir = TempDir::new();
        let path = dir.file("p.jsonl");
        fs::write(&path, b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n{\"d\"").unwrap();
        let mut reader = JsonlReader::open(&path, 2).unwrap();
        assert_eq!(reader.next_batch().unwrap().unwrap().len(), 2);
        let position = reader.position();
        assert_eq!(position, 16);
        let mut rest = JsonlReader::open_at(&path, 2, position).unwrap();
        assert_eq!(
            rest.next_batch().unwrap().unwrap(),
            vec![b"{\"c\":3}".to_vec()]
        );
        assert_eq!(rest.next_batch().unwrap(), None);
        assert_eq!(rest.position(), 24, "a torn line is not read past");
        assert_eq!(rest.skipped(), 1);
    }

    #[test]
    fn reader_of_a_whole_file_skips_nothing() {
        let dir = TempDir::new();
        let path = dir.file("x.jsonl");
        fs::write(&path, b"1\n2\n").unwrap();
        assert_eq!(read_all(&path), (vec![b"1".to_vec(), b"2".to_vec()], 0));
        fs::write(&path, b"").unwrap();
        assert_eq!(read_all(&path), (vec![], 0));
    }

    #[test]
    fn reader_refuses_a_zero_batch_and_a_missing_file() {
        let dir = TempDir::new();
        assert_eq!(
            JsonlReader::open(dir.file("x"), 0).unwrap_err().param(),
            Some("batch_size")
        );
        assert!(matches!(
            JsonlReader::open(dir.file("missing"), 1),
            Err(Error::Io(_))
        ));
    }
}
