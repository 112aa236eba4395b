//! The SQLite store: each device's link to its first user (the alias outbox), the conflicts,
//! each group's latest property set, and counters. A batch is committed before the sidecar
//! answers Vector; an alias is marked sent only after PostHog accepted it.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

use amplitude_posthog_transform::uuid_v5;

use crate::records::RecordBatch;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: the outbox of aliases (one per device: its first user), conflicts, groups, counters.
    "CREATE TABLE aliases (
        device_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        uuid TEXT NOT NULL,
        status INTEGER NOT NULL DEFAULT 0,
        error TEXT
     ) WITHOUT ROWID;
     CREATE INDEX aliases_pending ON aliases (status) WHERE status = 0;
     CREATE TABLE conflicts (
        device_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        PRIMARY KEY (device_id, user_id)
     ) WITHOUT ROWID;
     CREATE TABLE groups (
        group_type TEXT NOT NULL,
        group_key TEXT NOT NULL,
        properties TEXT NOT NULL,
        hash TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        uuid TEXT NOT NULL,
        status INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        PRIMARY KEY (group_type, group_key)
     ) WITHOUT ROWID;
     CREATE INDEX groups_pending ON groups (status) WHERE status = 0;
     CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
     CREATE TABLE state (name TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;",
];

/// Outbox states.
pub const PENDING: i64 = 0;
pub const SENT: i64 = 1;
pub const FAILED: i64 = 2;

/// What a committed batch changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IntakeResult {
    pub new_aliases: u64,
    pub new_conflicts: u64,
    pub changed_groups: u64,
}

/// An outbox entry ready to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Alias {
        device_id: String,
        user_id: String,
        timestamp: String,
        uuid: String,
    },
    Group {
        group_type: String,
        group_key: String,
        properties: Map<String, Value>,
        timestamp: String,
        uuid: String,
        hash: String,
    },
}

/// The numbers `status` and `/metrics` report.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxCounts {
    /// Records received (identity and group records, ignored ones included).
    pub received: u64,
    /// Distinct (user, device) pairs: linked ones plus conflicts.
    pub pairs: u64,
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
    /// Later users of an already linked device: counted and listed, never sent.
    pub conflicts: u64,
    pub groups: u64,
    pub groups_pending: u64,
    /// Group updates PostHog accepted, and refused for good (a group's latest snapshot each).
    pub groups_sent: u64,
    pub groups_failed: u64,
    pub last_error: Option<String>,
}

pub struct Store {
    connection: Connection,
}

/// An alias of the outbox from `SELECT device_id, user_id, first_seen, uuid …`.
fn alias_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Outgoing> {
    Ok(Outgoing::Alias {
        device_id: row.get(0)?,
        user_id: row.get(1)?,
        timestamp: row.get(2)?,
        uuid: row.get(3)?,
    })
}

/// A group snapshot of the outbox from
/// `SELECT group_type, group_key, properties, seen_at, uuid, hash …`.
fn group_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Outgoing> {
    let properties: String = row.get(2)?;
    Ok(Outgoing::Group {
        group_type: row.get(0)?,
        group_key: row.get(1)?,
        properties: serde_json::from_str(&properties).unwrap_or_default(),
        timestamp: row.get(3)?,
        uuid: row.get(4)?,
        hash: row.get(5)?,
    })
}

impl Store {
    /// Opens (creating if needed) the database, in WAL mode, and migrates its schema.
    pub fn open(path: &Path) -> rusqlite::Result<Store> {
        let mut connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + NORMAL is durable across process crashes (an OS crash may lose the last
        // transactions, never corrupt the database).
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        let version: usize =
            connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            let transaction = connection.transaction()?;
            transaction.execute_batch(migration)?;
            transaction.pragma_update(None, "user_version", index + 1)?;
            transaction.commit()?;
        }
        Ok(Store { connection })
    }

