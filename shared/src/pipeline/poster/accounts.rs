//! The narrow door through which the poster opens an account's sealed token.
//!
//! The account itself (owner, status, sealed token) is read from [`crate::accounts`] at publish
//! time, so scheduled work can never publish for a user who no longer owns the account.

use super::super::stage::BoxFuture;
use crate::accounts::Account;
use crate::threads::AccessToken;
use crate::users::UserId;
use crate::vault::{Purpose, TokenOwner, Vault};

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

/// The vault opens tokens sealed for (owner, account); each opening is audited by the vault.
impl TokenOpener for Vault {
    fn open<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<AccessToken, TokenError>> {
        Box::pin(async move {
            let sealed = account.sealed_token.as_deref().ok_or_else(|| {
                TokenError::Unusable("no token is stored; the account was disconnected".into())
            })?;
            let user = UserId::parse(&account.owner_user_id)
                .map_err(|e| TokenError::Unusable(e.to_string()))?;
            let owner = TokenOwner::new(user, account.account_id.as_str());
            match self
                .unseal(sealed, &owner, Purpose::ThreadsAccessToken, "publish")
                .await
            {
                Ok(token) => Ok(AccessToken::new(token.expose())),
                Err(e) if e.is_retryable() => Err(TokenError::Retryable(e.to_string())),
                Err(e) => Err(TokenError::Unusable(e.to_string())),
            }
        })
    }
}
