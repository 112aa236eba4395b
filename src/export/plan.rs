//! Export windows: hour-aligned, inclusive of their last hour (as the Export API's `end`),
//! adjacent windows never overlapping, never later than two hours before now (Amplitude makes
//! data exportable about two hours after it arrived).

use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};

/// Hours `first ..= last`, both UTC hour starts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ExportWindow {
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

impl ExportWindow {
    pub fn hours(&self) -> i64 {
        (self.last - self.first).num_hours() + 1
    }

    /// The API's `start` and `end` parameters (`YYYYMMDDTHH`, end hour included).
    pub fn query(&self) -> (String, String) {
        (
            self.first.format("%Y%m%dT%H").to_string(),
            self.last.format("%Y%m%dT%H").to_string(),
        )
    }

    /// Two halves, for a window the API found too large; `None` for a single hour.
    pub fn halves(&self) -> Option<(ExportWindow, ExportWindow)> {
        let hours = self.hours();
        if hours < 2 {
            return None;
        }
        let middle = self.first + Duration::hours(hours / 2);
        Some((
            ExportWindow {
                first: self.first,
                last: middle - Duration::hours(1),
            },
            ExportWindow {
                first: middle,
                last: self.last,
            },
        ))
    }

    /// A stable name for manifests and logs.
    pub fn key(&self) -> String {
        format!(
            "{}..{}",
            self.first.format("%Y-%m-%dT%H"),
            self.last.format("%Y-%m-%dT%H")
        )
    }
}

impl fmt::Display for ExportWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to {} ({} h)",
            self.first.format("%Y-%m-%d %H:00"),
            self.last.format("%Y-%m-%d %H:59"),
            self.hours()
        )
    }
}

/// Parses `YYYY-MM-DDTHH` as a UTC hour.
pub fn parse_hour(text: &str) -> Result<DateTime<Utc>, String> {
    NaiveDateTime::parse_from_str(&format!("{text}:00:00"), "%Y-%m-%dT%H:%M:%S")
        .map(|naive| naive.and_utc())
        .map_err(|_| format!("{text:?} is not an hour in the form YYYY-MM-DDTHH"))
}

/// Windows of `window_hours` covering `first ..= last` (hours), cut at `now - 2h`.
pub fn plan(
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    window_hours: i64,
    now: DateTime<Utc>,
) -> Result<Vec<ExportWindow>, String> {
    let latest = hour_start(now) - Duration::hours(3);
    let last = last.min(latest);
    if last < first {
        return Err(format!(
            "nothing to export: the range ends before it starts or within the last two hours (latest exportable hour: {})",
            latest.format("%Y-%m-%dT%H")
        ));
    }
    let mut windows = Vec::new();
    let mut start = first;
    while start <= last {
        // Windows of 24 h start at midnight, 6 h ones at 0, 6, 12, 18: aligned to the window size.
        let aligned_end = start - Duration::hours(i64::from(start.hour()) % window_hours)
            + Duration::hours(window_hours - 1);
        let end = aligned_end.min(last);
        windows.push(ExportWindow {
            first: start,
            last: end,
        });
        start = end + Duration::hours(1);
    }
    Ok(windows)
}

fn hour_start(time: DateTime<Utc>) -> DateTime<Utc> {
    time.with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(text: &str) -> DateTime<Utc> {
        parse_hour(text).expect("valid")
    }

    #[test]
    fn windows_are_aligned_inclusive_and_do_not_overlap() {
        let now = hour("2024-03-10T12");
        let windows = plan(hour("2024-03-01T05"), hour("2024-03-03T02"), 24, now).expect("plan");
        assert_eq!(windows[0].key(), "2024-03-01T05..2024-03-01T23");
        assert_eq!(windows[1].key(), "2024-03-02T00..2024-03-02T23");
        assert_eq!(windows[2].key(), "2024-03-03T00..2024-03-03T02");
        for pair in windows.windows(2) {
            assert_eq!(pair[0].last + Duration::hours(1), pair[1].first);
        }
        assert_eq!(
            windows[1].query(),
            ("20240302T00".to_owned(), "20240302T23".to_owned())
        );
    }

    #[test]
    fn never_later_than_two_hours_before_now() {
        let windows = plan(
            hour("2024-03-10T00"),
            hour("2024-03-20T00"),
            6,
            hour("2024-03-10T12"),
        )
        .expect("plan");
        assert_eq!(windows.last().expect("some").last, hour("2024-03-10T09"));
    }

    #[test]
    fn halves_reach_single_hours() {
        let window = ExportWindow {
            first: hour("2024-03-01T00"),
            last: hour("2024-03-01T23"),
        };
        let (a, b) = window.halves().expect("split");
        assert_eq!(
            (a.key().as_str(), b.key().as_str()),
            (
                "2024-03-01T00..2024-03-01T11",
                "2024-03-01T12..2024-03-01T23"
            )
        );
        let single = ExportWindow {
            first: hour("2024-03-01T05"),
            last: hour("2024-03-01T05"),
        };
        assert!(single.halves().is_none());
    }
}
