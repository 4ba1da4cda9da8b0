//! The Redis that `tail` and `web` read: its URL checked, and what goes
//! wrong said in words. A bad URL is explained (no scheme, a port that is
//! not a number, …) as spanline-redis's builder explains it, without
//! repeating the URL (it may hold a password); a failed connection names
//! the server's address and the cause (connection refused, no answer, the
//! login refused, no such database), with the password taken out of any
//! error text.

use std::io;
use std::time::Duration;

use spanline_redis::redis::{self, ErrorKind, RedisError};

/// How long connecting (and logging in) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Waits before the next connection attempt: 100 ms, doubling to 2 s.
pub(crate) fn backoff(attempt: &mut u32) {
    let ms = 100u64 << (*attempt).min(5);
    std::thread::sleep(Duration::from_millis(ms.min(2000)));
    *attempt += 1;
}

/// What is wrong with a Redis URL, in words, without repeating it; `None`
/// when it looks right (`redis::Client::open` has the last word): the
/// publisher's own check, so both say the same.
fn url_problem(url: &str) -> Option<String> {
    match spanline_redis::check_url(url) {
        Ok(()) => None,
        Err(spanline_redis::BuildError::BadUrl(why)) => Some(why),
        Err(other) => Some(other.to_string()),
    }
}

/// `url` as a client, or why it is not a Redis URL.
fn open_client(url: &str) -> io::Result<redis::Client> {
    if let Some(why) = url_problem(url) {
        return Err(invalid_url(&why));
    }
    redis::Client::open(url).map_err(|e| invalid_url(&parse_error(&e)))
}

fn invalid_url(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid Redis URL: {why}"),
    )
}

/// The redis crate's reason a URL does not parse, without its error kind.
/// (It never holds the URL: the checks above catch what would.)
fn parse_error(e: &RedisError) -> String {
    let text = e.to_string();
    if text.contains("TLS") {
        return "rediss:// (TLS) is not available in this build of spanline".to_string();
    }
    text.replace(" - InvalidClientConfig", "")
}

/// Checks one Redis URL (for `web`, whose console opens it later).
#[cfg(feature = "web")]
pub(crate) fn check_url(url: &str) -> io::Result<()> {
    open_client(url).map(drop)
}

/// Checks a cluster's comma-separated node URLs, naming the node at fault
/// when there are several.
pub(crate) fn check_cluster_urls(urls: &str) -> io::Result<()> {
    let nodes: Vec<&str> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    if nodes.is_empty() {
        return Err(invalid_url("no node URL"));
    }
    for (n, url) in nodes.iter().enumerate() {
        if let Err(e) = open_client(url) {
            if nodes.len() == 1 {
                return Err(e);
            }
            return Err(io::Error::new(
                e.kind(),
                format!("node {} of {}: {e}", n + 1, nodes.len()),
            ));
        }
    }
    Ok(())
}

/// Why a connection or a command failed, in words.
pub(crate) struct Cause {
    /// The server could not be reached (no connection, or no answer): a
    /// cause to say after "cannot reach Redis at …: ". Otherwise the server
    /// answered, and `text` is what it did ("refused the login: …").
    pub(crate) unreachable: bool,
    /// Retrying the same thing will fail the same way (the login, the
    /// database, a missing right): worth stopping for at start.
    pub(crate) permanent: bool,
    pub(crate) text: String,
}

