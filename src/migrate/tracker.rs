//! Which rows of each input file are durably done: the contiguous watermark.
//!
//! Rows are read in chunks (consecutive lines of one file). A chunk is *done* when every event
//! its rows produced is delivered or dead-lettered (a chunk of skipped and refused rows only is
//! done at once). Batches complete in any order, but a file's watermark only moves over a
//! contiguous run of done chunks from its start, so a row past the watermark is never counted
//! as done while one before it is not: after a crash, reading restarts just past the watermark
//! and only chunks in flight are sent again (with the same uuids).
//!
//! Pure bookkeeping, no I/O: the committer owns one and writes what [`Tracker::take_done`]
//! returns to the state database in one transaction.

use std::collections::{BTreeMap, HashMap};

/// A file of the migration, as numbered in the state database.
pub type FileId = i64;

/// What a chunk carries until it is done: its last line and whatever the committer must write
/// with it (counts, dead letters), opaque here.
#[derive(Debug)]
struct Chunk<T> {
    last_line: u64,
    /// Events not yet delivered or dead-lettered.
    pending: u64,
    payload: T,
}

#[derive(Debug)]
struct FileChunks<T> {
    /// The next chunk index whose completion moves the watermark.
    next: u64,
    chunks: BTreeMap<u64, Chunk<T>>,
}

/// Per file, the chunks in flight.
#[derive(Debug)]
pub struct Tracker<T> {
    files: HashMap<FileId, FileChunks<T>>,
}

impl<T> Default for Tracker<T> {
    fn default() -> Self {
        Tracker {
            files: HashMap::new(),
        }
    }
}

/// A chunk that is done, in file order, ready to commit.
#[derive(Debug, PartialEq, Eq)]
pub struct DoneChunk<T> {
    pub file: FileId,
    pub index: u64,
    pub last_line: u64,
    pub payload: T,
}

impl<T> Tracker<T> {
    /// Starts tracking a file whose chunks are numbered from `first_index`.
    pub fn open_file(&mut self, file: FileId, first_index: u64) {
        self.files.insert(
            file,
            FileChunks {
                next: first_index,
                chunks: BTreeMap::new(),
            },
        );
    }

    /// Registers a chunk (before any of its events can complete) with the number of events
    /// its rows produced.
    pub fn add_chunk(&mut self, file: FileId, index: u64, last_line: u64, events: u64, payload: T) {
        let chunks = self
            .files
            .get_mut(&file)
            .unwrap_or_else(|| panic!("file {file} was never opened"));
        assert!(
            index >= chunks.next && !chunks.chunks.contains_key(&index),
            "chunk {index} of file {file} registered twice"
        );
        chunks.chunks.insert(
            index,
            Chunk {
                last_line,
                pending: events,
                payload,
            },
        );
    }

    /// Records that `count` events of a chunk were delivered or dead-lettered.
    pub fn complete(&mut self, file: FileId, index: u64, count: u64) {
        let chunk = self
            .files
            .get_mut(&file)
            .and_then(|chunks| chunks.chunks.get_mut(&index))
            .unwrap_or_else(|| panic!("chunk {index} of file {file} is not in flight"));
        chunk.pending = chunk
            .pending
            .checked_sub(count)
            .unwrap_or_else(|| panic!("chunk {index} of file {file} completed too often"));
    }

    /// Mutable access to a chunk's payload while it is in flight (to add dead letters).
    pub fn payload_mut(&mut self, file: FileId, index: u64) -> Option<&mut T> {
        self.files
            .get_mut(&file)?
            .chunks
            .get_mut(&index)
            .map(|chunk| &mut chunk.payload)
    }

    /// Removes and returns every chunk that moves a watermark, in file and chunk order.
    pub fn take_done(&mut self) -> Vec<DoneChunk<T>> {
        let mut done = Vec::new();
        let mut files: Vec<&FileId> = self.files.keys().collect();
        files.sort_unstable();
        let files: Vec<FileId> = files.into_iter().copied().collect();
        for file in files {
            let chunks = self.files.get_mut(&file).expect("listed");
            while let Some(entry) = chunks.chunks.first_entry() {
                if *entry.key() != chunks.next || entry.get().pending > 0 {
                    break;
                }
                let (index, chunk) = entry.remove_entry();
                chunks.next = index + 1;
                done.push(DoneChunk {
                    file,
                    index,
                    last_line: chunk.last_line,
                    payload: chunk.payload,
                });
            }
        }
        done
    }

    /// Chunks registered and not yet taken.
    pub fn in_flight(&self) -> usize {
        self.files.values().map(|chunks| chunks.chunks.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_moves_only_over_contiguous_done_chunks() {
        let mut tracker = Tracker::default();
        tracker.open_file(1, 0);
        tracker.add_chunk(1, 0, 100, 2, "a");
        tracker.add_chunk(1, 1, 200, 1, "b");
        tracker.add_chunk(1, 2, 300, 0, "c");
        // The second chunk finishes first: nothing moves yet.
        tracker.complete(1, 1, 1);
        assert!(tracker.take_done().is_empty());
        tracker.complete(1, 0, 1);
        assert!(tracker.take_done().is_empty());
        tracker.complete(1, 0, 1);
        let done = tracker.take_done();
        assert_eq!(
            done.iter()
                .map(|chunk| (chunk.index, chunk.last_line, chunk.payload))
                .collect::<Vec<_>>(),
            [(0, 100, "a"), (1, 200, "b"), (2, 300, "c")]
        );
        assert_eq!(tracker.in_flight(), 0);
    }

    #[test]
    fn files_are_independent_and_resume_from_their_first_index() {
        let mut tracker = Tracker::default();
        tracker.open_file(1, 5);
        tracker.open_file(2, 0);
        tracker.add_chunk(1, 5, 50, 1, ());
        tracker.add_chunk(2, 0, 10, 0, ());
        let done = tracker.take_done();
        assert_eq!(
            done.iter()
                .map(|chunk| (chunk.file, chunk.index))
                .collect::<Vec<_>>(),
            [(2, 0)]
        );
        tracker.complete(1, 5, 1);
        assert_eq!(tracker.take_done()[0].last_line, 50);
    }

    #[test]
    #[should_panic(expected = "completed too often")]
    fn completing_more_events_than_a_chunk_has_is_a_bug() {
        let mut tracker = Tracker::default();
        tracker.open_file(1, 0);
        tracker.add_chunk(1, 0, 1, 1, ());
        tracker.complete(1, 0, 2);
    }
}
