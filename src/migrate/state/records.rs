//! What the main pass writes as chunks are done (counts, dead letters, example rows, the
//! files' watermarks, the rows held for the late pass), and how they are read back.

use rusqlite::{Transaction, params};

use super::held::{HeldRow, LateCommit};
use super::writes::{add_counts, add_dead_letter, add_example};
use super::{Example, State, StateError};
use crate::counts::{DayCounts, Metric};

/// A done chunk, as written.
#[derive(Debug, Clone, Default)]
pub struct ChunkCommit {
    pub file: i64,
    pub index: u64,
    pub last_line: u64,
    pub writes: ChunkWrites,
}

/// What is written with a chunk once it is done (the main pass gathers it while the chunk's
/// events are in flight).
#[derive(Debug, Clone, Default)]
pub struct ChunkWrites {
    pub end_of_file: bool,
    pub counts: DayCounts,
    /// (line, record): dead letters in the project's one shape.
    pub dead_letters: Vec<(u64, String)>,
    /// The first row seen of a skip or refusal reason (kept when the state has none yet).
    pub examples: Vec<Example>,
    /// Rows uploaded late, held for the late pass (their events are not sent yet).
    pub held: Vec<HeldRow>,
    /// The main pass's front after this chunk (the newest event day seen).
    pub front: Option<String>,
}

impl State {
    /// Writes, in one transaction, done chunks (their counts, dead letters, held rows and
    /// watermarks, and the main pass's front) and what the late pass finished.
    pub fn commit(&mut self, chunks: &[ChunkCommit], late: &LateCommit) -> Result<(), StateError> {
        if chunks.is_empty() && late.is_empty() {
            return Ok(());
        }
        let fail = super::database_error(&self.path);
        let transaction = self.connection.transaction().map_err(fail)?;
        for chunk in chunks {
            write_chunk(&transaction, chunk).map_err(fail)?;
        }
        super::held::write_late(&transaction, late).map_err(fail)?;
        transaction.commit().map_err(fail)
    }

    /// The example rows, by outcome and reason.
    pub fn examples(&self) -> Result<Vec<Example>, StateError> {
        let mut statement = self
            .connection
            .prepare("SELECT metric, reason, file, line, row FROM migrate_examples ORDER BY metric, reason")
            .map_err(self.fail())?;
        let rows = statement
            .query_map([], |row| {
                Ok(Example {
                    metric: row.get(0)?,
                    reason: row.get(1)?,
                    file: row.get(2)?,
                    line: row.get::<_, i64>(3)? as u64,
                    row: row.get(4)?,
                })
            })
            .map_err(self.fail())?;
        rows.collect::<Result<_, _>>().map_err(self.fail())
    }

    /// Every count: (day, metric, reason) → count, the events held for the late pass
    /// ([`Metric::Held`]) counted from the held rows. A metric name this version does not know
    /// (a state written by a newer one) is left out.
    pub fn day_counts(&self) -> Result<DayCounts, StateError> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT day, metric, reason, count FROM migrate_days
                 UNION ALL
                 SELECT day, 'held', '', SUM(events) FROM migrate_held GROUP BY day",
            )
            .map_err(self.fail())?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)? as u64,
                ))
            })
            .map_err(self.fail())?;
        let mut counts = DayCounts::new();
        for row in rows {
            let (day, metric, reason, count) = row.map_err(self.fail())?;
            if let Some(metric) = Metric::parse(&metric) {
                counts.insert((day, metric, reason), count);
            }
        }
        Ok(counts)
    }

    /// Hands every dead letter, in file and line order, to `each`, one at a time (they can
    /// outgrow memory: a refused row may be megabytes). A database error comes back as an
    /// I/O error, like `each`'s own.
    pub fn for_each_dead_letter(
        &self,
        mut each: impl FnMut(&str) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let database = |source| std::io::Error::other(self.fail()(source));
        let mut statement = self
            .connection
            .prepare("SELECT record FROM migrate_dead_letters ORDER BY file_id, line, seq")
            .map_err(database)?;
        let mut rows = statement.query([]).map_err(database)?;
        while let Some(row) = rows.next().map_err(database)? {
            let record: String = row.get(0).map_err(database)?;
            each(&record)?;
        }
        Ok(())
    }
}

