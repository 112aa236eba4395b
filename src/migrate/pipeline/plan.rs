//! Which files to read in this run, and from which line: the state's watermark of each file,
//! and the problems of the files that cannot be read or changed since the migration started.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::super::MigrateError;
use super::super::progress::Progress;
use super::super::state::State;
use super::super::tracker::FileId;
use crate::input::{InputError, InputSource};

/// One input file to read in this run.
pub(super) struct Plan {
    pub(super) file: FileId,
    pub(super) source: InputSource,
    pub(super) name: Arc<str>,
    pub(super) size: u64,
    /// Lines already done (read again but not mapped).
    pub(super) skip_lines: u64,
    pub(super) first_chunk: u64,
}

/// Files with a problem: (the state's id, or a negative one for a file it does not know;
/// the problem as told to the user).
pub(super) type Problems = Vec<(FileId, String)>;

/// Which files to read and from where; problems with the others.
pub(super) fn plan(
    sources: &[InputSource],
    state: Option<&State>,
) -> Result<(Vec<Plan>, Problems), MigrateError> {
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    let mut zips: HashMap<std::path::PathBuf, Vec<crate::zip_member::ZipMember>> = HashMap::new();
    for (position, source) in sources.iter().enumerate() {
        let name = source.display_name();
        let (size, fingerprint) = match fingerprint(source, &mut zips) {
            Ok(found) => found,
            Err(error) => {
                problems.push((
                    -1 - position as FileId,
                    format!("cannot read {name}: {error}"),
                ));
                continue;
            }
        };
        let Some(state) = state else {
            plans.push(Plan {
                file: position as FileId,
                source: source.clone(),
                name: name.into(),
                size,
                skip_lines: 0,
                first_chunk: 0,
            });
            continue;
        };
        let record = state.file(
            super::super::state::SourceKey::of(source),
            size,
            &fingerprint,
        )?;
        state.set_problem(record.id, None)?;
        if record.size != size || record.fingerprint != fingerprint {
            problems.push((
                record.id,
                format!(
                    "{name} changed since the migration started ({} bytes then, {size} now): it is left alone; \
                     put the original back, or migrate the new file with another --state",
                    record.size
                ),
            ));
            continue;
        }
        if record.finished {
            continue;
        }
        plans.push(Plan {
            file: record.id,
            source: source.clone(),
            name: name.into(),
            size,
            skip_lines: record.rows_done,
            first_chunk: record.chunks_done,
        });
    }
    Ok((plans, problems))
}

/// A file's size and fingerprint: SHA-256 of its first and last 64 KiB (a zip member: the
/// zip's CRC-32 of it).
fn fingerprint(
    source: &InputSource,
    zips: &mut HashMap<std::path::PathBuf, Vec<crate::zip_member::ZipMember>>,
) -> std::io::Result<(u64, String)> {
    match source {
        InputSource::File(path) => {
            let mut file = std::fs::File::open(path)?;
            let size = file.metadata()?.len();
            let mut hasher = Sha256::new();
            let mut head = Vec::with_capacity(64 * 1024);
            (&mut file).take(64 * 1024).read_to_end(&mut head)?;
            hasher.update(&head);
            if size > 128 * 1024 {
                use std::io::{Seek, SeekFrom};
                file.seek(SeekFrom::Start(size - 64 * 1024))?;
                let mut tail = Vec::with_capacity(64 * 1024);
                file.take(64 * 1024).read_to_end(&mut tail)?;
                hasher.update(&tail);
            }
            Ok((
                size,
                format!("sha256:{}", hex::encode(&hasher.finalize()[..16])),
            ))
        }
        InputSource::ZipMember { zip, member } => {
            if !zips.contains_key(zip) {
                zips.insert(zip.clone(), crate::zip_member::list(zip)?);
            }
            let found = zips[zip]
                .iter()
                .find(|candidate| &candidate.name == member)
                .ok_or_else(|| std::io::Error::other(format!("no member {member}")))?;
            Ok((found.size, format!("crc32:{:08x}", found.crc32)))
        }
        InputSource::Stdin => Err(std::io::Error::other(
            "standard input cannot be migrated resumably; give files or directories",
        )),
    }
}

/// Reports every problem, records in the state those of files it knows, and returns the others
/// (a file that cannot even be opened only exists in this run) as `(file, problem)`.
pub(super) fn record_problems(
    unreadable: Vec<InputError>,
    problems: &Problems,
    state: Option<&State>,
    progress: &Progress,
) -> Result<Vec<(String, String)>, MigrateError> {
    let mut unregistered: Vec<(String, String)> = unreadable
        .into_iter()
        .map(|error| (String::new(), error.to_string()))
        .collect();
    for (_, problem) in &unregistered {
        progress.println(problem);
    }
    for (file, problem) in problems {
        progress.println(problem);
        match state {
            Some(state) if *file >= 0 => state.set_problem(*file, Some(problem))?,
            _ => unregistered.push((String::new(), problem.clone())),
        }
    }
    Ok(unregistered)
}
