//! The handshake: how a parent tells its child where the pipe is, through
//! one environment variable, and how the child checks that the descriptor
//! is that pipe (a grandchild may inherit the variable, not the pipe).

use tracing_core::LevelFilter;

use super::VERSION;

/// The environment variable that tells a child where to forward:
/// `v{VERSION};fd=3;ino=<pipe inode>;max_level=<level>`.
///
/// ```
/// assert_eq!(spanline_pipe::ENV_VAR, "SPANLINE_FORWARD");
/// ```
pub const ENV_VAR: &str = "SPANLINE_FORWARD";

/// The descriptor the parent gives the child.
///
/// ```
/// assert_eq!(spanline_pipe::FD, 3);
/// ```
pub const FD: i32 = 3;

/// Where to forward, as the parent described it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Spec {
    pub(crate) fd: i32,
    pub(crate) ino: u64,
    pub(crate) max_level: LevelFilter,
}

impl Spec {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(';');
        if parts.next()?.strip_prefix('v')?.parse::<u32>().ok()? != VERSION {
            return None;
        }
        let (mut fd, mut ino, mut max_level) = (None, None, LevelFilter::TRACE);
        for part in parts {
            match part.split_once('=')? {
                ("fd", v) => fd = v.parse().ok(),
                ("ino", v) => ino = v.parse().ok(),
                ("max_level", v) => max_level = v.parse().unwrap_or(LevelFilter::TRACE),
                _ => {}
            }
        }
        Some(Self {
            fd: fd?,
            ino: ino?,
            max_level,
        })
    }

    pub(crate) fn render(&self) -> String {
        format!(
            "v{VERSION};fd={};ino={};max_level={}",
            self.fd, self.ino, self.max_level
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_and_rejects_garbage() {
        let spec = Spec {
            fd: 3,
            ino: 77,
            max_level: LevelFilter::DEBUG,
        };
        assert!(spec.render().starts_with(&format!("v{VERSION};")));
        assert_eq!(Spec::parse(&spec.render()), Some(spec));
        assert_eq!(Spec::parse(&format!("v{};fd=3;ino=1", VERSION + 1)), None);
        assert_eq!(Spec::parse("v1;fd=3"), None);
        assert_eq!(Spec::parse("garbage"), None);
    }
}
