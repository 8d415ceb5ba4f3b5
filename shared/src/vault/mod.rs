//! The token vault: seals Threads access tokens for storage and opens them for use, each bound to
//! its owner (user, account) and purpose, so a token sealed for one owner never opens for another.
//!
//! With KMS on (the default, and the only mode production accepts) it is envelope encryption: a
//! data key from `GenerateDataKey(AES_256)` under the token key, AES-256-GCM with a fresh 96-bit
//! nonce, and the owner context given both to KMS (`EncryptionContext`, visible in CloudTrail) and
//! to AES-GCM (associated data) — the second check holds even where KMS would not enforce the
//! first. With KMS off, local AES-256-GCM keys do the same (see [`LocalKeyRing`]). Every opening is
//! audited. KMS calls are kept off the hot path by bounded data-key caches ([`CacheLimits`]).
//!
//! # Ciphertext format
//! Standard base64 of: version (1 byte, = 1) · scheme (1 byte: 1 KMS, 2 local key) · key reference
//! length (u16 BE) · key reference (wrapped data key, or 8-byte local key id) · nonce (12 bytes) ·
//! AES-256-GCM ciphertext and 16-byte tag.

mod account;
mod cipher;
mod context;
mod format;
mod keys;
mod kms;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

pub use account::{OpenFuture, TokenError, TokenOpener, TokenUse};
pub use context::{Purpose, TokenOwner};
pub use format::{MAX_SEALED_CHARS, Malformed, Scheme, VERSION};
pub use keys::{LocalKey, LocalKeyRing};
pub use kms::CacheLimits;

use crate::audit::{Audit, AuditError, AuditRecord, Category, Outcome};
use crate::config::{Config, ConfigError, Secret};
use crate::resources::Resource;
use crate::secrets::{SecretReader, SecretsError};
use context::Context;
use format::Envelope;
use kms::{KeyWrapper, KmsKeys, KmsWrapper};

/// Longest token accepted for sealing, in bytes (Threads tokens are a few hundred): keeps every
/// sealed token under [`MAX_SEALED_CHARS`], so whatever is sealed can be opened.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// How often, at most, an unknown local key id makes the vault re-read its key secret.
const LOCAL_KEY_REFRESH: Duration = Duration::from_secs(30);

/// Why a token was not sealed or opened. Never contains a token, a key or a ciphertext.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The stored value is not a sealed token: a data problem, not retryable.
    #[error("sealed token is malformed: {0}")]
    Malformed(#[from] Malformed),
    /// Authentication failed: sealed for another owner or purpose, tampered with, or wrapped by
    /// another key. Not retryable; a security event.
    #[error(
        "sealed token does not open for this owner and purpose (another owner, tampered, or another key)"
    )]
    Undecryptable,
    /// Sealed with a local key this vault does not hold (removed from the ring too early).
    #[error("sealed token names local key {key_id}, which this vault does not hold")]
    UnknownLocalKey { key_id: String },
    /// Sealed under one scheme while the vault runs the other; it is not opened another way.
    #[error("sealed token uses the {sealed} scheme but the vault is in {in_force} mode")]
    SchemeMismatch {
        sealed: &'static str,
        in_force: &'static str,
    },
    /// KMS could not be used (unreachable, throttled, key disabled or deleted, not permitted).
    /// Nothing was sealed or opened, and the local key is NOT used instead: a silent fallback would
    /// store tokens under a weaker key than the operator chose, with no CloudTrail record, exactly
    /// when something is already wrong. Retry later.
    #[error("KMS unavailable for {operation} (no fallback to a local key): {message}")]
    KmsUnavailable {
        operation: &'static str,
        message: String,
    },
    #[error("token owner: {0}")]
    InvalidOwner(&'static str),
    /// The value to seal is empty or longer than [`MAX_TOKEN_BYTES`].
    #[error("token to seal is empty or longer than {MAX_TOKEN_BYTES} bytes")]
    TokenSize,
    /// The local key configuration is unusable.
    #[error("local token key: {0}")]
    LocalKey(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The opening could not be audited, so its result was discarded.
    #[error("token opening not audited, so refused: {0}")]
    Audit(#[from] AuditError),
}

impl VaultError {
    /// Whether trying again later may succeed (outages), as opposed to bad data or configuration.
    pub fn is_retryable(&self) -> bool {
        match self {
            VaultError::KmsUnavailable { .. } | VaultError::Audit(_) => true,
            VaultError::Secrets(e) => matches!(e, SecretsError::Unavailable { .. }),
            _ => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            VaultError::Malformed(_) => "malformed",
            VaultError::Undecryptable => "undecryptable",
            VaultError::UnknownLocalKey { .. } => "unknown_local_key",
            VaultError::SchemeMismatch { .. } => "scheme_mismatch",
            VaultError::KmsUnavailable { .. } => "kms_unavailable",
            VaultError::InvalidOwner(_) => "invalid_owner",
            VaultError::TokenSize => "token_size",
            VaultError::LocalKey(_) => "local_key",
            VaultError::Config(_) => "config",
            VaultError::Secrets(_) => "secrets",
            VaultError::Audit(_) => "audit",
        }
    }

    /// Whether the failure suggests tampering or a confused deputy rather than an outage.
    fn is_security_event(&self) -> bool {
        matches!(
            self,
            VaultError::Malformed(_)
                | VaultError::Undecryptable
                | VaultError::UnknownLocalKey { .. }
                | VaultError::SchemeMismatch { .. }
        )
    }
}

/// Where local keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalKeySource {
    /// `TOKEN_ENCRYPTION_KEY`: comma-separated base64 keys, newest first.
    Config,
    /// The TokenEncryptionKeySecret (by id): `AWSCURRENT` seals, `AWSCURRENT` and `AWSPREVIOUS`
    /// open, so a rotation of the secret keeps every token readable.
    Secret { id: String },
}

/// Which protection is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultMode {
    /// KMS envelope encryption under this key.
    Kms { key_id: String },
    /// Local AES-256-GCM keys (KMS switched off; development only).
    LocalKey { source: LocalKeySource },
}

