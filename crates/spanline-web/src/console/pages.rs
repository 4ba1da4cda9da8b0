//! The pages (the global feed, a job, two feeds side by side) and their
//! script and style.

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, Query as Params};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;

use super::User;

const PAGE: &str = include_str!("../../assets/console.html");
const SPLIT: &str = include_str!("../../assets/split.html");
const SCRIPT: &str = include_str!("../../assets/console.js");
const STYLE: &str = include_str!("../../assets/console.css");

/// The path the console is mounted at, from the original request path and
/// the path inside the console (`/logs` for `/logs/jobs/x` and `/jobs/x`,
/// and for `/logs` and `/`); empty when served alone.
fn root(original: &OriginalUri, inner: &str) -> String {
    let path = original.path();
    let root = match inner {
        "/" => path,
        _ => path.strip_suffix(inner).unwrap_or(""),
    };
    root.trim_end_matches('/').to_owned()
}

fn page(root: &str, job: Option<&str>, user: Option<Extension<User>>) -> Response {
    let user = user.map(|Extension(User(name))| name).unwrap_or_default();
    let html = PAGE
        .replace("{{user}}", &escape(&user))
        .replace(
            "{{home}}",
            &escape(if root.is_empty() { "/" } else { root }),
        )
        .replace("{{root}}", &escape(root))
        .replace("{{job}}", &escape(job.unwrap_or("")))
        .replace(
            "{{title}}",
            &escape(&job.map_or("spanline: all logs".into(), |j| format!("spanline: {j}"))),
        );
    Html(html).into_response()
}

pub(super) async fn global_page(original: OriginalUri, user: Option<Extension<User>>) -> Response {
    page(&root(&original, "/"), None, user)
}

pub(super) async fn job_page(
    original: OriginalUri,
    Path(job_id): Path<String>,
    user: Option<Extension<User>>,
) -> Response {
    if let Err(e) = spanline_core::check_job_id(&job_id) {
        return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
    }
    page(
        &root(&original, &format!("/jobs/{job_id}")),
        Some(&job_id),
        user,
    )
}

/// Two feeds side by side (`?a=JOB&b=JOB`, empty for the global feed),
/// each a page of its own in a frame: its own search, level, pause.
pub(super) async fn split_page(
    original: OriginalUri,
    Params(params): Params<HashMap<String, String>>,
) -> Response {
    let root = root(&original, "/split");
    let mut panes = Vec::new();
    for side in ["a", "b"] {
        let job = params.get(side).map_or("", |j| j.as_str());
        if !job.is_empty() {
            if let Err(e) = spanline_core::check_job_id(job) {
                return (StatusCode::BAD_REQUEST, format!("{side}: {e}")).into_response();
            }
        }
        let src = match job {
            // The console's own root (`/` only when served alone).
            "" if root.is_empty() => "/".to_owned(),
            "" => root.clone(),
            job => format!("{root}/jobs/{job}"),
        };
        let title = if job.is_empty() { "all logs" } else { job };
        panes.push(format!(
            "<iframe id=\"pane-{side}\" src=\"{}\" title=\"{}\"></iframe>",
            escape(&src),
            escape(title)
        ));
    }
    Html(
        SPLIT
            .replace("{{root}}", &escape(&root))
            .replace("{{panes}}", &panes.concat()),
    )
    .into_response()
}

pub(super) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

pub(super) async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// Text for an HTML attribute or element.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
