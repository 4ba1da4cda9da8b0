//! Error chains as other error styles write them: structlog's
//! `exception` and ECS's `error.stack_trace`.

/// The keys [`written_chain`] reads a whole chain from.
#[cfg(feature = "query")]
pub(crate) const WHOLE_CHAIN_KEYS: [&str; 2] = ["exception", "error.stack_trace"];

/// An error chain written by the other error styles, outermost first:
/// structlog's `exception` (`format_exc_info`'s text, deepest cause first,
/// or `dict_tracebacks`' list) and ECS's `error.stack_trace` (`Caused by:`
/// lines).
pub(crate) fn written_chain(key: &str, value: &serde_json::Value) -> Option<Vec<String>> {
    const DIRECT_CAUSE: &str =
        "\n\nThe above exception was the direct cause of the following exception:\n\n";
    match (key, value) {
        ("exception", serde_json::Value::String(text)) => {
            Some(text.rsplit(DIRECT_CAUSE).map(str::to_string).collect())
        }
        ("exception", serde_json::Value::Array(links)) => links
            .iter()
            .map(|link| {
                let value = super::text_of(link.get("exc_value")?);
                Some(match link.get("exc_type").and_then(|t| t.as_str()) {
                    Some(ty) => format!("{ty}: {value}"),
                    None => value,
                })
            })
            .collect(),
        ("error.stack_trace", serde_json::Value::String(text)) => {
            Some(text.split("\nCaused by: ").map(str::to_string).collect())
        }
        _ => None,
    }
}