impl VaultMode {
    fn scheme(&self) -> Scheme {
        match self {
            VaultMode::Kms { .. } => Scheme::Kms,
            VaultMode::LocalKey { .. } => Scheme::Local,
        }
    }
}

enum Engine {
    Kms(KmsKeys),
    Local(LocalKeys),
}

enum LocalKeys {
    Fixed(Arc<LocalKeyRing>),
    Secret {
        reader: Arc<SecretReader>,
        id: String,
    },
}

impl LocalKeys {
    async fn ring(&self) -> Result<Arc<LocalKeyRing>, VaultError> {
        match self {
            LocalKeys::Fixed(ring) => Ok(Arc::clone(ring)),
            // Rebuilt per call from the reader's cached values: two base64 decodes and a hash.
            LocalKeys::Secret { reader, id } => Ok(Arc::new(LocalKeyRing::from_secret_versions(
                &reader.current_and_previous(id).await?,
            )?)),
        }
    }
}

/// A sealed token, as stored (a string attribute). Not secret, but not meant for logs either.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedToken(String);

impl SealedToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for SealedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedToken({} chars)", self.0.len())
    }
}

/// Seals and opens tokens; see the module documentation.
pub struct Vault {
    engine: Engine,
    mode: VaultMode,
    audit: Audit,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("mode", &self.mode)
            .field("kms_calls", &self.kms_calls())
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// The vault `config` asks for.
    ///
    /// - `ENABLE_KMS_ENCRYPTION=true` (default): KMS under `AWS_KMS_KEY_ID`. No local key is
    ///   loaded, so there is nothing to fall back to.
    /// - `false`: `TOKEN_ENCRYPTION_KEY` if set (comma-separated base64 keys, newest first — the
    ///   simple path for development and tests); otherwise the TokenEncryptionKeySecret, if the
    ///   function declares it (rotatable through Secrets Manager). Neither: a configuration error.
    ///
    /// [`Vault::mode`] tells which is in force; functions log it at start.
    pub async fn open(
        config: &Config,
        kms: aws_sdk_kms::Client,
        secrets: Arc<SecretReader>,
        audit: Audit,
    ) -> Result<Vault, VaultError> {
        if config.kms_encryption {
            let key_id = config.kms_key_id.clone().ok_or(ConfigError::Missing {
                var: Resource::TokenKey.env_var(),
                why: "this function does not declare the token key",
            })?;
            return Ok(Self::with_kms(kms, key_id, CacheLimits::default(), audit));
        }
        if let Some(value) = &config.token_encryption_key {
            return Ok(Self::with_local_keys(
                LocalKeyRing::from_config_value(value)?,
                audit,
            ));
        }
        match config.resource(Resource::TokenEncryptionKeySecret) {
            Ok(id) => Self::with_local_secret(secrets, id, audit).await,
            Err(_) => Err(VaultError::LocalKey(
                "ENABLE_KMS_ENCRYPTION is false but neither TOKEN_ENCRYPTION_KEY nor the token \
                 encryption key secret is configured"
                    .into(),
            )),
        }
    }

