//! The typed client of Meta's Threads Graph API, as reference/threads-api.md describes it.
//!
//! Ids and tokens are distinct types; every failure is a [`ThreadsError`] that says what to do
//! next; base URLs are configuration, so the same client talks to Threads or to the emulator.

mod client;
mod error;
mod ids;
mod oauth;
mod redact;
mod retry;
mod types;

pub use client::{
    DEFAULT_AUTHORIZE_URL, DEFAULT_GRAPH_BASE, ThreadsClient, ThreadsConfig, ThreadsPages,
};
pub use error::{ApiError, Call, ErrorShape, ThreadsError, classify};
pub use ids::{AccessToken, ContainerId, InvalidId, MediaId, UserId};
pub use oauth::{
    AppCredentials, AuthorizeRequest, LongLivedToken, Scope, ShortLivedToken, TokenInfo,
    TokenProblem, clean_code,
};
pub use redact::{is_sensitive_param, redact_url};
pub use retry::{BACKOFF_BASE, BACKOFF_CAP, backoff, backoff_between};
pub use types::{
    ContainerFailure, ContainerStatus, Cursors, Deleted, Insight, InsightPeriod, InsightValue,
    ListThreads, Media, MediaRef, Metric, NewContainer, Page, Paging, Profile, PublishingLimit,
    QuotaConfig, ReplyControl, ThreadsMedia, UserMetric,
};
