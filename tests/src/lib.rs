//! End-to-end tests against real processes on loopback.
