//! The poster's view of connected accounts: who owns the account, whether it can publish, and
//! its sealed token; and the narrow door through which a sealed token is opened.
//!
//! The poster re-reads the account at publish time, so scheduled work can never publish for a
//! user who no longer owns (or never owned) the account.

use aws_sdk_dynamodb::types::AttributeValue;

use super::super::stage::BoxFuture;
use crate::posts::AccountId;
use crate::store::{StoreError, n, s};
use crate::threads::AccessToken;

/// Whether an account can publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    Connected,
    /// Threads refused its token: the owner must connect it again.
    NeedsReauth,
    /// Disconnected, deauthorized by Meta, or anything else that is not `connected`.
    Disconnected,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Connected => "connected",
            AccountState::NeedsReauth => "needs_reauth",
            AccountState::Disconnected => "disconnected",
        }
    }

    fn parse(raw: &str) -> Self {
        match raw {
            "connected" => AccountState::Connected,
            "needs_reauth" => AccountState::NeedsReauth,
            _ => AccountState::Disconnected,
        }
    }
}

/// A connected Threads account, as the poster needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: AccountId,
    pub owner_user_id: String,
    pub state: AccountState,
    pub username: Option<String>,
    /// The token, sealed by the vault for (owner, account). Opened only by a [`TokenOpener`].
    pub sealed_token: Option<String>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("account_id", &self.account_id)
            .field("owner_user_id", &self.owner_user_id)
            .field("state", &self.state)
            .field("username", &self.username)
            .field("sealed_token", &self.sealed_token.as_ref().map(|t| t.len()))
            .finish()
    }
}

/// Reads and flags accounts.
pub trait AccountDirectory: Send + Sync {
    fn load<'a>(
        &'a self,
        account: &'a AccountId,
    ) -> BoxFuture<'a, Result<Option<Account>, StoreError>>;

    /// Marks the account `needs_reauth` with a reason its owner can act on.
    fn mark_needs_reauth<'a>(
        &'a self,
        account: &'a AccountId,
        reason: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// Why a token could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The key service did not answer: retry.
    #[error("token could not be opened now: {0}")]
    Retryable(String),
    /// The sealed token is missing, damaged or not this owner's: the account must be connected
    /// again.
    #[error("token unusable: {0}")]
    Unusable(String),
}

/// Opens an account's sealed token for publishing.
pub trait TokenOpener: Send + Sync {
    fn open<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<AccessToken, TokenError>>;
}

/// The AccountsTable: key `account_id`; attributes `owner_user_id`, `status`
/// (`connected` | `needs_reauth` | …), `username`, `sealed_token`, `status_reason`.
#[derive(Debug, Clone)]
pub struct DynamoAccounts {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoAccounts {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoAccounts {
            client,
            table: table.into(),
        }
    }

    fn error(&self, operation: &'static str, err: impl std::fmt::Display) -> StoreError {
        StoreError {
            operation,
            table: self.table.clone(),
            message: err.to_string(),
        }
    }
}

impl AccountDirectory for DynamoAccounts {
    fn load<'a>(
        &'a self,
        account: &'a AccountId,
    ) -> BoxFuture<'a, Result<Option<Account>, StoreError>> {
        Box::pin(async move {
            let output = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("account_id", s(account.as_str()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| {
                    self.error("GetItem", aws_sdk_dynamodb::error::DisplayErrorContext(e))
                })?;
            let Some(item) = output.item() else {
                return Ok(None);
            };
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            let Some(owner) = text("owner_user_id") else {
                // An account nobody owns can publish for nobody.
                return Ok(None);
            };
            Ok(Some(Account {
                account_id: account.clone(),
                owner_user_id: owner,
                state: AccountState::parse(text("status").as_deref().unwrap_or("")),
                username: text("username"),
                sealed_token: text("sealed_token"),
            }))
        })
    }

    fn mark_needs_reauth<'a>(
        &'a self,
        account: &'a AccountId,
        reason: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("account_id", s(account.as_str()))
                .update_expression("SET #st = :st, #why = :why, #at = :now")
                .condition_expression("attribute_exists(account_id)")
                .expression_attribute_names("#st", "status")
                .expression_attribute_names("#why", "status_reason")
                .expression_attribute_names("#at", "status_changed_at")
                .expression_attribute_values(":st", s(AccountState::NeedsReauth.as_str()))
                .expression_attribute_values(":why", AttributeValue::S(reason.to_owned()))
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                // Deleted meanwhile: nothing left to flag.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Ok(())
                }
                Err(e) => Err(self.error(
                    "UpdateItem",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e),
                )),
            }
        })
    }
}
