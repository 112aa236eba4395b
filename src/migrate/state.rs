//! The migration's state: one SQLite database (`<state>/migration.sqlite`) holding every input
//! file (its fingerprint and how far its rows are durably done), the per-day counts, the dead
//! letters, and — through the identity sidecar's own store, in the same file — the identity
//! outbox. A row's counts, its dead letters and the watermark past it are committed in one
//! transaction, so a kill at any moment leaves counts that add up and a watermark that never
//! runs ahead of delivery.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::counts::{DayCounts, Metric};

/// The database file under the state directory.
pub const DATABASE: &str = "migration.sqlite";

/// This module's schema, applied in order; `migrate_meta.schema` records how many ran. (The
/// sidecar's store in the same file versions its own tables with `PRAGMA user_version`.)
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE migrate_files (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        rows_done INTEGER NOT NULL DEFAULT 0,
        chunks_done INTEGER NOT NULL DEFAULT 0,
        finished INTEGER NOT NULL DEFAULT 0,
        problem TEXT
     );
     CREATE TABLE migrate_days (
        day TEXT NOT NULL,
        metric TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        count INTEGER NOT NULL,
        PRIMARY KEY (day, metric, reason)
     ) WITHOUT ROWID;
     CREATE TABLE migrate_dead_letters (
        file_id INTEGER NOT NULL,
        line INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (file_id, line, seq)
     ) WITHOUT ROWID;",
    // One example row per outcome and reason, for the report.
    "CREATE TABLE migrate_examples (
        metric TEXT NOT NULL,
        reason TEXT NOT NULL,
        file TEXT NOT NULL,
        line INTEGER NOT NULL,
        row TEXT NOT NULL,
        PRIMARY KEY (metric, reason)
     ) WITHOUT ROWID;",
];

/// What the state knows of one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub id: i64,
    pub size: u64,
    pub fingerprint: String,
    /// Lines 1..=rows_done are durably done.
    pub rows_done: u64,
    pub chunks_done: u64,
    pub finished: bool,
    pub problem: Option<String>,
}

/// A done chunk, as written.
#[derive(Debug, Clone, Default)]
pub struct ChunkCommit {
    pub file: i64,
    pub index: u64,
    pub last_line: u64,
    pub end_of_file: bool,
    pub counts: DayCounts,
    /// (line, record): dead letters in the project's one shape.
    pub dead_letters: Vec<(u64, String)>,
    /// The first row seen of a skip or refusal reason (kept when the state has none yet).
    pub examples: Vec<Example>,
}

/// One example row of an outcome (`skipped`, `rejected`, `dead_lettered`) and reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Example {
    pub metric: String,
    pub reason: String,
    pub file: String,
    pub line: u64,
    /// The row as read (at most [`EXAMPLE_BYTES`] of it, cut at a character boundary).
    pub row: String,
}

/// How much of an example row is kept.
pub const EXAMPLE_BYTES: usize = 2000;

impl Example {
    pub fn new(metric: &str, reason: &str, file: &str, line: u64, row: &[u8]) -> Example {
        let mut row = String::from_utf8_lossy(row).into_owned();
        if row.len() > EXAMPLE_BYTES {
            let mut end = EXAMPLE_BYTES;
            while !row.is_char_boundary(end) {
                end -= 1;
            }
            row.truncate(end);
            row.push('…');
        }
        Example {
            metric: metric.to_owned(),
            reason: reason.to_owned(),
            file: file.to_owned(),
            line,
            row,
        }
    }
}

/// A connection with the state's settings.
fn connect(path: &Path) -> Result<Connection, StateError> {
    let fail = |source| StateError::Database {
        path: path.to_path_buf(),
        source,
    };
    let connection = Connection::open(path).map_err(fail)?;
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .map_err(fail)?;
    // WAL + NORMAL survives a killed process; an OS crash may lose the last commits,
    // which only means their rows are sent again (same uuids).
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(fail)?;
    connection
        .busy_timeout(std::time::Duration::from_secs(30))
        .map_err(fail)?;
    Ok(connection)
}

/// A new state database at `path`, made under another name and renamed into place once its
/// schema is in, so a process killed while creating it never leaves an empty database
/// behind (which the next run would refuse). Readable by its owner only.
fn create(path: &Path) -> Result<(), StateError> {
    let fresh = path.with_extension("sqlite.new");
    for leftover in ["", "-wal", "-shm"] {
        let mut name = fresh.clone().into_os_string();
        name.push(leftover);
        let _ = std::fs::remove_file(name);
    }
    let fail = |source| StateError::Database {
        path: fresh.clone(),
        source,
    };
    {
        let connection = connect(&fresh)?;
        connection
            .execute_batch(
                "CREATE TABLE migrate_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
            )
            .map_err(fail)?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&fresh, path))
        .map_err(|source| StateError::Unreadable {
            path: path.to_path_buf(),
            source,
        })
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the migration state {path} is empty (0 bytes): it is not a state this tool wrote — lost or truncated? \
         Restore it from a backup, or give another --state to start a new migration (which sends everything again)"
    )]
    Empty { path: PathBuf },
    #[error(
        "{path} is not a migration state of amplitude-posthog: give the --state directory of your migration \
         (or a new directory to start one)"
    )]
    Foreign { path: PathBuf },
    #[error("cannot use the migration state {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the migration state {path} cannot be used: {source}")]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the state directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct State {
    connection: Connection,
    path: PathBuf,
}

