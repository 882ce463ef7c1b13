//! JSON in and out of bodies, past two per-string costs of serde_json.
//!
//! Out: registration tokens are base64url-like text: no byte of theirs is one that JSON
//! escapes, so the common case is a copy. The check runs over the whole string without an
//! early exit so that the compiler vectorizes it; anything else goes through serde_json, so
//! the bytes are serde_json's either way.
//!
//! In: a body read from bytes has each of its strings checked as UTF-8 on its own (1000
//! message ids in a multicast answer); checked once as a whole, it is read as a `str`.

use serde::Deserialize;

/// True when `text` holds a byte that serde_json escapes: `"`, `\` or a control character
/// below 0x20 (serde_json writes DEL and non-ASCII UTF-8 as they are).
pub(crate) fn needs_escape(text: &str) -> bool {
    text.bytes().fold(0u8, |found, b| found | u8::from(b < 0x20 || b == b'"' || b == b'\\')) != 0
}

/// Appends `text` as a JSON string, byte for byte what `serde_json::to_writer` writes.
pub(crate) fn push_str(out: &mut Vec<u8>, text: &str) {
    if needs_escape(text) {
        // Writing a string into memory cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// `serde_json::from_slice`, with the body checked as UTF-8 once instead of string by
/// string. A body that is not UTF-8 goes to the parser as bytes, for the parser's own error.
pub(crate) fn from_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_written_as_serde_json_writes_it() {
        for byte in 0u8..=0x7f {
            let text = format!("a{}b", char::from(byte));
            let mut ours = Vec::new();
            push_str(&mut ours, &text);
            assert_eq!(ours, serde_json::to_vec(&text).unwrap(), "byte {byte:#04x}");
        }
        for text in ["", "é", "\u{2028}", "日本", "tok\u{7f}", "x\"y\\z\n"] {
            let mut ours = Vec::new();
            push_str(&mut ours, text);
            assert_eq!(ours, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn the_check_sees_an_escape_anywhere_in_a_long_token() {
        let clean = "A".repeat(200);
        assert!(!needs_escape(&clean));
        for at in [0, 1, 15, 16, 31, 32, 100, 199] {
            let mut dirty = clean.clone().into_bytes();
            dirty[at] = b'"';
            assert!(needs_escape(std::str::from_utf8(&dirty).unwrap()), "quote at {at}");
        }
    }

    #[test]
    fn a_body_reads_as_from_slice_reads_it() {
        let body = br#"{"a":"x\u00e9y","b":["1","2"]}"#;
        let ours: serde_json::Value = from_body(body).unwrap();
        assert_eq!(ours, serde_json::from_slice::<serde_json::Value>(body).unwrap());
        let invalid = b"{\"a\":\"\xff\"}";
        let ours = from_body::<serde_json::Value>(invalid).unwrap_err().to_string();
        assert_eq!(ours, serde_json::from_slice::<serde_json::Value>(invalid).unwrap_err().to_string());
    }
}
