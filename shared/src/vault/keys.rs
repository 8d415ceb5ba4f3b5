//! Local token keys, for when KMS is switched off (`ENABLE_KMS_ENCRYPTION=false`, development only:
//! production mode refuses it).
//!
//! Several keys may be held at once, newest first: the newest seals, every one opens, and each
//! sealed token names its key by id — the rotation `MultiFernet` offers, on AES-256-GCM instead of
//! Fernet because Fernet (AES-128-CBC + HMAC) has no associated data, so it could not bind a token
//! to its owner the way the KMS scheme does, and has no key id.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::VaultError;
use super::cipher::DataKey;
use super::format::LOCAL_KEY_ID_LEN;
use crate::config::Secret;
use crate::secrets::SecretVersions;

/// Shortest secret text turned into a key by hashing: Secrets Manager's generated value for the
/// TokenEncryptionKeySecret is 64 letters and digits (about 380 bits).
const MIN_DERIVED_CHARS: usize = 40;

/// One local AES-256 key and its id.
pub struct LocalKey {
    id: [u8; LOCAL_KEY_ID_LEN],
    key: DataKey,
}

impl std::fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalKey({})", self.id_hex())
    }
}

impl LocalKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let key = Zeroizing::new(bytes);
        let digest = Sha256::new()
            .chain_update(b"threadstorm/local-token-key-id/v1\0")
            .chain_update(key.as_slice())
            .finalize();
        let mut id = [0u8; LOCAL_KEY_ID_LEN];
        id.copy_from_slice(&digest[..LOCAL_KEY_ID_LEN]);
        LocalKey { id, key }
    }

    /// A key written as base64 (standard or URL-safe, padded or not) of exactly 32 bytes — the form
    /// `TOKEN_ENCRYPTION_KEY` takes (`openssl rand -base64 32`).
    pub fn from_base64(text: &str) -> Result<Self, VaultError> {
        let text = text.trim();
        let padded = match text.len() % 4 {
            2 => format!("{text}=="),
            3 => format!("{text}="),
            _ => text.to_owned(),
        };
        let bytes = Zeroizing::new(
            STANDARD
                .decode(&padded)
                .or_else(|_| URL_SAFE.decode(&padded))
                .map_err(|_| VaultError::LocalKey("a key is not base64".into()))?,
        );
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            VaultError::LocalKey(format!(
                "a key decodes to {} bytes; AES-256 needs 32",
                bytes.len()
            ))
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// A key from a Secrets Manager value: base64 of 32 bytes as above, or else a generated value
    /// of at least 40 characters, hashed (SHA-256, with a label) into 32 bytes.
    pub fn from_secret_text(text: &str) -> Result<Self, VaultError> {
        if let Ok(key) = Self::from_base64(text) {
            return Ok(key);
        }
        if text.chars().count() < MIN_DERIVED_CHARS {
            return Err(VaultError::LocalKey(format!(
                "the secret value is neither base64 of 32 bytes nor at least {MIN_DERIVED_CHARS} characters"
            )));
        }
        let digest = Sha256::new()
            .chain_update(b"threadstorm/local-token-key/v1\0")
            .chain_update(text.as_bytes())
            .finalize();
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&digest);
        Ok(Self::from_bytes(bytes))
    }

    /// The id stored in tokens this key seals: the first 8 bytes of a labelled SHA-256 of the key.
    pub fn id(&self) -> [u8; LOCAL_KEY_ID_LEN] {
        self.id
    }

    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }

    pub(crate) fn key(&self) -> &DataKey {
        &self.key
    }
}

/// Local keys, newest first. Never empty.
#[derive(Debug)]
pub struct LocalKeyRing {
    keys: Vec<LocalKey>,
}

impl LocalKeyRing {
    /// A ring whose first key seals. Duplicates are dropped; an empty list is refused.
    pub fn new(keys: Vec<LocalKey>) -> Result<Self, VaultError> {
        let mut unique: Vec<LocalKey> = Vec::with_capacity(keys.len());
        for key in keys {
            if !unique.iter().any(|k| k.id == key.id) {
                unique.push(key);
            }
        }
        if unique.is_empty() {
            return Err(VaultError::LocalKey("no key".into()));
        }
        Ok(LocalKeyRing { keys: unique })
    }

    /// `TOKEN_ENCRYPTION_KEY`: one base64 key, or several separated by commas, newest first. To
    /// rotate, put the new key in front and keep the old ones until every token is re-sealed.
    pub fn from_config_value(value: &Secret) -> Result<Self, VaultError> {
        let keys = value
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(LocalKey::from_base64)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// The TokenEncryptionKeySecret: the current value seals, current and previous both open.
    pub fn from_secret_versions(versions: &SecretVersions) -> Result<Self, VaultError> {
        let keys = versions
            .iter()
            .map(|v| LocalKey::from_secret_text(v.expose()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// The key that seals.
    pub fn newest(&self) -> &LocalKey {
        // `new` refuses an empty ring.
        &self.keys[0]
    }

    pub fn find(&self, id: &[u8]) -> Option<&LocalKey> {
        self.keys.iter().find(|k| k.id.as_slice() == id)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn base64_keys_are_accepted_in_every_common_spelling() {
        let a = LocalKey::from_base64(K1).unwrap();
        let b = LocalKey::from_base64(K1.trim_end_matches('=')).unwrap();
        let c = LocalKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id(), c.id());
    }

    #[test]
    fn wrong_length_or_garbage_keys_are_refused_without_echoing_them() {
        for bad in [
            "",
            "k1",
            "c2hvcnQ=",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==",
            "not base64 at all!!",
        ] {
            let err = LocalKey::from_base64(bad).unwrap_err().to_string();
            assert!(bad.len() < 4 || !err.contains(bad), "{err}");
        }
    }

    #[test]
    fn generated_secret_text_is_hashed_into_a_key_but_short_text_is_refused() {
        let generated = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1V2w3X4y5Z6a7B8c9D0e1F2";
        let key = LocalKey::from_secret_text(generated).unwrap();
        assert_eq!(
            key.id(),
            LocalKey::from_secret_text(generated).unwrap().id()
        );
        assert!(LocalKey::from_secret_text("password123").is_err());
        assert_eq!(
            LocalKey::from_secret_text(K1).unwrap().id(),
            LocalKey::from_base64(K1).unwrap().id()
        );
    }

    #[test]
    fn ring_keeps_order_drops_duplicates_and_refuses_empty() {
        let k2 = STANDARD.encode([7u8; 32]);
        let ring =
            LocalKeyRing::from_config_value(&Secret::new(format!("{k2}, {K1},{k2}"))).unwrap();
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.newest().id(), LocalKey::from_base64(&k2).unwrap().id());
        assert!(
            ring.find(&LocalKey::from_base64(K1).unwrap().id())
                .is_some()
        );
        assert!(LocalKeyRing::from_config_value(&Secret::new(" , ")).is_err());
    }

    #[test]
    fn key_debug_shows_only_the_id() {
        let key = LocalKey::from_bytes([0x42; 32]);
        let shown = format!("{key:?}");
        assert!(shown.starts_with("LocalKey(") && shown.len() == "LocalKey()".len() + 16);
    }
}
