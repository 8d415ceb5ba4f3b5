//! Counts of the calls the emulator served, by kind, so a test can assert "zero Threads calls"
//! or "exactly one create and three publishes".

use serde::{Deserialize, Serialize};

use crate::faults::Endpoint;

/// One kind of call a client makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Authorize,
    CodeExchange,
    TokenExchange,
    Refresh,
    DebugToken,
    Create,
    Publish,
    Status,
    Read,
    PublishingLimit,
    Insights,
    UserInsights,
    Delete,
    Other,
}

impl Call {
    /// The fault-injection kind this call draws from; the authorization window takes no faults.
    pub fn endpoint(self) -> Option<Endpoint> {
        match self {
            Call::Authorize => None,
            Call::CodeExchange | Call::TokenExchange | Call::Refresh | Call::DebugToken => {
                Some(Endpoint::Token)
            }
            Call::Create => Some(Endpoint::Create),
            Call::Publish => Some(Endpoint::Publish),
            Call::Status => Some(Endpoint::Status),
            Call::Delete => Some(Endpoint::Delete),
            Call::Read
            | Call::PublishingLimit
            | Call::Insights
            | Call::UserInsights
            | Call::Other => Some(Endpoint::Read),
        }
    }
}

/// How many calls of each kind the emulator has served since start (or reset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCounts {
    /// `GET /oauth/authorize`.
    pub authorize: u64,
    /// `/oauth/access_token`.
    pub code_exchange: u64,
    /// `GET /access_token` (short-lived to long-lived).
    pub token_exchange: u64,
    /// `GET /refresh_access_token`.
    pub refresh: u64,
    pub debug_token: u64,
    /// `POST /{user}/threads`.
    pub create: u64,
    /// `POST /{user}/threads_publish`.
    pub publish: u64,
    /// `GET /{container-id}`.
    pub status: u64,
    /// Other reads: `/me`, `/{user}/threads`, `/{media-id}`, replies.
    pub read: u64,
    pub publishing_limit: u64,
    /// `GET /{media-id}/insights`.
    pub insights: u64,
    /// `GET /{user}/threads_insights`.
    pub user_insights: u64,
    /// `DELETE /{media-id}`.
    pub delete: u64,
    /// Requests to paths Threads does not have.
    pub other: u64,
}

impl CallCounts {
    pub(crate) fn record(&mut self, call: Call) {
        let slot = match call {
            Call::Authorize => &mut self.authorize,
            Call::CodeExchange => &mut self.code_exchange,
            Call::TokenExchange => &mut self.token_exchange,
            Call::Refresh => &mut self.refresh,
            Call::DebugToken => &mut self.debug_token,
            Call::Create => &mut self.create,
            Call::Publish => &mut self.publish,
            Call::Status => &mut self.status,
            Call::Read => &mut self.read,
            Call::PublishingLimit => &mut self.publishing_limit,
            Call::Insights => &mut self.insights,
            Call::UserInsights => &mut self.user_insights,
            Call::Delete => &mut self.delete,
            Call::Other => &mut self.other,
        };
        *slot += 1;
    }

    /// Every call to Threads' hosts, the authorization window included.
    pub fn total(&self) -> u64 {
        self.authorize + self.api_total()
    }

    /// Every call to the Graph API host (everything but the authorization window).
    pub fn api_total(&self) -> u64 {
        self.code_exchange
            + self.token_exchange
            + self.refresh
            + self.debug_token
            + self.create
            + self.publish
            + self.status
            + self.read
            + self.publishing_limit
            + self.insights
            + self.user_insights
            + self.delete
            + self.other
    }

    /// Token endpoint calls: code exchange, long-lived exchange and refresh.
    pub fn token_total(&self) -> u64 {
        self.code_exchange + self.token_exchange + self.refresh
    }
}
