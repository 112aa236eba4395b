//! The file-system helpers every command shares: crash-safe writes, gzip detection, walking a
//! directory tree. One home each, so every writer gets the same guarantees.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The first two bytes of every gzip member (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether bytes (the start of a file or body) are gzip. Vector's `file` source decides the
/// same way, by magic bytes, whatever a file is called.
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&GZIP_MAGIC)
}

/// Whether the file at `path` starts like gzip.
pub fn is_gzip_file(path: &Path) -> io::Result<bool> {
    let mut head = Vec::with_capacity(GZIP_MAGIC.len());
    File::open(path)?
        .take(GZIP_MAGIC.len() as u64)
        .read_to_end(&mut head)?;
    Ok(is_gzip(&head))
}

/// Creates `dir` (and its missing parents) readable by its owner only (0700), as a migration
/// state must be: it holds rows of the export (dead letters, examples). An existing
/// directory is left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes `bytes` to `path` so that a crash at any moment leaves either the old file or the
/// new one, whole, and a reader (a watching Vector) never sees a partial file: the bytes go to
/// a temporary name beside the target (`<name>.partial`), are flushed to disk, renamed over
/// the target, and the directory entry is flushed too. Creates missing parent directories.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with(path, |writer| writer.write_all(bytes))
}

/// [`write_atomically`] for content too large to hold in memory: `write` streams it into a
/// buffered writer of the temporary file.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent)?;
    let mut temporary_name = path.file_name().unwrap_or_default().to_os_string();
    temporary_name.push(".partial");
    let temporary = parent.join(temporary_name);
    {
        let mut writer = io::BufWriter::new(File::create(&temporary)?);
        write(&mut writer)?;
        let file = writer
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
    }
    fs::rename(&temporary, path)?;
    sync_directory(parent)
}

/// Flushes a directory's entries (a rename or a new file) to disk.
pub fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A directory or file that could not be read while walking a tree.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct WalkError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Every regular file under `root` (at any depth, following symbolic links to files and
/// directories, each directory once however many links lead to it), in export order (see
/// [`crate::export_order`]: Amplitude's names by date, hour and partition). A file
/// given as `root` is returned alone. The first entry that cannot be read is the error.
pub fn walk_files(root: &Path) -> Result<Vec<PathBuf>, WalkError> {
    let (files, mut unreadable) = walk_files_reporting(root)?;
    match unreadable.is_empty() {
        true => Ok(files),
        false => Err(unreadable.remove(0)),
    }
}

/// [`walk_files`], but an entry under `root` that cannot be read (a dangling link, a link
/// loop, a directory without permission) is returned beside the files instead of ending the
/// walk. Only an unreadable `root` is an error.
pub fn walk_files_reporting(root: &Path) -> Result<(Vec<PathBuf>, Vec<WalkError>), WalkError> {
    use std::os::unix::fs::MetadataExt;
    let error_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WalkError { path, source }
    };
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    let mut visited = std::collections::HashSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let is_root = path == root;
        let metadata = match fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if is_root => return Err(error_at(&path)(error)),
            Err(error) => {
                unreadable.push(error_at(&path)(error));
                continue;
            }
        };
        if metadata.is_file() {
            files.push(path);
        } else if metadata.is_dir() && visited.insert((metadata.dev(), metadata.ino())) {
            let entries = match fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(error) if is_root => return Err(error_at(&path)(error)),
                Err(error) => {
                    unreadable.push(error_at(&path)(error));
                    continue;
                }
            };
            for entry in entries {
                match entry {
                    Ok(entry) => pending.push(entry.path()),
                    Err(error) => unreadable.push(error_at(&path)(error)),
                }
            }
        }
    }
    crate::export_order::sort_paths(&mut files);
    Ok((files, unreadable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomically_replaces_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/manifest.json");
        write_atomically(&path, b"first").expect("written");
        write_atomically(&path, b"second").expect("rewritten");
        assert_eq!(fs::read(&path).expect("readable"), b"second");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["manifest.json"]);
    }

    #[test]
    fn gzip_is_known_by_its_magic_bytes() {
        assert!(is_gzip(&[0x1f, 0x8b, 8]));
        assert!(!is_gzip(b"{\"event_type\""));
        assert!(!is_gzip(&[0x1f]));
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.json.gz");
        fs::write(&empty, b"").unwrap();
        assert!(!is_gzip_file(&empty).unwrap());
    }

    #[test]
    fn walk_files_finds_files_at_every_depth_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["b/2.json.gz", "a/1.json", "a/deeper/3.txt", "0.json"] {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"x").unwrap();
        }
        let found: Vec<String> = walk_files(dir.path())
            .unwrap()
            .iter()
            .map(|path| path.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            found,
            ["0.json", "a/1.json", "a/deeper/3.txt", "b/2.json.gz"]
        );
        let missing = walk_files(&dir.path().join("missing")).unwrap_err();
        assert!(missing.to_string().starts_with("cannot read "), "{missing}");
    }
}
