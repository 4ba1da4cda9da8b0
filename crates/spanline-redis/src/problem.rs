//! Configuration problems: Redis will not take the lines as configured (a
//! refused login, a database that does not exist, a cluster taken for a
//! single server or the reverse, an ACL without the right). Each is said
//! once on stderr, in words an operator can act on, with what becomes of
//! the lines; never with the password.

use std::time::Duration;

/// A configuration problem, with Redis's own words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Misconfig {
    /// Wrong password, unknown or disabled ACL user, or no password where
    /// the server needs one.
    LoginRefused(String),
    /// `SELECT` refused: the URL's database does not exist.
    NoSuchDatabase(String),
    /// Cluster mode, and the node is a plain Redis.
    NotACluster {
        /// The node that said so.
        node: String,
        detail: String,
    },
    /// A single server's URL on a node of a Redis Cluster: commands on
    /// keys of other nodes answer `MOVED`.
    PartOfCluster(String),
    /// Any other refusal (`NOPERM`, `WRONGTYPE`, ...).
    Refused(String),
}

fn has_any(text: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| text.contains(n))
}

impl Misconfig {
    /// The problem a failed connection attempt shows, `None` when it is
    /// worth retrying (down, unreachable, slow, loading).
    pub(crate) fn of_connect(e: &redis::RedisError) -> Option<Self> {
        use redis::ErrorKind;
        let text = e.to_string();
        if e.kind() == ErrorKind::AuthenticationFailed
            || matches!(e.code(), Some("NOAUTH" | "WRONGPASS"))
        {
            return Some(Misconfig::LoginRefused(text));
        }
        if e.code() == Some("NOPERM") || e.kind() == ErrorKind::InvalidClientConfig {
            return Some(Misconfig::Refused(text));
        }
        Self::of_text(&text)
    }

    /// The problem the server's refusal of our own connection's login
    /// (`AUTH`, `SELECT`) shows: any refusal is one.
    pub(crate) fn of_login_reply(error: &str) -> Self {
        Self::of_text(error).unwrap_or_else(|| Misconfig::Refused(error.to_string()))
    }

    /// The problem an error's words show, `None` when none does.
    fn of_text(text: &str) -> Option<Self> {
        let login = has_any(
            text,
            &[
                "NOAUTH",
                "WRONGPASS",
                "Authentication required",
                "invalid username-password",
                "Password authentication failed",
                "without any password configured",
            ],
        );
        if login {
            return Some(Misconfig::LoginRefused(text.to_string()));
        }
        if has_any(text, &["DB index is out of range", "invalid DB index"]) {
            return Some(Misconfig::NoSuchDatabase(
                "DB index is out of range".to_string(),
            ));
        }
        if text.contains("cluster support disabled") {
            return Some(Misconfig::NotACluster {
                node: "a node".to_string(),
                detail: NOT_A_CLUSTER.to_string(),
            });
        }
        if text.contains("NOPERM") {
            return Some(Misconfig::Refused(text.to_string()));
        }
        None
    }

    /// The problem a command's error reply (`CODE details`) shows.
    pub(crate) fn of_reply(error: &str) -> Self {
        match error.split(' ').next().unwrap_or_default() {
            "MOVED" | "ASK" | "Moved:" | "Ask:" => Misconfig::PartOfCluster(error.to_string()),
            "NOAUTH" | "WRONGPASS" => Misconfig::LoginRefused(error.to_string()),
            _ => Misconfig::Refused(error.to_string()),
        }
    }

    /// Said once per kind (per error code for other refusals).
    pub(crate) fn key(&self) -> String {
        match self {
            Misconfig::LoginRefused(_) => "login".to_string(),
            Misconfig::NoSuchDatabase(_) => "db".to_string(),
            Misconfig::NotACluster { .. } => "not a cluster".to_string(),
            Misconfig::PartOfCluster(_) => "part of a cluster".to_string(),
            Misconfig::Refused(error) => error.split(' ').next().unwrap_or_default().to_string(),
        }
    }

    /// No line can be published while it stands: lines fail at once, and
    /// the connection is tried again only after `max_backoff`.
    pub(crate) fn blocks_all(&self) -> bool {
        !matches!(self, Misconfig::PartOfCluster(_) | Misconfig::Refused(_))
    }

