//! Rows uploaded late, held for the late pass (see `migrate::pipeline::days`).
//!
//! A held row is written with the chunk it belongs to, in the transaction that moves the
//! file's watermark past it: a crash before leaves the row to be read again, a crash after
//! leaves it held, never both. The late pass reads the held rows day by day, oldest first, and
//! deletes each in the transaction that records its delivery; a crash in between sends it
//! again with the same uuids, as the main pass does with a chunk in flight.
//!
//! What is kept is what the late pass needs and nothing to recompute: the row (for a dead
//! letter if PostHog refuses an event) and its events as mapped, deflated (compact JSON
//! compresses several times over). The state grows by about that while late rows wait.

use std::io::{Read, Write};
use std::sync::Arc;

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use rusqlite::{OptionalExtension, Transaction, params};

use super::writes::{add_counts, add_dead_letter, add_example};
use super::{SourceKey, State, StateError};
use crate::counts::DayCounts;

use super::Example;

/// A row the main pass holds back: its day, line, the row and its events.
#[derive(Debug, Clone)]
pub struct HeldRow {
    pub day: String,
    pub line: u64,
    pub row: Arc<Vec<u8>>,
    pub events: Vec<String>,
}

/// A held row as the late pass reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateRow {
    pub id: i64,
    pub day: String,
    pub file: i64,
    /// The file's name, for dead letters.
    pub name: String,
    pub line: u64,
    pub row: Vec<u8>,
    pub events: Vec<String>,
}

/// Where a page of held rows ends: the next page begins after this (day, file, line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateCursor {
    day: String,
    file: i64,
    line: u64,
}

impl LateRow {
    /// The place of this row in the late pass's order.
    pub fn cursor(&self) -> LateCursor {
        LateCursor {
            day: self.day.clone(),
            file: self.file,
            line: self.line,
        }
    }
}

/// What the late pass finished: held rows delivered (or their events dead-lettered).
#[derive(Debug, Clone, Default)]
pub struct LateCommit {
    /// The held rows that are done.
    pub done: Vec<i64>,
    /// Their events delivered and dead-lettered, by day.
    pub counts: DayCounts,
    /// (file, line, seq, record) of the events PostHog refused.
    pub dead_letters: Vec<(i64, u64, u64, String)>,
    pub examples: Vec<Example>,
}

impl LateCommit {
    pub fn is_empty(&self) -> bool {
        self.done.is_empty() && self.counts.is_empty() && self.dead_letters.is_empty()
    }
}

/// Holds `rows` of `file` (a row held already stays as it is).
pub(super) fn hold(transaction: &Transaction, file: i64, rows: &[HeldRow]) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = transaction.prepare_cached(
        "INSERT OR IGNORE INTO migrate_held (day, file_id, line, events, payload)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for row in rows {
        insert.execute(params![
            row.day,
            file,
            row.line as i64,
            row.events.len() as i64,
            encode(&row.row, &row.events)
        ])?;
    }
    Ok(())
}

/// Records what the late pass finished and lets its rows go.
pub(super) fn write_late(transaction: &Transaction, late: &LateCommit) -> rusqlite::Result<()> {
    if late.is_empty() {
        return Ok(());
    }
    add_counts(transaction, &late.counts)?;
    for (file, line, seq, record) in &late.dead_letters {
        add_dead_letter(transaction, *file, *line, *seq, record)?;
    }
    for example in &late.examples {
        add_example(transaction, example)?;
    }
    let mut delete = transaction.prepare_cached("DELETE FROM migrate_held WHERE id = ?1")?;
    for id in &late.done {
        delete.execute(params![id])?;
    }
    Ok(())
}

impl State {
    /// The newest event day the main pass has seen, if it has seen one.
    pub fn front(&self) -> Result<Option<String>, StateError> {
        self.connection
            .query_row(
                "SELECT value FROM migrate_meta WHERE key = 'front'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.fail())
    }

    /// Up to `limit` held rows after `after`, day by day, oldest first; within a day in the
    /// order of their files (the state numbers files in the order a migration first read
    /// them: export order) and lines.
    pub fn late_rows(
        &self,
        after: Option<&LateCursor>,
        limit: usize,
    ) -> Result<Vec<LateRow>, StateError> {
        let (day, file, line) = match after {
            Some(cursor) => (cursor.day.as_str(), cursor.file, cursor.line as i64),
            None => ("", i64::MIN, i64::MIN),
        };
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT h.id, h.day, h.file_id, f.source, h.line, h.payload
                 FROM migrate_held h JOIN migrate_files f ON f.id = h.file_id
                 WHERE (h.day, h.file_id, h.line) > (?1, ?2, ?3)
                 ORDER BY h.day, h.file_id, h.line LIMIT ?4",
            )
            .map_err(self.fail())?;
        let rows = statement
            .query_map(params![day, file, line, limit as i64], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    SourceKey::from_sql_value(row.get(3)?).display(),
                    row.get::<_, i64>(4)? as u64,
                    row.get::<_, Vec<u8>>(5)?,
                ))
            })
            .map_err(self.fail())?;
        let mut late = Vec::new();
        for row in rows {
            let (id, day, file, name, line, payload) = row.map_err(self.fail())?;
            let (row, events) = decode(&payload).map_err(|source| StateError::Unreadable {
                path: self.path.clone(),
                source,
            })?;
            late.push(LateRow {
                id,
                day,
                file,
                name,
                line,
                row,
                events,
            });
        }
        Ok(late)
    }
}

