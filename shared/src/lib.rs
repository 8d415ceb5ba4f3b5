//! ThreadStorm: publish posts and storms to Threads through a safe, exactly-once pipeline.
//!
//! Every Lambda function is a thin binary over this crate: it calls [`runtime::start`] to read
//! its configuration and build its AWS clients once, then hands events to a handler here.

pub mod accounts;
pub mod api;
pub mod audit;
pub mod aws;
pub mod clock;
pub mod config;
pub mod edge;
pub mod inbox;
pub mod insights;
pub mod metrics;
pub mod oauth;
pub mod pipeline;
pub mod policy;
pub mod posts;
pub mod product;
pub mod rate_limit;
pub mod rbac;
pub mod refresher;
pub mod resources;
pub mod rotation;
pub mod runtime;
pub mod secrets;
pub mod sessions;
pub mod store;
pub mod storm;
pub mod threads;
pub mod users;
pub mod vault;
pub mod webhooks;