impl State {
    /// Opens the state database in `dir`, creating it if there is none. A database file that
    /// is empty or not this tool's is refused: a lost or foreign state must never pass for a
    /// new one (a new one would send everything again).
    pub fn open(dir: &Path) -> Result<State, StateError> {
        crate::fs::create_private_dir(dir).map_err(|source| StateError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DATABASE);
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.len() == 0 => return Err(StateError::Empty { path }),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => create(&path)?,
            Err(source) => {
                return Err(StateError::Unreadable { path, source });
            }
        }
        let connection = connect(&path)?;
        let ours = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'migrate_meta'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .is_ok_and(|tables| tables == 1);
        if !ours {
            return Err(StateError::Foreign { path });
        }
        let mut state = State { connection, path };
        state.apply_schema()?;
        Ok(state)
    }

    /// Brings the schema up to date (`migrate_meta.schema` says how far it is).
    fn apply_schema(&mut self) -> Result<(), StateError> {
        let path = self.path.clone();
        let fail = |source| StateError::Database {
            path: path.clone(),
            source,
        };
        let applied: usize = self
            .connection
            .query_row(
                "SELECT value FROM migrate_meta WHERE key = 'schema'",
                [],
                |row| row.get::<_, String>(0),
            )
            .optional()
            .map_err(fail)?
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
            let transaction = self.connection.transaction().map_err(fail)?;
            transaction.execute_batch(migration).map_err(fail)?;
            transaction
                .execute(
                    "INSERT INTO migrate_meta (key, value) VALUES ('schema', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![(index + 1).to_string()],
                )
                .map_err(fail)?;
            transaction.commit().map_err(fail)?;
        }
        Ok(())
    }

    /// The database file (the identity sidecar's store opens the same file).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        |source| StateError::Database {
            path: self.path.clone(),
            source,
        }
    }

    /// The file `source`, registered with its size and fingerprint if it is new.
    pub fn file(
        &self,
        source: impl Into<SourceKey>,
        size: u64,
        fingerprint: &str,
    ) -> Result<FileRecord, StateError> {
        let source = source.into();
        self.connection
            .execute(
                "INSERT INTO migrate_files (source, size, fingerprint) VALUES (?1, ?2, ?3)
                 ON CONFLICT (source) DO NOTHING",
                params![source, size as i64, fingerprint],
            )
            .map_err(self.fail())?;
        self.connection
            .query_row(
                "SELECT id, size, fingerprint, rows_done, chunks_done, finished, problem
                 FROM migrate_files WHERE source = ?1",
                params![source],
                |row| {
                    Ok(FileRecord {
                        id: row.get(0)?,
                        size: row.get::<_, i64>(1)? as u64,
                        fingerprint: row.get(2)?,
                        rows_done: row.get::<_, i64>(3)? as u64,
                        chunks_done: row.get::<_, i64>(4)? as u64,
                        finished: row.get(5)?,
                        problem: row.get(6)?,
                    })
                },
            )
            .map_err(self.fail())
    }

    /// Records (or clears, with `None`) a problem with a file, as reported to the user.
    pub fn set_problem(&self, file: i64, problem: Option<&str>) -> Result<(), StateError> {
        self.connection
            .execute(
                "UPDATE migrate_files SET problem = ?2 WHERE id = ?1",
                params![file, problem],
            )
            .map(|_| ())
            .map_err(self.fail())
    }

    /// Writes done chunks: their counts, dead letters and watermarks, in one transaction.
    pub fn commit(&mut self, chunks: &[ChunkCommit]) -> Result<(), StateError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let fail = |source| StateError::Database {
            path: path.clone(),
            source,
        };
        let transaction = self.connection.transaction().map_err(fail)?;
        {
            let mut watermark = transaction
                .prepare_cached(
                    "UPDATE migrate_files SET rows_done = ?2, chunks_done = ?3,
                     finished = finished OR ?4 WHERE id = ?1",
                )
                .map_err(fail)?;
            let mut count = transaction
                .prepare_cached(
                    "INSERT INTO migrate_days (day, metric, reason, count) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (day, metric, reason) DO UPDATE SET count = count + excluded.count",
                )
                .map_err(fail)?;
            let mut letter = transaction
                .prepare_cached(
                    "INSERT OR IGNORE INTO migrate_dead_letters (file_id, line, seq, record)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(fail)?;
            let mut example = transaction
                .prepare_cached(
                    "INSERT OR IGNORE INTO migrate_examples (metric, reason, file, line, row)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(fail)?;
            for chunk in chunks {
                for item in &chunk.examples {
                    example
                        .execute(params![
                            item.metric,
                            item.reason,
                            item.file,
                            item.line as i64,
                            item.row
                        ])
                        .map_err(fail)?;
                }
                watermark
                    .execute(params![
                        chunk.file,
                        chunk.last_line as i64,
                        (chunk.index + 1) as i64,
                        chunk.end_of_file
                    ])
                    .map_err(fail)?;
                for ((day, metric, reason), value) in &chunk.counts {
                    let metric = metric.as_str();
                    count
                        .execute(params![day, metric, reason, *value as i64])
                        .map_err(fail)?;
                }
                for (seq, (line, record)) in chunk.dead_letters.iter().enumerate() {
                    letter
                        .execute(params![chunk.file, *line as i64, seq as i64, record])
                        .map_err(fail)?;
                }
            }
        }
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

    /// Every count: (day, metric, reason) → count. A metric name this version does not know
    /// (a state written by a newer one) is left out.
    pub fn day_counts(&self) -> Result<DayCounts, StateError> {
        let mut statement = self
            .connection
            .prepare("SELECT day, metric, reason, count FROM migrate_days")
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

    /// Files in the migration, and how many are read to their end and done without problem.
    pub fn file_totals(&self) -> Result<(u64, u64), StateError> {
        self.connection
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(finished AND problem IS NULL), 0) FROM migrate_files",
                [],
                |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)),
            )
            .map_err(self.fail())
    }

    /// (source, problem) of every file with a problem.
    pub fn problems(&self) -> Result<Vec<(String, String)>, StateError> {
        let mut statement = self
            .connection
            .prepare("SELECT source, problem FROM migrate_files WHERE problem IS NOT NULL ORDER BY source")
            .map_err(self.fail())?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    SourceKey::from_sql_value(row.get(0)?).display(),
                    row.get(1)?,
                ))
            })
            .map_err(self.fail())?;
        rows.collect::<Result<_, _>>().map_err(self.fail())
    }
}

