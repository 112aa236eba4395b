//! `AmplitudeRow`: one export row, typed by the fields the mapping reads, tolerant of every
//! quirk of real exports: every field optional and of any type, unknown keys accepted (and
//! validated, then dropped), keys in any order, the last of duplicate keys winning.
//!
//! The row is parsed exactly as Vector's VRL parses it (serde_json defaults: no byte-order
//! mark, valid UTF-8, no NaN, at most 128 levels; an integer above `i64::MAX` becomes a
//! float), so every form accepts and refuses the same lines.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Number, Value};

macro_rules! fields {
    ($($variant:ident => $key:literal),* $(,)?) => {
        /// The fields of an export row the mapping reads.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Field { $($variant),* }

        impl Field {
            const COUNT: usize = [$($key),*].len();

            /// The field's key in an export row.
            pub fn key(self) -> &'static str {
                match self { $(Field::$variant => $key),* }
            }

            fn from_key(key: &str) -> Option<Field> {
                match key { $($key => Some(Field::$variant),)* _ => None }
            }
        }
    };
}

fields! {
    EventType => "event_type",
    UserId => "user_id",
    DeviceId => "device_id",
    AmplitudeId => "amplitude_id",
    EventTime => "event_time",
    ClientEventTime => "client_event_time",
    ServerReceivedTime => "server_received_time",
    ServerUploadTime => "server_upload_time",
    Uuid => "uuid",
    InsertId => "$insert_id",
    EventId => "event_id",
    SessionId => "session_id",
    Platform => "platform",
    Library => "library",
    OsName => "os_name",
    OsVersion => "os_version",
    DeviceFamily => "device_family",
    DeviceType => "device_type",
    DeviceModel => "device_model",
    DeviceManufacturer => "device_manufacturer",
    DeviceBrand => "device_brand",
    DeviceCarrier => "device_carrier",
    Country => "country",
    Region => "region",
    City => "city",
    Dma => "dma",
    Language => "language",
    VersionName => "version_name",
    StartVersion => "start_version",
    IpAddress => "ip_address",
    LocationLat => "location_lat",
    LocationLng => "location_lng",
    Paying => "paying",
    App => "app",
    Groups => "groups",
    GroupProperties => "group_properties",
    EventProperties => "event_properties",
    UserProperties => "user_properties",
}

/// One Amplitude export row.
#[derive(Debug, Clone, PartialEq)]
pub struct AmplitudeRow {
    fields: [Option<Value>; Field::COUNT],
}

/// Why a line is not a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowError {
    InvalidJson,
    NotAnObject,
}

impl AmplitudeRow {
    /// Parses one line (see the module documentation for the exact rules).
    pub fn parse(line: &[u8]) -> Result<AmplitudeRow, RowError> {
        let mut deserializer = serde_json::Deserializer::from_slice(line);
        let parsed = deserializer
            .deserialize_any(RowVisitor)
            .and_then(|row| deserializer.end().map(|()| row));
        match parsed {
            Ok(Some(row)) => Ok(row),
            Ok(None) => Err(RowError::NotAnObject),
            Err(_) => Err(RowError::InvalidJson),
        }
    }

    /// The raw value of a field when present (not missing, not null).
    pub fn present(&self, field: Field) -> Option<&Value> {
        self.fields[field as usize]
            .as_ref()
            .filter(|value| !value.is_null())
    }

    /// The field's string value (§1): a string as-is, an integer in decimal, else `None`.
    pub fn string_value(&self, field: Field) -> Option<Cow<'_, str>> {
        self.fields[field as usize].as_ref().and_then(string_value)
    }

    /// The field as a string, only when it is one.
    pub fn str(&self, field: Field) -> Option<&str> {
        self.fields[field as usize].as_ref().and_then(Value::as_str)
    }

    /// The field as an integer, only when it is one.
    pub fn integer(&self, field: Field) -> Option<i64> {
        self.fields[field as usize].as_ref().and_then(integer)
    }

    pub fn object(&self, field: Field) -> Option<&Map<String, Value>> {
        self.fields[field as usize]
            .as_ref()
            .and_then(Value::as_object)
    }

    /// Moves an object field out of the row (an empty object when it is not an object).
    pub fn take_object(&mut self, field: Field) -> Map<String, Value> {
        match self.fields[field as usize].take() {
            Some(Value::Object(object)) => object,
            _ => Map::new(),
        }
    }
}