    /// A few words for the periodic stderr line.
    pub(crate) fn short(&self) -> String {
        match self {
            Misconfig::LoginRefused(_) => "login refused".to_string(),
            Misconfig::NoSuchDatabase(_) => "no such database".to_string(),
            Misconfig::NotACluster { .. } => "not a Redis Cluster".to_string(),
            Misconfig::PartOfCluster(_) => {
                "part of a Redis Cluster: use the cluster mode".to_string()
            }
            Misconfig::Refused(error) => format!("Redis refuses them: {error}"),
        }
    }

    /// The stderr line: what is wrong, what to do, what becomes of lines.
    /// `addr` is the server's address (never the URL: no password), `db`
    /// the URL's database, `retry` how often the connection is tried again.
    pub(crate) fn message(&self, addr: &str, db: i64, retry: Duration) -> String {
        match self {
            Misconfig::LoginRefused(detail) => format!(
                "spanline-redis: login refused by Redis at {addr} ({detail}): check the user and \
                 password of the URL (a wrong password, an unknown or disabled ACL user, or no \
                 password where the server needs one); log lines are counted as failed, not \
                 queued, until a login succeeds (tried again every {retry:?})"
            ),
            Misconfig::NoSuchDatabase(detail) => format!(
                "spanline-redis: Redis at {addr} has no database {db} ({detail}): the number after \
                 the URL's `/` must be below the server's `databases` setting (16 by default); log \
                 lines are counted as failed, not queued (tried again every {retry:?})"
            ),
            Misconfig::NotACluster { node, detail } => format!(
                "spanline-redis: {node} is not a cluster ({detail}): use a plain URL \
                 (RedisLayer::builder; with spanline::init, unset SPANLINE_REDIS_CLUSTER); log \
                 lines are counted as failed, not queued (tried again every {retry:?})"
            ),
            Misconfig::PartOfCluster(detail) => format!(
                "spanline-redis: this server is part of a Redis Cluster ({addr} answered {detail}): \
                 use the cluster mode (RedisLayer::builder_cluster; with spanline::init, \
                 SPANLINE_REDIS_CLUSTER=true); log lines whose channel or stream lives on \
                 another node are counted as failed"
            ),
            Misconfig::Refused(detail) => format!(
                "spanline-redis: Redis refuses the log lines ({detail}); they are counted as failed"
            ),
        }
    }
}

/// What a plain Redis answers to a cluster command.
pub(crate) const NOT_A_CLUSTER: &str = "ERR This instance has cluster support disabled";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_sorted_by_what_to_do() {
        assert!(matches!(
            Misconfig::of_reply("MOVED 13148 127.0.0.1:7002"),
            Misconfig::PartOfCluster(_)
        ));
        assert!(matches!(
            Misconfig::of_reply("NOAUTH Authentication required."),
            Misconfig::LoginRefused(_)
        ));
        assert_eq!(Misconfig::of_reply("NOPERM no permissions").key(), "NOPERM");
    }

    #[test]
    fn connect_errors_that_retrying_cannot_fix_are_named() {
        let auth = redis::RedisError::from((
            redis::ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        ));
        assert!(matches!(
            Misconfig::of_connect(&auth),
            Some(Misconfig::LoginRefused(_))
        ));
        let db = redis::RedisError::from((
            redis::ErrorKind::Client,
            "Redis server refused to switch database",
            "DB index is out of range".to_string(),
        ));
        assert!(matches!(
            Misconfig::of_connect(&db),
            Some(Misconfig::NoSuchDatabase(_))
        ));
        let down =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(Misconfig::of_connect(&down), None);
    }

    #[test]
    fn messages_say_what_to_do_and_what_becomes_of_lines() {
        let retry = Duration::from_secs(5);
        let login = Misconfig::LoginRefused("x".into()).message("h:1", 0, retry);
        assert!(login.contains("login refused") && login.contains("counted as failed"));
        assert!(!login.contains("published when it answers"));
        let db =
            Misconfig::NoSuchDatabase("DB index is out of range".into()).message("h:1", 99, retry);
        assert!(db.contains("no database 99") && db.contains("DB index is out of range"));
        let not = Misconfig::NotACluster {
            node: "h:1".into(),
            detail: NOT_A_CLUSTER.into(),
        }
        .message("h:1", 0, retry);
        assert!(not.contains("not a cluster") && not.contains("unset SPANLINE_REDIS_CLUSTER"));
        let part = Misconfig::PartOfCluster("MOVED 1 h:2".into()).message("h:1", 0, retry);
        assert!(part.contains("part of a Redis Cluster") && part.contains("use the cluster mode"));
    }
}
