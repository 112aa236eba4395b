//! The workspace of `migrate --engine vector` under `<state>/vector/`: the rendered config
//! (`vector.toml`), the shipped VRL program, the key in `secrets/api_key` (mode 0600), Vector's
//! `data/` (checkpoints, disk buffers), Vector's dead letters in `dead-letters/`, Vector's log
//! in `vector.log`, and the identity sidecar's database (`identities.sqlite`).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::file_source::absolute;
use crate::migrate::{MigrateError, MigrateOptions};

/// Where a run's files are.
pub(super) struct Workspace {
    pub dir: PathBuf,
}

impl Workspace {
    /// The workspace at `dir`, as it is.
    pub fn at(dir: PathBuf) -> Workspace {
        Workspace { dir }
    }

    /// The workspace of the migration state `state_dir`, with its directories made.
    pub fn create(state_dir: &Path) -> Result<Workspace, MigrateError> {
        let workspace = Workspace::at(absolute(state_dir)?.join("vector"));
        for dir in [
            workspace.dir.clone(),
            workspace.data(),
            workspace.dead_letters(),
        ] {
            std::fs::create_dir_all(&dir)
                .map_err(|source| MigrateError::Write { path: dir, source })?;
        }
        Ok(workspace)
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("vector.toml")
    }
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub fn dead_letters(&self) -> PathBuf {
        self.dir.join("dead-letters")
    }
    pub fn identities(&self) -> PathBuf {
        self.dir.join("identities.sqlite")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("vector.log")
    }
    pub fn program(&self) -> PathBuf {
        self.dir.join("vrl/amplitude_to_posthog.vrl")
    }
    pub fn secrets(&self) -> PathBuf {
        self.dir.join("secrets")
    }

    /// Writes the config (rendered by [`super::config::render`]), the program and the key.
    pub fn write(&self, config: &str, options: &MigrateOptions) -> Result<(), MigrateError> {
        let write = |path: PathBuf, bytes: &[u8]| {
            crate::fs::write_atomically(&path, bytes)
                .map_err(|source| MigrateError::Write { path, source })
        };
        write(
            self.program(),
            crate::vrl_engine::MAPPING_PROGRAM.as_bytes(),
        )?;
        write(self.config(), config.as_bytes())?;
        self.write_key(&options.api_key)
    }

    /// The key: readable by this user only, never in the config or a log.
    fn write_key(&self, api_key: &str) -> Result<(), MigrateError> {
        let secrets = self.secrets();
        let key_path = secrets.join("api_key");
        let wrote = (|| {
            std::fs::create_dir_all(&secrets)?;
            std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&key_path)?;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(api_key.as_bytes())?;
            file.sync_all()
        })();
        wrote.map_err(|source| MigrateError::Write {
            path: key_path,
            source,
        })
    }
}