/// A value's string value (§1): a string as-is, an integer in decimal, else `None`.
pub fn string_value(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(text) => Some(Cow::Borrowed(text)),
        Value::Number(number) => number
            .as_i64()
            .map(|integer| Cow::Owned(integer.to_string())),
        _ => None,
    }
}

/// An integer, as VRL sees one: a JSON number that fits in `i64` and has no fraction or exponent.
pub fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

/// Reads the top-level object into field slots; any other JSON value is "not an object".
/// Every value, known or not, is parsed in full as a `Value`, so validation is exactly that
/// of a whole-line `Value` parse (the form VRL uses).
struct RowVisitor;

impl<'de> Visitor<'de> for RowVisitor {
    type Value = Option<AmplitudeRow>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut row = AmplitudeRow {
            fields: std::array::from_fn(|_| None),
        };
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let mut value: Value = map.next_value()?;
            if let Some(field) = Field::from_key(&key) {
                widen_unsigned_integers(&mut value);
                row.fields[field as usize] = Some(value);
            }
        }
        Ok(Some(row))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Value>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A key, borrowed from the line when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
            fn visit_string<E>(self, key: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(key)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// VRL (the runtime Vector embeds) turns an integer above `i64::MAX` into a float when it
/// parses JSON; every form follows it so that all forms give the same bytes.
fn widen_unsigned_integers(value: &mut Value) {
    match value {
        Value::Number(number) if number.is_u64() && !number.is_i64() => {
            if let Some(float) = number
                .as_u64()
                .map(|big| big as f64)
                .and_then(Number::from_f64)
            {
                *number = float;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(widen_unsigned_integers),
        Value::Object(fields) => fields.values_mut().for_each(widen_unsigned_integers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_1_refuses_a_byte_order_mark_nan_and_invalid_utf8() {
        assert_eq!(
            AmplitudeRow::parse(b"\xEF\xBB\xBF{}"),
            Err(RowError::InvalidJson)
        );
        assert_eq!(
            AmplitudeRow::parse(br#"{"a":NaN}"#),
            Err(RowError::InvalidJson)
        );
        assert_eq!(
            AmplitudeRow::parse(b"{\"a\":\"\xE9\"}"),
            Err(RowError::InvalidJson)
        );
        assert_eq!(AmplitudeRow::parse(b"[1]"), Err(RowError::NotAnObject));
        assert_eq!(AmplitudeRow::parse(b" \"x\" "), Err(RowError::NotAnObject));
        assert_eq!(AmplitudeRow::parse(b"{} x"), Err(RowError::InvalidJson));
    }

    #[test]
    fn rule_1_unknown_keys_are_validated_like_known_ones() {
        // A lone surrogate or an out-of-range number anywhere makes the line invalid JSON.
        assert_eq!(
            AmplitudeRow::parse(br#"{"unknown":"\ud800"}"#),
            Err(RowError::InvalidJson)
        );
        assert_eq!(
            AmplitudeRow::parse(br#"{"unknown":1e400}"#),
            Err(RowError::InvalidJson)
        );
        assert!(AmplitudeRow::parse(br#"{"unknown":{"deep":[1,{"x":null}]}}"#).is_ok());
    }

    #[test]
    fn rule_1_the_last_duplicate_key_wins() {
        let row = AmplitudeRow::parse(br#"{"user_id":"a","user_id":"b"}"#).expect("row");
        assert_eq!(row.str(Field::UserId), Some("b"));
    }

    #[test]
    fn rule_1_string_values_are_strings_and_integers_only() {
        let row = AmplitudeRow::parse(br#"{"user_id":"x","device_id":-5,"amplitude_id":1.0,"uuid":true,"event_id":18446744073709551615}"#).expect("object");
        assert_eq!(row.string_value(Field::UserId).as_deref(), Some("x"));
        assert_eq!(row.string_value(Field::DeviceId).as_deref(), Some("-5"));
        assert_eq!(row.string_value(Field::AmplitudeId), None);
        assert_eq!(row.string_value(Field::Uuid), None);
        // Above i64::MAX: a float, as VRL parses it.
        assert_eq!(row.string_value(Field::EventId), None);
        assert_eq!(
            row.present(Field::EventId).and_then(Value::as_f64),
            Some(18_446_744_073_709_551_615_u64 as f64)
        );
    }
}
