//! Constants of the contract (MAPPING.md), defined once. The VRL program keeps its own copies
//! of the lists, and the root package's tests check that the copies agree.

/// UUID namespace of every derived uuid (§4, §9): `6ba7b811-9dad-11d1-80b4-00c04fd430c8`.
pub const UUID_NAMESPACE: [u8; 16] = [
    0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
];

/// Ids PostHog refuses to merge (§3), lower-case; also refused inside single or double quotes.
pub const REFUSED_IDS: [&str; 16] = [
    "anonymous",
    "guest",
    "distinctid",
    "distinct_id",
    "id",
    "not_authenticated",
    "email",
    "undefined",
    "true",
    "false",
    "null",
    "none",
    "nan",
    "0",
    "[object object]",
    "(none)",
];

/// Longest usable id, in characters (§3); PostHog cuts distinct ids to 200.
pub const MAX_ID_CHARS: usize = 200;

/// PostHog's per-event limit as §2 counts it (`"` and `\` twice).
pub const EVENT_SIZE_LIMIT: usize = 900_000;

/// `session_id` must be below 2^48 to be a real session (§6): UUIDv7 holds 48 bits of time.
pub const SESSION_ID_LIMIT: i64 = 1 << 48;

/// Event types that only mark session boundaries (§2, skipped).
pub const SESSION_MARKERS: [&str; 4] = [
    "session_start",
    "session_end",
    "[Amplitude] Start Session",
    "[Amplitude] End Session",
];

/// Keys of `event_properties` that PostHog would act on, dropped (§5).
pub const DROPPED_PROPERTY_KEYS: [&str; 15] = [
    "$set",
    "$set_once",
    "$unset",
    "$groups",
    "$group_type",
    "$group_key",
    "$group_set",
    "$anon_distinct_id",
    "$session_id",
    "$window_id",
    "$process_person_profile",
    "distinct_id",
    "token",
    "$token",
    "api_key",
];

/// Operator keys of `user_properties` (§8).
pub const USER_PROPERTY_OPERATORS: [&str; 10] = [
    "$set",
    "$setOnce",
    "$unset",
    "$add",
    "$append",
    "$prepend",
    "$preInsert",
    "$postInsert",
    "$remove",
    "$clearAll",
];

/// The contract's table of country names to ISO codes (§5.1), one `name\tcode` per line.
pub const COUNTRIES_TSV: &str = include_str!("../../data/countries.tsv");
