//! The time of the event being dispatched, and the [`Clock`] that reads it.
//!
//! The time override lets the pipe re-emit a child's event with the
//! child's timestamp.
//!
//! This module is the bottom floor of core: it uses only `time`'s
//! `Timestamp`.

use std::cell::Cell;

use crate::time::Timestamp;

thread_local! {
    static EVENT_TIME: Cell<Option<Timestamp>> = const { Cell::new(None) };
}

/// The time set for the events dispatched now on this thread, if any.
#[inline]
pub(crate) fn event_time() -> Option<Timestamp> {
    EVENT_TIME.try_with(Cell::get).ok().flatten()
}

/// Runs `f` with `at` as the time of the events it dispatches, for every
/// spanline output layer on this thread. The pipe forwarder uses it so a
/// child's lines keep the child's timestamps.
///
/// ```
/// use spanline_core::{Clock, Timestamp};
/// let at = Timestamp::from_unix(1, 0);
/// assert_eq!(spanline_core::with_event_time(at, || Clock::system().now()), at);
/// ```
#[doc(hidden)]
pub fn with_event_time<R>(at: Timestamp, f: impl FnOnce() -> R) -> R {
    let previous = EVENT_TIME.try_with(|t| t.replace(Some(at))).ok().flatten();
    let out = f();
    let _ = EVENT_TIME.try_with(|t| t.set(previous));
    out
}

/// Where timestamps come from. A fixed clock makes golden tests possible.
///
/// ```
/// use spanline_core::{Clock, Timestamp};
/// let clock = Clock::fixed(Timestamp::from_unix(0, 0));
/// assert_eq!(clock.now(), Timestamp::from_unix(0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock(Option<Timestamp>);

impl Clock {
    /// The system clock (the default).
    ///
    /// ```
    /// let now = spanline_core::Clock::system().now();
    /// assert!(now.unix_secs() > 0);
    /// ```
    pub fn system() -> Self {
        Self(None)
    }

    /// Always the same instant.
    ///
    /// ```
    /// let at = spanline_core::Timestamp::from_unix(60, 0);
    /// assert_eq!(spanline_core::Clock::fixed(at).now(), at);
    /// ```
    pub fn fixed(at: Timestamp) -> Self {
        Self(Some(at))
    }

    /// The current time by this clock: the fixed instant, else the time
    /// set for the event being dispatched (see
    /// [`with_event_time`](crate::with_event_time)), else the system clock.
    ///
    /// ```
    /// let clock = spanline_core::Clock::default();
    /// assert!(clock.now() >= spanline_core::Timestamp::from_unix(0, 0));
    /// ```
    #[inline]
    pub fn now(&self) -> Timestamp {
        self.0.or_else(event_time).unwrap_or_else(Timestamp::now)
    }
}
