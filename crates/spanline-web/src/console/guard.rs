//! Who comes in (the token, or a trusted proxy's user) and the headers
//! every response carries.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Console, Proxy, User};

/// What every response says about where its content may come from: the
/// page runs only its own script, and no value from a log line can load or
/// run anything.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; frame-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'self'";

/// The name of the cookie that keeps the token after the first page.
const COOKIE: &str = "spanline_token";

/// Checks the token, and sets the headers every response carries.
pub(super) async fn guard(
    State(console): State<Console>,
    mut request: Request,
    next: Next,
) -> Response {
    let mut set_cookie = None;
    let vouched = console
        .inner
        .proxy
        .as_ref()
        .and_then(|proxy| proxy.user(&request));
    if let Some(user) = vouched {
        request.extensions_mut().insert(user);
    } else if console.inner.token.is_none() && console.inner.proxy.is_some() {
        // Behind a proxy and no token: only the proxy may let anyone in.
        let mut response = (
            StatusCode::UNAUTHORIZED,
            "this console is reached through its authenticating proxy",
        )
            .into_response();
        secure(response.headers_mut());
        return response;
    } else if let Some(token) = &console.inner.token {
        let query_token = request
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let cookie = request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='));
        let ok = |given: Option<&str>| given.is_some_and(|g| same(g.as_bytes(), token.as_bytes()));
        if ok(query_token) {
            set_cookie = Some(format!(
                "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
            ));
        } else if !ok(bearer) && !ok(cookie) {
            let mut response = (
                StatusCode::UNAUTHORIZED,
                "this console needs its token: open it with ?token=...",
            )
                .into_response();
            secure(response.headers_mut());
            return response;
        }
    }
    let mut response = next.run(request).await;
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    secure(response.headers_mut());
    response
}

fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Framed by the console's own split view only.
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
}

/// Compares in time independent of where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Proxy {
    /// The user this request comes in as: sent from one of the proxy's
    /// addresses (the connection's peer, so the request itself cannot
    /// claim it), with a user header of printable text.
    fn user(&self, request: &Request) -> Option<User> {
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()?
            .0
            .ip()
            // An IPv4 proxy seen by a dual-stack listener: ::ffff:a.b.c.d.
            .to_canonical();
        if !self.from.contains(&peer) {
            return None;
        }
        let name = request.headers().get(&self.header)?.to_str().ok()?.trim();
        let printable =
            !name.is_empty() && name.len() <= 256 && !name.chars().any(char::is_control);
        printable.then(|| User(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(!same(b"", b"a"));
    }
}
