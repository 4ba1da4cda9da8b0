//! Matching a parsed query against a [`Record`].
//!
//! Keys: `level` (ordered: `level>=warn`), `message` (or `msg`), `target`
//! (or `logger`), else a field by [`Record::get`] (its own name, a preset's
//! name for it, or a dotted path into an object). Values compare as
//! numbers when both sides are numbers, else as text (a string field's
//! text without quotes, any other value as JSON).

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;
use spanline_core::read::{Level, Record};

use super::{Cmp, Expr, Term};

pub(super) fn matches(expr: &Expr, record: &Record) -> bool {
    match expr {
        Expr::And(items) => items.iter().all(|e| matches(e, record)),
        Expr::Or(items) => items.iter().any(|e| matches(e, record)),
        Expr::Not(inner) => !matches(inner, record),
        Expr::Term(term) => term_matches(term, record),
    }
}

/// What a key names in a record.
enum Found<'a> {
    Level(Option<Level>),
    Text(&'a str),
    Value(&'a Value),
    Missing,
}

fn find<'a>(record: &'a Record, key: &str) -> Found<'a> {
    match key {
        "level" => Found::Level(record.level),
        "message" | "msg" => Found::Text(&record.message),
        "target" | "logger" => Found::Text(&record.target),
        _ => record.get(key).map_or(Found::Missing, Found::Value),
    }
}

fn text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

fn term_matches(term: &Term, record: &Record) -> bool {
    match term {
        Term::Cmp { key, cmp, value } => compare(find(record, key), *cmp, value),
        Term::In { key, values, not } => {
            let found = find(record, key);
            let any = values.iter().any(|v| compare_ref(&found, Cmp::Eq, v));
            any != *not
        }
        Term::Exists(key) => match find(record, key) {
            Found::Level(level) => level.is_some(),
            Found::Text(text) => !text.is_empty(),
            Found::Value(_) => true,
            Found::Missing => false,
        },
        Term::Regex { key, regex, not } => {
            let hit = match find(record, key) {
                Found::Level(level) => level.is_some_and(|l| regex.is_match(l.name())),
                Found::Text(text) => regex.is_match(text),
                Found::Value(value) => regex.is_match(&text(value)),
                Found::Missing => false,
            };
            hit != *not
        }
        Term::Text(word) => full_text(record, word),
    }
}

fn compare(found: Found<'_>, cmp: Cmp, value: &str) -> bool {
    compare_ref(&found, cmp, value)
}

fn compare_ref(found: &Found<'_>, cmp: Cmp, value: &str) -> bool {
    let ordering = match found {
        // A missing key differs from every value, and is nothing else.
        Found::Missing => return cmp == Cmp::Ne,
        Found::Level(None) => return cmp == Cmp::Ne,
        Found::Level(Some(level)) => match Level::parse(value) {
            Some(wanted) if cmp != Cmp::Contains => level.cmp(&wanted),
            // Not a level word (or `~=`): the level's name as text.
            _ => return text_cmp(level.name(), cmp, value),
        },
        Found::Text(text) => return text_cmp(text, cmp, value),
        Found::Value(field) => {
            if let (Some(a), Ok(b)) = (field.as_f64(), value.parse::<f64>()) {
                if cmp == Cmp::Contains {
                    return text(field).contains(value);
                }
                match a.partial_cmp(&b) {
                    Some(ordering) => ordering,
                    None => return cmp == Cmp::Ne,
                }
            } else {
                return text_cmp(&text(field), cmp, value);
            }
        }
    };
    holds(ordering, cmp)
}

fn text_cmp(text: &str, cmp: Cmp, value: &str) -> bool {
    if cmp == Cmp::Contains {
        return text.contains(value);
    }
    holds(text.cmp(value), cmp)
}

fn holds(ordering: Ordering, cmp: Cmp) -> bool {
    match cmp {
        Cmp::Eq => ordering == Ordering::Equal,
        Cmp::Ne => ordering != Ordering::Equal,
        Cmp::Lt => ordering == Ordering::Less,
        Cmp::Le => ordering != Ordering::Greater,
        Cmp::Gt => ordering == Ordering::Greater,
        Cmp::Ge => ordering != Ordering::Less,
        // Handled before: no ordering says "contains" or "matches".
        Cmp::Contains | Cmp::Regex | Cmp::NotRegex => false,
    }
}

/// A word anywhere: the message, the target, any field's value (or key),
/// an error chain; case-insensitive.
fn full_text(record: &Record, word: &str) -> bool {
    let word = word.to_lowercase();
    let has = |s: &str| s.to_lowercase().contains(&word);
    has(&record.message)
        || has(&record.target)
        || record
            .fields
            .iter()
            .any(|(k, v)| has(k) || value_has(v, &has))
        || record
            .errors
            .iter()
            .flat_map(|(_, chain)| chain)
            .any(|s| has(s))
}

fn value_has(value: &Value, has: &impl Fn(&str) -> bool) -> bool {
    match value {
        Value::String(s) => has(s),
        Value::Array(items) => items.iter().any(|v| value_has(v, has)),
        Value::Object(map) => map.iter().any(|(k, v)| has(k) || value_has(v, has)),
        other => has(&other.to_string()),
    }
}
