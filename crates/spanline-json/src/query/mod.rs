//! The query language of `spanline pretty -q`, `spanline tail -q` and the
//! console's search: one grammar, matched against spanline-core's
//! `Record` (feature `query`). docs/query.md has the whole language.
//!
//! - `parse.rs`: the grammar (winnow), straight to what is matched: keys
//!   resolved, numbers and levels read, regexes compiled, all once;
//! - `eval.rs`: matching a record, with no allocation per record on the
//!   common paths;
//! - `tests.rs`: the grammar, the matching, real lines, and arbitrary text.

mod eval;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use crate::read::{Level, LineView, Record};
use regex::Regex;

/// A parsed query: test records with [`Query::matches`]. The grammar is in
/// docs/query.md.
///
/// ```
/// use spanline_json::read::Record;
/// use spanline_json::Query;
/// let query: Query = r#"level>=warn and (user_id=42 or tenant in (acme, "big co")) and not "health check""#.parse()?;
/// let line = Record::read(r#"{"level":"ERROR","message":"payment failed","user_id":42}"#).unwrap();
/// assert!(query.matches(&line));
/// let quiet = Record::read(r#"{"level":"INFO","message":"payment failed","user_id":42}"#).unwrap();
/// assert!(!query.matches(&quiet));
/// # Ok::<(), spanline_json::QueryError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Query {
    expr: Expr,
}

/// Why a query could not be read: where (the byte column, from 0) and
/// what is wrong there. Its `Display` shows the query with a caret under
/// the column.
///
/// ```
/// let err = spanline_json::Query::parse("level>= and x").unwrap_err();
/// assert_eq!(err.column(), 8);
/// assert!(err.to_string().contains("  level>= and x\n          ^"), "{err}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    query: String,
    column: usize,
    message: String,
}

impl QueryError {
    /// The byte offset in the query where reading failed (from 0; the
    /// `Display` counts from 1).
    ///
    /// ```
    /// let err = spanline_json::Query::parse(r#"target=~"(""#).unwrap_err();
    /// assert_eq!(err.column(), 8, "the regex, where it starts");
    /// ```
    pub fn column(&self) -> usize {
        self.column
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The query on one line (a control character, a newline included,
        // shows as a space), and the caret under the column, counted in
        // characters.
        let shown: String = self
            .query
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let pad = self
            .query
            .get(..self.column)
            .map_or(self.column, |s| s.chars().count());
        write!(
            f,
            "invalid query at column {}: {}\n  {shown}\n  {}^",
            self.column + 1,
            self.message,
            " ".repeat(pad)
        )
    }
}

impl std::error::Error for QueryError {}

impl Query {
    /// Reads a query; the error says where it is wrong. Every regex is
    /// compiled here, once, with a size limit.
    ///
    /// ```
    /// assert!(spanline_json::Query::parse("http.status>=500").is_ok());
    /// assert!(spanline_json::Query::parse("(unclosed").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        parse::query(text)
            .map(|expr| Query { expr })
            .map_err(|(column, message)| QueryError {
                query: text.to_string(),
                column,
                message,
            })
    }

    /// Whether `record` matches.
    ///
    /// ```
    /// use spanline_json::read::Record;
    /// let query = spanline_json::Query::parse("http.status>=500 timeout")?;
    /// let line = Record::read(r#"{"msg":"upstream Timeout","http":{"status":504}}"#).unwrap();
    /// assert!(query.matches(&line));
    /// # Ok::<(), spanline_json::QueryError>(())
    /// ```
    pub fn matches(&self, record: &Record) -> bool {
        eval::matches(&self.expr, record)
    }

    /// Whether a line matches, as [`Query::matches`] on its
    /// [`Record`] would answer; `None` when the line is not a JSON object.
    /// Faster for a filter over many lines: only the keys the query names
    /// are read (a `LineView`), and the whole record only for a word
    /// searched alone.
    ///
    /// ```
    /// let query = spanline_json::Query::parse("level>=warn and user_id=42")?;
    /// assert_eq!(query.matches_line(r#"{"level":"ERROR","message":"boom","user_id":42}"#), Some(true));
    /// assert_eq!(query.matches_line(r#"{"level":"INFO","message":"ok","user_id":42}"#), Some(false));
    /// assert_eq!(query.matches_line("not json"), None);
    /// # Ok::<(), spanline_json::QueryError>(())
    /// ```
    pub fn matches_line(&self, line: &str) -> Option<bool> {
        match LineView::read(line) {
            Some(view) => Some(eval::matches(
                &self.expr,
                &eval::Lazy {
                    line,
                    view,
                    record: std::cell::OnceCell::new(),
                },
            )),
            None => Record::read(line).map(|record| self.matches(&record)),
        }
    }

