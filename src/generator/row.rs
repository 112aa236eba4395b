//! An export row under construction: fields in the order the source wrote them.
//!
//! Real exports come in more than one key order, so rows keep insertion order (which the
//! generator varies) instead of serde_json's sorted maps.

use rand::Rng;
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct RowObject {
    fields: Vec<(String, Value)>,
}

impl RowObject {
    pub fn new() -> Self {
        RowObject {
            fields: Vec::with_capacity(40),
        }
    }

    /// Sets a field, replacing an existing one in place.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        match self.fields.iter_mut().find(|(existing, _)| existing == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key.to_owned(), value)),
        }
    }

    /// Rotates the field order, modelling exporters that write keys in another order.
    pub fn rotate(&mut self, by: usize) {
        if !self.fields.is_empty() {
            let by = by % self.fields.len();
            self.fields.rotate_left(by);
        }
    }

    pub fn reverse(&mut self) {
        self.fields.reverse();
    }

    /// Compact JSON in the row's field order.
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1536);
        out.push(b'{');
        for (index, (key, value)) in self.fields.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, key).expect("writing to a Vec cannot fail");
            out.push(b':');
            serde_json::to_writer(&mut out, value).expect("writing to a Vec cannot fail");
        }
        out.push(b'}');
        out
    }
}

/// `value`, or null one time in `1 / probability`: a field exports sometimes leave empty.
pub fn sometimes_null(rng: &mut impl Rng, probability: f64, value: impl Into<Value>) -> Value {
    if rng.random_bool(probability) {
        Value::Null
    } else {
        value.into()
    }
}

/// `number`, or its text one time in `1 / probability`: exports hold some numbers as strings.
pub fn sometimes_text<N: Into<Value> + ToString>(
    rng: &mut impl Rng,
    probability: f64,
    number: N,
) -> Value {
    if rng.random_bool(probability) {
        Value::String(number.to_string())
    } else {
        number.into()
    }
}
