//! The migration's state: one SQLite database (`<state>/migration.sqlite`) holding every input
//! file (its fingerprint and how far its rows are durably done), the per-day counts, the dead
//! letters, and — through the identity sidecar's own store, in the same file — the identity
//! outbox. A row's counts, its dead letters and the watermark past it are committed in one
//! transaction, so a kill at any moment leaves counts that add up and a watermark that never
//! runs ahead of delivery.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

mod example;
mod held;
mod records;
mod source_key;
mod writes;

pub use example::{EXAMPLE_BYTES, Example};
pub use held::{HeldRow, LateCommit, LateRow};
pub use records::{ChunkCommit, ChunkWrites};
pub use source_key::SourceKey;

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
    // Rows uploaded late, held for the late pass (see `held`).
    "CREATE TABLE migrate_held (
        id INTEGER PRIMARY KEY,
        day TEXT NOT NULL,
        file_id INTEGER NOT NULL,
        line INTEGER NOT NULL,
        events INTEGER NOT NULL,
        payload BLOB NOT NULL
     );
     CREATE UNIQUE INDEX migrate_held_by_line ON migrate_held (file_id, line);
     CREATE INDEX migrate_held_by_day ON migrate_held (day, file_id, line);",
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

/// The state's database error at `path`, keeping SQLite's cause.
fn database_error(path: &Path) -> impl Fn(rusqlite::Error) -> StateError + Copy + '_ {
    move |source| StateError::Database {
        path: path.to_path_buf(),
        source,
    }
}

/// A connection with the state's settings.
fn connect(path: &Path) -> Result<Connection, StateError> {
    let fail = database_error(path);
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
    let fail = database_error(&fresh);
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
        let fail = database_error(&self.path);
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
        database_error(&self.path)
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
