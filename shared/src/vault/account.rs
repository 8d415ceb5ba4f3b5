//! The one door through which a connected account's sealed token is opened for a Threads call:
//! publishing (the poster) and reading insights (the api). The vault opens it for the account's
//! owner and audits each opening with the use it was opened for.
//!
//! The account itself (owner, status, sealed token) is read from [`crate::accounts`] just before,
//! so nobody opens a token for a user who no longer owns the account.

use std::future::Future;
use std::pin::Pin;

use super::{Purpose, TokenOwner, Vault};
use crate::accounts::Account;
use crate::threads::AccessToken;
use crate::users::UserId;

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

/// What a token is opened for; the audit record of the opening says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    Publish,
    Insights,
}

impl TokenUse {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenUse::Publish => "publish",
            TokenUse::Insights => "insights",
        }
    }
}

/// A boxed future, so the trait stays object-safe.
pub type OpenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AccessToken, TokenError>> + Send + 'a>>;

/// Opens an account's sealed token.
pub trait TokenOpener: Send + Sync {
    fn open<'a>(&'a self, account: &'a Account, use_: TokenUse) -> OpenFuture<'a>;
}

/// The vault opens tokens sealed for (owner, account); each opening is audited by the vault.
impl TokenOpener for Vault {
    fn open<'a>(&'a self, account: &'a Account, use_: TokenUse) -> OpenFuture<'a> {
        Box::pin(async move {
            let sealed = account.sealed_token.as_deref().ok_or_else(|| {
                TokenError::Unusable("no token is stored; the account was disconnected".into())
            })?;
            let user = UserId::parse(&account.owner_user_id)
                .map_err(|e| TokenError::Unusable(e.to_string()))?;
            let owner = TokenOwner::new(user, account.account_id.as_str());
            match self
                .unseal(sealed, &owner, Purpose::ThreadsAccessToken, use_.as_str())
                .await
            {
                Ok(token) => Ok(AccessToken::new(token.expose())),
                Err(e) if e.is_retryable() => Err(TokenError::Retryable(e.to_string())),
                Err(e) => Err(TokenError::Unusable(e.to_string())),
            }
        })
    }
}