    /// KMS envelope encryption under `key_id`.
    pub fn with_kms(
        client: aws_sdk_kms::Client,
        key_id: impl Into<String>,
        limits: CacheLimits,
        audit: Audit,
    ) -> Vault {
        let key_id = key_id.into();
        let wrapper = KmsWrapper {
            client,
            key_id: key_id.clone(),
        };
        Self::with_wrapper(Box::new(wrapper), limits, audit)
    }

    fn with_wrapper(wrapper: Box<dyn KeyWrapper>, limits: CacheLimits, audit: Audit) -> Vault {
        let mode = VaultMode::Kms {
            key_id: wrapper.key_id().to_owned(),
        };
        Vault {
            engine: Engine::Kms(KmsKeys::new(wrapper, limits)),
            mode,
            audit,
        }
    }

    /// Local keys held in memory (from `TOKEN_ENCRYPTION_KEY`).
    pub fn with_local_keys(keys: LocalKeyRing, audit: Audit) -> Vault {
        Vault {
            engine: Engine::Local(LocalKeys::Fixed(Arc::new(keys))),
            mode: VaultMode::LocalKey {
                source: LocalKeySource::Config,
            },
            audit,
        }
    }

    /// Local keys from a Secrets Manager secret, re-read through `reader`'s cache. Reads it once
    /// now, so a missing or unusable secret fails at start.
    pub async fn with_local_secret(
        reader: Arc<SecretReader>,
        id: impl Into<String>,
        audit: Audit,
    ) -> Result<Vault, VaultError> {
        let id = id.into();
        let keys = LocalKeys::Secret {
            reader,
            id: id.clone(),
        };
        keys.ring().await?;
        Ok(Vault {
            engine: Engine::Local(keys),
            mode: VaultMode::LocalKey {
                source: LocalKeySource::Secret { id },
            },
            audit,
        })
    }

    /// Which protection is in force.
    pub fn mode(&self) -> &VaultMode {
        &self.mode
    }

    /// How many KMS requests this vault has made (0 in local mode). Tests and metrics use it to
    /// show that KMS calls do not grow with reads in a warm function.
    pub fn kms_calls(&self) -> u64 {
        match &self.engine {
            Engine::Kms(keys) => keys.calls(),
            Engine::Local(_) => 0,
        }
    }

    /// Seals `token` for `owner` and `purpose`.
    pub async fn seal(
        &self,
        token: &str,
        owner: &TokenOwner,
        purpose: Purpose,
    ) -> Result<SealedToken, VaultError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(VaultError::TokenSize);
        }
        let ctx = Context::new(owner, purpose)?;
        let envelope = match &self.engine {
            Engine::Kms(keys) => {
                let key = keys.for_sealing(&ctx).await?;
                let (nonce, ciphertext) =
                    cipher::encrypt(&key.plaintext, ctx.canonical(), token.as_bytes());
                Envelope {
                    scheme: Scheme::Kms,
                    key_ref: key.wrapped.clone(),
                    nonce,
                    ciphertext,
                }
            }
            Engine::Local(local) => {
                let ring = local.ring().await?;
                let key = ring.newest();
                let (nonce, ciphertext) =
                    cipher::encrypt(key.key(), ctx.canonical(), token.as_bytes());
                Envelope {
                    scheme: Scheme::Local,
                    key_ref: key.id().to_vec(),
                    nonce,
                    ciphertext,
                }
            }
        };
        Ok(SealedToken(envelope.encode()))
    }

    /// Opens `sealed` for `owner` and `purpose`, and audits it: who (`owner.user_id`), which
    /// account, and why (`reason`, e.g. `"publish"`, `"refresh"`). A failure is audited too (as a
    /// security record when it looks like tampering or a wrong owner). If the audit record cannot
    /// be written, the token is not returned.
    pub async fn unseal(
        &self,
        sealed: &str,
        owner: &TokenOwner,
        purpose: Purpose,
        reason: &str,
    ) -> Result<Secret, VaultError> {
        let result = self.open_token(sealed, owner, purpose).await;
        let (category, outcome, error) = match &result {
            Ok(_) => (Category::DataAccess, Outcome::Success, None),
            Err(e) if e.is_security_event() => {
                (Category::Security, Outcome::Failure, Some(e.kind()))
            }
            Err(e) => (Category::DataAccess, Outcome::Failure, Some(e.kind())),
        };
        let mode = match &self.mode {
            VaultMode::Kms { .. } => "kms",
            VaultMode::LocalKey { .. } => "local_key",
        };
        let record = AuditRecord::new(category, "token.decrypt", outcome)
            .user(owner.user_id.as_str())
            .description(format!(
                "{} for account {} ({reason})",
                purpose.as_str(),
                owner.account_id
            ))
            .metadata(json!({
                "account_id": owner.account_id,
                "purpose": purpose.as_str(),
                "reason": reason,
                "mode": mode,
                "error": error,
            }));
        match self.audit.record(record).await {
            Ok(_) => result,
            Err(audit_err) => match result {
                Ok(_) => Err(VaultError::Audit(audit_err)),
                Err(err) => {
                    tracing::warn!(error = %audit_err, "token opening failure not audited");
                    Err(err)
                }
            },
        }
    }

    async fn open_token(
        &self,
        sealed: &str,
        owner: &TokenOwner,
        purpose: Purpose,
    ) -> Result<Secret, VaultError> {
        let ctx = Context::new(owner, purpose)?;
        let envelope = Envelope::decode(sealed)?;
        if envelope.scheme != self.mode.scheme() {
            return Err(VaultError::SchemeMismatch {
                sealed: envelope.scheme.as_str(),
                in_force: self.mode.scheme().as_str(),
            });
        }
        let plaintext = match &self.engine {
            Engine::Kms(keys) => {
                let key = keys.for_opening(&envelope.key_ref, &ctx).await?;
                cipher::decrypt(&key, &envelope.nonce, ctx.canonical(), &envelope.ciphertext)
            }
            Engine::Local(local) => {
                let ring = local.ring().await?;
                match (open_local(&ring, &envelope, &ctx), local) {
                    (Err(VaultError::UnknownLocalKey { .. }), LocalKeys::Secret { reader, id }) => {
                        // A key rotated in elsewhere may be newer than the cached values.
                        match reader.refresh_if_older_than(id, LOCAL_KEY_REFRESH).await? {
                            Some(versions) => open_local(
                                &LocalKeyRing::from_secret_versions(&versions)?,
                                &envelope,
                                &ctx,
                            )?,
                            None => open_local(&ring, &envelope, &ctx)?,
                        }
                    }
                    (result, _) => result?,
                }
            }
        };
        let plaintext = plaintext.ok_or(VaultError::Undecryptable)?;
        let text = std::str::from_utf8(&plaintext).map_err(|_| Malformed::NotText)?;
        Ok(Secret::new(text))
    }
}

