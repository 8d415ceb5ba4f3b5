//! Connected Threads accounts: who owns each, its sealed long-lived token and whether it still
//! works. The token is stored only sealed (see `vault`); this module never sees it in plain text.
//!
//! Layout in the accounts table: `account_id` (the Threads user id) is the key; `owner_user_id`
//! feeds the ByOwner index; `refresh_bucket` + `token_expires_at` feed the ByTokenExpiry index
//! (present only while the account is connected, so the refresher reads exactly the accounts it
//! may refresh, without a Scan).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::store::{Condition, Conditional, Item, StoreError, n, put_if, s};
use crate::threads::UserId;

/// The index value that marks an account as due for refresh checks.
const REFRESH_BUCKET: &str = "connected";

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// The token works.
    Connected,
    /// Threads refused the token (error 190): the owner must connect again. Nothing is published.
    NeedsReauth,
    /// Deauthorized or revoked: the token is deleted.
    Disconnected,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Connected => "connected",
            AccountStatus::NeedsReauth => "needs_reauth",
            AccountStatus::Disconnected => "disconnected",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "connected" => AccountStatus::Connected,
            "needs_reauth" => AccountStatus::NeedsReauth,
            "disconnected" => AccountStatus::Disconnected,
            _ => return None,
        })
    }
}

/// A connected Threads account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: UserId,
    pub owner_user_id: String,
    pub username: String,
    pub status: AccountStatus,
    /// The sealed long-lived token (vault format); absent once disconnected.
    pub sealed_token: Option<String>,
    /// When the current token was issued (epoch seconds): refresh needs it ≥ 24 h old.
    pub token_issued_at: i64,
    /// When the current token expires (epoch seconds), from Threads' `expires_in`.
    pub token_expires_at: i64,
    pub connected_at: i64,
}

/// Connecting an account that another ThreadStorm user already holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this Threads account is connected by another ThreadStorm user")]
pub struct OwnedByAnother;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    OwnedByAnother(#[from] OwnedByAnother),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("account record {0} is malformed")]
    Malformed(String),
}

#[derive(Clone, Debug)]
pub struct AccountStore {
    client: Client,
    table: String,
}

impl AccountStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        AccountStore {
            client,
            table: table.into(),
        }
    }

    fn store_error(&self, operation: &'static str, err: impl std::fmt::Display) -> StoreError {
        StoreError {
            operation,
            table: self.table.clone(),
            message: err.to_string(),
        }
    }

    /// Stores `account` as connected, unless another user holds it.
    pub async fn connect(&self, account: &Account) -> Result<(), AccountError> {
        let mine = Condition::new("attribute_not_exists(account_id) OR owner_user_id = :me")
            .value(":me", s(&account.owner_user_id));
        match put_if(&self.client, &self.table, to_item(account), mine).await? {
            Conditional::Written => Ok(()),
            Conditional::Lost { .. } => Err(OwnedByAnother.into()),
        }
    }

    pub async fn get(&self, account_id: &UserId) -> Result<Option<Account>, AccountError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("account_id", s(account_id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.store_error("GetItem", DisplayErrorContext(e)))?;
        output.item().map(from_item).transpose()
    }

    /// Every account `owner_user_id` holds.
    pub async fn list_by_owner(&self, owner_user_id: &str) -> Result<Vec<Account>, AccountError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("ByOwner")
            .key_condition_expression("owner_user_id = :owner")
            .expression_attribute_values(":owner", s(owner_user_id))
            .send()
            .await
            .map_err(|e| self.store_error("Query", DisplayErrorContext(e)))?;
        output.items().iter().map(from_item).collect()
    }

    /// Connected accounts whose token expires before `before` (epoch seconds), soonest first.
    pub async fn expiring_before(&self, before: i64) -> Result<Vec<Account>, AccountError> {
        let mut accounts = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("ByTokenExpiry")
                .key_condition_expression("refresh_bucket = :bucket AND token_expires_at < :before")
                .expression_attribute_values(":bucket", s(REFRESH_BUCKET))
                .expression_attribute_values(":before", n(before))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.store_error("Query", DisplayErrorContext(e)))?;
            for item in output.items() {
                accounts.push(from_item(item)?);
            }
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(accounts)
    }

    /// Replaces the token after a refresh, only while the account is still connected with the
    /// token that was refreshed (a concurrent disconnect or refresh wins).
    pub async fn replace_token(
        &self,
        account_id: &UserId,
        previous_sealed: &str,
        sealed: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<bool, AccountError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("account_id", s(account_id.as_str()))
            .update_expression(
                "SET sealed_token = :new, token_issued_at = :issued, token_expires_at = :expires",
            )
            .condition_expression("#status = :connected AND sealed_token = :old")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":connected", s(AccountStatus::Connected.as_str()))
            .expression_attribute_values(":old", s(previous_sealed))
            .expression_attribute_values(":new", s(sealed))
            .expression_attribute_values(":issued", n(issued_at))
            .expression_attribute_values(":expires", n(expires_at))
            .send()
            .await;
        conditional_update(result.map(|_| ()), || {
            self.store_error("UpdateItem", "replace token")
        })
    }

    /// Marks the account as needing a new connection; the token is kept (it may be needed to
    /// prove nothing else happened) but the account leaves the refresh index.
    pub async fn mark_needs_reauth(&self, account_id: &UserId) -> Result<bool, AccountError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("account_id", s(account_id.as_str()))
            .update_expression("SET #status = :reauth REMOVE refresh_bucket")
            .condition_expression("attribute_exists(account_id)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":reauth", s(AccountStatus::NeedsReauth.as_str()))
            .send()
            .await;
        conditional_update(result.map(|_| ()), || {
            self.store_error("UpdateItem", "mark needs_reauth")
        })
    }

    /// Deletes the token and marks the account disconnected (deauthorize, revocation).
    pub async fn disconnect(&self, account_id: &UserId) -> Result<bool, AccountError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("account_id", s(account_id.as_str()))
            .update_expression("SET #status = :gone REMOVE sealed_token, refresh_bucket")
            .condition_expression("attribute_exists(account_id)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":gone", s(AccountStatus::Disconnected.as_str()))
            .send()
            .await;
        conditional_update(result.map(|_| ()), || {
            self.store_error("UpdateItem", "disconnect")
        })
    }
}

