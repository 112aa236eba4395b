//! The device's part of a row: its platform, library, OS and model fields (filled the way
//! Amplitude fills them for each platform), its geography and its IP address.

use rand::Rng;
use serde_json::{Value, json};

use super::population::{Device, Source};
use super::row::{RowObject, sometimes_null};
use super::text::{self, pick};

/// Platform and device fields, reused per platform the way Amplitude does.
pub(super) fn set_platform_fields(rng: &mut impl Rng, row: &mut RowObject, device: &Device) {
    match device.source {
        Source::Web | Source::Segment => set_browser_fields(rng, row, device),
        Source::Ios | Source::Android => set_mobile_fields(rng, row, device),
        Source::HttpApi => {
            row.set("platform", Value::Null);
            row.set("library", "http/2.0");
            row.set("os_name", Value::Null);
            row.set("os_version", Value::Null);
        }
    }
}

/// A browser's fields, from Amplitude's web SDK or through Segment: `os_*` hold the browser.
fn set_browser_fields(rng: &mut impl Rng, row: &mut RowObject, device: &Device) {
    row.set(
        "platform",
        if device.source == Source::Web {
            json!("Web")
        } else {
            Value::Null
        },
    );
    row.set(
        "library",
        if device.source == Source::Web {
            json!(pick(
                rng,
                &[
                    "amplitude-ts/2.11.0",
                    "amplitude-js/8.21.9",
                    "amplitude-ts/2.7.4"
                ]
            ))
        } else {
            json!("segment")
        },
    );
    row.set("os_name", device.browser.0);
    row.set(
        "os_version",
        if rng.random_bool(0.02) {
            json!(126)
        } else {
            json!(device.browser.1)
        },
    );
    row.set("device_family", device.family);
    row.set(
        "device_type",
        if rng.random_bool(0.5) {
            json!(device.family)
        } else {
            Value::Null
        },
    );
    row.set("device_model", Value::Null);
}

/// An iOS or Android device's fields, with its app versions.
fn set_mobile_fields(rng: &mut impl Rng, row: &mut RowObject, device: &Device) {
    let ios = device.source == Source::Ios;
    row.set("platform", if ios { "iOS" } else { "Android" });
    row.set(
        "library",
        if ios {
            "amplitude-swift/1.4.0"
        } else {
            "amplitude-android/2.9.2"
        },
    );
    row.set("os_name", if ios { "ios" } else { "android" });
    row.set("os_version", device.os_version);
    row.set("device_family", device.family);
    row.set("device_type", device.model);
    row.set("device_model", device.model);
    row.set(
        "device_manufacturer",
        sometimes_null(rng, 0.2, device.manufacturer),
    );
    row.set("device_brand", device.manufacturer);
    row.set("device_carrier", device.carrier);
    row.set("version_name", device.app_version);
    row.set("start_version", device.start_version);
}

/// Geography, as Amplitude resolved it, and the device's IP address.
pub(super) fn set_location(rng: &mut impl Rng, row: &mut RowObject, device: &Device) {
    let place = &text::PLACES[device.place];
    row.set("country", sometimes_null(rng, 0.05, place.country));
    row.set("region", place.region);
    row.set("city", place.city);
    row.set("dma", place.dma.map_or(Value::Null, |dma| json!(dma)));
    row.set("language", place.language);
    let (lat, lng) = match rng.random_range(0..10) {
        0..=5 => (Value::Null, Value::Null),
        6..=8 => (json!(place.lat), json!(place.lng)),
        _ => (json!(place.lat.round() as i64), json!("n/a")),
    };
    row.set("location_lat", lat);
    row.set("location_lng", lng);
    row.set("ip_address", sometimes_null(rng, 0.1, device.ip.as_str()));
}