/// One done chunk: its watermark, counts, dead letters, examples and held rows.
fn write_chunk(transaction: &Transaction, chunk: &ChunkCommit) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "UPDATE migrate_files SET rows_done = ?2, chunks_done = ?3,
             finished = finished OR ?4 WHERE id = ?1",
        )?
        .execute(params![
            chunk.file,
            chunk.last_line as i64,
            (chunk.index + 1) as i64,
            chunk.writes.end_of_file
        ])?;
    add_counts(transaction, &chunk.writes.counts)?;
    for item in &chunk.writes.examples {
        add_example(transaction, item)?;
    }
    for (seq, (line, record)) in chunk.writes.dead_letters.iter().enumerate() {
        add_dead_letter(transaction, chunk.file, *line, seq as u64, record)?;
    }
    super::held::hold(transaction, chunk.file, &chunk.writes.held)?;
    if let Some(front) = &chunk.writes.front {
        // The newest day the main pass has seen (days compare as text: YYYY-MM-DD).
        transaction
            .prepare_cached(
                "INSERT INTO migrate_meta (key, value) VALUES ('front', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            )?
            .execute(params![front])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_add_up_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut state = State::open(dir.path()).expect("opens");
        let file = state.file("export/a.json.gz", 10, "f1").expect("file");
        assert_eq!(
            (file.rows_done, file.chunks_done, file.finished),
            (0, 0, false)
        );
        let mut counts = DayCounts::new();
        counts.insert(("2024-07-06".into(), Metric::Rows, String::new()), 3);
        counts.insert(
            (
                "2024-07-06".into(),
                Metric::Rejected,
                "bad_timestamp".into(),
            ),
            1,
        );
        let chunk = ChunkCommit {
            file: file.id,
            index: 0,
            last_line: 3,
            writes: ChunkWrites {
                end_of_file: false,
                counts: counts.clone(),
                dead_letters: vec![(2, "{\"message\":\"x\"}".into())],
                examples: vec![Example::new(
                    "rejected",
                    "bad_timestamp",
                    "export/a.json.gz",
                    2,
                    b"{\"message\":\"x\"}",
                )],
                ..ChunkWrites::default()
            },
        };
        state
            .commit(std::slice::from_ref(&chunk), &LateCommit::default())
            .expect("commit");
        // The second chunk's example of the same reason does not replace the first.
        state
            .commit(
                &[ChunkCommit {
                    index: 1,
                    last_line: 5,
                    writes: ChunkWrites {
                        end_of_file: true,
                        dead_letters: Vec::new(),
                        examples: vec![Example::new("rejected", "bad_timestamp", "b", 9, b"later")],
                        ..chunk.writes
                    },
                    ..chunk
                }],
                &LateCommit::default(),
            )
            .expect("commit");
        drop(state);
        let state = State::open(dir.path()).expect("reopens");
        let file = state.file("export/a.json.gz", 10, "f1").expect("file");
        assert_eq!(
            (file.rows_done, file.chunks_done, file.finished),
            (5, 2, true)
        );
        let counts = state.day_counts().expect("counts");
        assert_eq!(
            counts[&("2024-07-06".into(), Metric::Rows, String::new())],
            6
        );
        let mut letters = Vec::new();
        state
            .for_each_dead_letter(|record| {
                letters.push(record.to_owned());
                Ok(())
            })
            .expect("letters");
        assert_eq!(letters, ["{\"message\":\"x\"}"]);
        let examples = state.examples().expect("examples");
        assert_eq!(examples.len(), 1);
        assert_eq!(
            (examples[0].file.as_str(), examples[0].line),
            ("export/a.json.gz", 2)
        );
    }
}