/// `e` in words. `db` is the database the URL asks for (`None` on a
/// cluster); `password` is taken out of any text.
pub(crate) fn cause(e: &RedisError, db: Option<i64>, password: Option<&str>) -> Cause {
    let unreachable = |text: String| Cause {
        unreachable: true,
        permanent: false,
        text,
    };
    let refused = |text: String| Cause {
        unreachable: false,
        permanent: true,
        text,
    };
    let text = scrub(&e.to_string(), password);
    if e.is_connection_refusal() {
        unreachable("connection refused".to_string())
    } else if e.is_timeout() {
        unreachable(format!(
            "timed out: no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))
    } else if e.kind() == ErrorKind::AuthenticationFailed {
        refused(
            "refused the login: wrong user or password (or a password given to a server \
             that has none)"
                .to_string(),
        )
    } else if e.code() == Some("NOAUTH") {
        refused(
            "requires a login: give the user and password in the URL, \
             redis://user:password@host:port"
                .to_string(),
        )
    } else if text.contains("switch database") {
        let why = e.detail().map_or(text.clone(), |d| scrub(d, password));
        refused(match db {
            Some(db) if why.contains("out of range") => format!("has no database {db}: {why}"),
            Some(db) => format!("refused to switch to database {db}: {why}"),
            None => format!("refused to switch database: {why}"),
        })
    } else if e.code() == Some("NOPERM") {
        refused(format!("refuses access: {text}"))
    } else if e.is_io_error() {
        unreachable(text)
    } else {
        Cause {
            unreachable: false,
            permanent: false,
            text: format!("answered with an error: {text}"),
        }
    }
}

/// `text` with `password` replaced by `***`.
pub(crate) fn scrub(text: &str, password: Option<&str>) -> String {
    match password {
        Some(password) if !password.is_empty() => text.replace(password, "***"),
        _ => text.to_string(),
    }
}

/// A connection that could not be made or used, said in a sentence that
/// names the server.
pub(crate) struct Failure {
    pub(crate) text: String,
    /// See [`Cause::permanent`].
    pub(crate) permanent: bool,
}

/// One Redis server.
pub(crate) struct Server {
    client: redis::Client,
    /// `host:port` (or the socket's path), without the credentials.
    address: String,
    password: Option<String>,
    db: i64,
}

impl Server {
    /// The server of `url`, or what is wrong with the URL.
    pub(crate) fn open(url: &str) -> io::Result<Self> {
        let client = open_client(url)?;
        let info = client.get_connection_info();
        Ok(Self {
            address: info.addr().to_string(),
            password: info.redis_settings().password().map(str::to_owned),
            db: info.redis_settings().db(),
            client,
        })
    }

    /// Where it is, without the credentials.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// A connection, logged in, on the URL's database, that answers.
    pub(crate) fn connect(&self) -> Result<redis::Connection, Failure> {
        let mut con = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(|e| self.failure(&e))?;
        // A server that wants a login accepts a connection without one,
        // then refuses every command (NOAUTH), a subscription without a
        // word: asked now, within the connect timeout.
        con.set_read_timeout(Some(CONNECT_TIMEOUT))
            .map_err(|e| self.failure(&e))?;
        match redis::cmd("PING").query::<redis::Value>(&mut con) {
            Err(e) if e.code() == Some("NOAUTH") || e.is_io_error() => return Err(self.failure(&e)),
            // Answered (a user whose ACL lacks PING, a server loading its
            // data still answers): the connection works.
            _ => {}
        }
        con.set_read_timeout(None).map_err(|e| self.failure(&e))?;
        Ok(con)
    }

    /// `e` as a sentence naming the server.
    pub(crate) fn failure(&self, e: &RedisError) -> Failure {
        let cause = cause(e, Some(self.db), self.password.as_deref());
        let text = if cause.unreachable {
            format!("cannot reach Redis at {}: {}", self.address, cause.text)
        } else {
            format!("Redis at {} {}", self.address, cause.text)
        };
        Failure {
            text,
            permanent: cause.permanent,
        }
    }

    /// `e`'s text without the password.
    pub(crate) fn scrub(&self, e: &RedisError) -> String {
        scrub(&e.to_string(), self.password.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_problems_are_named_without_the_url() {
        for (url, said) in [
            ("not a url", "no scheme"),
            ("127.0.0.1:6379", "no scheme"),
            ("http://h:1", "unknown scheme `http`"),
            ("redis://", "no host"),
            ("redis://:secret@h:port", "the port is not a number"),
            ("redis://:secret@h:99999", "the port is not a number"),
            ("redis://h:6379/zero", "the database"),
        ] {
            let why = open_client(url).err().map(|e| e.to_string());
            let why = why.unwrap_or_default();
            assert!(why.starts_with("invalid Redis URL: "), "{url}: {why}");
            assert!(why.contains(said), "{url}: {why}");
            assert!(!why.contains("secret"), "{why}");
        }
        for url in [
            "redis://127.0.0.1:6379",
            "redis://user:p%40ss@host:1/2",
            "redis://h",
            "unix:///tmp/redis.sock",
            "redis://[::1]:6379/0",
        ] {
            assert!(open_client(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn what_the_redis_crate_refuses_is_said_without_its_error_kind() {
        let said = open_client("redis://0.0.0.0:6379")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(said.contains("wildcard address"), "{said}");
        assert!(!said.contains("InvalidClientConfig"), "{said}");
    }

    #[test]
    fn a_cluster_list_names_the_node_at_fault() {
        let said = check_cluster_urls("redis://a:1, redis://:pw@b:x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            said.starts_with("node 2 of 2: invalid Redis URL: the port"),
            "{said}"
        );
        assert!(!said.contains("pw"), "{said}");
        let none = check_cluster_urls(" , ").err().map(|e| e.to_string());
        assert_eq!(none.as_deref(), Some("invalid Redis URL: no node URL"));
        assert!(check_cluster_urls("redis://a:1,redis://b:2").is_ok());
    }

    #[test]
    fn passwords_are_scrubbed() {
        assert_eq!(scrub("a hunter2 b", Some("hunter2")), "a *** b");
        assert_eq!(scrub("a b", Some("")), "a b");
        assert_eq!(scrub("a b", None), "a b");
    }
}
