//! A child's errors, made errors again in the parent: the wire carries an
//! error as its message (`<field>`) and causes (`<field>_sources`) among
//! the fields, and the type names of each in the record's `errors` (which
//! marks the field as an error); the parent re-emits one `&dyn Error` with
//! that chain, so its own schema writes it in its style (structlog's
//! `exception`, ECS's `error.*`, or `<field>` and `<field>_sources` as the
//! child wrote them).

use std::error::Error;
use std::fmt;

use serde_json::{Map, Value as Json};

/// One link of a forwarded chain.
#[derive(Clone)]
pub(crate) struct Forwarded {
    message: String,
    type_name: Option<String>,
    source: Option<Box<Forwarded>>,
}

impl Forwarded {
    /// The chain of `message`, `sources` (outermost first) and their
    /// `types` (the error's first); `None` when the parts do not read as
    /// one (then the fields are re-emitted as they came).
    pub(crate) fn from_parts(message: &str, sources: Option<&Json>, types: &Json) -> Option<Self> {
        let types = types.as_array()?;
        let sources = match sources {
            Some(Json::Array(items)) => items
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()?,
            Some(_) => return None,
            None => Vec::new(),
        };
        if types.len() != sources.len() + 1 {
            return None;
        }
        let type_of = |i: usize| types.get(i).and_then(Json::as_str).map(str::to_string);
        let mut chain: Option<Box<Forwarded>> = None;
        for (i, text) in sources.into_iter().enumerate().rev() {
            chain = Some(Box::new(Forwarded {
                message: text,
                type_name: type_of(i + 1),
                source: chain,
            }));
        }
        Some(Forwarded {
            message: message.to_string(),
            type_name: type_of(0),
            source: chain,
        })
    }

    /// As a field value.
    pub(crate) fn boxed(self) -> Box<dyn Error + Send + Sync> {
        Box::new(self)
    }
}

impl fmt::Display for Forwarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Forwarded {
    /// The child's type name, which the parent's error styles read off the
    /// start of `Debug`; the quoted message when it had none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.type_name {
            Some(name) => f.write_str(name),
            None => fmt::Debug::fmt(&self.message, f),
        }
    }
}

impl Error for Forwarded {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// The error fields of a record, from its `errors` map: the indexes of
/// `<field>` and `<field>_sources` (if any) in `names`, and the type names.
pub(crate) fn error_fields<'e>(
    names: &[&str],
    errors: &'e Map<String, Json>,
) -> Vec<(usize, Option<usize>, &'e Json)> {
    let position = |wanted: &str| names.iter().position(|n| *n == wanted);
    errors
        .iter()
        .filter_map(|(name, types)| {
            let message_at = position(name)?;
            let sources_at = position(&format!("{name}_sources"));
            Some((message_at, sources_at, types))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use serde_json::json;

    use super::*;

    #[test]
    fn a_chain_is_rebuilt_with_its_types() {
        let types = json!(["QueryFailed", null]);
        let sources = json!(["timed out"]);
        let err = Forwarded::from_parts("query failed", Some(&sources), &types).unwrap();
        assert_eq!(format!("{err:?}"), "QueryFailed");
        let cause = err.source().unwrap();
        assert_eq!(cause.to_string(), "timed out");
        assert_eq!(format!("{cause:?}"), "\"timed out\"");
        assert!(cause.source().is_none());
    }

    #[test]
    fn parts_that_do_not_fit_are_not_an_error() {
        let two = json!(["A", "B"]);
        assert!(
            Forwarded::from_parts("m", None, &two).is_none(),
            "a type too many"
        );
        assert!(Forwarded::from_parts("m", Some(&json!("x")), &json!(["A", "B"])).is_none());
        assert!(Forwarded::from_parts("m", None, &json!("A")).is_none());
        assert!(Forwarded::from_parts("m", None, &json!(["A"])).is_some());
    }

    #[test]
    fn error_fields_are_found_by_name() {
        let names = ["message", "error", "error_sources", "cause"];
        let errors = json!({"error": ["A", "B"], "cause": ["C"], "gone": ["D"]});
        let found = error_fields(&names, errors.as_object().unwrap());
        assert_eq!(
            found.iter().map(|(m, s, _)| (*m, *s)).collect::<Vec<_>>(),
            [(1, Some(2)), (3, None)],
            "a name without its field is skipped"
        );
    }
}
