//! [`Config`]: the options of [`init`](crate::init), read from an
//! application's own configuration file (the `[logging]` table of a TOML
//! file, a JSON or YAML section: anything serde reads).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::options::{self, Values};

/// Every option of [`init`](crate::init), as a configuration file holds
/// them: the keys of the options table in docs/guide.md (the environment
/// variables' names without the `SPANLINE_` prefix, in lower case;
/// `RUST_LOG` is `filter`). Every key is optional; an unknown key is an
/// error that names the nearest known one, so a typo is not silently
/// ignored. The [`Builder`](crate::Builder)'s own methods override the
/// environment, which overrides the file; lists (`redact`,
/// `context_keys`) are the union of all three.
///
/// ```toml
/// [logging]
/// filter = "info,sqlx=warn"      # RUST_LOG
/// format = "json"                # SPANLINE_FORMAT: json, pretty, auto
/// service = "billing"            # SPANLINE_SERVICE
/// file = "/var/log/billing/app.log"   # SPANLINE_FILE
/// rotation = "daily"             # SPANLINE_ROTATION: never, daily, hourly, minutely
/// non_blocking = true            # SPANLINE_NON_BLOCKING
/// redis_url = "redis://127.0.0.1:6379"   # SPANLINE_REDIS_URL
/// redis_capacity = 100000        # SPANLINE_REDIS_CAPACITY
/// redact = ["password", "authorization"] # SPANLINE_REDACT
/// ```
///
/// ```
/// let config: spanline::Config = serde_json::from_str(
///     r#"{"format": "json", "service": "billing", "redis_capacity": 1000, "redact": ["password"]}"#,
/// ).unwrap();
/// assert_eq!(config.get("service"), Some("billing"));
/// assert_eq!(config.get("redis_capacity"), Some("1000"));
/// let _guard = spanline::builder().config(config).init();
///
/// let err = serde_json::from_str::<spanline::Config>(r#"{"servce": "typo"}"#).unwrap_err();
/// assert!(err.to_string().contains("did you mean `service`"), "{err}");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    values: Values,
}

impl Config {
    /// The value of an option, as text (a list's values joined with `,`);
    /// `None` when the file does not set it.
    ///
    /// ```
    /// let config: spanline::Config = serde_json::from_str(r#"{"span_close": true}"#).unwrap();
    /// assert_eq!(config.get("span_close"), Some("true"));
    /// assert_eq!(config.get("service"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        let opt = options::by_key(key)?;
        self.values
            .get(opt.key)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    pub(crate) fn values(&self) -> &Values {
        &self.values
    }
}

impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ConfigVisitor)
    }
}

struct ConfigVisitor;

impl<'de> Visitor<'de> for ConfigVisitor {
    type Value = Config;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of spanline's options")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Config, A::Error> {
        let mut values = Values::new();
        while let Some(key) = map.next_key::<String>()? {
            let Some(opt) = options::by_key(&key) else {
                return Err(de::Error::custom(unknown_key(&key)));
            };
            let value = map.next_value::<Value>()?;
            values.insert(opt.key, value.0);
        }
        Ok(Config { values })
    }
}

/// "unknown option `servce`: did you mean `service`?"
fn unknown_key(key: &str) -> String {
    let nearest = options::ALL
        .iter()
        .map(|opt| (crate::filter::edit_distance(key, opt.key), opt.key))
        .min()
        .filter(|(distance, _)| *distance <= 3);
    match nearest {
        Some((_, known)) => format!("unknown option `{key}`: did you mean `{known}`?"),
        None => format!(
            "unknown option `{key}` (the options: {})",
            options::ALL
                .iter()
                .map(|o| o.key)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A file's value for an option, as the text the environment would hold:
/// a string, a number, a yes/no, or a list of strings.
struct Value(Vec<String>);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a number, true or false, or a list of strings")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value(vec![v.to_string()]))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value(vec![v.to_string()]))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value(vec![v.to_string()]))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value(vec![v.to_string()]))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut all = Vec::new();
        while let Some(item) = seq.next_element::<String>()? {
            all.push(item);
        }
        Ok(Value(all))
    }
}
