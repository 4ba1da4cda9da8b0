//! [`Redact`]: keys whose values never leave the process.

use std::sync::Arc;

/// Keys whose values are written as `"[redacted]"` by every sink that is
/// given them: event fields, span fields and context alike, before any byte
/// leaves the process. Keys match whole and ignoring ASCII case
/// (`Authorization` is `authorization`); an error field that is hidden
/// loses its cause chain too. Empty by default; `password`,
/// `authorization`, `token` and `secret` are common choices.
///
/// ```
/// let redact = spanline_core::Redact::new(["password", "Authorization"]);
/// assert!(redact.hides("authorization") && redact.hides("PASSWORD"));
/// assert!(!redact.hides("password_hint") && !spanline_core::Redact::default().hides("password"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redact {
    /// `None` when empty: a check then costs one branch.
    keys: Option<Arc<[Box<str>]>>,
}

impl Redact {
    /// What a hidden value is written as.
    pub const MASK: &'static str = "[redacted]";
    /// [`MASK`](Self::MASK) as a JSON string.
    pub(crate) const MASK_JSON: &'static [u8] = b"\"[redacted]\"";

    /// Hides `keys` (blank ones are ignored).
    ///
    /// See the type's example.
    pub fn new<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list: Vec<Box<str>> = keys
            .into_iter()
            .map(|k| k.as_ref().trim().to_ascii_lowercase().into_boxed_str())
            .filter(|k| !k.is_empty())
            .collect();
        list.sort();
        list.dedup();
        Self {
            keys: (!list.is_empty()).then(|| Arc::from(list)),
        }
    }

    /// True when no key is hidden.
    ///
    /// ```
    /// assert!(spanline_core::Redact::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.keys.is_none()
    }

    /// Is `key`'s value hidden?
    ///
    /// See the type's example.
    #[inline]
    pub fn hides(&self, key: &str) -> bool {
        match &self.keys {
            None => false,
            Some(keys) => keys.iter().any(|k| k.eq_ignore_ascii_case(key)),
        }
    }

    /// `json`, or the mask's JSON when `key` is hidden.
    #[inline]
    pub(crate) fn json<'v>(&self, key: &str, json: &'v [u8]) -> &'v [u8] {
        if self.hides(key) {
            Self::MASK_JSON
        } else {
            json
        }
    }

    /// The hidden keys, in lower case.
    ///
    /// ```
    /// let redact = spanline_core::Redact::new(["Token", "password"]);
    /// assert_eq!(redact.keys().collect::<Vec<_>>(), ["password", "token"]);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().flat_map(|k| k.iter()).map(|k| &**k)
    }
}
