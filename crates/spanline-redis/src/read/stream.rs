//! Reading the streams [`RedisLayer`](crate::RedisLayer) writes in
//! `Mode::Streams` and `Mode::Both`: each entry holds one line in its
//! `line` field, and its id orders it ([`entry_order`](super::entry_order)).

use std::time::Duration;

use redis::{Connection, RedisResult, Value};

/// The field of a stream entry that holds the line.
pub(crate) const LINE_FIELD: &str = "line";

/// One entry of a log stream: its id and its line (the JSON bytes as
/// published).
///
/// ```
/// # fn read(con: &mut redis::Connection) -> redis::RedisResult<()> {
/// for entry in spanline_redis::read::read_stream(con, "logs:global", "0", 100, None)? {
///     println!("{} {}", entry.id, String::from_utf8_lossy(&entry.line));
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The stream entry id, `ms-seq`.
    pub id: String,
    /// The line.
    pub line: Vec<u8>,
}

/// Up to `count` entries of stream `key` after id `after` (`0` for the
/// first ones, `$` for new ones only), oldest first (`XREAD`). With
/// `block`, waits that long for one when there is none yet. Entries
/// without a line are skipped; fewer than `count` means the reader has
/// caught up. A connection in RESP2 or RESP3 will do.
///
/// # Errors
/// What Redis answers (`WRONGTYPE`, `NOPERM`, a lost connection).
///
/// See [`Entry`]'s example.
pub fn read_stream(
    con: &mut Connection,
    key: &str,
    after: &str,
    count: usize,
    block: Option<Duration>,
) -> RedisResult<Vec<Entry>> {
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT").arg(count.max(1));
    if let Some(block) = block {
        cmd.arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1));
    }
    let reply: Value = cmd.arg("STREAMS").arg(key).arg(after).query(con)?;
    // One stream: [[key, entries]] (RESP2), {key: entries} (RESP3); nil
    // when there is nothing new.
    Ok(match &reply {
        Value::Array(streams) => streams
            .first()
            .and_then(|s| match s {
                Value::Array(pair) => pair.get(1).map(entries),
                _ => None,
            })
            .unwrap_or_default(),
        Value::Map(streams) => streams.first().map(|(_, e)| entries(e)).unwrap_or_default(),
        _ => Vec::new(),
    })
}

/// The last `count` entries of stream `key`, oldest first (`XREVRANGE`):
/// a page's backlog.
///
/// # Errors
/// What Redis answers.
///
/// ```
/// # fn read(con: &mut redis::Connection) -> redis::RedisResult<()> {
/// let backlog = spanline_redis::read::last_entries(con, "logs:build_7", 2_000)?;
/// let resume_after = backlog.last().map_or("0-0".to_string(), |e| e.id.clone());
/// # Ok(()) }
/// ```
pub fn last_entries(con: &mut Connection, key: &str, count: usize) -> RedisResult<Vec<Entry>> {
    newest(con, key, "+", count)
}

/// Up to `count` entries of stream `key` older than entry id `before`,
/// oldest first (`XREVRANGE key (before - COUNT count`): a page's "load
/// earlier". Redis 6.2 or later (exclusive ranges).
///
/// # Errors
/// What Redis answers.
///
/// ```
/// # fn read(con: &mut redis::Connection) -> redis::RedisResult<()> {
/// let shown = spanline_redis::read::last_entries(con, "logs:build_7", 100)?;
/// if let Some(oldest) = shown.first() {
///     let earlier = spanline_redis::read::entries_before(con, "logs:build_7", &oldest.id, 100)?;
/// }
/// # Ok(()) }
/// ```
pub fn entries_before(
    con: &mut Connection,
    key: &str,
    before: &str,
    count: usize,
) -> RedisResult<Vec<Entry>> {
    newest(con, key, &format!("({before}"), count)
}

/// The newest `count` entries of `key` up to `end` (an `XREVRANGE` bound),
/// oldest first.
fn newest(con: &mut Connection, key: &str, end: &str, count: usize) -> RedisResult<Vec<Entry>> {
    let reply: Value = redis::cmd("XREVRANGE")
        .arg(key)
        .arg(end)
        .arg("-")
        .arg("COUNT")
        .arg(count.max(1))
        .query(con)?;
    let mut found = entries(&reply);
    found.reverse();
    Ok(found)
}

/// The id of the oldest entry stream `key` still holds (`XRANGE … COUNT
/// 1`), if any: when it is newer than the last one a reader saw, the
/// stream was trimmed (or lost in a restart) past it.
///
/// # Errors
/// What Redis answers.
///
/// ```
/// # fn read(con: &mut redis::Connection, last_seen: &str) -> redis::RedisResult<bool> {
/// use spanline_redis::read::{entry_order, first_id};
/// let trimmed = first_id(con, "logs:build_7")?.is_some_and(|id| entry_order(&id) > entry_order(last_seen));
/// # Ok(trimmed) }
/// ```
pub fn first_id(con: &mut Connection, key: &str) -> RedisResult<Option<String>> {
    let reply: Value = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query(con)?;
    let Value::Array(items) = reply else {
        return Ok(None);
    };
    Ok(items.first().and_then(|entry| match entry {
        Value::Array(pair) => pair.first().and_then(text),
        _ => None,
    }))
}

/// The entries of an `XRANGE`-shaped reply; entries without a line are
/// skipped.
fn entries(value: &Value) -> Vec<Entry> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|entry| {
            let Value::Array(pair) = entry else {
                return None;
            };
            let id = text(pair.first()?)?;
            let line = match pair.get(1)? {
                Value::Array(fields) => fields
                    .chunks(2)
                    .find(|kv| kv.first().and_then(text).as_deref() == Some(LINE_FIELD))
                    .and_then(|kv| kv.get(1).and_then(bytes)),
                Value::Map(fields) => fields
                    .iter()
                    .find(|(k, _)| text(k).as_deref() == Some(LINE_FIELD))
                    .and_then(|(_, v)| bytes(v)),
                _ => None,
            }?;
            Some(Entry { id, line })
        })
        .collect()
}

pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn entries_of_both_protocols_and_without_a_line() {
        let resp2 = Value::Array(vec![
            Value::Array(vec![
                bulk("1-0"),
                Value::Array(vec![bulk("line"), bulk("a")]),
            ]),
            Value::Array(vec![
                bulk("2-0"),
                Value::Array(vec![bulk("other"), bulk("x")]),
            ]),
            Value::Array(vec![
                bulk("3-0"),
                Value::Map(vec![(bulk("line"), bulk("c"))]),
            ]),
        ]);
        let got: Vec<(String, Vec<u8>)> = entries(&resp2)
            .into_iter()
            .map(|e| (e.id, e.line))
            .collect();
        assert_eq!(
            got,
            [("1-0".into(), b"a".to_vec()), ("3-0".into(), b"c".to_vec())]
        );
        assert!(entries(&Value::Nil).is_empty());
    }
}
