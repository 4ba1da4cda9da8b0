//! Redaction on the parent's side: whatever the child did, the values of
//! hidden keys are masked before a record is re-emitted, at any depth of a
//! JSON value, and in JSON text a string value holds (a JSON line a
//! command printed, forwarded by a nested `spanline run`). Keys are matched
//! by [`Redact::hides`] only (JSON text by [`Redact::scrub_json`]), so
//! every form of key core's `Redact` knows applies here too.

use serde_json::{Map, Value as Json};
use spanline_core::Redact;

/// Masks, in place, the value of every key `redact` hides inside `value`
/// (objects within objects and arrays, at any depth, and JSON text in a
/// string); true when one was.
pub(crate) fn redact_value(redact: &Redact, value: &mut Json) -> bool {
    match value {
        Json::Object(map) => redact_map(redact, map),
        Json::Array(items) => {
            // Every item, not only up to the first masked one.
            let mut any = false;
            for item in items {
                any |= redact_value(redact, item);
            }
            any
        }
        Json::String(text) => match redact.scrub_json(text) {
            std::borrow::Cow::Borrowed(_) => false,
            std::borrow::Cow::Owned(masked) => {
                *text = masked;
                true
            }
        },
        _ => false,
    }
}

/// [`redact_value`] on a map's entries: a hidden key's value becomes the
/// mask, the others are searched.
pub(crate) fn redact_map(redact: &Redact, map: &mut Map<String, Json>) -> bool {
    let mut any = false;
    for (key, value) in map.iter_mut() {
        if redact.hides(key) {
            *value = Json::String(Redact::MASK.to_string());
            any = true;
        } else {
            any |= redact_value(redact, value);
        }
    }
    any
}

/// A record's fields, redacted: a hidden key's value is masked, nested
/// keys too; a hidden error field also loses its cause chain
/// (`<field>_sources`) and its type names, as the child's own redaction
/// does.
pub(crate) fn redact_fields(
    redact: &Redact,
    fields: &mut Map<String, Json>,
    errors: Option<&mut Map<String, Json>>,
) {
    if redact.is_empty() {
        return;
    }
    let hidden: Vec<String> = fields.keys().filter(|k| redact.hides(k)).cloned().collect();
    redact_map(redact, fields);
    let mut errors = errors;
    for key in hidden {
        let sources = format!("{key}_sources");
        if fields.get(&sources).is_some() && !redact.hides(&sources) {
            fields.shift_remove(&sources);
        }
        if let Some(errors) = errors.as_deref_mut() {
            errors.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_are_masked_in_place() {
        let redact = Redact::new(["password"]);
        let mut value = serde_json::json!({
            "a": [{"Password": 1}, {"b": {"password": {"x": 1}}}],
            "c": "password",
            "text": r#"{"user":"u","password":"p"}"#
        });
        assert!(redact_value(&redact, &mut value));
        assert_eq!(
            value,
            serde_json::json!({
                "a": [{"Password": "[redacted]"}, {"b": {"password": "[redacted]"}}],
                "c": "password",
                "text": r#"{"user":"u","password":"[redacted]"}"#
            })
        );
        assert!(!redact_value(
            &redact,
            &mut serde_json::json!([1, "password"])
        ));
    }

    #[test]
    fn a_hidden_error_field_loses_its_cause_chain() {
        let redact = Redact::new(["password"]);
        let mut fields = serde_json::from_str::<Map<String, Json>>(
            r#"{"message":"m","password":"wrong","password_sources":["cause"],"other_sources":["kept"]}"#,
        )
        .unwrap_or_default();
        let mut errors = serde_json::from_str::<Map<String, Json>>(r#"{"password":["E","C"]}"#)
            .unwrap_or_default();
        redact_fields(&redact, &mut fields, Some(&mut errors));
        assert_eq!(
            Json::Object(fields),
            serde_json::json!({"message":"m","password":"[redacted]","other_sources":["kept"]})
        );
        assert!(errors.is_empty());
    }
}
