//! §6 Sessions: Amplitude's `session_id` (session start in epoch ms) becomes a UUIDv7 whose
//! timestamp is the session start, derived deterministically from device and session.

use sha1::{Digest, Sha1};

use crate::contract::SESSION_ID_LIMIT;

/// A real session: an integer with 0 < id < 2^48 (strings and floats are not sessions).
pub fn is_real_session(session_id: i64) -> bool {
    session_id > 0 && session_id < SESSION_ID_LIMIT
}

/// `$session_id` for a real session on a device (device string value, or empty).
pub fn posthog_session_id(device_id: &str, session_id: i64) -> String {
    let digest = Sha1::digest(format!("amplitude-session:{device_id}:{session_id}").as_bytes());
    let hash = hex::encode(digest);
    let time = format!("{session_id:012x}");
    let variant = b"89ab"[usize::from(digest[9] >> 4) % 4];
    let mut out = String::with_capacity(36);
    for part in [&time[0..8], "-", &time[8..12], "-7", &hash[0..3], "-"] {
        out.push_str(part);
    }
    out.push(char::from(variant));
    for part in [&hash[3..6], "-", &hash[6..18]] {
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_6_worked_example_session() {
        assert_eq!(
            posthog_session_id("f064362b-9082-47a2-a274-12ce2a00b668", 1_720_269_296_000),
            "0190880a-5180-7c08-a32c-039f0357b5c9"
        );
    }

    #[test]
    fn rule_6_real_sessions_are_between_0_and_2_pow_48() {
        assert!(!is_real_session(-1));
        assert!(!is_real_session(0));
        assert!(is_real_session(1));
        assert!(is_real_session((1 << 48) - 1));
        assert!(!is_real_session(1 << 48));
    }
}