    /// Commits one batch of records.
    pub fn ingest(&mut self, batch: &RecordBatch) -> rusqlite::Result<IntakeResult> {
        // IMMEDIATE: take the write lock up front, so the busy timeout applies instead of a
        // read transaction failing to upgrade while the sender writes.
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut result = IntakeResult::default();
        {
            let mut linked = transaction.prepare_cached(
                "SELECT user_id, first_seen, status FROM aliases WHERE device_id = ?1",
            )?;
            let mut insert = transaction.prepare_cached("INSERT INTO aliases (device_id, user_id, first_seen, uuid) VALUES (?1, ?2, ?3, ?4)")?;
            let mut earlier = transaction.prepare_cached(
                "UPDATE aliases SET first_seen = ?2 WHERE device_id = ?1 AND status = 0",
            )?;
            let mut conflict = transaction.prepare_cached(
                "INSERT INTO conflicts (device_id, user_id, first_seen) VALUES (?1, ?2, ?3)
                 ON CONFLICT (device_id, user_id) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen)",
            )?;
            let mut conflict_exists = transaction
                .prepare_cached("SELECT 1 FROM conflicts WHERE device_id = ?1 AND user_id = ?2")?;
            for pair in &batch.pairs {
                let existing: Option<(String, String, i64)> = linked
                    .query_row(params![pair.device_id], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })
                    .optional()?;
                match existing {
                    None => {
                        insert.execute(params![
                            pair.device_id,
                            pair.user_id,
                            pair.timestamp,
                            alias_uuid(&pair.user_id, &pair.device_id)
                        ])?;
                        result.new_aliases += 1;
                    }
                    // The pair's time is its earliest; an alias already sent keeps the time it
                    // was sent with (PostHog merges persons, the time only orders the event).
                    Some((user_id, first_seen, status)) if user_id == pair.user_id => {
                        if pair.timestamp < first_seen && status == PENDING {
                            earlier.execute(params![pair.device_id, pair.timestamp])?;
                        }
                    }
                    Some(_) => {
                        let known =
                            conflict_exists.exists(params![pair.device_id, pair.user_id])?;
                        conflict.execute(params![pair.device_id, pair.user_id, pair.timestamp])?;
                        if !known {
                            result.new_conflicts += 1;
                        }
                    }
                }
            }
            let mut group_hash = transaction.prepare_cached(
                "SELECT hash FROM groups WHERE group_type = ?1 AND group_key = ?2",
            )?;
            let mut upsert_group = transaction.prepare_cached(
                "INSERT INTO groups (group_type, group_key, properties, hash, seen_at, uuid, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
                 ON CONFLICT (group_type, group_key) DO UPDATE SET properties = excluded.properties, hash = excluded.hash,
                   seen_at = excluded.seen_at, uuid = excluded.uuid, status = 0, error = NULL",
            )?;
            for group in &batch.groups {
                let properties = serde_json::to_string(&group.properties).unwrap_or_default();
                let hash = sha1_hex(properties.as_bytes());
                let known: Option<String> = group_hash
                    .query_row(params![group.group_type, group.group_key], |row| row.get(0))
                    .optional()?;
                if known.as_deref() != Some(hash.as_str()) {
                    let uuid = uuid_v5(
                        format!(
                            "amplitude-group:{}:{}:{hash}",
                            group.group_type, group.group_key
                        )
                        .as_bytes(),
                    );
                    upsert_group.execute(params![
                        group.group_type,
                        group.group_key,
                        properties,
                        hash,
                        group.timestamp,
                        uuid
                    ])?;
                    result.changed_groups += 1;
                }
            }
            add_counter(&transaction, "received", batch.records)?;
        }
        transaction.commit()?;
        Ok(result)
    }

    /// Up to `limit` pending entries, aliases first (oldest first), then groups.
    pub fn pending(&self, limit: usize) -> rusqlite::Result<Vec<Outgoing>> {
        let mut out = Vec::with_capacity(limit);
        let mut aliases = self.connection.prepare_cached(
            "SELECT device_id, user_id, first_seen, uuid FROM aliases WHERE status = 0 ORDER BY first_seen, device_id LIMIT ?1",
        )?;
        let rows = aliases.query_map(params![limit as i64], alias_from_row)?;
        for row in rows {
            out.push(row?);
        }
        if out.len() < limit {
            let mut groups = self.connection.prepare_cached(
                "SELECT group_type, group_key, properties, seen_at, uuid, hash FROM groups WHERE status = 0 ORDER BY seen_at LIMIT ?1",
            )?;
            let rows = groups.query_map(params![(limit - out.len()) as i64], group_from_row)?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// Every alias and group update PostHog refused for good, oldest first: `each` gets the
    /// entry as it was sent and PostHog's answer.
    pub fn for_each_refused(
        &self,
        mut each: impl FnMut(&Outgoing, &str) -> std::io::Result<()>,
    ) -> rusqlite::Result<std::io::Result<()>> {
        let mut aliases = self.connection.prepare(
            "SELECT device_id, user_id, first_seen, uuid, coalesce(error, '') FROM aliases WHERE status = 2 ORDER BY first_seen, device_id",
        )?;
        let mut rows = aliases.query([])?;
        while let Some(row) = rows.next()? {
            if let Err(error) = each(&alias_from_row(row)?, &row.get::<_, String>(4)?) {
                return Ok(Err(error));
            }
        }
        let mut groups = self.connection.prepare(
            "SELECT group_type, group_key, properties, seen_at, uuid, hash, coalesce(error, '') FROM groups WHERE status = 2 ORDER BY seen_at, group_type, group_key",
        )?;
        let mut rows = groups.query([])?;
        while let Some(row) = rows.next()? {
            if let Err(error) = each(&group_from_row(row)?, &row.get::<_, String>(6)?) {
                return Ok(Err(error));
            }
        }
        Ok(Ok(()))
    }

    /// Marks entries sent (`error: None`) or failed with a reason.
    pub fn mark(&mut self, entries: &[Outgoing], error: Option<&str>) -> rusqlite::Result<()> {
        let status = if error.is_some() { FAILED } else { SENT };
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut alias = transaction.prepare_cached(
                "UPDATE aliases SET status = ?2, error = ?3 WHERE device_id = ?1 AND status = 0",
            )?;
            // A group that changed again meanwhile has a new hash and stays pending.
            let mut group =
                transaction.prepare_cached("UPDATE groups SET status = ?3, error = ?4 WHERE group_type = ?1 AND group_key = ?2 AND hash = ?5")?;
            for entry in entries {
                match entry {
                    Outgoing::Alias { device_id, .. } => {
                        alias.execute(params![device_id, status, error])?
                    }
                    Outgoing::Group {
                        group_type,
                        group_key,
                        hash,
                        ..
                    } => group.execute(params![group_type, group_key, status, error, hash])?,
                };
            }
        }
        transaction.commit()
    }

    /// Puts every entry marked failed back in the outbox: after a stop for a bad setup (a
    /// wrong key or host, a project that refuses everything), PostHog's refusals of this run
    /// proved nothing about the entries, so they are sent again once the setup is fixed (with
    /// the same uuids; an entry that is truly bad is refused and marked again).
    pub fn requeue_failed(&self) -> rusqlite::Result<u64> {
        let aliases = self.connection.execute(
            "UPDATE aliases SET status = 0, error = NULL WHERE status = 2",
            [],
        )?;
        let groups = self.connection.execute(
            "UPDATE groups SET status = 0, error = NULL WHERE status = 2",
            [],
        )?;
        Ok((aliases + groups) as u64)
    }

    pub fn set_last_error(&self, error: Option<&str>) -> rusqlite::Result<()> {
        self.connection.execute(
            "INSERT INTO state (name, value) VALUES ('last_error', ?1) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![error],
        )?;
        Ok(())
    }

    pub fn counts(&self) -> rusqlite::Result<OutboxCounts> {
        let count = |sql: &str| -> rusqlite::Result<u64> {
            self.connection
                .query_row(sql, [], |row| row.get::<_, i64>(0))
                .map(|n| n as u64)
        };
        let (aliases, pending, sent, failed) = self.connection.query_row(
            "SELECT count(*), coalesce(sum(status = 0), 0), coalesce(sum(status = 1), 0), coalesce(sum(status = 2), 0) FROM aliases",
            [],
            |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64, row.get::<_, i64>(2)? as u64, row.get::<_, i64>(3)? as u64)),
        )?;
        let conflicts = count("SELECT count(*) FROM conflicts")?;
        Ok(OutboxCounts {
            received: count(
                "SELECT coalesce((SELECT value FROM counters WHERE name = 'received'), 0)",
            )?,
            pairs: aliases + conflicts,
            pending,
            sent,
            failed,
            conflicts,
            groups: count("SELECT count(*) FROM groups")?,
            groups_pending: count("SELECT count(*) FROM groups WHERE status = 0")?,
            groups_sent: count("SELECT count(*) FROM groups WHERE status = 1")?,
            groups_failed: count("SELECT count(*) FROM groups WHERE status = 2")?,
            last_error: self
                .connection
                .query_row(
                    "SELECT value FROM state WHERE name = 'last_error'",
                    [],
                    |row| row.get(0),
                )
                .optional()?
                .flatten(),
        })
    }

    /// Aliases sent and conflicts by the UTC day of the pair's first sighting (`first_seen`'s
    /// date): day → (sent, conflicts).
    pub fn daily_counts(&self) -> rusqlite::Result<BTreeMap<String, (u64, u64)>> {
        let mut days: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (sql, conflicts) in [
            (
                "SELECT substr(first_seen, 1, 10), count(*) FROM aliases WHERE status = 1 GROUP BY 1",
                false,
            ),
            (
                "SELECT substr(first_seen, 1, 10), count(*) FROM conflicts GROUP BY 1",
                true,
            ),
        ] {
            let mut statement = self.connection.prepare(sql)?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
            })?;
            for row in rows {
                let (day, count) = row?;
                let slot = days.entry(day).or_default();
                if conflicts {
                    slot.1 += count;
                } else {
                    slot.0 += count;
                }
            }
        }
        Ok(days)
    }

    /// Conflicting links, for the operator: (device, later user, first seen).
    pub fn conflicts(&self, limit: usize) -> rusqlite::Result<Vec<(String, String, String)>> {
        let mut statement = self.connection.prepare(
            "SELECT device_id, user_id, first_seen FROM conflicts ORDER BY first_seen LIMIT ?1",
        )?;
        let rows = statement.query_map(params![limit as i64], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
        rows.collect()
    }
}

fn add_counter(connection: &Connection, name: &str, amount: u64) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT INTO counters (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
        params![name, amount as i64],
    )?;
    Ok(())
}

/// The deterministic uuid of a device → user alias: a re-send after a crash collapses in PostHog.
pub fn alias_uuid(user_id: &str, device_id: &str) -> String {
    uuid_v5(format!("amplitude-alias:{}:{user_id}:{device_id}", user_id.len()).as_bytes())
}

fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(Sha1::digest(bytes))
}