impl AccountStore {
    /// Removes the account record entirely (data deletion). Idempotent: `false` when none was there.
    pub async fn delete(&self, account_id: &UserId) -> Result<bool, AccountError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("account_id", s(account_id.as_str()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| self.store_error("DeleteItem", DisplayErrorContext(e)))?;
        Ok(output.attributes().is_some_and(|a| !a.is_empty()))
    }
}

fn conditional_update<E>(
    result: Result<
        (),
        aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    >,
    store_error: impl FnOnce() -> StoreError,
) -> Result<bool, AccountError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(()) => Ok(true),
        Err(err)
            if err.as_service_error().and_then(|e| e.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(err) => {
            let mut e = store_error();
            e.message = DisplayErrorContext(err).to_string();
            Err(e.into())
        }
    }
}

fn to_item(account: &Account) -> Item {
    let mut item = HashMap::from([
        ("account_id".to_owned(), s(account.account_id.as_str())),
        ("owner_user_id".to_owned(), s(&account.owner_user_id)),
        ("username".to_owned(), s(&account.username)),
        ("status".to_owned(), s(account.status.as_str())),
        ("token_issued_at".to_owned(), n(account.token_issued_at)),
        ("token_expires_at".to_owned(), n(account.token_expires_at)),
        ("connected_at".to_owned(), n(account.connected_at)),
    ]);
    if let Some(sealed) = &account.sealed_token {
        item.insert("sealed_token".to_owned(), s(sealed));
    }
    if account.status == AccountStatus::Connected {
        item.insert("refresh_bucket".to_owned(), s(REFRESH_BUCKET));
    }
    item
}

fn from_item(item: &Item) -> Result<Account, AccountError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let id = text("account_id").unwrap_or_default();
    let malformed = || AccountError::Malformed(id.clone());
    Ok(Account {
        account_id: UserId::parse(&id).map_err(|_| malformed())?,
        owner_user_id: text("owner_user_id").ok_or_else(malformed)?,
        username: text("username").unwrap_or_default(),
        status: text("status")
            .as_deref()
            .and_then(AccountStatus::parse)
            .ok_or_else(malformed)?,
        sealed_token: text("sealed_token"),
        token_issued_at: number("token_issued_at").ok_or_else(malformed)?,
        token_expires_at: number("token_expires_at").ok_or_else(malformed)?,
        connected_at: number("connected_at").unwrap_or(0),
    })
}
