//! The posting pipeline: the stages (intake, dedupe, gate, poster, result sink, scheduler) and
//! their building blocks (FIFO batch handling, quota reservations, idempotency records).

pub mod dedupe;
pub mod fifo;
pub mod gate;
pub mod idempotency;
pub mod intake;
pub mod poster;
pub mod quota;
pub mod results;
pub mod scheduler;
pub mod stage;
