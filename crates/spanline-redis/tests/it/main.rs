//! spanline-redis's behaviour tests against real redis-servers, one binary
//! (one link on a small machine).

/// A 3-master cluster (feature `cluster`).
#[cfg(feature = "cluster")]
mod cluster;
/// One server: publishing, faults, accounting.
mod publish;
