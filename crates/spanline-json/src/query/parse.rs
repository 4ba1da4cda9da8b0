//! The grammar (docs/query.md), parsed with winnow straight into an
//! [`Expr`] ready to match:
//!
//! ```text
//! query  := or
//! or     := and (("or" | "||") and)*
//! and    := unary ([("and" | "&&")] unary)*      adjacent terms: and
//! unary  := ("not" | "!") unary | "(" or ")" | term
//! term   := "exists" "(" key ")"
//!         | key ["not"] "in" "(" value ("," value)* ")"
//!         | key op value
//!         | word                                  full text
//! op     := "=" | "==" | "!=" | "~=" | "!~=" | "=~" | "!~" | "<" | "<=" | ">" | ">="
//! key    := bare key | quoted
//! value  := bare word | quoted
//! ```
//!
//! Keywords (`and`, `or`, `not`, `in`, `exists`) are read in any case.
//! What can only be checked once a value is read is checked here too, at
//! the value's column: a `level` value must name a level, a regex must
//! compile (within a size limit). Parentheses and `not`s nest at most
//! [`MAX_DEPTH`] deep, so no query can exhaust the stack.

use std::fmt;

use crate::read::Level;
use regex::{Regex, RegexBuilder};
use winnow::ascii::Caseless;
use winnow::combinator::{alt, cut_err, not, opt, terminated};
use winnow::error::{ContextError, ErrMode, FromExternalError, StrContext, StrContextValue};
use winnow::prelude::*;
use winnow::stream::{Stateful, Stream};
use winnow::token::{any, one_of, take_while};

use super::{Expr, Folded, Key, Num, Operand, Order, Term, Test};

/// How deep parentheses and `not`s may nest.
pub(super) const MAX_DEPTH: usize = 32;

/// How many regexes one query may hold.
pub(super) const MAX_REGEXES: usize = 16;

/// The largest compiled regex (bytes): a hostile pattern is an error, not
/// a memory blow-up.
pub(super) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What the parser counts as it goes.
#[derive(Clone, Copy, Debug, Default)]
struct Count {
    depth: usize,
    regexes: usize,
}

type In<'a> = Stateful<&'a str, Count>;
type Checkpoint<'a> = <In<'a> as Stream>::Checkpoint;

/// Parses a whole query; on failure, the byte offset and what is wrong.
pub(super) fn query(text: &str) -> Result<Expr, (usize, String)> {
    let input = In {
        input: text,
        state: Count::default(),
    };
    (ws, or, ws)
        .map(|(_, expr, _)| expr)
        .parse(input)
        .map_err(|e| (e.offset(), message(text, e.offset(), e.inner())))
}

/// What an error says: a refusal's own words, else what was expected
/// (the innermost), else the character found.
fn message(text: &str, offset: usize, error: &ContextError) -> String {
    if let Some(cause) = error.cause() {
        return cause.to_string();
    }
    if let Some(expected) = error.context().find_map(|c| match c {
        StrContext::Expected(e) => Some(e),
        _ => None,
    }) {
        return format!("expected {expected}");
    }
    match text.get(offset..).and_then(|rest| rest.chars().next()) {
        Some(c) => format!("unexpected `{c}`"),
        None => "the query ends too soon".to_string(),
    }
}

/// An error in the query's own words, at `at`.
#[derive(Debug)]
struct Refusal(String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

fn refuse<'a, O>(input: &mut In<'a>, at: &Checkpoint<'a>, message: String) -> ModalResult<O> {
    input.reset(at);
    Err(ErrMode::Cut(ContextError::from_external_error(
        input,
        Refusal(message),
    )))
}

fn expected(what: &'static str) -> StrContext {
    StrContext::Expected(StrContextValue::Description(what))
}

fn or(input: &mut In<'_>) -> ModalResult<Expr> {
    let mut items = vec![and(input)?];
    loop {
        let start = input.checkpoint();
        ws(input)?;
        if opt(or_op).parse_next(input)?.is_none() {
            input.reset(&start);
            break;
        }
        ws(input)?;
        items.push(
            cut_err(and)
                .context(expected("a term after `or`"))
                .parse_next(input)?,
        );
    }
    Ok(one_or(items, Expr::Or))
}

fn and(input: &mut In<'_>) -> ModalResult<Expr> {
    let mut items = vec![unary(input)?];
    loop {
        let start = input.checkpoint();
        ws(input)?;
        if opt(and_op).parse_next(input)?.is_some() {
            ws(input)?;
            items.push(
                cut_err(unary)
                    .context(expected("a term after `and`"))
                    .parse_next(input)?,
            );
            continue;
        }
        // Side by side: another term, unless an `or`, a `)` or the end
        // comes (none of them starts a term).
        match opt(unary).parse_next(input)? {
            Some(item) => items.push(item),
            None => {
                input.reset(&start);
                break;
            }
        }
    }
    Ok(one_or(items, Expr::And))
}

fn one_or(mut items: Vec<Expr>, many: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        if let Some(only) = items.pop() {
            return only;
        }
    }
    many(items)
}

