//! The OAuth `state`: random, single use, bound to the browser that started the flow by a cookie,
//! ten minutes of life, consumed by a conditional delete before any call to Threads.
//!
//! Only hashes of the state and of the browser cookie are stored, so a leaked table row cannot be
//! replayed. The PKCE verifier rides along and comes back only to the browser that owns the state.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::pkce::Verifier;
use crate::store::{Condition, Conditional, StoreError, n, put_if, s};

/// How long a state lives.
pub const STATE_LIFETIME_SECONDS: i64 = 600;

/// The cookie that binds a state to its browser. `__Host-` keeps it on this exact host.
pub const BROWSER_COOKIE: &str = "__Host-ts_oauth";

/// A state just issued: the values the browser carries and the verifier kept server-side.
#[derive(Debug)]
pub struct IssuedState {
    /// Goes to Threads in the authorize URL and comes back in the callback.
    pub state: String,
    /// Goes into the browser cookie [`BROWSER_COOKIE`].
    pub browser_nonce: String,
    pub verifier: Verifier,
}

/// What a consumed state yields.
#[derive(Debug)]
pub struct ConsumedState {
    pub verifier: Verifier,
    pub return_to: String,
}

/// Why a callback's state was refused. Each is `invalid_state` to the user; the audit record keeps
/// the precise reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateRejection {
    #[error("the callback carries no state")]
    Missing,
    #[error("the browser has no state cookie")]
    NoCookie,
    #[error("the state is unknown or was already used")]
    UnknownOrUsed,
    #[error("the state has expired")]
    Expired,
    #[error("the state belongs to another browser")]
    OtherBrowser,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Rejected(#[from] StateRejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

fn key(state: &str) -> String {
    format!("oauth-state#{}", digest(state))
}

/// Issues and consumes states in the sessions table.
#[derive(Clone, Debug)]
pub struct StateStore {
    client: Client,
    table: String,
}

impl StateStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        StateStore {
            client,
            table: table.into(),
        }
    }

    /// Stores a new state for the browser that will carry `browser_nonce`, returning what to send.
    pub async fn issue(&self, return_to: &str, now: i64) -> Result<IssuedState, StoreError> {
        let issued = IssuedState {
            state: random_token(),
            browser_nonce: random_token(),
            verifier: Verifier::generate(),
        };
        let item = HashMap::from([
            ("id".to_owned(), s(key(&issued.state))),
            ("browser".to_owned(), s(digest(&issued.browser_nonce))),
            ("verifier".to_owned(), s(issued.verifier.expose())),
            ("return_to".to_owned(), s(return_to)),
            ("created_at".to_owned(), n(now)),
            ("expires_at".to_owned(), n(now + STATE_LIFETIME_SECONDS)),
        ]);
        let fresh = Condition::new("attribute_not_exists(id)");
        match put_if(&self.client, &self.table, item, fresh).await? {
            Conditional::Written => Ok(issued),
            // 256 random bits collided: treat as a store fault rather than reuse anything.
            Conditional::Lost { .. } => Err(StoreError {
                operation: "PutItem",
                table: self.table.clone(),
                message: "state collision".into(),
            }),
        }
    }

    /// Consumes `state` for the browser presenting `browser_nonce`: one conditional delete that
    /// succeeds only if the state exists, is unexpired and belongs to this browser. A refused state
    /// from another browser stays usable by its owner.
    pub async fn consume(
        &self,
        state: Option<&str>,
        browser_nonce: Option<&str>,
        now: i64,
    ) -> Result<ConsumedState, StateError> {
        let state = state
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or(StateRejection::Missing)?;
        let nonce = browser_nonce
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or(StateRejection::NoCookie)?;
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", s(key(state)))
            .condition_expression(
                "attribute_exists(id) AND expires_at > :now AND browser = :browser",
            )
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":browser", s(digest(nonce)))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item = output.attributes().ok_or(StateRejection::UnknownOrUsed)?;
                let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
                let verifier = text("verifier")
                    .and_then(|v| Verifier::parse(&v).ok())
                    .ok_or(StateRejection::UnknownOrUsed)?;
                Ok(ConsumedState {
                    verifier,
                    return_to: text("return_to").unwrap_or_else(|| "/".into()),
                })
            }
            Err(err) => {
                let lost = err.as_service_error().and_then(|e| match e {
                    aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(c) => {
                        Some(c.item().cloned())
                    }
                    _ => None,
                });
                match lost {
                    Some(None) => Err(StateRejection::UnknownOrUsed.into()),
                    Some(Some(existing)) => {
                        let expired = existing
                            .get("expires_at")
                            .and_then(|v| v.as_n().ok())
                            .and_then(|v| v.parse::<i64>().ok())
                            .is_none_or(|at| at <= now);
                        Err(if expired {
                            StateRejection::Expired
                        } else {
                            StateRejection::OtherBrowser
                        }
                        .into())
                    }
                    None => Err(StateError::Store(StoreError {
                        operation: "DeleteItem",
                        table: self.table.clone(),
                        message: DisplayErrorContext(err).to_string(),
                    })),
                }
            }
        }
    }
}

/// A state value as sent to Threads (for tests and the audit record: never the raw value).
pub fn fingerprint(state: &str) -> String {
    digest(state).chars().take(12).collect()
}