/// Proves that the local-key secret text `new` can take over from `old`: it makes a key, a token
/// sealed under it opens with the ring readers hold after the rotation (`new`, then `old`), and so
/// does a token sealed under `old` before it — every stored token stays readable. The
/// secret-rotation function runs this on a pending key before promoting it. Errors name no key.
pub fn prove_local_key(new: &Secret, old: Option<&Secret>) -> Result<(), VaultError> {
    const SAMPLE: &[u8] = b"THAA-rotation-self-test-token";
    let owner = TokenOwner::new(
        crate::users::UserId::parse("rotation-self-test")
            .map_err(|_| VaultError::InvalidOwner("self-test user"))?,
        "rotation-self-test",
    );
    let ctx = Context::new(&owner, Purpose::ThreadsAccessToken)?;
    let new_key = LocalKey::from_secret_text(new.expose())?;
    let after = LocalKeyRing::from_secret_versions(&crate::secrets::SecretVersions {
        current: new.clone(),
        previous: old.cloned(),
    })?;
    if after.newest().id() != new_key.id() {
        return Err(VaultError::LocalKey("the new key does not seal".into()));
    }
    let mut sealers = vec![new_key];
    if let Some(old) = old {
        let old_key = LocalKey::from_secret_text(old.expose())?;
        if old_key.id() == after.newest().id() {
            return Err(VaultError::LocalKey("the new key is the old key".into()));
        }
        sealers.push(old_key);
    }
    for key in &sealers {
        let (nonce, ciphertext) = cipher::encrypt(key.key(), ctx.canonical(), SAMPLE);
        let envelope = Envelope {
            scheme: Scheme::Local,
            key_ref: key.id().to_vec(),
            nonce,
            ciphertext,
        };
        let opened = open_local(&after, &envelope, &ctx)?.ok_or(VaultError::Undecryptable)?;
        if opened.as_slice() != SAMPLE {
            return Err(VaultError::Undecryptable);
        }
    }
    Ok(())
}

fn open_local(
    ring: &LocalKeyRing,
    envelope: &Envelope,
    ctx: &Context,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, VaultError> {
    let key = ring
        .find(&envelope.key_ref)
        .ok_or_else(|| VaultError::UnknownLocalKey {
            key_id: hex::encode(&envelope.key_ref),
        })?;
    Ok(cipher::decrypt(
        key.key(),
        &envelope.nonce,
        ctx.canonical(),
        &envelope.ciphertext,
    ))
}

#[cfg(test)]
mod tests;
