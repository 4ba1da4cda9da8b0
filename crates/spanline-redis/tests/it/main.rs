//! spanline-redis's behaviour tests against real redis-servers, one binary
//! (one link on a small machine).

/// This binary run again as a child process, for what must be seen from
/// outside (stderr, the exit).
mod child;
/// A 3-master cluster (feature `cluster`).
#[cfg(feature = "cluster")]
mod cluster;
/// The guard at exit: every line settled, the loss said.
mod exit;
/// The worker's own connection: login, database, Unix socket.
mod login;
/// One server: publishing, faults, accounting.
mod publish;
/// The reading API on a 3-master cluster (feature `cluster`).
#[cfg(feature = "cluster")]
mod read;
/// Misconfigurations: said once, lines counted failed.
mod startup;
