//! The query language of `spanline pretty -q`, `spanline tail -q` and the
//! console's search: one grammar, matched against spanline-core's
//! `Record` (feature `query`). docs/query.md has the whole language.

mod eval;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use regex::Regex;
use spanline_core::read::Record;

/// A parsed query: test records with [`Query::matches`]. The grammar is in
/// docs/query.md.
///
/// ```
/// use spanline_core::read::Record;
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

/// Why a query could not be read: where (the byte column, from 0) and what
/// was expected. Its `Display` shows the query with a caret under the
/// column.
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
    expected: String,
}

impl QueryError {
    /// The byte offset in the query where reading failed.
    pub fn column(&self) -> usize {
        self.column
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.expected.is_empty() {
            "unexpected text"
        } else {
            self.expected.as_str()
        };
        // The caret under the column, counted in characters.
        let pad = self
            .query
            .get(..self.column)
            .map_or(self.column, |s| s.chars().count());
        write!(
            f,
            "invalid query at column {}: {what}\n  {}\n  {}^",
            self.column + 1,
            self.query,
            " ".repeat(pad)
        )
    }
}

impl std::error::Error for QueryError {}

/// The largest compiled regex a query may hold (bytes): a hostile pattern
/// is an error, not a memory blow-up.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Query {
    /// Reads a query; the error says where it is wrong.
    ///
    /// ```
    /// assert!(spanline_json::Query::parse("http.status>=500").is_ok());
    /// assert!(spanline_json::Query::parse("(unclosed").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let error = |column: usize, expected: String| QueryError {
            query: text.to_string(),
            column,
            expected,
        };
        let expr = parse::query(text).map_err(|(column, expected)| error(column, expected))?;
        let mut expr = expr;
        compile(&mut expr).map_err(|e| error(text.len(), format!("invalid regex: {e}")))?;
        Ok(Query { expr })
    }

    /// Whether `record` matches.
    ///
    /// See [`Query`]'s example.
    pub fn matches(&self, record: &Record) -> bool {
        eval::matches(&self.expr, record)
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
                Expr::Term(Term::Text(word)) => out.push(word),
                Expr::Term(Term::Cmp {
                    cmp: Cmp::Contains,
                    value,
                    ..
                }) => out.push(value),
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
    /// `key op value`.
    Cmp {
        key: String,
        cmp: Cmp,
        value: String,
    },
    /// `key in (a, b)`, `key not in (a, b)`.
    In {
        key: String,
        values: Vec<String>,
        not: bool,
    },
    /// `exists(key)`.
    Exists(String),
    /// A word alone: full text, case-insensitive.
    Text(String),
    /// `key =~ regex` / `key !~ regex`, compiled.
    Regex {
        key: String,
        regex: Box<Regex>,
        not: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Contains,
    Regex,
    NotRegex,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Compiles every regex once, at parse time.
fn compile(expr: &mut Expr) -> Result<(), regex::Error> {
    match expr {
        Expr::And(items) | Expr::Or(items) => items.iter_mut().try_for_each(compile),
        Expr::Not(inner) => compile(inner),
        Expr::Term(term) => {
            if let Term::Cmp {
                key,
                cmp: cmp @ (Cmp::Regex | Cmp::NotRegex),
                value,
            } = term
            {
                let regex = regex::RegexBuilder::new(value)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()?;
                *term = Term::Regex {
                    key: std::mem::take(key),
                    regex: Box::new(regex),
                    not: *cmp == Cmp::NotRegex,
                };
            }
            Ok(())
        }
    }
}
