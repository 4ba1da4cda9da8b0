//! A child's errors, made errors again in the parent: the wire carries an
//! error as its message (`<field>`), its causes (`<field>_sources`) and
//! the type names of each (`<field>_types`, which marks the field as an
//! error); the parent re-emits one `&dyn Error` with that chain, so its
//! own schema writes it in its style (structlog's `exception`, ECS's
//! `error.*`, or `<field>` and `<field>_sources` as the child wrote it).

use std::error::Error;
use std::fmt;

use serde_json::Value as Json;

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

/// The error fields of a record: for each `<field>_types`, the indexes of
/// `<field>`, `<field>_sources` (if any) and `<field>_types` in `names`.
pub(crate) fn error_fields<'n>(
    names: impl Iterator<Item = &'n str> + Clone,
) -> Vec<(usize, Option<usize>, usize)> {
    let position = |wanted: &str| names.clone().position(|n| n == wanted);
    names
        .clone()
        .enumerate()
        .filter_map(|(types_at, name)| {
            let base = name.strip_suffix(spanline_core::ERROR_TYPES_SUFFIX)?;
            let message_at = position(base)?;
            let sources_at = position(&format!("{base}_sources"));
            Some((message_at, sources_at, types_at))
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
    fn error_fields_are_found_by_their_types() {
        let names = [
            "message",
            "error",
            "error_sources",
            "error_types",
            "x_types",
            "cause",
            "cause_types",
        ];
        assert_eq!(
            error_fields(names.iter().copied()),
            [(1, Some(2), 3), (5, None, 6)],
            "x_types has no x"
        );
    }
}
