//! Support for the pipeline tests: request counting, a small event source mapping, idempotency
//! records that can crash mid-publish, and a whole pipeline per test.

pub mod counting;
pub mod gateway;
pub mod ledger;
pub mod sqs;
pub mod world;
