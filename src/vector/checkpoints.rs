//! Vector's `file` source checkpoints: how far it has read each file, in decompressed bytes.
//!
//! They live in `<data_dir>/<source id>/checkpoints.json`:
//! `{"version":"1","checkpoints":[{"fingerprint":{"dev_inode":[dev,ino]},"position":N,"modified":"…"}]}`.
//! Only `dev_inode` entries are read here; entries of other shapes are someone else's.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Where the file source `source_id` of a Vector with `data_dir` keeps its checkpoints.
pub fn file(data_dir: &Path, source_id: &str) -> PathBuf {
    data_dir.join(source_id).join("checkpoints.json")
}

/// The positions in a `checkpoints.json` by (device, inode); entries of other shapes are left
/// out.
pub fn positions(checkpoints_file: &Path) -> io::Result<BTreeMap<(u64, u64), u64>> {
    let document: Value = serde_json::from_str(&std::fs::read_to_string(checkpoints_file)?)?;
    Ok(document
        .get("checkpoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(dev_inode_checkpoint)
        .map(|(device, inode, position)| ((device, inode), position))
        .collect())
}

/// `(device, inode, position)` of a `dev_inode` checkpoint.
pub(crate) fn dev_inode_checkpoint(entry: &Value) -> Option<(u64, u64, u64)> {
    let pair = entry.get("fingerprint")?.get("dev_inode")?.as_array()?;
    match (
        pair.first()?.as_u64(),
        pair.get(1)?.as_u64(),
        entry.get("position")?.as_u64(),
    ) {
        (Some(device), Some(inode), Some(position)) if pair.len() == 2 => {
            Some((device, inode, position))
        }
        _ => None,
    }
}
