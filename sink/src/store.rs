//! The SQLite store: each device's link to its earliest user by event time (the alias
//! outbox), the conflicts, each group's latest property set, each person's values by event
//! time and the final update per person (`persons`), and counters. A batch is committed before
//! the sidecar answers Vector; an entry is marked sent only after PostHog accepted it.
//! Aliases and person updates wait until the store is *released* ([`Store::release`]: every
//! record is in), because only then is a device's earliest user, and a person's newest value,
//! known.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

use amplitude_posthog_transform::uuid_v5;

use crate::persons::{PersonFold, ProjectMode, update_uuid};
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
    // 2: persons by event time: per distinct id, its values by event time (a `PersonFold` as
    // JSON: per key the newest `$set` and the oldest `$set_once` value, and the newest event
    // time), and the outbox of final updates, one per person (its final distinct id).
    "CREATE TABLE persons (distinct_id TEXT PRIMARY KEY, fold TEXT NOT NULL) WITHOUT ROWID;
     CREATE TABLE person_updates (
        person TEXT PRIMARY KEY,
        properties TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        uuid TEXT NOT NULL,
        status INTEGER NOT NULL DEFAULT 0,
        error TEXT
     ) WITHOUT ROWID;
     CREATE INDEX person_updates_pending ON person_updates (status) WHERE status = 0;",
];

/// Outbox states.
pub const PENDING: i64 = 0;
pub const SENT: i64 = 1;
pub const FAILED: i64 = 2;
/// A pending person update not yet worked out again by the running release.
const STALE: i64 = 3;

/// What a committed batch changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IntakeResult {
    pub new_aliases: u64,
    pub new_conflicts: u64,
    pub changed_groups: u64,
    /// Distinct ids whose values by event time the batch changed.
    pub changed_persons: u64,
}

/// What a release worked out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReleaseResult {
    /// Persons with an update (their final distinct ids).
    pub persons: u64,
    /// Updates new or changed since the last release (pending now).
    pub new_updates: u64,
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
    /// A person's final update (`$set` of its values by event time).
    Person {
        person: String,
        properties: Map<String, Value>,
        timestamp: String,
        uuid: String,
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
    /// Distinct ids whose rows carried person properties.
    pub persons: u64,
    /// Final person updates worked out by the last release: waiting, accepted, refused.
    pub persons_pending: u64,
    pub persons_sent: u64,
    pub persons_failed: u64,
    /// Whether every record received is released (aliases and person updates worked out).
    pub released: bool,
    pub last_error: Option<String>,
}

