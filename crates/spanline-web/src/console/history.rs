//! The lines of a feed before a line, from its streams (a page's "load
//! earlier"), and the search both it and the event streams take.

use std::collections::HashMap;

use axum::extract::{Path, Query as Params, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use spanline_redis::read;
use spanline_redis::redis;

use super::Console;
use crate::follow::is_entry_id;

/// The search of `?q=`: matched on the server, once per line, so only
/// matches travel.
pub(super) fn query_of(
    params: &HashMap<String, String>,
) -> Result<Option<spanline_json::Query>, spanline_json::QueryError> {
    match params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty()) {
        None => Ok(None),
        Some(q) => spanline_json::Query::parse(q).map(Some),
    }
}

/// Lines a "load earlier" asks for at most.
const HISTORY_MAX: usize = 5_000;

impl Console {
    /// Up to `?n=` (default 500) lines of the feed's streams older than
    /// entry id `?before=`, oldest first, as the page shows them (`?q=`
    /// applied): `{"lines": [{"id": ..., "line": ...}], "more": bool}`.
    async fn history(&self, keys: Vec<String>, params: &HashMap<String, String>) -> Response {
        let query = match query_of(params) {
            Ok(query) => query,
            Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        };
        let Some(before) = params.get("before").filter(|id| is_entry_id(id)).cloned() else {
            return (
                StatusCode::BAD_REQUEST,
                "before: a stream entry id (ms-seq)",
            )
                .into_response();
        };
        let n = params
            .get("n")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(500)
            .clamp(1, HISTORY_MAX);
        let redis = self.inner.redis.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut entries = Vec::new();
            let mut more = false;
            for key in &keys {
                let mut con = redis.connect(key)?;
                let found = read::entries_before(&mut con, key, &before, n)?;
                more |= found.len() == n;
                entries.extend(found);
            }
            // Several streams (a cluster's global shards): the newest `n`, in
            // time order.
            entries.sort_by_key(|e| read::entry_order(&e.id));
            let skip = entries.len().saturating_sub(n);
            more |= skip > 0;
            Ok::<_, redis::RedisError>((entries.split_off(skip), more))
        })
        .await;
        let (entries, more) = match read {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                let reason = self.inner.redis.scrub(&e);
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(serde_json::json!({ "error": reason })),
                )
                    .into_response();
            }
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
        // Each line is already the page's JSON: written into the answer as is.
        let mut body = String::from("{\"lines\":[");
        let mut first = true;
        for entry in entries {
            let raw = String::from_utf8_lossy(&entry.line);
            let Some(page) = crate::record::for_page(&raw, query.as_ref()) else {
                continue;
            };
            if !first {
                body.push(',');
            }
            first = false;
            // Entry ids are digits and a dash: nothing to escape.
            body.push_str(&format!("{{\"id\":\"{}\",\"line\":{page}}}", entry.id));
        }
        body.push_str(&format!("],\"more\":{more}}}"));
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

pub(super) async fn global_history(
    State(console): State<Console>,
    Params(params): Params<HashMap<String, String>>,
) -> Response {
    console.history(console.globals().to_vec(), &params).await
}

pub(super) async fn job_history(
    State(console): State<Console>,
    Path(job_id): Path<String>,
    Params(params): Params<HashMap<String, String>>,
) -> Response {
    match console.inner.channels.job(&job_id) {
        Ok(key) => console.history(vec![key], &params).await,
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}