fn unary(input: &mut In<'_>) -> ModalResult<Expr> {
    let start = input.checkpoint();
    if opt(not_op).parse_next(input)?.is_some() {
        ws(input)?;
        let inner = nested(input, &start, |input| {
            cut_err(unary)
                .context(expected("a term after `not`"))
                .parse_next(input)
        })?;
        return Ok(Expr::Not(Box::new(inner)));
    }
    if opt('(').parse_next(input)?.is_some() {
        ws(input)?;
        let inner = nested(input, &start, |input| {
            cut_err(or).context(expected("a term")).parse_next(input)
        })?;
        ws(input)?;
        cut_err(')').context(expected("`)`")).parse_next(input)?;
        return Ok(inner);
    }
    term.map(Expr::Term).parse_next(input)
}

/// One level deeper, refused past [`MAX_DEPTH`].
fn nested<'a>(
    input: &mut In<'a>,
    start: &Checkpoint<'a>,
    parser: impl FnOnce(&mut In<'a>) -> ModalResult<Expr>,
) -> ModalResult<Expr> {
    if input.state.depth >= MAX_DEPTH {
        return refuse(
            input,
            start,
            format!("nested too deeply: at most {MAX_DEPTH} parentheses and `not`s in one another"),
        );
    }
    input.state.depth += 1;
    let inner = parser(input);
    input.state.depth -= 1;
    inner
}

fn term(input: &mut In<'_>) -> ModalResult<Term> {
    alt((exists, keyed, word.map(|w| Term::Text(Folded::new(w))))).parse_next(input)
}

/// `exists(key)`.
fn exists(input: &mut In<'_>) -> ModalResult<Term> {
    (Caseless("exists"), ws, '(').parse_next(input)?;
    ws(input)?;
    let name = cut_err(key).context(expected("a key")).parse_next(input)?;
    ws(input)?;
    cut_err(')').context(expected("`)`")).parse_next(input)?;
    Ok(Term::Exists(Key::of(name)))
}

/// `key op value` and `key [not] in (...)`.
fn keyed(input: &mut In<'_>) -> ModalResult<Term> {
    let name = key(input)?;
    ws(input)?;
    let before = input.checkpoint();
    let negated = opt(terminated(keyword("not"), ws))
        .parse_next(input)?
        .is_some();
    if opt(keyword("in")).parse_next(input)?.is_some() {
        ws(input)?;
        let key = Key::of(name);
        let mut values = Vec::new();
        for (at, text) in list(input)? {
            values.push(operand(input, &key, &at, text)?);
        }
        return Ok(Term::Test {
            key,
            test: Test::In(values),
            negated,
        });
    }
    input.reset(&before);
    let op = op(input)?;
    ws(input)?;
    let at = input.checkpoint();
    let value = cut_err(value)
        .context(expected("a value"))
        .parse_next(input)?;
    let key = Key::of(name);
    let (test, negated) = match op {
        Op::Eq | Op::Ne => (Test::Eq(operand(input, &key, &at, value)?), op == Op::Ne),
        Op::Contains | Op::NotContains => (Test::Contains(value), op == Op::NotContains),
        Op::Regex | Op::NotRegex => (
            Test::Regex(Box::new(regex(input, &at, &value)?)),
            op == Op::NotRegex,
        ),
        Op::Order(order) => (Test::Order(order, operand(input, &key, &at, value)?), false),
    };
    Ok(Term::Test { key, test, negated })
}

/// `(a, b, "c d")`: each value with where it starts.
fn list<'a>(input: &mut In<'a>) -> ModalResult<Vec<(Checkpoint<'a>, String)>> {
    cut_err('(').context(expected("`(`")).parse_next(input)?;
    let mut values = Vec::new();
    loop {
        ws(input)?;
        let at = input.checkpoint();
        let value = cut_err(value)
            .context(expected("a value"))
            .parse_next(input)?;
        values.push((at, value));
        ws(input)?;
        if opt(',').parse_next(input)?.is_none() {
            break;
        }
    }
    cut_err(')')
        .context(expected("`,` or `)`"))
        .parse_next(input)?;
    Ok(values)
}

/// A value, read once; a `level` value must name a level.
fn operand<'a>(
    input: &mut In<'a>,
    key: &Key,
    at: &Checkpoint<'a>,
    text: String,
) -> ModalResult<Operand> {
    let level = if *key == Key::Level {
        match Level::parse(&text) {
            Some(level) => Some(level),
            None => {
                return refuse(
                    input,
                    at,
                    format!(
                        "`{text}` is not a level: trace, debug, info, warn, error, critical \
                         (or a word or number of theirs, such as warning or 40)"
                    ),
                )
            }
        }
    } else {
        None
    };
    Ok(Operand {
        number: Num::parse(&text),
        level,
        text,
    })
}

