//! §4 and §9 uuids: Amplitude's own when valid, else deterministic UUIDv5 (RFC 4122), so the
//! same row always yields the same uuid and re-sending is idempotent in PostHog.

use sha1::{Digest, Sha1};

use crate::contract::UUID_NAMESPACE;
use crate::row::{AmplitudeRow, Field};

/// The row's uuid (§4).
pub fn row_uuid(row: &AmplitudeRow, event_type: &str) -> String {
    if let Some(given) = row
        .str(Field::Uuid)
        .filter(|given| is_hyphenated_uuid(given))
    {
        return given.to_ascii_lowercase();
    }
    let part = |field: Field| row.string_value(field).unwrap_or_default();
    let name = format!(
        "amplitude-event:{}|{}|{}|{}|{}",
        part(Field::DeviceId),
        part(Field::InsertId),
        part(Field::EventId),
        event_type,
        part(Field::EventTime)
    );
    uuid_v5(name.as_bytes())
}

/// The uuid of one `$groupidentify` event of a row (§9).
pub fn group_identify_uuid(row_uuid: &str, group_type: &str) -> String {
    uuid_v5(format!("amplitude-groupidentify:{row_uuid}:{group_type}").as_bytes())
}

/// 36 characters, 8-4-4-4-12 hex digits of any case.
fn is_hyphenated_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

/// RFC 4122 UUIDv5 in the contract's namespace.
pub fn uuid_v5(name: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(UUID_NAMESPACE);
    hasher.update(name);
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    hyphenated(&bytes)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hyphenated form of 16 bytes.
pub fn hyphenated(bytes: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (index, byte) in bytes.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_4_uuid5_matches_rfc_4122_vectors() {
        // Python: uuid.uuid5(uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8"), "python.org")
        assert_eq!(
            uuid_v5(b"python.org"),
            "7af94e2b-4dd9-50f0-9c9a-8a48519bdef0"
        );
    }

    #[test]
    fn rule_4_only_hyphenated_uuids_are_kept() {
        assert!(is_hyphenated_uuid("0B7A1C8E-3F5D-4C8E-9B1A-6D2F4E8C1A55"));
        assert!(!is_hyphenated_uuid("0b7a1c8e3f5d4c8e9b1a6d2f4e8c1a55"));
        assert!(!is_hyphenated_uuid("0b7a1c8e-3f5d-4c8e-9b1a-6d2f4e8c1a5g"));
        assert!(!is_hyphenated_uuid("{b7a1c8e-3f5d-4c8e-9b1a-6d2f4e8c1a5}"));
    }
}
