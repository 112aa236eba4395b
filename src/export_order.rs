//! The order an export is read in: by what its file names mean, not as text.
//!
//! Amplitude names export files `<project>_<YYYY-MM-DD>_<H>#<N>.json.gz` — the hour of upload
//! unpadded, then a partition number — so sorting paths as text reads hours 10–19 of a day
//! before hour 2. PostHog asks for history in timestamp order (posthog.com, docs/migrate,
//! "Best practices for migrations"), and its own importer sorts such names naturally. Here:
//!
//! 1. files named as Amplitude names them, by date, then hour, then partition (as numbers),
//!    wherever they are (one directory per month, a zip per day…), then by path;
//! 2. then every other file, by path in natural order (runs of digits compare as numbers:
//!    `part2` before `part10`).
//!
//! Every lister of export files (`migrate`, `map`, `prepare`, `resume`, the report's count,
//! zip members) orders through [`sort_paths`] or [`compare_names`].

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

/// What an Amplitude export file's name says: upload date, hour and partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExportName {
    /// `YYYY-MM-DD` as a number: `20240105`.
    pub date: u32,
    pub hour: u32,
    pub partition: u32,
}

impl ExportName {
    /// Reads `<project>_<YYYY-MM-DD>_<H>#<N>` (then any extension) from a file name; `None`
    /// for any other name.
    pub fn parse(file_name: &str) -> Option<ExportName> {
        let stem = file_name.split('.').next()?;
        let (rest, partition) = stem.rsplit_once('#')?;
        let (rest, hour) = rest.rsplit_once('_')?;
        let (project, date) = rest.rsplit_once('_')?;
        let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        if project.is_empty() || !digits(hour) || !digits(partition) || hour.len() > 2 {
            return None;
        }
        let parts: Vec<&str> = date.split('-').collect();
        let [year, month, day] = parts.as_slice() else {
            return None;
        };
        if year.len() != 4 || month.len() != 2 || day.len() != 2 {
            return None;
        }
        if ![year, month, day].iter().all(|part| digits(part)) {
            return None;
        }
        let number = |text: &str| text.parse::<u32>().ok();
        Some(ExportName {
            date: number(year)? * 10_000 + number(month)? * 100 + number(day)?,
            hour: number(hour)?,
            partition: number(partition)?,
        })
    }
}

/// The export order of two names or paths (`/` separated, as zip members are).
pub fn compare_names(a: &str, b: &str) -> Ordering {
    let key = |name: &str| ExportName::parse(name.rsplit('/').next().unwrap_or(name));
    match (key(a), key(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| natord::compare(a, b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => natord::compare(a, b),
    }
}

/// The export order of two paths.
fn compare_paths(a: &Path, b: &Path) -> Ordering {
    compare_names(&a.to_string_lossy(), &b.to_string_lossy()).then_with(|| a.cmp(b))
}

/// Sorts paths into export order.
pub fn sort_paths(paths: &mut [PathBuf]) {
    paths.sort_by(|a, b| compare_paths(a, b));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amplitude_names_are_read_as_date_hour_and_partition() {
        assert_eq!(
            ExportName::parse("187520_2024-01-05_2#10.json.gz"),
            Some(ExportName {
                date: 20240105,
                hour: 2,
                partition: 10
            })
        );
        assert_eq!(
            ExportName::parse("my_project_2024-01-05_23#0.json"),
            Some(ExportName {
                date: 20240105,
                hour: 23,
                partition: 0
            })
        );
        for other in [
            "export.json.gz",
            "187520_2024-1-05_2#0.json.gz",
            "187520_2024-01-05_x#0.json.gz",
            "_2024-01-05_2#0.json.gz",
            "187520_2024-01-05_2.json.gz",
            "187520_2024-01-05_123#0.json.gz",
        ] {
            assert_eq!(ExportName::parse(other), None, "{other}");
        }
    }

    #[test]
    fn a_day_of_hourly_files_is_read_in_hour_order_not_text_order() {
        let mut paths: Vec<PathBuf> = (0..24)
            .rev()
            .flat_map(|hour| {
                [1, 0].map(|part| {
                    PathBuf::from(format!("x/187520/187520_2024-01-05_{hour}#{part}.json.gz"))
                })
            })
            .collect();
        paths.push(PathBuf::from("a/187520_2024-01-06_0#0.json.gz"));
        paths.push(PathBuf::from("z/187520_2024-01-04_23#0.json.gz"));
        sort_paths(&mut paths);
        let names: Vec<String> = paths
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names[0], "187520_2024-01-04_23#0.json.gz");
        assert_eq!(names[1], "187520_2024-01-05_0#0.json.gz");
        assert_eq!(names[2], "187520_2024-01-05_0#1.json.gz");
        assert_eq!(names[5], "187520_2024-01-05_2#0.json.gz");
        assert_eq!(names[21], "187520_2024-01-05_10#0.json.gz");
        assert_eq!(names.last().unwrap(), "187520_2024-01-06_0#0.json.gz");
    }

    #[test]
    fn other_names_follow_in_natural_order() {
        let mut paths: Vec<PathBuf> = [
            "b/part10.json",
            "b/part2.json",
            "a.json",
            "1_2024-01-01_0#0.json",
        ]
        .map(PathBuf::from)
        .to_vec();
        sort_paths(&mut paths);
        assert_eq!(
            paths,
            [
                "1_2024-01-01_0#0.json",
                "a.json",
                "b/part2.json",
                "b/part10.json"
            ]
            .map(PathBuf::from)
        );
    }
}
