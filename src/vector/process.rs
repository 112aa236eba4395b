//! Vector the process: found, started on the workspace's config so that it dies with this
//! process, and stopped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::VectorError;
use super::workspace::Workspace;
use crate::migrate::MigrateError;

/// Vector from `VECTOR_BIN`, else `vector` on `PATH`.
pub fn find_vector() -> Option<PathBuf> {
    std::env::var_os("VECTOR_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("vector"))
                .find(|candidate| candidate.is_file())
        })
}

/// Starts Vector on the workspace's config; it dies with this process.
pub(super) fn start(
    vector: &Path,
    workspace: &Workspace,
    live_project: bool,
) -> Result<Child, VectorError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(workspace.log())
        .map_err(|source| MigrateError::Write {
            path: workspace.log(),
            source,
        })?;
    let log_err = log.try_clone().map_err(|source| MigrateError::Write {
        path: workspace.log(),
        source,
    })?;
    let mut command = Command::new(vector);
    command
        .arg("--config")
        .arg(workspace.config())
        .current_dir(&workspace.dir)
        // vector.toml's `posthog_day` reads it (MAPPING.md §8, live mode); set either way, so
        // the caller's environment never decides.
        .env(
            "AMPLITUDE_POSTHOG_LIVE_PROJECT",
            if live_project { "true" } else { "false" },
        )
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGKILL the child when
    // this process dies, so a killed supervisor never leaves a Vector holding the data dir.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().map_err(|source| VectorError::Start {
        path: vector.to_path_buf(),
        source,
    })
}

/// SIGTERM, then a few seconds for Vector to flush and exit, then SIGKILL: a sink that keeps
/// retrying (PostHog refusing the key) would hold Vector's shutdown for a minute, and a kill
/// loses nothing (acknowledged events are in the disk buffers, the rest is re-read).
pub(super) fn stop(child: &mut Child) {
    // SAFETY: kill with a valid pid of our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}
