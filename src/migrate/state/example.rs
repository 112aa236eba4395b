//! One example row per outcome and reason, kept for the report.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_example_row_is_cut_at_a_character_boundary() {
        let row = "é".repeat(EXAMPLE_BYTES);
        let example = Example::new("skipped", "session_marker", "f", 1, row.as_bytes());
        assert!(example.row.ends_with('…'));
        assert!(example.row.len() <= EXAMPLE_BYTES + '…'.len_utf8());
    }
}
