//! Secret strings: tokens and keys that never appear in `Debug`, `Display`, logs or errors.

use serde::{Deserialize, Serialize};

macro_rules! secret_string {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        ///
        /// Its `Debug` output is redacted; read the value with `expose_secret`.
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret itself. Do not log it.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

/// A header value holding a secret (a token, Basic credentials, an SSE-C key), marked
/// sensitive so that `http`'s `Debug` of the request prints `Sensitive` instead of it.
pub(crate) fn sensitive_header(
    value: &str,
) -> Result<http::HeaderValue, http::header::InvalidHeaderValue> {
    let mut value = http::HeaderValue::from_str(value)?;
    value.set_sensitive(true);
    Ok(value)
}

/// Marks the `Authorization` header of a built request sensitive (see [`sensitive_header`]).
pub(crate) fn hide_authorization<B>(mut request: http::Request<B>) -> http::Request<B> {
    if let Some(value) = request.headers_mut().get_mut(http::header::AUTHORIZATION) {
        value.set_sensitive(true);
    }
    request
}

secret_string! {
    /// An application key: the secret half of a key id / key pair.
    ApplicationKey
}

secret_string! {
    /// An authorization token: account, upload, upload-part or download-authorization token.
    AuthToken
}

secret_string! {
    /// The shared secret a notification webhook signs its payloads with (`hmacSha256SigningSecret`).
    SigningSecret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let key = ApplicationKey::new("K001supersecret");
        let token = AuthToken::new("4_002tokentoken");
        let printed = format!("{key:?} {token:?} {:?}", SigningSecret::new("abc123"));
        assert!(!printed.contains("supersecret"));
        assert!(!printed.contains("tokentoken"));
        assert!(!printed.contains("abc123"));
        assert_eq!(format!("{key:?}"), "ApplicationKey(<redacted>)");
        assert_eq!(key.expose_secret(), "K001supersecret");
    }
}
