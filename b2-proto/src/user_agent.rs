//! The `User-Agent` every request carries.
//!
//! Backblaze's integration checklist asks for a User-Agent that names the product, its version
//! and its dependencies, so that Backblaze can tell integrations apart
//! (<https://www.backblaze.com/docs/cloud-storage-integration-checklist>). The form is
//! `<product>/<version> [<dependency>/<version> ...] (<os>; <arch>)`, like the B2 command-line
//! tool's `b2/4.0.0 python/3.12 b2sdk/2.5.0`.

use std::fmt;

/// A `User-Agent` value.
///
/// ```
/// use b2_proto::UserAgent;
///
/// let ua = UserAgent::default().with_product("photo-backup", "2.1.0");
/// assert!(ua.as_str().starts_with("photo-backup/2.1.0 b2-proto/"));
/// assert!(ua.as_str().ends_with(&format!("({}; {})", std::env::consts::OS, std::env::consts::ARCH)));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct UserAgent {
    products: Vec<(String, String)>,
    rendered: String,
}

impl UserAgent {
    /// `b2-proto/<version> (<os>; <arch>)`.
    pub fn new() -> Self {
        let mut ua = Self {
            products: vec![("b2-proto".into(), env!("CARGO_PKG_VERSION").into())],
            rendered: String::new(),
        };
        ua.render();
        ua
    }

    /// Puts `name/version` first: the application or adapter using this crate.
    pub fn with_product(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.products
            .insert(0, (clean(name.into()), clean(version.into())));
        self.render();
        self
    }

    /// Adds `name/version` after the others: a dependency worth naming (an HTTP client).
    pub fn with_dependency(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.products
            .push((clean(name.into()), clean(version.into())));
        self.render();
        self
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.rendered
    }

    fn render(&mut self) {
        let mut s = String::new();
        for (name, version) in &self.products {
            s.push_str(name);
            s.push('/');
            s.push_str(version);
            s.push(' ');
        }
        s.push_str(&format!(
            "({}; {})",
            std::env::consts::OS,
            std::env::consts::ARCH
        ));
        self.rendered = s;
    }
}

/// Keeps product tokens to visible ASCII without separators, so the header is always valid.
fn clean(s: String) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !"()/;\"\\".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "-".into()
    } else {
        cleaned
    }
}

impl Default for UserAgent {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for UserAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UserAgent").field(&self.rendered).finish()
    }
}

impl fmt::Display for UserAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rendered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_sanitised_into_a_valid_header() {
        let ua = UserAgent::new()
            .with_product("my app", "1.0 (beta)")
            .with_dependency("hyper", "1");
        assert!(
            ua.as_str().starts_with("my-app/1.0--beta- b2-proto/"),
            "{ua}"
        );
        assert!(ua.as_str().contains(" hyper/1 ("));
        assert!(http::HeaderValue::from_str(ua.as_str()).is_ok());
    }
}
