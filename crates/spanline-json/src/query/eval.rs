//! Matching a parsed query against a [`Record`], or a [`LineView`] of a
//! line not read whole.
//!
//! What a key names: `level` the record's level (ordered), `message` and
//! `target` their texts, any other key a field by [`Record::get`] (its own
//! name, a preset's name for it, or a dotted path into an object). A
//! record without the key fails every test and passes its negation.
//!
//! How values compare: a number field as a number when the query's value
//! is one (integers exactly), else by its text; a string field by its
//! text, except that `<`, `<=`, `>`, `>=` with a number compare the number
//! the string holds (and fail when it holds none); `true`, `false` and
//! `null` by those words; an array when any element does; an object by
//! its JSON.
//!
//! No allocation per record, except for an object field's JSON: numbers
//! are written on the stack when their text is needed, words are folded
//! to lowercase a character at a time.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use crate::read::{Level, LineView, Record};
use serde_json::{Number, Value};

use super::{Expr, Folded, Key, Num, Operand, Term, Test};

/// What a query reads of a line.
pub(super) trait Line {
    fn level(&self) -> Option<Level>;
    fn message(&self) -> Cow<'_, str>;
    fn target(&self) -> Cow<'_, str>;
    fn field(&self, key: &str) -> Option<Cow<'_, Value>>;
    /// A word anywhere: the message, the target, every field's value (not
    /// its key), the error chains; in any case.
    fn has_word(&self, word: &Folded) -> bool;
}

impl Line for Record {
    fn level(&self) -> Option<Level> {
        self.level
    }

    fn message(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.message)
    }

    fn target(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.target)
    }

    fn field(&self, key: &str) -> Option<Cow<'_, Value>> {
        self.get(key).map(Cow::Borrowed)
    }

    fn has_word(&self, word: &Folded) -> bool {
        word.is_in(&self.message)
            || word.is_in(&self.target)
            || self.fields.iter().any(|(_, v)| value_has(v, word))
            || self
                .errors
                .iter()
                .flat_map(|(_, chain)| chain)
                .any(|s| word.is_in(s))
    }
}

/// A line read only as far as the query asks: its view, and its record
/// when a word is searched (every value, in any shape, is needed then).
pub(super) struct Lazy<'a> {
    pub(super) line: &'a str,
    pub(super) view: LineView<'a>,
    pub(super) record: OnceCell<Option<Record>>,
}

impl Line for Lazy<'_> {
    fn level(&self) -> Option<Level> {
        self.view.level()
    }

    fn message(&self) -> Cow<'_, str> {
        self.view.message()
    }

    fn target(&self) -> Cow<'_, str> {
        self.view.target()
    }

    fn field(&self, key: &str) -> Option<Cow<'_, Value>> {
        self.view.get(key).map(Cow::Owned)
    }

    fn has_word(&self, word: &Folded) -> bool {
        if word.is_absent_from(self.line) {
            return false;
        }
        self.record
            .get_or_init(|| Record::read(self.line))
            .as_ref()
            .is_some_and(|record| record.has_word(word))
    }
}

pub(super) fn matches(expr: &Expr, line: &impl Line) -> bool {
    match expr {
        Expr::And(items) => items.iter().all(|e| matches(e, line)),
        Expr::Or(items) => items.iter().any(|e| matches(e, line)),
        Expr::Not(inner) => !matches(inner, line),
        Expr::Term(term) => term_matches(term, line),
    }
}

fn term_matches(term: &Term, line: &impl Line) -> bool {
    match term {
        Term::Test { key, test, negated } => holds(key, test, line) != *negated,
        Term::Exists(key) => match key {
            Key::Level => line.level().is_some(),
            Key::Message => !line.message().is_empty(),
            Key::Target => !line.target().is_empty(),
            Key::Field(name) => line.field(name).is_some(),
        },
        Term::Text(word) => line.has_word(word),
    }
}

/// The positive test: false when the line lacks the key.
fn holds(key: &Key, test: &Test, line: &impl Line) -> bool {
    match key {
        Key::Level => line.level().is_some_and(|level| level_holds(level, test)),
        Key::Message => text_holds(&line.message(), test),
        Key::Target => text_holds(&line.target(), test),
        Key::Field(name) => line.field(name).is_some_and(|v| value_holds(&v, test)),
    }
}

/// Levels by their order; `~=` and `=~` on the level's name.
fn level_holds(level: Level, test: &Test) -> bool {
    match test {
        Test::Eq(op) => op.level == Some(level),
        Test::In(ops) => ops.iter().any(|op| op.level == Some(level)),
        Test::Order(order, op) => op.level.is_some_and(|w| order.holds(level.cmp(&w))),
        Test::Contains(part) => level.name().contains(part.as_str()),
        Test::Regex(regex) => regex.is_match(level.name()),
    }
}

