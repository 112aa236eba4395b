//! The rows every kind of commit writes: per-day counts, dead letters, example rows (one
//! place for each statement, shared by the main pass's chunks and the late pass).

use rusqlite::{Transaction, params};

use super::Example;
use crate::counts::DayCounts;

/// Adds per-day counts.
pub(super) fn add_counts(transaction: &Transaction, counts: &DayCounts) -> rusqlite::Result<()> {
    let mut count = transaction.prepare_cached(
        "INSERT INTO migrate_days (day, metric, reason, count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (day, metric, reason) DO UPDATE SET count = count + excluded.count",
    )?;
    for ((day, metric, reason), value) in counts {
        count.execute(params![day, metric.as_str(), reason, *value as i64])?;
    }
    Ok(())
}

/// Keeps an example row unless its outcome and reason have one.
pub(super) fn add_example(transaction: &Transaction, item: &Example) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT OR IGNORE INTO migrate_examples (metric, reason, file, line, row)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            item.metric,
            item.reason,
            item.file,
            item.line as i64,
            item.row
        ])
        .map(|_| ())
}

/// Adds a dead letter of `file`'s line `line` (`seq` tells apart several of one line).
pub(super) fn add_dead_letter(
    transaction: &Transaction,
    file: i64,
    line: u64,
    seq: u64,
    record: &str,
) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT OR IGNORE INTO migrate_dead_letters (file_id, line, seq, record)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![file, line as i64, seq as i64, record])
        .map(|_| ())
}
