//! Reading records: `ev` records borrowed, in one pass (most of the
//! stream); the others through serde's [`Record`](super::Record).

use tracing::field::{DebugValue, DisplayValue};
use tracing_core::field::Value;

/// An `ev` record, read without copying its strings.
#[derive(serde::Deserialize)]
pub(crate) struct FastEvent<'a> {
    pub(crate) t: &'a str,
    pub(crate) pid: u32,
    pub(crate) ts: (i64, u32),
    pub(crate) span: Option<u64>,
    pub(crate) level: &'a str,
    pub(crate) target: &'a str,
    #[serde(default)]
    pub(crate) file: Option<&'a str>,
    #[serde(default)]
    pub(crate) line: Option<u32>,
    #[serde(borrow)]
    pub(crate) fields: RawFields<'a>,
    /// The error fields' type names (see `Record::Ev`).
    #[serde(default)]
    pub(crate) errors: serde_json::Map<String, serde_json::Value>,
    /// The event's context as the child resolved it, values as JSON (see
    /// `Record::Ev`).
    #[serde(default, borrow, rename = "ctx")]
    pub(crate) context: RawFields<'a>,
}

/// Field names and their raw JSON values, in order.
#[derive(Default)]
pub(crate) struct RawFields<'a>(
    pub(crate) Vec<(std::borrow::Cow<'a, str>, &'a serde_json::value::RawValue)>,
);

impl RawFields<'_> {
    /// Each name with its value's JSON text.
    pub(crate) fn as_pairs(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .map(|(k, raw)| (k.as_ref(), raw.get()))
            .collect()
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for RawFields<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawFields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of fields")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(KeyStr(k)) = map.next_key()? {
                    out.push((k, map.next_value()?));
                }
                Ok(RawFields(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A map key, borrowed when it has no escapes.
struct KeyStr<'a>(std::borrow::Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for KeyStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KeyStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(KeyStr(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KeyStr(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A field value read from its raw JSON text, with its JSON type.
pub(crate) enum FastValue<'a> {
    Str(&'a str),
    String(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    /// An object or array: written as JSON again by spanline's layers.
    Json(DebugValue<spanline_core::JsonText<'a>>),
    /// A child's error, rebuilt (see `forwarded`).
    Error(Box<dyn std::error::Error + Send + Sync>),
    Raw(DisplayValue<&'a str>),
}

impl<'a> FastValue<'a> {
    pub(crate) fn parse(text: &'a str) -> Self {
        match text.as_bytes().first() {
            Some(b'"') => match spanline_core::decode_json_str(text) {
                Some(std::borrow::Cow::Borrowed(s)) => FastValue::Str(s),
                Some(std::borrow::Cow::Owned(s)) => FastValue::String(s),
                None => FastValue::Raw(tracing::field::display(text)),
            },
            // Writers put NaN and the infinities as `null`.
            Some(b'n') if text == "null" => FastValue::F64(f64::NAN),
            Some(b't') if text == "true" => FastValue::Bool(true),
            Some(b'f') if text == "false" => FastValue::Bool(false),
            Some(b'-' | b'0'..=b'9') if !text.contains(['.', 'e', 'E']) => text
                .parse::<u64>()
                .map(FastValue::U64)
                .or_else(|_| text.parse::<i64>().map(FastValue::I64))
                .unwrap_or(FastValue::Raw(tracing::field::display(text))),
            Some(b'-' | b'0'..=b'9') => text.parse::<f64>().map_or(
                FastValue::Raw(tracing::field::display(text)),
                FastValue::F64,
            ),
            Some(b'{' | b'[') => match spanline_core::JsonText::new(text) {
                Some(json) => FastValue::Json(tracing::field::debug(json)),
                None => FastValue::Raw(tracing::field::display(text)),
            },
            _ => FastValue::Raw(tracing::field::display(text)),
        }
    }

    pub(crate) fn as_value(&self) -> &dyn Value {
        match self {
            FastValue::Str(s) => s,
            FastValue::String(s) => s,
            FastValue::I64(n) => n,
            FastValue::U64(n) => n,
            FastValue::F64(n) => n,
            FastValue::Bool(b) => b,
            FastValue::Json(j) => j,
            FastValue::Error(e) => e,
            FastValue::Raw(d) => d,
        }
    }
}
