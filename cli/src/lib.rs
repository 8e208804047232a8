//! Command-line tools: mesos-local, mesos-execute.