fn regex<'a>(input: &mut In<'a>, at: &Checkpoint<'a>, pattern: &str) -> ModalResult<Regex> {
    if input.state.regexes >= MAX_REGEXES {
        return refuse(
            input,
            at,
            format!("too many regexes: at most {MAX_REGEXES} in a query"),
        );
    }
    input.state.regexes += 1;
    match RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
    {
        Ok(regex) => Ok(regex),
        Err(regex::Error::Syntax(text)) => {
            // regex's message draws its own caret; keep its last line.
            let what = text
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or("not a regex");
            refuse(input, at, format!("invalid regex: {what}"))
        }
        Err(regex::Error::CompiledTooBig(limit)) => refuse(
            input,
            at,
            format!("regex too large: compiled, it would pass {limit} bytes"),
        ),
        Err(e) => refuse(input, at, format!("invalid regex: {e}")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Contains,
    NotContains,
    Regex,
    NotRegex,
    Order(Order),
}

fn op(input: &mut In<'_>) -> ModalResult<Op> {
    let at = input.checkpoint();
    // hl's regex operators: said, rather than read as something else.
    if opt(alt(("!~~=", "~~="))).parse_next(input)?.is_some() {
        return refuse(
            input,
            &at,
            "`~~=` is hl's regex operator: spanline writes `=~` (and `!~` for \"does not match\")"
                .to_string(),
        );
    }
    alt((
        "!~=".value(Op::NotContains),
        "!=".value(Op::Ne),
        "!~".value(Op::NotRegex),
        "~=".value(Op::Contains),
        "=~".value(Op::Regex),
        "==".value(Op::Eq),
        "<=".value(Op::Order(Order::Le)),
        ">=".value(Op::Order(Order::Ge)),
        "=".value(Op::Eq),
        "<".value(Op::Order(Order::Lt)),
        ">".value(Op::Order(Order::Gt)),
    ))
    .parse_next(input)
}

/// A key: a bare name (letters, digits, `_`, `.`, `-`, `@`, `/`) that is
/// not a keyword, or a quoted string.
fn key(input: &mut In<'_>) -> ModalResult<String> {
    alt((
        quoted,
        take_while(1.., is_key_char)
            .verify(|k: &str| !is_keyword(k))
            .map(str::to_string),
    ))
    .parse_next(input)
}

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '@' | '/')
}

/// A value after an operator or in a list: a quoted string, or a bare run
/// up to a space, a parenthesis, a comma or a quote. A bare keyword and a
/// bare `*` are refused with what to write instead.
fn value(input: &mut In<'_>) -> ModalResult<String> {
    if input.starts_with('"') {
        return quoted(input);
    }
    let at = input.checkpoint();
    let bare = bare(input)?;
    if is_keyword(bare) {
        return refuse(
            input,
            &at,
            format!("`{bare}` is a keyword: quote it (\"{bare}\") to mean the word"),
        );
    }
    if bare == "*" {
        return refuse(
            input,
            &at,
            "`*` is not a pattern: write exists(key) for \"has the key\", or \"*\" for a star"
                .to_string(),
        );
    }
    Ok(bare.to_string())
}

/// A word on its own (full text): a quoted string, or a bare word that is
/// not a keyword.
fn word(input: &mut In<'_>) -> ModalResult<String> {
    alt((
        quoted,
        bare.verify(|w: &str| !is_keyword(w)).map(str::to_string),
    ))
    .parse_next(input)
}

fn bare<'a>(input: &mut In<'a>) -> ModalResult<&'a str> {
    take_while(1.., |c: char| {
        !c.is_whitespace() && !matches!(c, '(' | ')' | ',' | '"')
    })
    .parse_next(input)
}

/// `"..."` with `\"`, `\\`, `\n`, `\t`, `\r` and `\/`; any other
/// backslash stays as written, so a regex's `"\d+"` means `\d+`.
fn quoted(input: &mut In<'_>) -> ModalResult<String> {
    '"'.parse_next(input)?;
    let mut out = String::new();
    loop {
        let c = cut_err(any)
            .context(expected("a closing `\"`"))
            .parse_next(input)?;
        match c {
            '"' => return Ok(out),
            '\\' => {
                let escaped = cut_err(any)
                    .context(expected("a closing `\"`"))
                    .parse_next(input)?;
                match escaped {
                    '"' | '\\' | '/' => out.push(escaped),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
            }
            c => out.push(c),
        }
    }
}

fn and_op(input: &mut In<'_>) -> ModalResult<()> {
    alt((keyword("and"), "&&".void())).parse_next(input)
}

fn or_op(input: &mut In<'_>) -> ModalResult<()> {
    alt((keyword("or"), "||".void())).parse_next(input)
}

fn not_op(input: &mut In<'_>) -> ModalResult<()> {
    alt((
        keyword("not"),
        terminated('!', not(one_of(['=', '~']))).void(),
    ))
    .parse_next(input)
}

/// A keyword in any case, not the start of a longer name.
fn keyword<'a>(word: &'static str) -> impl Parser<In<'a>, (), ErrMode<ContextError>> {
    terminated(Caseless(word), not(one_of(is_key_char))).void()
}

fn is_keyword(word: &str) -> bool {
    ["and", "or", "not", "in"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(word))
        || word == "&&"
        || word == "||"
}

fn ws(input: &mut In<'_>) -> ModalResult<()> {
    take_while(0.., char::is_whitespace)
        .void()
        .parse_next(input)
}
