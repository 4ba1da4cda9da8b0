//! The grammar (docs/query.md), parsed with winnow into an [`Expr`]:
//!
//! ```text
//! query  := or
//! or     := and ("or" and)*
//! and    := unary (["and"] unary)*          adjacent terms: and
//! unary  := "not" unary | "(" or ")" | term
//! term   := "exists(" key ")"
//!         | key ["not"] "in" "(" value ("," value)* ")"
//!         | key op value
//!         | value                             full text
//! op     := "=" | "!=" | "~=" | "=~" | "!~" | "<=" | ">=" | "<" | ">"
//! ```

use winnow::ascii::multispace0;
use winnow::combinator::{alt, cut_err, delimited, opt, preceded, separated, terminated};
use winnow::error::{ContextError, ErrMode, StrContext, StrContextValue};
use winnow::prelude::*;
use winnow::token::{none_of, take_while};

use super::{Cmp, Expr, Term};

type In<'a> = &'a str;

/// Parses a whole query; on failure, the byte offset and what was expected.
pub(super) fn query(text: &str) -> Result<Expr, (usize, String)> {
    terminated(
        delimited(multispace0, or, multispace0),
        winnow::combinator::eof,
    )
    .parse(text)
    .map_err(|e| (e.offset(), e.inner().to_string()))
}

fn or(input: &mut In<'_>) -> ModalResult<Expr> {
    let first = and.parse_next(input)?;
    let mut rest: Vec<Expr> =
        winnow::combinator::repeat(0.., preceded((ws, keyword("or"), ws), cut_err(and)))
            .parse_next(input)?;
    Ok(if rest.is_empty() {
        first
    } else {
        rest.insert(0, first);
        Expr::Or(rest)
    })
}

fn and(input: &mut In<'_>) -> ModalResult<Expr> {
    let first = unary.parse_next(input)?;
    let mut rest: Vec<Expr> = winnow::combinator::repeat(
        0..,
        preceded(
            (ws, opt(terminated(keyword("and"), ws))),
            // Not the start of an `or`, a `)` or the end: another term.
            preceded(winnow::combinator::not(keyword("or")), unary),
        ),
    )
    .parse_next(input)?;
    Ok(if rest.is_empty() {
        first
    } else {
        rest.insert(0, first);
        Expr::And(rest)
    })
}

fn unary(input: &mut In<'_>) -> ModalResult<Expr> {
    alt((
        preceded((keyword("not"), ws), cut_err(unary)).map(|e| Expr::Not(Box::new(e))),
        delimited(
            ('(', ws),
            cut_err(or),
            cut_err((ws, ')')).context(StrContext::Expected(StrContextValue::CharLiteral(')'))),
        ),
        term.map(Expr::Term),
    ))
    .parse_next(input)
}

fn term(input: &mut In<'_>) -> ModalResult<Term> {
    alt((
        delimited(("exists(", ws), cut_err(key), cut_err((ws, ')'))).map(Term::Exists),
        (
            key,
            ws,
            opt(terminated(keyword("not"), ws)),
            keyword("in"),
            ws,
            cut_err(list),
        )
            .map(|(key, _, not, _, _, values)| Term::In {
                key,
                values,
                not: not.is_some(),
            }),
        (
            key,
            ws,
            op,
            ws,
            cut_err(value).context(StrContext::Expected(StrContextValue::Description(
                "a value",
            ))),
        )
            .map(|(key, _, cmp, _, value)| Term::Cmp { key, cmp, value }),
        word.map(Term::Text),
    ))
    .parse_next(input)
}

fn list(input: &mut In<'_>) -> ModalResult<Vec<String>> {
    delimited(
        ('(', ws),
        separated(1.., value, (ws, ',', ws)),
        cut_err((ws, ')')).context(StrContext::Expected(StrContextValue::CharLiteral(')'))),
    )
    .parse_next(input)
}

fn op(input: &mut In<'_>) -> ModalResult<Cmp> {
    alt((
        "!=".value(Cmp::Ne),
        "~=".value(Cmp::Contains),
        "=~".value(Cmp::Regex),
        "!~".value(Cmp::NotRegex),
        "<=".value(Cmp::Le),
        ">=".value(Cmp::Ge),
        "=".value(Cmp::Eq),
        "<".value(Cmp::Lt),
        ">".value(Cmp::Gt),
    ))
    .parse_next(input)
}

/// A key: a bare name (letters, digits, `_`, `.`, `-`, `@`, `/`) or a
/// quoted string.
fn key(input: &mut In<'_>) -> ModalResult<String> {
    alt((
        quoted,
        take_while(1.., |c: char| {
            c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '@' | '/')
        })
        .verify(|k: &str| !is_keyword(k))
        .map(str::to_string),
    ))
    .parse_next(input)
}

/// A value: a quoted string, or a bare run up to a space, a parenthesis or
/// a comma that is not `and`, `or`, `not` or `in` (quote those).
fn value(input: &mut In<'_>) -> ModalResult<String> {
    word.parse_next(input)
}

/// A word on its own (full text): a quoted string, or a bare word that is
/// not `and`, `or` or `not`.
fn word(input: &mut In<'_>) -> ModalResult<String> {
    alt((quoted, bare.verify(|w: &String| !is_keyword(w)))).parse_next(input)
}

fn bare(input: &mut In<'_>) -> ModalResult<String> {
    take_while(1.., |c: char| {
        !c.is_whitespace() && !matches!(c, '(' | ')' | ',' | '"')
    })
    .map(str::to_string)
    .parse_next(input)
}

/// `"..."` with `\"`, `\\`, `\n` and `\t`.
fn quoted(input: &mut In<'_>) -> ModalResult<String> {
    let chars = winnow::combinator::repeat(
        0..,
        alt((
            preceded(
                '\\',
                alt((
                    '"'.value('"'),
                    '\\'.value('\\'),
                    'n'.value('\n'),
                    't'.value('\t'),
                    '/'.value('/'),
                )),
            ),
            none_of(['"', '\\']),
        )),
    )
    .fold(String::new, |mut s, c| {
        s.push(c);
        s
    });
    delimited(
        '"',
        chars,
        cut_err('"').context(StrContext::Expected(StrContextValue::Description(
            "a closing quote",
        ))),
    )
    .parse_next(input)
}

fn keyword<'a>(word: &'static str) -> impl Parser<In<'a>, &'a str, ErrMode<ContextError>> {
    terminated(
        word,
        winnow::combinator::not(take_while(1, |c: char| {
            c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '@' | '/')
        })),
    )
}

fn is_keyword(word: &str) -> bool {
    matches!(word, "and" | "or" | "not" | "in")
}

fn ws(input: &mut In<'_>) -> ModalResult<()> {
    multispace0.void().parse_next(input)
}
