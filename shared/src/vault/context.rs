//! Who a sealed token belongs to and what it is for, and the one canonical encoding of that which
//! is both the KMS encryption context and the AES-GCM associated data.

use std::collections::HashMap;

use crate::users::UserId;

use super::VaultError;

/// The owner a token is sealed for: the ThreadStorm user and the connected Threads account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenOwner {
    pub user_id: UserId,
    /// The AccountsTable `account_id` (the connected account's Threads user id).
    pub account_id: String,
}

impl TokenOwner {
    pub fn new(user_id: UserId, account_id: impl Into<String>) -> Self {
        TokenOwner {
            user_id,
            account_id: account_id.into(),
        }
    }
}

/// What a sealed value is. Part of the context, so a value sealed for one purpose cannot be opened
/// as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Purpose {
    /// A long-lived Threads access token of a connected account.
    ThreadsAccessToken,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::ThreadsAccessToken => "threads_access_token",
        }
    }
}

/// Longest accepted context value, in bytes: ids are far shorter; the bound keeps the encoding's
/// length fields and KMS's context limit out of reach.
const MAX_VALUE_BYTES: usize = 256;

/// The context of one seal or unseal: the pairs KMS sees and their canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Context {
    pairs: [(&'static str, String); 3],
    canonical: Vec<u8>,
}

impl Context {
    /// Checks the owner's fields and encodes `{account_id, purpose, user_id}`.
    pub(crate) fn new(owner: &TokenOwner, purpose: Purpose) -> Result<Self, VaultError> {
        let account = owner.account_id.as_str();
        if account.is_empty() {
            return Err(VaultError::InvalidOwner("account_id is empty"));
        }
        if account.len() > MAX_VALUE_BYTES {
            return Err(VaultError::InvalidOwner("account_id is too long"));
        }
        if account.chars().any(char::is_control) {
            return Err(VaultError::InvalidOwner(
                "account_id contains a control character",
            ));
        }
        // Sorted by key, as the canonical form requires.
        let pairs = [
            ("account_id", account.to_owned()),
            ("purpose", purpose.as_str().to_owned()),
            ("user_id", owner.user_id.as_str().to_owned()),
        ];
        let canonical = encode(&pairs);
        Ok(Context { pairs, canonical })
    }

    /// The canonical bytes: the AES-GCM associated data, and the cache key of the context.
    pub(crate) fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    /// The KMS `EncryptionContext`.
    pub(crate) fn kms_map(&self) -> HashMap<String, String> {
        self.pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }
}

/// The AWS Encryption SDK's serialisation of an encryption context: the pair count (u16, big
/// endian), then for each pair in key order the key's length (u16) and bytes and the value's
/// length (u16) and bytes. Lengths make it unambiguous whatever the values contain.
fn encode(pairs: &[(&'static str, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&(pairs.len() as u16).to_be_bytes());
    for (key, value) in pairs {
        for part in [key.as_bytes(), value.as_bytes()] {
            // Every part is at most MAX_VALUE_BYTES long (checked above, or a constant).
            out.extend_from_slice(&(part.len().min(u16::MAX as usize) as u16).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(user: &str, account: &str) -> TokenOwner {
        TokenOwner::new(UserId::parse(user).unwrap(), account)
    }

    #[test]
    fn canonical_encoding_is_length_prefixed_in_key_order() {
        let ctx = Context::new(&owner("u1", "178"), Purpose::ThreadsAccessToken).unwrap();
        let mut expected = vec![0, 3];
        for (k, v) in [
            ("account_id", "178"),
            ("purpose", "threads_access_token"),
            ("user_id", "u1"),
        ] {
            expected.extend_from_slice(&(k.len() as u16).to_be_bytes());
            expected.extend_from_slice(k.as_bytes());
            expected.extend_from_slice(&(v.len() as u16).to_be_bytes());
            expected.extend_from_slice(v.as_bytes());
        }
        assert_eq!(ctx.canonical(), expected.as_slice());
        assert_eq!(ctx.kms_map()["user_id"], "u1");
        assert_eq!(ctx.kms_map().len(), 3);
    }

    #[test]
    fn different_owners_never_share_an_encoding() {
        // Values that would collide under naive concatenation.
        let a = Context::new(&owner("u1", "23"), Purpose::ThreadsAccessToken).unwrap();
        let b = Context::new(&owner("u12", "3"), Purpose::ThreadsAccessToken).unwrap();
        assert_ne!(a.canonical(), b.canonical());
    }

    #[test]
    fn empty_long_or_control_account_ids_are_refused() {
        for bad in ["", "a\nb", &"9".repeat(300)] {
            assert!(matches!(
                Context::new(&owner("u1", bad), Purpose::ThreadsAccessToken),
                Err(VaultError::InvalidOwner(_))
            ));
        }
    }
}
