//! ThreadStorm's local AWS: moto server on loopback, holding the tables, queues, KMS key and secrets
//! that template.yaml declares, created by reading the template (never from a second list).
//!
//! Used by the README's main command (`local-stack up`) and, through [`testing`], by every test
//! that needs AWS.

pub mod moto;
pub mod stack;
pub mod template;
pub mod testing;

/// The region of every local stack (moto accepts any; the SDK needs one).
pub const REGION: &str = "us-east-1";

pub use moto::Moto;
pub use stack::{Stack, StackOptions};
pub use template::Template;
