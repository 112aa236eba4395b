//! A row's times: how long before its upload an event happened, and the time fields in the
//! forms real exports hold them.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use rand::Rng;
use serde_json::{Value, json};

use super::row::RowObject;
use super::text::pick;

/// Amplitude's export time format: UTC, no zone, six fraction digits.
const EXPORT_TIME: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// Time fields: the main one in one of the variants exports contain, then the upload times.
pub(super) fn set_times(
    rng: &mut impl Rng,
    row: &mut RowObject,
    event_time: DateTime<Utc>,
    upload_time: DateTime<Utc>,
) {
    let (event_time_value, client_time_value) = time_variants(rng, event_time);
    row.set("event_time", event_time_value);
    row.set("client_event_time", client_time_value);
    row.set(
        "client_upload_time",
        format_time(upload_time - Duration::milliseconds(rng.random_range(50..900))),
    );
    row.set(
        "server_received_time",
        format_time(upload_time - Duration::milliseconds(rng.random_range(1..50))),
    );
    row.set("server_upload_time", format_time(upload_time));
    row.set(
        "processed_time",
        format_time(upload_time + Duration::seconds(rng.random_range(1..30))),
    );
}

pub(super) fn event_delay(rng: &mut impl Rng) -> Duration {
    match rng.random_range(0..100) {
        0..=89 => Duration::milliseconds(rng.random_range(200..60_000)),
        90..=98 => Duration::milliseconds(rng.random_range(60_000..3_600_000)),
        // Offline mobile devices upload days later.
        _ => Duration::milliseconds(rng.random_range(3_600_000..259_200_000)),
    }
}

fn format_time(time: DateTime<Utc>) -> String {
    time.format(EXPORT_TIME).to_string()
}

/// `event_time` and `client_event_time` in the variants real exports contain.
fn time_variants(rng: &mut impl Rng, time: DateTime<Utc>) -> (Value, Value) {
    let standard = format_time(time);
    let event_time = match rng.random_range(0..100) {
        0..=84 => json!(standard),
        85..=88 => json!(time.format("%Y-%m-%d %H:%M:%S").to_string()),
        89..=91 => json!(time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        92..=93 => {
            let offset = FixedOffset::east_opt(2 * 3600).expect("valid offset");
            json!(
                time.with_timezone(&offset)
                    .format("%Y-%m-%dT%H:%M:%S%.6f%:z")
                    .to_string()
            )
        }
        94..=95 => json!(time.format("%Y-%m-%d %H:%M:%S%.9f").to_string()),
        96..=97 => Value::Null,
        // Garbage in event_time: the client time is used instead.
        _ => json!(pick(
            rng,
            &[
                "2024-02-30 10:00:00.000000",
                "yesterday",
                "2024-07-06 24:00:00"
            ]
        )),
    };
    (event_time, json!(standard))
}
