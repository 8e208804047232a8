//! Command-line tools: `mesos-local` (a master and agents in one command)
//! and `mesos-execute` (run one task and follow it), plus the v1 scheduler
//! client they, the end-to-end tests and the benchmarks share.

pub mod http_get;
pub mod scheduler_client;
