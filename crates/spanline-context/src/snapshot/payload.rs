//! The serde form, for a job payload:
//! `{"v":2,"traceparent":"00-…","fields":{"request_id":"r-1","user_id":42}}`,
//! values with their types; version 1 (`"baggage"`, strings only) is still
//! read. Reading is strict: a payload that breaks a rule is an error.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ContextSnapshot, SnapshotError, SnapshotValue};

/// Version 1 carried string values in `baggage`; version 2 carries typed
/// values in `fields`. Both are read; version 2 is written.
#[derive(Deserialize)]
struct Wire {
    v: u32,
    #[serde(default)]
    traceparent: Option<String>,
    #[serde(default)]
    tracestate: Option<String>,
    #[serde(default)]
    baggage: Option<String>,
    #[serde(default)]
    fields: Option<Fields>,
}

/// The typed `fields` map, in order.
struct Fields(Vec<(String, SnapshotValue)>);

impl Serialize for ContextSnapshot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("v", &Self::VERSION)?;
        if let Some(tp) = &self.traceparent {
            map.serialize_entry("traceparent", &tp.to_string())?;
        }
        if let Some(ts) = &self.tracestate {
            map.serialize_entry("tracestate", ts)?;
        }
        if !self.entries.is_empty() {
            map.serialize_entry("fields", &FieldsRef(&self.entries))?;
        }
        map.end()
    }
}

struct FieldsRef<'a>(&'a [(String, SnapshotValue)]);

impl Serialize for FieldsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of context keys to strings, numbers or booleans")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, SnapshotValue>()? {
                    if fields.len() > ContextSnapshot::MAX_ENTRIES {
                        return Err(serde::de::Error::custom(SnapshotError::TooManyEntries));
                    }
                    fields.push((k, v));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

impl<'de> Deserialize<'de> for ContextSnapshot {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        Self::try_from_wire(wire).map_err(serde::de::Error::custom)
    }
}

impl ContextSnapshot {
    fn try_from_wire(wire: Wire) -> Result<Self, SnapshotError> {
        let entries = match (wire.v, wire.baggage, wire.fields) {
            (1, baggage, None) => Self::strict_baggage(&baggage.unwrap_or_default())?,
            (2, None, fields) => {
                let mut snap = Self::new();
                for (k, v) in fields.map(|f| f.0).unwrap_or_default() {
                    snap.insert(&k, v)?;
                }
                snap.entries
            }
            (1 | 2, _, _) => {
                return Err(SnapshotError::Malformed(
                    "version 1 carries `baggage`, version 2 `fields`".into(),
                ))
            }
            (v, _, _) => return Err(SnapshotError::UnsupportedVersion(v)),
        };
        let traceparent = wire
            .traceparent
            .map(|tp| tp.parse())
            .transpose()
            .map_err(SnapshotError::TraceParent)?;
        if wire
            .tracestate
            .as_ref()
            .is_some_and(|ts| ts.len() > 512 || ts.chars().any(char::is_control))
        {
            return Err(SnapshotError::Malformed("tracestate".into()));
        }
        Ok(Self {
            traceparent,
            parent_is_span: false,
            tracestate: wire.tracestate,
            entries,
            dropped: 0,
        })
    }
}