impl OutboxCounts {
    /// Entries waiting to be sent, plus 1 while an unreleased store still owes its aliases or
    /// person updates: nothing is left when this is 0.
    pub fn waiting(&self) -> u64 {
        let unreleased = !self.released && (self.pending > 0 || self.persons > 0);
        self.pending + self.groups_pending + self.persons_pending + u64::from(unreleased)
    }
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

/// How an outbox entry is read from its row.
type FromRow = fn(&rusqlite::Row<'_>) -> rusqlite::Result<Outgoing>;

/// A person update of the outbox from `SELECT person, properties, seen_at, uuid …`.
fn person_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Outgoing> {
    let properties: String = row.get(1)?;
    Ok(Outgoing::Person {
        person: row.get(0)?,
        properties: serde_json::from_str(&properties).unwrap_or_default(),
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
            let mut changed_links = 0;
            {
                let mut links = Links::prepare(&transaction)?;
                for pair in &batch.pairs {
                    changed_links += links.add(pair, &mut result)?;
                }
            }
            result.changed_persons = ingest_persons(&transaction, batch)?;
            // Aliases or person values changed: the store waits for a release again.
            if changed_links + result.changed_persons > 0 {
                set_state(&transaction, "released", None)?;
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

    /// Up to `limit` pending entries: aliases first (oldest first), then groups, then person
    /// updates — aliases and person updates only once released, and person updates only in a
    /// batch without aliases, once every alias went (a person's update follows its merges).
    pub fn pending(&self, limit: usize) -> rusqlite::Result<Vec<Outgoing>> {
        let released = self.is_released()?;
        let mut out = Vec::with_capacity(limit);
        let mut queries: Vec<(&str, FromRow)> = Vec::new();
        if released {
            queries.push((
                "SELECT device_id, user_id, first_seen, uuid FROM aliases WHERE status = 0 ORDER BY first_seen, device_id LIMIT ?1",
                alias_from_row,
            ));
        }
        queries.push((
            "SELECT group_type, group_key, properties, seen_at, uuid, hash FROM groups WHERE status = 0 ORDER BY seen_at LIMIT ?1",
            group_from_row,
        ));
        for (sql, from_row) in queries {
            if out.len() < limit {
                let mut statement = self.connection.prepare_cached(sql)?;
                for row in statement.query_map(params![(limit - out.len()) as i64], from_row)? {
                    out.push(row?);
                }
            }
        }
        let aliases_left = out
            .iter()
            .any(|entry| matches!(entry, Outgoing::Alias { .. }));
        if released && !aliases_left && out.len() < limit {
            let mut persons = self.connection.prepare_cached(
                "SELECT person, properties, seen_at, uuid FROM person_updates WHERE status = 0 ORDER BY seen_at, person LIMIT ?1",
            )?;
            for row in persons.query_map(params![(limit - out.len()) as i64], person_from_row)? {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// Whether every record received is released.
    pub fn is_released(&self) -> rusqlite::Result<bool> {
        Ok(state(&self.connection, "released")?.as_deref() == Some("1"))
    }

    /// Releases what the records decided (every record is in: the end of a migration's
    /// main pass, `flush` for a hand-run Vector pipeline): each device's alias to its earliest
    /// user may go, and each person's final update is worked out — one per person, its final
    /// distinct id being its user for a device aliased to one — in `mode`. An update already
    /// sent with the same content keeps its status (same uuid); records that arrive later
    /// change nothing until the next release.
    pub fn release(&mut self, mode: ProjectMode) -> rusqlite::Result<ReleaseResult> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut result = ReleaseResult::default();
        {
            transaction.execute(
                "UPDATE person_updates SET status = ?1 WHERE status = 0",
                params![STALE],
            )?;
            let mut upsert = transaction.prepare(
                "INSERT INTO person_updates (person, properties, seen_at, uuid) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (person) DO UPDATE SET properties = excluded.properties, seen_at = excluded.seen_at,
                   uuid = excluded.uuid, status = 0, error = NULL
                 WHERE uuid != excluded.uuid OR status = 3",
            )?;
            // Each distinct id's values under its person: a device aliased to a user (an alias
            // PostHog did not refuse) belongs to the user's person.
            let mut folds = transaction.prepare(
                "SELECT coalesce(a.user_id, p.distinct_id), p.fold
                   FROM persons p LEFT JOIN aliases a ON a.device_id = p.distinct_id AND a.status != 2
                 ORDER BY 1",
            )?;
            let mut rows = folds.query([])?;
            let mut current: Option<(String, PersonFold)> = None;
            let mut finish = |person: String, fold: PersonFold| -> rusqlite::Result<()> {
                if fold.is_empty() {
                    return Ok(());
                }
                let properties = fold.update_properties(mode);
                let uuid = update_uuid(&person, &properties);
                let text = serde_json::to_string(&properties).unwrap_or_default();
                result.persons += 1;
                result.new_updates +=
                    upsert.execute(params![person, text, fold.newest(), uuid])? as u64;
                Ok(())
            };
            while let Some(row) = rows.next()? {
                let person: String = row.get(0)?;
                if current.as_ref().is_some_and(|(kept, _)| *kept != person)
                    && let Some((done, fold)) = current.take()
                {
                    finish(done, fold)?;
                }
                let (_, fold) = current.get_or_insert_with(|| (person, PersonFold::default()));
                fold.merge(&PersonFold::from_json(&row.get::<_, String>(1)?));
            }
            if let Some((done, fold)) = current.take() {
                finish(done, fold)?;
            }
            // Pending updates of persons that are no more (a device now aliased to a user).
            transaction.execute(
                "DELETE FROM person_updates WHERE status = ?1",
                params![STALE],
            )?;
            set_state(&transaction, "released", Some("1"))?;
        }
        transaction.commit()?;
        Ok(result)
    }

    /// Every alias, group update and person update PostHog refused for good, oldest first: `each` gets the
    /// entry as it was sent and PostHog's answer.
    pub fn for_each_refused(
        &self,
        mut each: impl FnMut(&Outgoing, &str) -> std::io::Result<()>,
    ) -> rusqlite::Result<std::io::Result<()>> {
        // Each query selects an entry's columns, then its error (`error_at`).
        let refused: [(&str, FromRow, usize); 3] = [
            (
                "SELECT device_id, user_id, first_seen, uuid, coalesce(error, '') FROM aliases WHERE status = 2 ORDER BY first_seen, device_id",
                alias_from_row,
                4,
            ),
            (
                "SELECT group_type, group_key, properties, seen_at, uuid, hash, coalesce(error, '') FROM groups WHERE status = 2 ORDER BY seen_at, group_type, group_key",
                group_from_row,
                6,
            ),
            (
                "SELECT person, properties, seen_at, uuid, coalesce(error, '') FROM person_updates WHERE status = 2 ORDER BY seen_at, person",
                person_from_row,
                4,
            ),
        ];
        for (sql, from_row, error_at) in refused {
            let mut statement = self.connection.prepare(sql)?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                if let Err(error) = each(&from_row(row)?, &row.get::<_, String>(error_at)?) {
                    return Ok(Err(error));
                }
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
            // An update worked out again meanwhile has a new uuid and stays pending.
            let mut person = transaction.prepare_cached(
                "UPDATE person_updates SET status = ?3, error = ?4 WHERE person = ?1 AND uuid = ?2",
            )?;
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
                    Outgoing::Person {
                        person: id, uuid, ..
                    } => person.execute(params![id, uuid, status, error])?,
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
        let mut requeued = 0;
        for outbox in ["aliases", "groups", "person_updates"] {
            requeued += self.connection.execute(
                &format!("UPDATE {outbox} SET status = 0, error = NULL WHERE status = 2"),
                [],
            )?;
        }
        Ok(requeued as u64)
    }

    pub fn set_last_error(&self, error: Option<&str>) -> rusqlite::Result<()> {
        set_state(&self.connection, "last_error", error)
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
            persons: count("SELECT count(*) FROM persons")?,
            persons_pending: count("SELECT count(*) FROM person_updates WHERE status = 0")?,
            persons_sent: count("SELECT count(*) FROM person_updates WHERE status = 1")?,
            persons_failed: count("SELECT count(*) FROM person_updates WHERE status = 2")?,
            released: self.is_released()?,
            last_error: state(&self.connection, "last_error")?,
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

fn state(connection: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    Ok(connection
        .query_row(
            "SELECT value FROM state WHERE name = ?1",
            params![name],
            |row| row.get(0),
        )
        .optional()?
        .flatten())
}

fn set_state(connection: &Connection, name: &str, value: Option<&str>) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT INTO state (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![name, value],
    )?;
    Ok(())
}

/// The statements that link devices to users, decided by time: a device's alias goes to the
/// user of its earliest pair (ties: the smaller user id); every other user of the device is a
/// conflict, kept with its earliest time. An alias already sent stays: PostHog merged.
struct Links<'t> {
    linked: rusqlite::CachedStatement<'t>,
    insert: rusqlite::CachedStatement<'t>,
    relink: rusqlite::CachedStatement<'t>,
    conflict: rusqlite::CachedStatement<'t>,
    conflict_exists: rusqlite::CachedStatement<'t>,
    unconflict: rusqlite::CachedStatement<'t>,
}

impl<'t> Links<'t> {
    fn prepare(connection: &'t Connection) -> rusqlite::Result<Links<'t>> {
        Ok(Links {
            linked: connection.prepare_cached(
                "SELECT user_id, first_seen, status FROM aliases WHERE device_id = ?1",
            )?,
            insert: connection.prepare_cached(
                "INSERT INTO aliases (device_id, user_id, first_seen, uuid) VALUES (?1, ?2, ?3, ?4)",
            )?,
            relink: connection.prepare_cached(
                "UPDATE aliases SET user_id = ?2, first_seen = ?3, uuid = ?4 WHERE device_id = ?1 AND status = 0",
            )?,
            conflict: connection.prepare_cached(
                "INSERT INTO conflicts (device_id, user_id, first_seen) VALUES (?1, ?2, ?3)
                 ON CONFLICT (device_id, user_id) DO UPDATE SET first_seen = excluded.first_seen
                 WHERE excluded.first_seen < first_seen",
            )?,
            conflict_exists: connection
                .prepare_cached("SELECT 1 FROM conflicts WHERE device_id = ?1 AND user_id = ?2")?,
            unconflict: connection
                .prepare_cached("DELETE FROM conflicts WHERE device_id = ?1 AND user_id = ?2")?,
        })
    }

    /// Adds one pair; how many aliases it changed (0 or 1).
    fn add(
        &mut self,
        pair: &crate::records::IdentityPair,
        result: &mut IntakeResult,
    ) -> rusqlite::Result<u64> {
        let existing: Option<(String, String, i64)> = self
            .linked
            .query_row(params![pair.device_id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        let uuid = || alias_uuid(&pair.user_id, &pair.device_id);
        let earlier = |user: &str, first_seen: &str| {
            (pair.timestamp.as_str(), pair.user_id.as_str()) < (first_seen, user)
        };
        match existing {
            None => {
                self.insert.execute(params![
                    pair.device_id,
                    pair.user_id,
                    pair.timestamp,
                    uuid()
                ])?;
                result.new_aliases += 1;
                Ok(1)
            }
            // An earlier pair moves a pending alias: to the same user, its time only; to
            // another user, the alias, and the former user becomes a conflict. An alias
            // already sent stays as it went (PostHog merged).
            Some((user_id, first_seen, PENDING)) if earlier(&user_id, &first_seen) => {
                self.relink.execute(params![
                    pair.device_id,
                    pair.user_id,
                    pair.timestamp,
                    uuid()
                ])?;
                if user_id != pair.user_id {
                    self.unconflict
                        .execute(params![pair.device_id, pair.user_id])?;
                    self.add_conflict(&pair.device_id, &user_id, &first_seen, result)?;
                }
                Ok(1)
            }
            Some((user_id, _, _)) if user_id == pair.user_id => Ok(0),
            Some(_) => {
                self.add_conflict(&pair.device_id, &pair.user_id, &pair.timestamp, result)?;
                Ok(0)
            }
        }
    }

    fn add_conflict(
        &mut self,
        device_id: &str,
        user_id: &str,
        timestamp: &str,
        result: &mut IntakeResult,
    ) -> rusqlite::Result<()> {
        let known = self.conflict_exists.exists(params![device_id, user_id])?;
        self.conflict
            .execute(params![device_id, user_id, timestamp])?;
        if !known {
            result.new_conflicts += 1;
        }
        Ok(())
    }
}

/// Folds a batch's person snapshots per distinct id in memory, then into each distinct id's
/// kept fold (one read and at most one write per distinct id and batch); how many distinct
/// ids changed.
fn ingest_persons(connection: &Connection, batch: &RecordBatch) -> rusqlite::Result<u64> {
    if batch.persons.is_empty() {
        return Ok(0);
    }
    let mut folds: std::collections::HashMap<&str, PersonFold> = Default::default();
    for snapshot in &batch.persons {
        folds
            .entry(snapshot.distinct_id.as_str())
            .or_default()
            .add_snapshot(&snapshot.set, &snapshot.set_once, &snapshot.timestamp);
    }
    let mut kept = connection.prepare_cached("SELECT fold FROM persons WHERE distinct_id = ?1")?;
    let mut write = connection.prepare_cached(
        "INSERT INTO persons (distinct_id, fold) VALUES (?1, ?2)
         ON CONFLICT (distinct_id) DO UPDATE SET fold = excluded.fold",
    )?;
    let mut changed = 0;
    for (distinct_id, fold) in folds {
        let stored: Option<String> = kept
            .query_row(params![distinct_id], |row| row.get(0))
            .optional()?;
        let fold = match stored {
            Some(text) => {
                let mut merged = PersonFold::from_json(&text);
                if !merged.merge(&fold) {
                    continue;
                }
                merged
            }
            None => fold,
        };
        write.execute(params![distinct_id, fold.to_json()])?;
        changed += 1;
    }
    Ok(changed)
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
