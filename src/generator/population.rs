//! The simulated people and devices behind the rows: users on several devices, shared
//! devices, anonymous devices that later log in, and the sessions they produce.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand::seq::IndexedRandom;

use super::text;

/// Which SDK or pipeline produced a device's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Web,
    Ios,
    Android,
    HttpApi,
    Segment,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub source: Source,
    /// Users who log in on this device, in order (more than one: a shared device).
    pub owners: Vec<usize>,
    pub next_owner: usize,
    pub current_user: Option<usize>,
    pub installed: bool,
    pub place: usize,
    pub ip: String,
    pub browser: (&'static str, &'static str),
    pub family: &'static str,
    pub model: &'static str,
    pub manufacturer: &'static str,
    pub os_version: &'static str,
    pub carrier: &'static str,
    pub app_version: &'static str,
    pub start_version: &'static str,
    pub amplitude_id: i64,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    /// Some old integrations sent numeric user ids as JSON integers.
    pub numeric: bool,
    pub company: Option<usize>,
    pub plan: &'static str,
    pub utm_source: Option<&'static str>,
    pub email: String,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub device: usize,
    /// Session start in epoch ms; -1 for HTTP-API rows that have no session.
    pub session_id: i64,
    pub planned: u32,
    pub emitted: u32,
    pub with_markers: bool,
    pub event_counter: i64,
}

impl Session {
    pub fn finished(&self) -> bool {
        self.emitted >= self.planned
    }
}

pub struct Population {
    pub users: Vec<User>,
    pub devices: Vec<Device>,
}

const BROWSERS: &[(&str, &str)] = &[
    ("Chrome", "126"),
    ("Chrome", "126.0.6478"),
    ("Safari", "17.4.1"),
    ("Firefox", "127.0"),
    ("Edge", "125"),
    ("Safari", "17.10"),
    ("Opera", "beta"),
];
const WEB_FAMILIES: &[&str] = &[
    "Mac OS",
    "Windows",
    "Mac OS X",
    "Windows 10",
    "Linux",
    "Ubuntu",
    "Chrome OS",
    "iOS",
    "Android",
    "Apple iPad",
];
const IOS_MODELS: &[(&str, &str)] = &[
    ("Apple iPhone", "iPhone 12"),
    ("Apple iPhone", "iPhone15,2"),
    ("Apple iPad", "iPad13,4"),
];
const ANDROID_MODELS: &[(&str, &str, &str)] = &[
    ("OnePlus Phone", "ONEPLUS A6003", "OnePlus"),
    ("Samsung Galaxy Tab", "SM-T870", "samsung"),
    ("Google Pixel", "Pixel 8", "Google"),
];
const IOS_VERSIONS: &[&str] = &["17.4.1", "18.1.1", "16.7"];
const ANDROID_VERSIONS: &[&str] = &["9", "14", "13"];
const APP_VERSIONS: &[&str] = &["2.13.1", "3.0.0", "3.1.4"];

fn uuid_v4(rng: &mut impl Rng) -> String {
    let bytes: [u8; 16] = rng.random();
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        ["8", "9", "a", "b"][usize::from(bytes[8] & 3)],
        &hex[17..20],
        &hex[20..32]
    )
}

impl Population {
    pub fn new(rng: &mut impl Rng, rows: u64) -> Self {
        let user_count = (rows / 80).clamp(8, 200_000) as usize;
        let mut users = Vec::with_capacity(user_count);
        for index in 0..user_count {
            let numeric = rng.random_bool(0.03);
            let id = if numeric {
                (100_000 + index as u64 * 7).to_string()
            } else if rng.random_bool(0.2) {
                format!("user{index}@example.com")
            } else {
                uuid_v4(rng)
            };
            users.push(User {
                id,
                numeric,
                company: rng
                    .random_bool(0.4)
                    .then(|| rng.random_range(0..text::COMPANIES.len())),
                plan: text::PLANS.choose(rng).copied().unwrap_or("free"),
                utm_source: rng
                    .random_bool(0.5)
                    .then(|| text::UTM_SOURCES.choose(rng).copied().unwrap_or("google")),
                email: format!("person{index}@example.org"),
            });
        }
        let mut population = Population {
            users,
            devices: Vec::new(),
        };
        // Each user owns one to three devices; a few devices are shared by two users; some
        // devices never log in at all.
        for user in 0..user_count {
            let owned = match rng.random_range(0..10) {
                0..=5 => 1,
                6..=8 => 2,
                _ => 3,
            };
            for _ in 0..owned {
                let mut owners = vec![user];
                if rng.random_bool(0.04) {
                    owners.push(rng.random_range(0..user_count));
                }
                population.add_device(rng, owners);
            }
        }
        for _ in 0..user_count / 2 {
            population.add_device(rng, Vec::new());
        }
        population
    }

    fn add_device(&mut self, rng: &mut impl Rng, owners: Vec<usize>) {
        let source = match rng.random_range(0..100) {
            0..=44 => Source::Web,
            45..=62 => Source::Ios,
            63..=80 => Source::Android,
            81..=90 => Source::HttpApi,
            _ => Source::Segment,
        };
        let id = match source {
            Source::Ios => uuid_v4(rng).to_uppercase(),
            // Old Android SDKs appended an `R` to a random UUID.
            Source::Android if rng.random_bool(0.5) => format!("{}R", uuid_v4(rng)),
            _ => uuid_v4(rng),
        };
        let (family, model, manufacturer) = match source {
            Source::Ios => {
                let (family, model) = *IOS_MODELS.choose(rng).unwrap_or(&IOS_MODELS[0]);
                (family, model, "Apple")
            }
            Source::Android => *ANDROID_MODELS.choose(rng).unwrap_or(&ANDROID_MODELS[0]),
            _ => (
                WEB_FAMILIES.choose(rng).copied().unwrap_or("Windows"),
                "",
                "",
            ),
        };
        let os_version = match source {
            Source::Ios => IOS_VERSIONS.choose(rng).copied().unwrap_or("17.4.1"),
            Source::Android => ANDROID_VERSIONS.choose(rng).copied().unwrap_or("14"),
            _ => "",
        };
        let place = rng.random_range(0..text::PLACES.len());
        self.devices.push(Device {
            id,
            source,
            owners,
            next_owner: 0,
            current_user: None,
            installed: false,
            place,
            ip: format!(
                "{}.{}.{}.{}",
                rng.random_range(1..224),
                rng.random_range(0..256),
                rng.random_range(0..256),
                rng.random_range(1..255)
            ),
            browser: *BROWSERS.choose(rng).unwrap_or(&BROWSERS[0]),
            family,
            model,
            manufacturer,
            os_version,
            carrier: text::CARRIERS.choose(rng).copied().unwrap_or("--"),
            app_version: APP_VERSIONS.choose(rng).copied().unwrap_or("3.0.0"),
            start_version: APP_VERSIONS[0],
            amplitude_id: rng.random_range(100_000_000_000..1_300_000_000_000),
        });
    }

    pub fn start_session(&mut self, rng: &mut impl Rng, now: DateTime<Utc>) -> Session {
        let device = rng.random_range(0..self.devices.len());
        let source = self.devices[device].source;
        let started = now - Duration::milliseconds(rng.random_range(0..120_000));
        Session {
            device,
            session_id: if source == Source::HttpApi {
                -1
            } else {
                started.timestamp_millis()
            },
            planned: rng.random_range(2..40),
            emitted: 0,
            with_markers: matches!(source, Source::Web | Source::Ios | Source::Android)
                && rng.random_bool(0.4),
            event_counter: rng.random_range(1..5000),
        }
    }
}
