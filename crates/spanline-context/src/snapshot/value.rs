//! [`SnapshotValue`]: a snapshot's value, its text and its JSON type, and
//! how serde writes and reads it (with its type: `42`, not `"42"`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A snapshot value: its text and its JSON type (string, integer, float or
/// boolean). Made from the Rust values with `From`.
///
/// ```
/// use spanline_context::SnapshotValue;
/// assert_eq!(SnapshotValue::from(7u32).to_json(), "7");
/// assert_eq!(SnapshotValue::from("7").to_json(), r#""7""#);
/// assert_eq!(SnapshotValue::from(true).as_str(), "true");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotValue {
    text: String,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    UInt,
    Float,
    Bool,
}

impl SnapshotValue {
    /// The value as text: a string's contents, a number's digits, `true`.
    ///
    /// ```
    /// assert_eq!(spanline_context::SnapshotValue::from(1.5).as_str(), "1.5");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value as JSON: strings quoted and escaped, numbers and booleans
    /// bare.
    ///
    /// ```
    /// assert_eq!(spanline_context::SnapshotValue::from("a\"b").to_json(), r#""a\"b""#);
    /// ```
    pub fn to_json(&self) -> String {
        match self.kind {
            Kind::Str => {
                let mut buf = Vec::with_capacity(self.text.len() + 2);
                spanline_core::write_str(&mut buf, &self.text);
                String::from_utf8_lossy(&buf).into_owned()
            }
            _ => self.text.clone(),
        }
    }

    /// A value from a context field's JSON (as [`spanline_core::FieldValue`]
    /// holds it): strings, numbers and booleans keep their type; anything
    /// else (a list, an object) travels as its JSON text, with the keys
    /// `redact` hides inside it masked.
    pub(super) fn from_field(
        value: &spanline_core::FieldValue,
        redact: &spanline_core::Redact,
    ) -> Self {
        let json = value.as_json();
        if let Some(text) = value.as_str() {
            return text.into_owned().into();
        }
        let kind = match json {
            "true" | "false" => Kind::Bool,
            _ if json.parse::<i64>().is_ok() => Kind::Int,
            _ if json.parse::<u64>().is_ok() => Kind::UInt,
            _ if json.parse::<f64>().is_ok_and(f64::is_finite)
                && json.starts_with(|c: char| c == '-' || c.is_ascii_digit()) =>
            {
                Kind::Float
            }
            _ => return redact.scrub_json(json).into_owned().into(),
        };
        Self {
            text: json.to_string(),
            kind,
        }
    }
}

impl From<String> for SnapshotValue {
    fn from(text: String) -> Self {
        Self {
            text,
            kind: Kind::Str,
        }
    }
}
impl From<&str> for SnapshotValue {
    fn from(text: &str) -> Self {
        text.to_string().into()
    }
}
impl From<&String> for SnapshotValue {
    fn from(text: &String) -> Self {
        text.clone().into()
    }
}
impl From<bool> for SnapshotValue {
    fn from(v: bool) -> Self {
        Self {
            text: v.to_string(),
            kind: Kind::Bool,
        }
    }
}
impl From<f64> for SnapshotValue {
    /// NaN and the infinities have no JSON form: they travel as text.
    fn from(v: f64) -> Self {
        let kind = if v.is_finite() {
            Kind::Float
        } else {
            Kind::Str
        };
        Self {
            text: v.to_string(),
            kind,
        }
    }
}
macro_rules! snapshot_int {
    ($kind:ident: $($t:ty),*) => {$(
        impl From<$t> for SnapshotValue {
            fn from(v: $t) -> Self {
                Self { text: v.to_string(), kind: Kind::$kind }
            }
        }
    )*};
}
snapshot_int!(Int: i8, i16, i32, i64);
snapshot_int!(UInt: u8, u16, u32, u64, usize);

impl Serialize for SnapshotValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The text of a typed value was made from that type, so it parses.
        match self.kind {
            Kind::Str => serializer.serialize_str(&self.text),
            Kind::Bool => serializer.serialize_bool(self.text == "true"),
            Kind::Int => match self.text.parse::<i64>() {
                Ok(n) => serializer.serialize_i64(n),
                Err(_) => serializer.serialize_str(&self.text),
            },
            Kind::UInt => match self.text.parse::<u64>() {
                Ok(n) => serializer.serialize_u64(n),
                Err(_) => serializer.serialize_str(&self.text),
            },
            Kind::Float => match self.text.parse::<f64>() {
                Ok(n) => serializer.serialize_f64(n),
                Err(_) => serializer.serialize_str(&self.text),
            },
        }
    }
}

impl<'de> Deserialize<'de> for SnapshotValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SnapshotValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<SnapshotValue, E> {
                Ok(v.into())
            }
            fn visit_i64<E>(self, v: i64) -> Result<SnapshotValue, E> {
                Ok(v.into())
            }
            fn visit_u64<E>(self, v: u64) -> Result<SnapshotValue, E> {
                Ok(v.into())
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<SnapshotValue, E> {
                if v.is_finite() {
                    Ok(v.into())
                } else {
                    Err(E::custom("a number that JSON can hold"))
                }
            }
            fn visit_str<E>(self, v: &str) -> Result<SnapshotValue, E> {
                Ok(v.into())
            }
            fn visit_string<E>(self, v: String) -> Result<SnapshotValue, E> {
                Ok(v.into())
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}
