//! Reading the `*.json.gz` members of an Amplitude export zip in place, without extracting
//! them: the zip's central directory lists them, and each member is read as a stream of its
//! own (its stored or deflated bytes straight from the file), so any number of members can be
//! read one after another with flat memory.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use zip::CompressionMethod;

/// One export member of a zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipMember {
    /// The name as stored in the zip (shown to the user, never used as a path).
    pub name: String,
    /// Bytes of the member once unzipped (the gzip file's size).
    pub size: u64,
    /// The zip's CRC-32 of those bytes: with the size, the member's fingerprint.
    pub crc32: u32,
}

/// Members whose names end with `.json.gz`, in the zip's order.
pub fn list(zip: &Path) -> io::Result<Vec<ZipMember>> {
    let mut archive = archive(zip)?;
    let mut members = Vec::new();
    for index in 0..archive.len() {
        let member = archive.by_index_raw(index).map_err(invalid)?;
        if member.is_file() && member.name().ends_with(".json.gz") {
            members.push(ZipMember {
                name: member.name().to_owned(),
                size: member.size(),
                crc32: member.crc32(),
            });
        }
    }
    Ok(members)
}

/// The zip's central directory.
pub(crate) fn archive(zip: &Path) -> io::Result<zip::ZipArchive<BufReader<File>>> {
    zip::ZipArchive::new(BufReader::new(File::open(zip)?)).map_err(invalid)
}

/// A zip that is not what it should be, as an I/O error (keeping the cause).
pub(crate) fn invalid(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// The unzipped bytes of the member called `name` (still gzip: the caller decompresses).
pub fn open(zip: &Path, name: &str) -> io::Result<Box<dyn Read + Send>> {
    let (start, compressed, method) = {
        let mut archive = archive(zip)?;
        let mut found = None;
        for index in 0..archive.len() {
            let member = archive.by_index_raw(index).map_err(invalid)?;
            if member.name() == name {
                found = Some((
                    member.data_start(),
                    member.compressed_size(),
                    member.compression(),
                ));
                break;
            }
        }
        found.ok_or_else(|| invalid(format!("the zip has no member {name:?}")))?
    };
    let mut file = File::open(zip)?;
    file.seek(SeekFrom::Start(start))?;
    let raw = BufReader::with_capacity(256 * 1024, file).take(compressed);
    match method {
        CompressionMethod::Stored => Ok(Box::new(raw)),
        CompressionMethod::Deflated => Ok(Box::new(flate2::read::DeflateDecoder::new(raw))),
        other => Err(invalid(format!(
            "member {name:?} uses {other:?} compression; only stored and deflated members are read"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn members_are_listed_and_read_in_place_stored_or_deflated() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("export.zip");
        let mut writer = zip::ZipWriter::new(File::create(&path).expect("create"));
        for (name, method) in [
            ("187520/a.json.gz", CompressionMethod::Stored),
            ("187520/b.json.gz", CompressionMethod::Deflated),
            ("187520/notes.txt", CompressionMethod::Stored),
        ] {
            writer
                .start_file(
                    name,
                    zip::write::SimpleFileOptions::default().compression_method(method),
                )
                .expect("member");
            writer
                .write_all(name.repeat(100).as_bytes())
                .expect("write");
        }
        writer.finish().expect("zip");
        let members = list(&path).expect("listed");
        assert_eq!(
            members
                .iter()
                .map(|member| member.name.as_str())
                .collect::<Vec<_>>(),
            ["187520/a.json.gz", "187520/b.json.gz"]
        );
        for member in &members {
            let mut text = String::new();
            open(&path, &member.name)
                .expect("opens")
                .read_to_string(&mut text)
                .expect("reads");
            assert_eq!(text, member.name.repeat(100));
            assert_eq!(member.size, text.len() as u64);
        }
        assert!(open(&path, "missing.json.gz").is_err());
    }
}
