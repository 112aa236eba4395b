//! Writes generated rows as Amplitude lays exports out:
//! `<project>/<project>_<YYYY-MM-DD>_<H>#<N>.json.gz` (hour not zero-padded, arbitrary
//! partition numbers, several partitions per hour), optionally also as an Export API zip.
//!
//! Like Amplitude, a member's last line may lack its newline; like every file this project
//! writes, each file still ends with one: a second gzip member holding `\n` is appended,
//! which leaves the original member's bytes untouched (Vector reads multi-member gzip since
//! 0.57, and never reads a last line without a newline).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use chrono::{DateTime, Timelike, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::GeneratedRow;

/// Where and how to write the export.
#[derive(Debug, Clone)]
pub struct ExportLayout {
    /// Directory receiving `<project>/…json.gz` files.
    pub out_dir: Option<PathBuf>,
    /// Export API style zip receiving the same members.
    pub zip: Option<PathBuf>,
    pub project_id: u64,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// `<project>/<project>_<date>_<H>#<N>.json.gz`
    pub member: String,
    pub rows: u64,
    pub bytes: u64,
}

/// One hour of rows, split over a few partitions.
struct OpenHour {
    hour: DateTime<Utc>,
    partitions: Vec<Partition>,
}

struct Partition {
    member: String,
    gzip: GzEncoder<Vec<u8>>,
    rows: u64,
    pending_newline: bool,
}

/// Writes rows (in upload order) and returns the files written, in order.
pub fn write_export(
    layout: &ExportLayout,
    rows: impl Iterator<Item = GeneratedRow>,
) -> io::Result<Vec<WrittenFile>> {
    let mut rng = ChaCha8Rng::seed_from_u64(layout.seed ^ 0x5eed_1a70_u64);
    let mut zip = match &layout.zip {
        Some(path) => {
            if let Some(parent) = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
            {
                fs::create_dir_all(parent)?;
            }
            Some(zip::ZipWriter::new(BufWriter::new(File::create(path)?)))
        }
        None => None,
    };
    let mut written = Vec::new();
    let mut current: Option<OpenHour> = None;
    for row in rows {
        let hour = row
            .upload_time
            .with_minute(0)
            .and_then(|t| t.with_second(0))
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(row.upload_time);
        if current.as_ref().map(|open| open.hour) != Some(hour) {
            if let Some(done) = current.take() {
                finish_hour(layout, done, zip.as_mut(), &mut written)?;
            }
            current = Some(open_hour(&mut rng, layout.project_id, hour));
        }
        let open = current.as_mut().expect("an hour is open");
        let index = rng.random_range(0..open.partitions.len());
        let partition = &mut open.partitions[index];
        if partition.pending_newline {
            partition.gzip.write_all(b"\n")?;
        }
        partition.gzip.write_all(&row.line)?;
        partition.pending_newline = true;
        partition.rows += 1;
    }
    if let Some(done) = current.take() {
        finish_hour(layout, done, zip.as_mut(), &mut written)?;
    }
    if let Some(zip) = zip {
        zip.finish().map_err(io::Error::other)?.flush()?;
    }
    Ok(written)
}

fn open_hour(rng: &mut ChaCha8Rng, project_id: u64, hour: DateTime<Utc>) -> OpenHour {
    let count = match rng.random_range(0..10) {
        0..=6 => 1,
        7..=8 => 2,
        _ => 3,
    };
    let mut numbers: Vec<u32> = Vec::new();
    while numbers.len() < count {
        let number = rng.random_range(0..1000);
        if !numbers.contains(&number) {
            numbers.push(number);
        }
    }
    let partitions = numbers
        .into_iter()
        .map(|number| Partition {
            member: format!(
                "{project_id}/{project_id}_{}_{}#{number}.json.gz",
                hour.format("%Y-%m-%d"),
                hour.hour()
            ),
            // Level 1: generation speed matters more than a few percent of disk.
            gzip: GzEncoder::new(Vec::new(), Compression::fast()),
            rows: 0,
            pending_newline: false,
        })
        .collect();
    OpenHour { hour, partitions }
}

fn finish_hour<W: Write + io::Seek>(
    layout: &ExportLayout,
    hour: OpenHour,
    mut zip: Option<&mut zip::ZipWriter<W>>,
    written: &mut Vec<WrittenFile>,
) -> io::Result<()> {
    let mut files: BTreeMap<String, (Vec<u8>, u64)> = BTreeMap::new();
    for partition in hour
        .partitions
        .into_iter()
        .filter(|partition| partition.rows > 0)
    {
        // Half the members end without a newline, as Amplitude's sometimes do; the fix is a
        // second member holding "\n" (decided by row count, so it is deterministic).
        let mut gzip = partition.gzip;
        let mut bytes;
        if partition.rows % 2 == 0 {
            gzip.write_all(b"\n")?;
            bytes = gzip.finish()?;
        } else {
            bytes = gzip.finish()?;
            let mut newline = GzEncoder::new(Vec::new(), Compression::fast());
            newline.write_all(b"\n")?;
            bytes.extend_from_slice(&newline.finish()?);
        }
        files.insert(partition.member, (bytes, partition.rows));
    }
    for (member, (bytes, rows)) in files {
        if let Some(dir) = &layout.out_dir {
            crate::fs::write_atomically(&dir.join(&member), &bytes)?;
        }
        if let Some(zip) = zip.as_deref_mut() {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .last_modified_time(zip::DateTime::default());
            zip.start_file(member.as_str(), options)
                .map_err(io::Error::other)?;
            zip.write_all(&bytes)?;
        }
        written.push(WrittenFile {
            member,
            rows,
            bytes: bytes.len() as u64,
        });
    }
    Ok(())
}
