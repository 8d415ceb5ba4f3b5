//! Support for the pipeline tests: request counting, a small event source mapping, stand-ins for
//! modules built on other branches, and a whole pipeline per test.

pub mod counting;
pub mod fakes;
pub mod sqs;
pub mod world;
