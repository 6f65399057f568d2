//! B2's percent-encoding of file names and file-info values.
//!
//! Backblaze's rules (<https://www.backblaze.com/docs/cloud-storage-native-api-string-encoding>):
//!
//! - Strings inside JSON bodies are plain UTF-8 and are **never** percent-encoded.
//! - The `X-Bz-File-Name` header, `X-Bz-Info-*` header values, the file name in a
//!   download-by-name URL and every query-string value are percent-encoded UTF-8.
//! - The characters `A-Z a-z 0-9 . _ - / ~ ! $ ' ( ) * ; = : @` never need encoding; any
//!   character may be encoded, except that `/` in a URL path must stay literal.
//! - When decoding, `+` means a space, so a literal `+` travels as `%2B`.
//!
//! [`encode`] produces a form that B2 accepts everywhere it asks for percent-encoding
//! (it writes a space as `%20`, which is unambiguous in paths and headers alike).
//! [`encode_query`] is stricter for query-string values, where `&`, `=`, `;` and `/` are also
//! encoded. [`decode`] accepts both the minimal and the full forms.
//!
//! ```
//! use b2_proto::encoding::{decode, encode};
//!
//! assert_eq!(encode("photos/2024 summer+sun.jpg"), "photos/2024%20summer%2Bsun.jpg");
//! assert_eq!(decode("photos/2024+summer%2Bsun.jpg").unwrap(), "photos/2024 summer+sun.jpg");
//! ```

use std::fmt::Write as _;

/// A percent-encoded string that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A `%` not followed by two hexadecimal digits.
    #[error("invalid percent escape at byte {position}")]
    InvalidEscape {
        /// Byte offset of the `%` in the encoded input.
        position: usize,
    },
    /// The decoded bytes are not UTF-8.
    #[error("percent-decoded bytes are not valid UTF-8")]
    InvalidUtf8,
}

/// True for bytes that B2 documents as never needing percent-encoding.
const fn is_b2_safe(b: u8) -> bool {
    matches!(b,
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9'
        | b'.' | b'_' | b'-' | b'/' | b'~' | b'!' | b'$' | b'\'' | b'(' | b')' | b'*'
        | b';' | b'=' | b':' | b'@')
}

/// True for the RFC 3986 unreserved bytes: safe inside a query-string value.
const fn is_query_safe(b: u8) -> bool {
    matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'~')
}

fn encode_with(s: &str, safe: fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 2);
    for &b in s.as_bytes() {
        if safe(b) {
            out.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Percent-encodes a file name or file-info value for a header or a URL path.
///
/// `/` stays literal, as B2 requires in download-by-name paths.
pub fn encode(s: &str) -> String {
    encode_with(s, is_b2_safe)
}

/// Percent-encodes a value for a URL query string (everything but `A-Z a-z 0-9 . _ - ~`).
pub fn encode_query(s: &str) -> String {
    encode_with(s, is_query_safe)
}

const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes a percent-encoded string from B2 (`+` is a space; `%XX` is a byte).
///
/// # Errors
///
/// [`DecodeError::InvalidEscape`] for a malformed `%` escape and [`DecodeError::InvalidUtf8`]
/// when the decoded bytes are not UTF-8.
pub fn decode(s: &str) -> Result<String, DecodeError> {
    let bytes = s.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return Ok(s.to_owned());
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(DecodeError::InvalidEscape { position: i }),
                }
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| DecodeError::InvalidUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_stays_literal_and_plus_is_escaped() {
        assert_eq!(encode("a/b+c d"), "a/b%2Bc%20d");
        assert_eq!(encode_query("a/b+c d&e=f"), "a%2Fb%2Bc%20d%26e%3Df");
    }

    #[test]
    fn decode_rejects_bad_escapes() {
        assert_eq!(decode("%"), Err(DecodeError::InvalidEscape { position: 0 }));
        assert_eq!(
            decode("ab%2"),
            Err(DecodeError::InvalidEscape { position: 2 })
        );
        assert_eq!(
            decode("%zz"),
            Err(DecodeError::InvalidEscape { position: 0 })
        );
        assert_eq!(decode("%FF"), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn decode_accepts_both_space_forms() {
        assert_eq!(decode("a+b%20c").unwrap(), "a b c");
    }
}
