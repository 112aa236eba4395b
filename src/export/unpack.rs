//! Extracts Amplitude export zips (Export API responses and org-settings downloads) into the
//! directory Vector reads: only `*.json.gz` members, names sanitised (no path traversal, no
//! absolute paths), each written under a temporary name and renamed into place so a watching
//! Vector never sees a half-written file, and each ending with a newline (a member whose last
//! line lacks one gets a second gzip member holding `\n`, which leaves its bytes untouched).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// One extracted file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExtractedFile {
    /// Relative to the output directory, e.g. `187520/187520_2024-01-01_5#70.json.gz`.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    /// SHA-256 of the file as written.
    pub sha256: String,
}

/// What an extraction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extraction {
    pub files: Vec<ExtractedFile>,
    /// Members that are not `.json.gz` (ignored).
    pub ignored: Vec<String>,
    /// Members whose names would escape the output directory (refused, nothing written).
    pub refused: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("{0} is not a valid zip: {1}")]
    BrokenZip(PathBuf, #[source] io::Error),
    #[error("member {member} of {zip} is not valid gzip: {source}")]
    BrokenMember {
        zip: PathBuf,
        member: String,
        source: io::Error,
    },
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, io::Error),
}

/// A member name made safe: relative, no `..`, no root, no drive; `None` if it would escape.
pub fn safe_member_path(name: &str) -> Option<PathBuf> {
    let normalised = name.replace('\\', "/");
    let path = Path::new(&normalised);
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!clean.as_os_str().is_empty()).then_some(clean)
}

/// Extracts `zip_path` into `out_dir`.
pub fn unpack_zip(zip_path: &Path, out_dir: &Path) -> Result<Extraction, UnpackError> {
    let broken = |error: io::Error| UnpackError::BrokenZip(zip_path.to_path_buf(), error);
    let mut archive = crate::zip_member::archive(zip_path).map_err(broken)?;
    let mut extraction = Extraction::default();
    // Members in export order, so the files are written (and a watching Vector, which reads
    // files by creation time, finds them) oldest first.
    let mut order: Vec<(usize, String)> = (0..archive.len())
        .filter_map(|index| Some((index, archive.name_for_index(index)?.to_owned())))
        .collect();
    order.sort_by(|(_, a), (_, b)| crate::export_order::compare_names(a, b));
    for (index, _) in order {
        let mut member = archive
            .by_index(index)
            .map_err(|error| broken(crate::zip_member::invalid(error)))?;
        let name = member.name().to_owned();
        if member.is_dir() {
            continue;
        }
        if !name.ends_with(".json.gz") {
            extraction.ignored.push(name);
            continue;
        }
        let Some(relative) = safe_member_path(&name) else {
            extraction.refused.push(name);
            continue;
        };
        let target = out_dir.join(&relative);
        let written = write_member(&mut member, &target).map_err(|error| match error {
            MemberError::Io(error) => UnpackError::Write(target.clone(), error),
            MemberError::Gzip(source) => UnpackError::BrokenMember {
                zip: zip_path.to_path_buf(),
                member: name.clone(),
                source,
            },
        })?;
        extraction.files.push(ExtractedFile {
            path: relative.to_string_lossy().replace('\\', "/"),
            ..written
        });
    }
    Ok(extraction)
}

/// Why a member cannot be extracted: the output cannot be written, or the member is not gzip.
enum MemberError {
    Io(io::Error),
    Gzip(io::Error),
}

/// Copies one member to `<target>.partial`, checks it decompresses, appends a newline member
/// when its last line lacks one, then renames it into place.
fn write_member(member: &mut impl Read, target: &Path) -> Result<ExtractedFile, MemberError> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(MemberError::Io)?;
    }
    let partial = target.with_file_name(format!(
        "{}.partial",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let mut file = File::create(&partial).map_err(MemberError::Io)?;
    io::copy(member, &mut file).map_err(MemberError::Io)?;
    file.flush().map_err(MemberError::Io)?;
    // Decompress it once: rows, and whether the last line ends with a newline.
    let facts = crate::export_file::scan_path(&partial).map_err(|error| {
        let _ = fs::remove_file(&partial);
        MemberError::Gzip(error)
    })?;
    if !facts.ends_with_newline {
        file.write_all(&crate::export_file::newline_member().map_err(MemberError::Io)?)
            .map_err(MemberError::Io)?;
    }
    let rows = facts.rows;
    file.sync_all().map_err(MemberError::Io)?;
    drop(file);
    let (bytes, sha256) = digest(&partial).map_err(MemberError::Io)?;
    fs::rename(&partial, target).map_err(MemberError::Io)?;
    Ok(ExtractedFile {
        path: String::new(),
        rows,
        bytes,
        sha256,
    })
}

fn digest(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let bytes = io::copy(&mut file, &mut hasher)?;
    Ok((bytes, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_cannot_escape() {
        assert_eq!(
            safe_member_path("187520/187520_2024-01-01_5#70.json.gz"),
            Some(PathBuf::from("187520/187520_2024-01-01_5#70.json.gz"))
        );
        assert_eq!(
            safe_member_path("./a/b.json.gz"),
            Some(PathBuf::from("a/b.json.gz"))
        );
        assert_eq!(safe_member_path("../evil.json.gz"), None);
        assert_eq!(safe_member_path("a/../../evil.json.gz"), None);
        assert_eq!(safe_member_path("/etc/evil.json.gz"), None);
        assert_eq!(safe_member_path("..\\evil.json.gz"), None);
        assert_eq!(safe_member_path(""), None);
    }
}
