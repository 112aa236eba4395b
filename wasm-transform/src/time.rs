//! §4 Time: the event's timestamp, from the first time field that parses.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};

use crate::row::{AmplitudeRow, Field};

/// The time fields, in the order they are tried.
const TIME_FIELDS: [Field; 4] = [
    Field::EventTime,
    Field::ClientEventTime,
    Field::ServerReceivedTime,
    Field::ServerUploadTime,
];

/// RFC 3339 in UTC with exactly three fraction digits (truncated), `Z` suffix.
pub fn event_timestamp(row: &AmplitudeRow) -> Option<String> {
    TIME_FIELDS
        .iter()
        .find_map(|field| row.str(*field).and_then(parse_amplitude_time))
}

/// The UTC day (`YYYY-MM-DD`) of a time in the form [`event_timestamp`] gives: its first ten
/// characters (its year always has four digits); `None` for text too short to be one.
pub fn utc_day(timestamp: &str) -> Option<&str> {
    timestamp.get(..10)
}

/// Accepts `YYYY-MM-DD[ T]HH:MM:SS[.f{1,9}][Z|±HH:MM]`, ASCII digits only, a real date and
/// time (hours 00–23, minutes and seconds 00–59), years 0001–9999 before and after the offset
/// is applied. Offsets are `±HH:MM` with HH 00–23 (docs/MAPPING_DECISIONS.md).
pub fn parse_amplitude_time(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    if bytes.len() < 19 {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    let date_ok = digits(0..4)
        && &bytes[0..4] != b"0000"
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10);
    let time_ok = (bytes[10] == b' ' || bytes[10] == b'T')
        && bytes[13] == b':'
        && bytes[16] == b':'
        && [(11, 23), (14, 59), (17, 59)]
            .iter()
            .all(|&(at, max)| two_digits(bytes, at, max).is_some());
    if !date_ok || !time_ok {
        return None;
    }
    // Month and day are checked as digits above; chrono checks their range.
    let two = |at: usize| two_digits(bytes, at, 99).unwrap_or(0);
    let mut rest = &text[19..];
    let mut fraction = "";
    if let Some(after_dot) = rest.strip_prefix('.') {
        let count = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if count == 0 || count > 9 {
            return None;
        }
        fraction = &rest[..=count];
        rest = &after_dot[count..];
    }
    let offset_seconds = match rest {
        "" | "Z" => 0,
        offset => {
            let offset_bytes = offset.as_bytes();
            let sign = match offset_bytes.first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            if offset_bytes.len() != 6 || offset_bytes[3] != b':' {
                return None;
            }
            let hours = two_digits(offset_bytes, 1, 23)?;
            let minutes = two_digits(offset_bytes, 4, 59)?;
            sign * (i64::from(hours) * 3600 + i64::from(minutes) * 60)
        }
    };
    // The calendar check (February 30th, …) is chrono's, as in the VRL program's parse.
    let year = text[0..4].parse().ok()?;
    let date = NaiveDate::from_ymd_opt(year, u32::from(two(5)), u32::from(two(8)))?;
    let nanos = fraction.get(1..).map_or(0, |digits| {
        digits.parse::<u32>().unwrap_or(0) * 10_u32.pow(9 - digits.len() as u32)
    });
    let time = NaiveTime::from_hms_nano_opt(
        u32::from(two(11)),
        u32::from(two(14)),
        u32::from(two(17)),
        nanos,
    )?;
    let utc =
        NaiveDateTime::new(date, time).checked_sub_signed(TimeDelta::seconds(offset_seconds))?;
    if !(1..=9999).contains(&utc.year()) {
        return None;
    }
    // Milliseconds are truncated, never rounded.
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        utc.year(),
        utc.month(),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.nanosecond() / 1_000_000
    ))
}

/// The two ASCII digits at `at` as a number, when they are digits and at most `max`.
fn two_digits(bytes: &[u8], at: usize, max: u8) -> Option<u8> {
    match bytes.get(at..at + 2)? {
        [tens @ b'0'..=b'9', units @ b'0'..=b'9'] => {
            Some((tens - b'0') * 10 + (units - b'0')).filter(|value| *value <= max)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_amplitude_time as parse;

    #[test]
    fn rule_4_accepts_every_documented_variant() {
        assert_eq!(
            parse("2024-07-06 12:34:56.789999").as_deref(),
            Some("2024-07-06T12:34:56.789Z")
        );
        assert_eq!(
            parse("2024-07-06T12:34:56").as_deref(),
            Some("2024-07-06T12:34:56.000Z")
        );
        assert_eq!(
            parse("2024-07-06T12:34:56.5Z").as_deref(),
            Some("2024-07-06T12:34:56.500Z")
        );
        assert_eq!(
            parse("2024-12-31 20:30:00-05:30").as_deref(),
            Some("2025-01-01T02:00:00.000Z")
        );
        assert_eq!(
            parse("2024-07-06 12:34:56.123456789").as_deref(),
            Some("2024-07-06T12:34:56.123Z")
        );
    }

    #[test]
    fn rule_4_refuses_what_is_not_a_real_time() {
        for bad in [
            "2024-02-30 10:00:00",
            "2024-07-06 24:00:00",
            "2024-06-30 23:59:60",
            "2024-07-06t12:34:56",
            "2024-07-06 12:34:56z",
            "0000-01-01 00:00:00",
            "2024-07-06 12:34:56.1234567891",
            "2024-07-06 12:34:56.",
            "2024-07-06 12:34:56+24:00",
            "2024-07-06 12:34:56+0200",
            "0001-01-01T00:30:00+01:00",
            "2024-07-06",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