    /// The texts a viewer may mark in the lines shown: the words searched
    /// alone and the `~=` substrings, except those under a `not`.
    ///
    /// ```
    /// let query = spanline_json::Query::parse(r#"timeout path~=/admin not debug level>=warn"#)?;
    /// assert_eq!(query.highlights(), ["timeout", "/admin"]);
    /// # Ok::<(), spanline_json::QueryError>(())
    /// ```
    pub fn highlights(&self) -> Vec<&str> {
        fn walk<'a>(expr: &'a Expr, out: &mut Vec<&'a str>) {
            match expr {
                Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| walk(e, out)),
                Expr::Not(_) => {}
                Expr::Term(Term::Text(word)) => out.push(&word.word),
                Expr::Term(Term::Test {
                    test: Test::Contains(text),
                    negated: false,
                    ..
                }) => out.push(text),
                Expr::Term(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut out);
        out
    }
}

impl FromStr for Query {
    type Err = QueryError;

    /// [`Query::parse`], for `"...".parse::<Query>()` and clap.
    ///
    /// ```
    /// let query: spanline_json::Query = "level>=warn".parse()?;
    /// # Ok::<(), spanline_json::QueryError>(())
    /// ```
    fn from_str(text: &str) -> Result<Query, QueryError> {
        Query::parse(text)
    }
}

/// A query, parsed.
#[derive(Clone, Debug)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Term(Term),
}

/// One test of a record.
#[derive(Clone, Debug)]
enum Term {
    /// `key op value`, `key [not] in (...)`: a test of what `key` names,
    /// or its negation (`!=`, `!~=`, `!~`, `not in`), which a record
    /// without the key passes.
    Test { key: Key, test: Test, negated: bool },
    /// `exists(key)`.
    Exists(Key),
    /// A word alone: anywhere, in any case.
    Text(Folded),
}

/// What a key names, resolved at parse time.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    /// `level`: [`Record::level`], ordered.
    Level,
    /// `message`, `msg`.
    Message,
    /// `target`, `logger`.
    Target,
    /// Any other key: [`Record::get`].
    Field(String),
}

impl Key {
    fn of(name: String) -> Key {
        match name.as_str() {
            "level" => Key::Level,
            "message" | "msg" => Key::Message,
            "target" | "logger" => Key::Target,
            _ => Key::Field(name),
        }
    }
}

/// The positive form of a comparison.
#[derive(Clone, Debug)]
enum Test {
    /// `=` (`!=` negated).
    Eq(Operand),
    /// `in (...)` (`not in` negated).
    In(Vec<Operand>),
    /// `<`, `<=`, `>`, `>=`.
    Order(Order, Operand),
    /// `~=` (`!~=` negated): case-sensitive substring.
    Contains(String),
    /// `=~` (`!~` negated), compiled at parse time.
    Regex(Box<Regex>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Order {
    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Greater, Less};
        match self {
            Order::Lt => ordering == Less,
            Order::Le => ordering != Greater,
            Order::Gt => ordering == Greater,
            Order::Ge => ordering != Less,
        }
    }
}

/// A value of the query, read once: its text, the number it is (if it is
/// one) and, for the `level` key, the level it names.
#[derive(Clone, Debug)]
struct Operand {
    text: String,
    number: Option<Num>,
    level: Option<Level>,
}

/// A number: integers compare exactly (ids above 2^53 too), the rest as
/// `f64`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    /// The number a text is: `42`, `-7`, `2.5`, `1e3`; not `inf`, `nan`,
    /// `0x10` or `1_000`.
    fn parse(text: &str) -> Option<Num> {
        if !text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) {
            return None;
        }
        if let Ok(int) = text.parse::<i128>() {
            return Some(Num::Int(int));
        }
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Num::Float)
    }

    fn of_json(number: &serde_json::Number) -> Num {
        if let Some(int) = number.as_i64() {
            Num::Int(int.into())
        } else if let Some(int) = number.as_u64() {
            Num::Int(int.into())
        } else {
            Num::Float(number.as_f64().unwrap_or(f64::NAN))
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            // Exact below 2^53, the nearest `f64` above.
            Num::Int(int) => int as f64,
            Num::Float(float) => float,
        }
    }

    fn compare(self, other: Num) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }
}

/// A word searched in any case: folded once, compared against texts
/// folded a character at a time (no allocation per record).
#[derive(Clone, Debug)]
struct Folded {
    /// As written, for [`Query::highlights`].
    word: String,
    /// Each character lowercased (`char::to_lowercase`, as the texts it is
    /// compared with).
    lower: String,
}