fn text_holds(text: &str, test: &Test) -> bool {
    match test {
        Test::Eq(op) => text == op.text,
        Test::In(ops) => ops.iter().any(|op| text == op.text),
        Test::Order(order, op) => match op.number {
            // A number wanted: the number the text holds, if any.
            Some(wanted) => Num::parse(text)
                .and_then(|n| n.compare(wanted))
                .is_some_and(|o| order.holds(o)),
            None => order.holds(text.cmp(&op.text)),
        },
        Test::Contains(part) => text.contains(part.as_str()),
        Test::Regex(regex) => regex.is_match(text),
    }
}

fn value_holds(value: &Value, test: &Test) -> bool {
    match value {
        Value::String(s) => text_holds(s, test),
        Value::Number(n) => number_holds(n, test),
        Value::Bool(true) => text_holds("true", test),
        Value::Bool(false) => text_holds("false", test),
        Value::Null => text_holds("null", test),
        Value::Array(items) => items.iter().any(|v| value_holds(v, test)),
        Value::Object(_) => text_holds(&value.to_string(), test),
    }
}

fn number_holds(number: &Number, test: &Test) -> bool {
    let n = Num::of_json(number);
    let equal = |op: &Operand| match op.number {
        Some(wanted) => n.compare(wanted) == Some(Ordering::Equal),
        None => with_text(number, |t| t == op.text),
    };
    match test {
        Test::Eq(op) => equal(op),
        Test::In(ops) => ops.iter().any(equal),
        Test::Order(order, op) => match op.number {
            Some(wanted) => n.compare(wanted).is_some_and(|o| order.holds(o)),
            None => with_text(number, |t| order.holds(t.cmp(&op.text))),
        },
        Test::Contains(part) => with_text(number, |t| t.contains(part.as_str())),
        Test::Regex(regex) => with_text(number, |t| regex.is_match(t)),
    }
}

/// A number's JSON text, written on the stack.
fn with_text<R>(number: &Number, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = StackText::default();
    if write!(buf, "{number}").is_ok() {
        f(buf.as_str())
    } else {
        f(&number.to_string())
    }
}

/// A short text on the stack (a JSON number is at most 24 bytes).
#[derive(Default)]
struct StackText {
    bytes: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_str(&self) -> &str {
        self.bytes
            .get(..self.len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn value_has(value: &Value, word: &Folded) -> bool {
    match value {
        Value::String(s) => word.is_in(s),
        Value::Number(n) => with_text(n, |t| word.is_in(t)),
        Value::Bool(true) => word.is_in("true"),
        Value::Bool(false) => word.is_in("false"),
        Value::Null => word.is_in("null"),
        Value::Array(items) => items.iter().any(|v| value_has(v, word)),
        Value::Object(map) => map.values().any(|v| value_has(v, word)),
    }
}

impl Folded {
    pub(super) fn new(word: String) -> Folded {
        let lower = word.chars().flat_map(char::to_lowercase).collect();
        Folded { word, lower }
    }

    /// Whether the word is surely in no text of this line, read as JSON:
    /// it is not in the line's bytes, which are the texts themselves when
    /// the line has no escape. A word that could be part of a number is
    /// not decided here (`1e3` is read as `1000.0`), nor one with a quote
    /// or a character that is not ASCII.
    fn is_absent_from(&self, line: &str) -> bool {
        let lower = self.lower.as_str();
        let numeric = |c: char| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-');
        lower.is_ascii()
            && !lower.contains('"')
            && !lower.chars().all(numeric)
            && !line.contains('\\')
            && !self.is_in(line)
    }

    /// Whether `text` holds the word, in any case.
    pub(super) fn is_in(&self, text: &str) -> bool {
        let needle = self.lower.as_bytes();
        let Some(&first) = needle.first() else {
            return true;
        };
        if self.lower.is_ascii() {
            // ASCII: bytes compared without case; a byte of a non-ASCII
            // character never equals an ASCII one.
            let hay = text.as_bytes();
            let starts = memchr::memchr2_iter(first, first.to_ascii_uppercase(), hay);
            return starts.into_iter().any(|at| {
                hay.get(at..at + needle.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(needle))
            });
        }
        text.char_indices().any(|(at, _)| {
            let mut rest = text
                .get(at..)
                .unwrap_or("")
                .chars()
                .flat_map(char::to_lowercase);
            self.lower.chars().all(|c| rest.next() == Some(c))
        })
    }
}