/// The row (one line: no newline in it), a newline, then the events as one JSON array whose
/// elements are each event's exact text; deflated.
fn encode(row: &[u8], events: &[String]) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::fast());
    let mut write = || -> std::io::Result<()> {
        encoder.write_all(row)?;
        encoder.write_all(b"\n[")?;
        for (index, event) in events.iter().enumerate() {
            if index > 0 {
                encoder.write_all(b",")?;
            }
            encoder.write_all(event.as_bytes())?;
        }
        encoder.write_all(b"]")
    };
    write().expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

fn decode(payload: &[u8]) -> std::io::Result<(Vec<u8>, Vec<String>)> {
    let invalid = |error| std::io::Error::new(std::io::ErrorKind::InvalidData, error);
    let mut text = Vec::new();
    DeflateDecoder::new(payload).read_to_end(&mut text)?;
    let newline = text
        .iter()
        .position(|byte| *byte == b'\n')
        .ok_or_else(|| invalid("a held row without its events".into()))?;
    let events: Vec<&serde_json::value::RawValue> =
        serde_json::from_slice(&text[newline + 1..]).map_err(|error| invalid(error.to_string()))?;
    let events = events.iter().map(|event| event.get().to_owned()).collect();
    Ok((text[..newline].to_vec(), events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::Metric;
    use crate::migrate::state::{ChunkCommit, ChunkWrites};

    #[test]
    fn held_rows_come_back_day_by_day_and_leave_once_done() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut state = State::open(dir.path()).expect("opens");
        let file = state.file("export/a.json.gz", 10, "f1").expect("file");
        let held = |day: &str, line: u64| HeldRow {
            day: day.to_owned(),
            line,
            row: Arc::new(format!("{{\"line\":{line}}}").into_bytes()),
            events: vec![
                format!("{{\"uuid\":\"{line}a\"}}"),
                format!("{{\"uuid\":\"{line}b\"}}"),
            ],
        };
        let chunk = ChunkCommit {
            file: file.id,
            last_line: 3,
            writes: ChunkWrites {
                held: vec![
                    held("2024-01-05", 1),
                    held("2024-01-02", 2),
                    held("2024-01-05", 3),
                ],
                front: Some("2024-01-09".to_owned()),
                ..ChunkWrites::default()
            },
            ..ChunkCommit::default()
        };
        state
            .commit(std::slice::from_ref(&chunk), &LateCommit::default())
            .expect("commit");
        assert_eq!(state.front().unwrap().as_deref(), Some("2024-01-09"));
        let counts = state.day_counts().expect("counts");
        assert_eq!(
            counts[&("2024-01-05".into(), Metric::Held, String::new())],
            4
        );
        let first = state.late_rows(None, 2).expect("rows");
        assert_eq!(
            first
                .iter()
                .map(|row| (row.day.as_str(), row.line))
                .collect::<Vec<_>>(),
            [("2024-01-02", 2), ("2024-01-05", 1)]
        );
        assert_eq!(first[0].row, b"{\"line\":2}");
        assert_eq!(first[0].events, ["{\"uuid\":\"2a\"}", "{\"uuid\":\"2b\"}"]);
        assert_eq!(first[0].name, "export/a.json.gz");
        let rest = state.late_rows(Some(&first[1].cursor()), 10).expect("rows");
        assert_eq!(rest.len(), 1);
        let mut counts = DayCounts::new();
        counts.insert(("2024-01-02".into(), Metric::Delivered, String::new()), 2);
        state
            .commit(
                &[],
                &LateCommit {
                    done: vec![first[0].id],
                    counts,
                    ..LateCommit::default()
                },
            )
            .expect("late commit");
        let counts = state.day_counts().expect("counts");
        assert!(!counts.contains_key(&("2024-01-02".into(), Metric::Held, String::new())));
        assert_eq!(
            counts[&("2024-01-02".into(), Metric::Delivered, String::new())],
            2
        );
        assert_eq!(state.late_rows(None, 10).expect("rows").len(), 2);
    }

    #[test]
    fn a_held_rows_events_come_back_byte_for_byte_even_with_newlines_inside() {
        // A custom WebAssembly module's events are kept as their exact text, pretty or not.
        let events = vec![
            "{\n  \"uuid\": \"a\"\n}".to_owned(),
            "{\"uuid\":\"b,]\"}".to_owned(),
        ];
        let (row, back) = decode(&encode(b"{\"row\":1}", &events)).expect("decodes");
        assert_eq!(row, b"{\"row\":1}");
        assert_eq!(back, events);
        assert_eq!(
            decode(&encode(b"{}", &[])).expect("decodes").1,
            Vec::<String>::new()
        );
    }
}
