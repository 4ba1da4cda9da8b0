//! Reading a line without building its [`Record`](super::Record): what a
//! filter needs from lines it will mostly reject.
//!
//! A `Record` parses every value and moves every key; a filter over a
//! large file looks at two or three keys of each line and shows one line
//! in hundreds. A [`LineView`] checks the line is JSON, keeps each
//! top-level value as the text written, and parses a value only when it is
//! asked for, answering as the line's `Record` would (a property test in
//! spanline-json's query tests holds the two to the same answers).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{alias, chain, keys, text_of, Level, NESTED_KEYS};

/// A line's top-level keys, each with its value as written: read with
/// [`LineView::read`], asked like a [`Record`](super::Record). The query
/// reads each line through one first (see `tests` below).
#[derive(Clone, Debug)]
pub(crate) struct LineView<'a> {
    pairs: Vec<(&'a str, &'a RawValue)>,
}

impl<'a> LineView<'a> {
    /// Reads a line's top level; `None` when it is not a JSON object, or
    /// is a shape left to [`Record::read`](super::Record::read): a key
    /// written with an escape, tracing-subscriber's nested shape (`fields`,
    /// `span`, `spans`), an error chain written whole (`exception`,
    /// `error.stack_trace`).
    pub(crate) fn read(line: &'a str) -> Option<LineView<'a>> {
        let pairs = serde_json::Deserializer::from_str(line.trim())
            .deserialize_map(PairsVisitor)
            .ok()?;
        let whole =
            |key: &str| NESTED_KEYS.contains(&key) || chain::WHOLE_CHAIN_KEYS.contains(&key);
        if pairs.iter().any(|(key, _)| whole(key)) {
            return None;
        }
        Some(LineView { pairs })
    }

    /// A top-level value as written; the last when a key is written twice
    /// (as a `Record` keeps it).
    fn raw(&self, key: &str) -> Option<&'a RawValue> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// The first of `candidates` the line has.
    fn first_present(&self, candidates: &[&'static str]) -> Option<&'static str> {
        candidates.iter().copied().find(|k| self.raw(k).is_some())
    }

    /// The key the level is read from: the first level key that holds a
    /// level (a user's `level: "high"` beside GCP's `severity`).
    fn level_key(&self) -> Option<(&'static str, Level)> {
        keys().level.iter().find_map(|k| {
            let level = level_of(self.raw(k)?)?;
            Some((*k, level))
        })
    }

    /// The level, as [`Record::level`](super::Record::level).
    pub(crate) fn level(&self) -> Option<Level> {
        self.level_key().map(|(_, level)| level)
    }

    /// The message, as [`Record::message`](super::Record::message).
    pub(crate) fn message(&self) -> Cow<'a, str> {
        self.text_under(&keys().message)
    }

    /// The target, as [`Record::target`](super::Record::target).
    pub(crate) fn target(&self) -> Cow<'a, str> {
        self.text_under(&keys().target)
    }

    fn text_under(&self, candidates: &[&'static str]) -> Cow<'a, str> {
        candidates
            .iter()
            .find_map(|k| self.raw(k))
            .map(raw_text)
            .unwrap_or_default()
    }

    /// A field by key, parsed, as [`Record::get`](super::Record::get)
    /// finds it: as written, under the name a preset writes it, or as a
    /// dotted path into an object.
    pub(crate) fn get(&self, key: &str) -> Option<Value> {
        if let Some(value) = self.field(key) {
            return Some(value);
        }
        if let Some(written) = alias(key) {
            if let Some(value) = self.field(written) {
                return Some(value);
            }
        }
        let mut at = key.len();
        while let Some(dot) = key[..at].rfind('.') {
            if let Some(mut value) = self.field(&key[..dot]) {
                for part in key[dot + 1..].split('.') {
                    value = value.as_object_mut()?.shift_remove(part)?;
                }
                return Some(value);
            }
            at = dot;
        }
        None
    }

    /// A key of the record's fields: not the key its time, level, message
    /// or target came from, not an error chain's causes.
    fn field(&self, key: &str) -> Option<Value> {
        let raw = self.raw(key)?;
        if self.is_taken(key) {
            return None;
        }
        let causes = key.ends_with("_sources") || key.ends_with(".sources");
        if causes && raw.get().starts_with('[') {
            return None;
        }
        serde_json::from_str(raw.get()).ok()
    }

    /// Whether the record reads its time, level, message or target from
    /// `key` (the line has it).
    fn is_taken(&self, key: &str) -> bool {
        let keys = keys();
        let taken = |candidates: &[&'static str]| {
            candidates.contains(&key) && self.first_present(candidates) == Some(key)
        };
        taken(&keys.time)
            || taken(&keys.message)
            || taken(&keys.target)
            || (keys.level.contains(&key) && self.level_key().is_some_and(|(k, _)| k == key))
    }
}

/// A level from a value as written: a word (a string without escapes is
/// not copied) or a number.
fn level_of(raw: &RawValue) -> Option<Level> {
    let text = raw.get();
    match text.as_bytes().first()? {
        b'"' => Level::parse(&raw_text(raw)),
        b'0'..=b'9' => text.parse::<u64>().ok().map(Level::from_number),
        b'-' => None,
        _ => Level::of_value(&serde_json::from_str(text).ok()?),
    }
}

/// A value as text, as [`text_of`] gives it: a string without its quotes
/// (borrowed when written without escapes), anything else as JSON.
fn raw_text(raw: &RawValue) -> Cow<'_, str> {
    let text = raw.get();
    if let Some(inner) = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.contains('\\'))
    {
        return Cow::Borrowed(inner);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value) => Cow::Owned(text_of(&value)),
        Err(_) => Cow::Borrowed(text),
    }
}

/// The top level of an object, keys borrowed (a key with an escape is an
/// error: [`LineView::read`] leaves that line to `Record`).
struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = Vec<(&'de str, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(key) = map.next_key::<&'de str>()? {
            pairs.push((key, map.next_value::<&'de RawValue>()?));
        }
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_answers_as_a_record_does() {
        let line = r#"{"timestamp":"2026-12-06T10:00:00Z","level":"WARN","message":"slow","user_id":42,"http":{"status":503}}"#;
        let view = LineView::read(line).unwrap();
        assert_eq!(view.level(), Some(Level::Warn));
        assert_eq!(view.message(), "slow");
        assert_eq!(view.get("user_id").unwrap(), 42);
        assert_eq!(view.get("http.status").unwrap(), 503);
        // The level's key is the level, not a field, as in a `Record`.
        assert!(view.get("level").is_none());
    }
}