/// How the state names an input file: its path as text when it is UTF-8 (as every state has
/// always stored it), else its exact bytes, so two names that differ only in bytes that are
/// not UTF-8 stay two files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKey {
    Text(String),
    Bytes(Vec<u8>),
}

impl SourceKey {
    /// The key of an input.
    pub fn of(source: &crate::input::InputSource) -> SourceKey {
        use std::os::unix::ffi::OsStrExt;
        let bytes = match source {
            crate::input::InputSource::File(path) => path.as_os_str().as_bytes().to_vec(),
            crate::input::InputSource::ZipMember { zip, member } => {
                let mut bytes = zip.as_os_str().as_bytes().to_vec();
                bytes.push(b'!');
                bytes.extend_from_slice(member.as_bytes());
                bytes
            }
            crate::input::InputSource::Stdin => b"<stdin>".to_vec(),
        };
        match String::from_utf8(bytes) {
            Ok(text) => SourceKey::Text(text),
            Err(not_text) => SourceKey::Bytes(not_text.into_bytes()),
        }
    }

    fn from_sql_value(value: rusqlite::types::Value) -> SourceKey {
        match value {
            rusqlite::types::Value::Blob(bytes) => SourceKey::Bytes(bytes),
            rusqlite::types::Value::Text(text) => SourceKey::Text(text),
            other => SourceKey::Text(format!("{other:?}")),
        }
    }

    /// For people: the text, or the bytes with what is not UTF-8 replaced.
    pub fn display(&self) -> String {
        match self {
            SourceKey::Text(text) => text.clone(),
            SourceKey::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        }
    }
}

impl From<&str> for SourceKey {
    fn from(text: &str) -> SourceKey {
        SourceKey::Text(text.to_owned())
    }
}

impl rusqlite::ToSql for SourceKey {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            SourceKey::Text(text) => text.as_str().into(),
            SourceKey::Bytes(bytes) => bytes.as_slice().into(),
        })
    }
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
        };
        state.commit(std::slice::from_ref(&chunk)).expect("commit");
        // The second chunk's example of the same reason does not replace the first.
        state
            .commit(&[ChunkCommit {
                index: 1,
                last_line: 5,
                end_of_file: true,
                dead_letters: Vec::new(),
                examples: vec![Example::new("rejected", "bad_timestamp", "b", 9, b"later")],
                ..chunk
            }])
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

    #[test]
    fn an_example_row_is_cut_at_a_character_boundary() {
        let row = "é".repeat(EXAMPLE_BYTES);
        let example = Example::new("skipped", "session_marker", "f", 1, row.as_bytes());
        assert!(example.row.ends_with('…'));
        assert!(example.row.len() <= EXAMPLE_BYTES + '…'.len_utf8());
    }
}
