//! §4 Time: the event's timestamp, from the first time field that parses.

use chrono::{DateTime, Datelike, Utc};

use crate::row::AmplitudeRow;

/// The time fields, in the order they are tried.
const TIME_FIELDS: [&str; 4] = [
    "event_time",
    "client_event_time",
    "server_received_time",
    "server_upload_time",
];

/// RFC 3339 in UTC with exactly three fraction digits (truncated), `Z` suffix.
pub fn event_timestamp(row: &AmplitudeRow) -> Option<String> {
    TIME_FIELDS
        .iter()
        .find_map(|field| row.str(field).and_then(parse_amplitude_time))
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
    let shape_ok = digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && (bytes[10] == b' ' || bytes[10] == b'T')
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19);
    if !shape_ok || &bytes[0..4] == b"0000" {
        return None;
    }
    let two = |at: usize| (bytes[at] - b'0') * 10 + (bytes[at + 1] - b'0');
    if two(11) > 23 || two(14) > 59 || two(17) > 59 {
        return None;
    }
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
    let zone = match rest {
        "" | "Z" => "+00:00",
        offset => {
            let offset_bytes = offset.as_bytes();
            let valid = offset_bytes.len() == 6
                && (offset_bytes[0] == b'+' || offset_bytes[0] == b'-')
                && offset_bytes[1..3].iter().all(u8::is_ascii_digit)
                && offset_bytes[3] == b':'
                && offset_bytes[4..6].iter().all(u8::is_ascii_digit)
                && (offset_bytes[1] - b'0') * 10 + (offset_bytes[2] - b'0') <= 23
                && (offset_bytes[4] - b'0') * 10 + (offset_bytes[5] - b'0') <= 59;
            if !valid {
                return None;
            }
            offset
        }
    };
    // chrono checks the calendar, exactly as the VRL program's parse_timestamp does.
    let normalised = format!("{}T{}{}{}", &text[0..10], &text[11..19], fraction, zone);
    let parsed = DateTime::parse_from_str(&normalised, "%Y-%m-%dT%H:%M:%S%.f%:z").ok()?;
    let utc = parsed.with_timezone(&Utc);
    if !(1..=9999).contains(&utc.year()) {
        return None;
    }
    Some(utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
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
