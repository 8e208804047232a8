//! The agent: registration, executors, status updates.
