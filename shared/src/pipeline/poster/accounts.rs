//! The narrow door through which the poster opens an account's sealed token.
//!
//! The account itself (owner, status, sealed token) is read from [`crate::accounts`] at publish
//! time, so scheduled work can never publish for a user who no longer owns the account.

use super::super::stage::BoxFuture;
use crate::accounts::Account;
use crate::threads::AccessToken;

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
