//! The stages' building blocks: FIFO batch handling, quota reservations and idempotency records.

pub mod fifo;
pub mod idempotency;
pub mod quota;
