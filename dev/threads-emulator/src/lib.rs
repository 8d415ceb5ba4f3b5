//! A local emulator of Meta's Threads Graph API, faithful to ThreadStorm's reference
//! (`reference/threads-api.md`, "Emulator checklist"): the OAuth window and code exchange,
//! token lifetimes and refresh on a controllable clock, containers and publishing with Meta's
//! validation and eventual consistency, rolling quotas, the read side, fault injection, a
//! record of every publish, and a webhook / `signed_request` sender.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use threads_emulator::{Emulator, EmulatorConfig, Endpoint, Fault, FaultPlan};
//!
//! let emulator = Emulator::start(EmulatorConfig::default()).await?;
//! let token = emulator.issue_long_lived_token("17841405793187218");
//! // Point the client at emulator.base_url(); the second publish attempt succeeds.
//! emulator.inject(FaultPlan::once(Endpoint::Publish, Fault::NotReady));
//! // ... run the code under test ...
//! assert!(emulator.published().len() <= 1);
//! # let _ = token; Ok(()) }
//! ```
//!
//! Library surface:
//! - [`Emulator`]: `start`, `start_on`, `base_url`, `authorize_url`, `clock`,
//!   `issue_long_lived_token`, `issue_short_lived_token`, `issue_token_with_scopes`,
//!   `revoke_token`, `inject`, `clear_faults`, `published`, `calls`, `container_status`,
//!   `set_media_insights`, `set_followers_count`, `send_webhook`, `reset`, `shutdown`; it stops
//!   when dropped.
//! - [`EmulatorConfig`] (every field public, `Default` as Meta documents), [`TestUser`],
//!   [`Quotas`].
//! - [`Clock`]: `now`, `now_millis`, `advance`, `set`, `set_millis`, `reset`.
//! - [`FaultPlan`] (`once`, `times`, `sequence`, `rate`), [`Fault`], [`Endpoint`].
//! - [`webhook`]: `meta_json`, `signature`, `envelope`, `deliver`, `signed_request`,
//!   `verify_signed_request`, `callback_payload`.
//!
//! The HTTP control routes under `/_emulator/` are described in the crate's README.

mod calls;
mod clock;
mod config;
mod containers;
mod control;
mod error;
mod faults;
mod ids;
mod json;
mod media;
mod oauth;
mod profile_insights;
mod publishing;
mod quotas;
mod request;
mod server;
mod state;
mod tokens;
pub mod webhook;

pub use calls::CallCounts;
pub use clock::{Clock, graph_timestamp};
pub use config::{EmulatorConfig, Quotas, TestUser};
pub use containers::{TEXT_LIMIT_BYTES, unique_links};
pub use faults::{Endpoint, Fault, FaultMode, FaultPlan};
pub use server::Emulator;
pub use state::{ContainerStatus, MediaInsights, PublishedPost};
pub use tokens::ALL_SCOPES;
