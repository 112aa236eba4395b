//! §5.2 Platform, device, OS, browser. Amplitude reuses its device fields differently per
//! platform: on the web `os_name`/`os_version` hold the browser.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use crate::row::{AmplitudeRow, Field};

/// Which set of rules applies to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Ios,
    Android,
    Web,
    Other,
}

impl Platform {
    /// Mobile when `platform` is iOS or Android; else Web when `platform` is Web or the
    /// library is one of the web SDKs (or Segment); else anything else. Case-insensitive.
    pub fn of(row: &AmplitudeRow) -> Platform {
        let platform = row
            .string_value(Field::Platform)
            .map(|value| value.to_lowercase())
            .unwrap_or_default();
        let library = row
            .string_value(Field::Library)
            .map(|value| value.to_lowercase())
            .unwrap_or_default();
        match platform.as_str() {
            "ios" => Platform::Ios,
            "android" => Platform::Android,
            "web" => Platform::Web,
            _ if ["amplitude-ts", "amplitude-js", "segment"]
                .iter()
                .any(|sdk| library.starts_with(sdk)) =>
            {
                Platform::Web
            }
            _ => Platform::Other,
        }
    }
}

/// Adds the §5.2 properties of a row.
pub fn add_platform_properties(row: &AmplitudeRow, properties: &mut Map<String, Value>) {
    let family = row.string_value(Field::DeviceFamily);
    let device_type = row.string_value(Field::DeviceType);
    let model = row.string_value(Field::DeviceModel);
    let hints = [&family, &device_type, &model]
        .map(|field| field.as_deref().unwrap_or_default().to_lowercase());
    let is_tablet = hints
        .iter()
        .any(|hint| hint.contains("ipad") || hint.contains("tablet"));
    let mut set = |key: &str, value: Value| {
        properties.insert(key.to_owned(), value);
    };
    match Platform::of(row) {
        platform @ (Platform::Ios | Platform::Android) => {
            set(
                "$os",
                Value::from(if platform == Platform::Ios {
                    "iOS"
                } else {
                    "Android"
                }),
            );
            if let Some(version) = row.string_value(Field::OsVersion) {
                set("$os_version", Value::from(version.into_owned()));
            }
            if let Some(manufacturer) = row
                .string_value(Field::DeviceManufacturer)
                .or_else(|| row.string_value(Field::DeviceBrand))
            {
                set(
                    "$device_manufacturer",
                    Value::from(manufacturer.into_owned()),
                );
            }
            if let Some(model) = &model {
                set("$device_model", Value::from(model.as_ref()));
            }
            if let Some(name) = &device_type {
                set("$device_name", Value::from(name.as_ref()));
            }
            set(
                "$device_type",
                Value::from(if is_tablet { "Tablet" } else { "Mobile" }),
            );
            if let Some(carrier) = row
                .string_value(Field::DeviceCarrier)
                .filter(|carrier| carrier != "--")
            {
                set("$network_carrier", Value::from(carrier.into_owned()));
            }
        }
        Platform::Web => {
            if let Some(browser) = row.string_value(Field::OsName) {
                set("$browser", Value::from(browser.into_owned()));
            }
            if let Some(version) = row
                .string_value(Field::OsVersion)
                .and_then(|version| browser_version(&version))
            {
                set("$browser_version", version);
            }
            let os = family.or(device_type).or(model).map(normalise_web_os);
            let is_mobile_os = matches!(os.as_deref(), Some("iOS" | "Android"));
            if let Some(os) = os {
                set("$os", Value::from(os.into_owned()));
            }
            set(
                "$device_type",
                Value::from(if is_tablet {
                    "Tablet"
                } else if is_mobile_os {
                    "Mobile"
                } else {
                    "Desktop"
                }),
            );
        }
        Platform::Other => {
            if let Some(os) = row.string_value(Field::OsName) {
                set("$os", Value::from(os.into_owned()));
            }
        }
    }
}

/// The longest prefix `digits` (an integer) or `digits.digits` (a float) of a web
/// `os_version`: `126` → 126, `17.4.1` → 17.4, `12beta` → 12. Absent when it does not start
/// with a digit, or does not fit (docs/MAPPING_DECISIONS.md).
pub fn browser_version(text: &str) -> Option<Value> {
    let major = text.bytes().take_while(u8::is_ascii_digit).count();
    if major == 0 {
        return None;
    }
    let rest = &text[major..];
    let minor = rest.strip_prefix('.').map_or(0, |after| {
        after.bytes().take_while(u8::is_ascii_digit).count()
    });
    if minor > 0 {
        let number: f64 = text[..major + 1 + minor].parse().ok()?;
        Number::from_f64(number)
            .filter(|_| number.is_finite())
            .map(Value::Number)
    } else {
        text[..major].parse::<i64>().ok().map(Value::from)
    }
}

/// The web OS names PostHog uses, from Amplitude's device family/type/model.
fn normalise_web_os(os: Cow<'_, str>) -> Cow<'_, str> {
    let lowered = os.to_lowercase();
    let normalised = match lowered.as_str() {
        "mac os" | "mac os x" | "macos" | "mac" => "Mac OS X",
        "windows" => "Windows",
        windows if windows.starts_with("windows ") => "Windows",
        "ios" | "apple iphone" | "apple ipad" | "iphone" | "ipad" => "iOS",
        android if android.starts_with("android") => "Android",
        "linux" | "ubuntu" => "Linux",
        "chrome os" | "chromeos" => "Chrome OS",
        _ => return os,
    };
    Cow::Borrowed(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rule_5_2_browser_versions() {
        assert_eq!(browser_version("126"), Some(json!(126)));
        assert_eq!(browser_version("17.4.1"), Some(json!(17.4)));
        assert_eq!(browser_version("126.0.6478"), Some(json!(126.0)));
        assert_eq!(browser_version("17.10"), Some(json!(17.1)));
        assert_eq!(browser_version("12beta"), Some(json!(12)));
        assert_eq!(browser_version("12."), Some(json!(12)));
        assert_eq!(browser_version("beta"), None);
        assert_eq!(browser_version("99999999999999999999"), None);
    }

    #[test]
    fn rule_5_2_web_os_names() {
        for (given, expected) in [
            ("Mac OS", "Mac OS X"),
            ("Windows 10", "Windows"),
            ("Apple iPad", "iOS"),
            ("Android 14", "Android"),
            ("Ubuntu", "Linux"),
            ("ChromeOS", "Chrome OS"),
            ("BeOS", "BeOS"),
            ("Windows10", "Windows10"),
        ] {
            assert_eq!(normalise_web_os(Cow::Borrowed(given)), expected);
        }
    }
}
