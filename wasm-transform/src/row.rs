//! `AmplitudeRow`: one export row, parsed as Vector's VRL parses it, with the typed views the
//! rules need. Every field is optional and of any type; a view returns `None` for a value of an
//! unexpected type instead of failing (MAPPING.md §1).

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

/// One Amplitude export row (a JSON object).
#[derive(Debug, Clone, PartialEq)]
pub struct AmplitudeRow {
    fields: Map<String, Value>,
}

/// Why a line is not a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowError {
    InvalidJson,
    NotAnObject,
}

impl AmplitudeRow {
    /// Parses one line as serde_json does by default (no BOM, valid UTF-8, no NaN, at most 128
    /// levels), then applies VRL's number rule: an integer above `i64::MAX` becomes a float.
    pub fn parse(line: &[u8]) -> Result<AmplitudeRow, RowError> {
        let mut value: Value = serde_json::from_slice(line).map_err(|_| RowError::InvalidJson)?;
        widen_unsigned_integers(&mut value);
        match value {
            Value::Object(fields) => Ok(AmplitudeRow { fields }),
            _ => Err(RowError::NotAnObject),
        }
    }

    pub fn from_fields(fields: Map<String, Value>) -> AmplitudeRow {
        let mut value = Value::Object(fields);
        widen_unsigned_integers(&mut value);
        match value {
            Value::Object(fields) => AmplitudeRow { fields },
            _ => unreachable!("an object stays an object"),
        }
    }

    /// The raw value of a field when present (not missing, not null).
    pub fn present(&self, key: &str) -> Option<&Value> {
        self.fields.get(key).filter(|value| !value.is_null())
    }

    /// The field's string value (§1): a string as-is, an integer in decimal, else `None`.
    pub fn string_value(&self, key: &str) -> Option<Cow<'_, str>> {
        self.fields.get(key).and_then(string_value)
    }

    /// The field as a string, only when it is one.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// The field as an integer, only when it is one.
    pub fn integer(&self, key: &str) -> Option<i64> {
        self.fields.get(key).and_then(integer)
    }

    pub fn object(&self, key: &str) -> Option<&Map<String, Value>> {
        self.fields.get(key).and_then(Value::as_object)
    }

    /// Moves an object field out of the row (an empty object when it is not an object).
    pub fn take_object(&mut self, key: &str) -> Map<String, Value> {
        match self.fields.remove(key) {
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
    }

    #[test]
    fn rule_1_string_values_are_strings_and_integers_only() {
        let row =
            AmplitudeRow::parse(br#"{"s":"x","i":-5,"f":1.0,"b":true,"big":18446744073709551615}"#)
                .expect("object");
        assert_eq!(row.string_value("s").as_deref(), Some("x"));
        assert_eq!(row.string_value("i").as_deref(), Some("-5"));
        assert_eq!(row.string_value("f"), None);
        assert_eq!(row.string_value("b"), None);
        // Above i64::MAX: a float, as VRL parses it.
        assert_eq!(row.string_value("big"), None);
        assert_eq!(
            row.present("big").and_then(Value::as_f64),
            Some(18_446_744_073_709_551_615_u64 as f64)
        );
    }
}
