//! KMS envelope keys: `GenerateDataKey` for a new data key, `Decrypt` to unwrap a stored one —
//! each bound to the owner by the encryption context — and the bounded caches that keep KMS calls
//! off the hot path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kms::Client;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use zeroize::Zeroizing;

use super::VaultError;
use super::cipher::DataKey;
use super::context::Context;
use super::format::Envelope;
use crate::audit::BoxFuture;

/// A fresh data key: its plaintext and its KMS-wrapped form.
pub(crate) struct NewDataKey {
    pub plaintext: DataKey,
    pub wrapped: Vec<u8>,
}

/// Makes and unwraps data keys. KMS in production; tests substitute a wrapper to prove what the
/// vault does on its own (e.g. that AES-GCM refuses another owner even if the key were unwrapped).
pub(crate) trait KeyWrapper: Send + Sync {
    fn key_id(&self) -> &str;
    fn generate<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<NewDataKey, VaultError>>;
    fn unwrap<'a>(
        &'a self,
        wrapped: &'a [u8],
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<DataKey, VaultError>>;
}

/// The KMS key that wraps token data keys.
pub(crate) struct KmsWrapper {
    pub client: Client,
    pub key_id: String,
}

fn unavailable(operation: &'static str, message: String) -> VaultError {
    VaultError::KmsUnavailable { operation, message }
}

fn to_key(bytes: &[u8], operation: &'static str) -> Result<DataKey, VaultError> {
    let array: [u8; 32] = bytes.try_into().map_err(|_| {
        unavailable(
            operation,
            format!("KMS returned a {}-byte data key, not 32", bytes.len()),
        )
    })?;
    Ok(Zeroizing::new(array))
}

impl KeyWrapper for KmsWrapper {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn generate<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<NewDataKey, VaultError>> {
        Box::pin(async move {
            let output = self
                .client
                .generate_data_key()
                .key_id(&self.key_id)
                .key_spec(DataKeySpec::Aes256)
                .set_encryption_context(Some(ctx.kms_map()))
                .send()
                .await
                .map_err(|e| unavailable("GenerateDataKey", DisplayErrorContext(e).to_string()))?;
            let plaintext = output
                .plaintext()
                .ok_or_else(|| unavailable("GenerateDataKey", "no plaintext key".into()))?;
            let plaintext = to_key(plaintext.as_ref(), "GenerateDataKey")?;
            let wrapped = output
                .ciphertext_blob()
                .map(|b| b.as_ref().to_vec())
                .filter(|w| Envelope::wrapped_key_fits(w))
                .ok_or_else(|| unavailable("GenerateDataKey", "no usable wrapped key".into()))?;
            Ok(NewDataKey { plaintext, wrapped })
        })
    }

    fn unwrap<'a>(
        &'a self,
        wrapped: &'a [u8],
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<DataKey, VaultError>> {
        Box::pin(async move {
            let result = self
                .client
                .decrypt()
                .key_id(&self.key_id)
                .ciphertext_blob(Blob::new(wrapped.to_vec()))
                .set_encryption_context(Some(ctx.kms_map()))
                .send()
                .await;
            let output = match result {
                Ok(output) => output,
                Err(err) => {
                    // Another context, another key or a damaged blob: AWS answers
                    // InvalidCiphertext or IncorrectKey; moto answers AccessDenied for garbage.
                    let refused = err.as_service_error().is_some_and(|e| {
                        e.is_invalid_ciphertext_exception()
                            || e.is_incorrect_key_exception()
                            || e.code() == Some("AccessDeniedException")
                    });
                    return Err(if refused {
                        VaultError::Undecryptable
                    } else {
                        unavailable("Decrypt", DisplayErrorContext(err).to_string())
                    });
                }
            };
            let plaintext = output
                .plaintext()
                .ok_or_else(|| unavailable("Decrypt", "no plaintext key".into()))?;
            to_key(plaintext.as_ref(), "Decrypt")
        })
    }
}

/// Bounds on how long and how much a data key is reused.
///
/// Encryption: a data key made for one context is reused for that context only (KMS binds a data
/// key to the context it was generated with, and the context is the owner), until it is
/// `max_age` old or has sealed `max_uses` tokens. So sealing N tokens for N different owners makes
/// N `GenerateDataKey` calls, while re-sealing one owner's refreshed token within `max_age` makes
/// none.
///
/// Decryption: an unwrapped data key is kept by (wrapped key, context) for `max_age`, so opening
/// the same token again in a warm function makes no KMS call. `max_entries` bounds each cache;
/// the oldest entry makes room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    pub max_age: Duration,
    pub max_uses: u64,
    pub max_entries: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_age: Duration::from_secs(5 * 60),
            max_uses: 1_000,
            max_entries: 512,
        }
    }
}

impl CacheLimits {
    /// No caching at all: every seal and every unseal calls KMS.
    pub fn none() -> Self {
        CacheLimits {
            max_age: Duration::ZERO,
            max_uses: 0,
            max_entries: 0,
        }
    }
}

struct EncryptEntry {
    key: Arc<(DataKey, Vec<u8>)>,
    born: Instant,
    uses: u64,
}

struct DecryptEntry {
    key: Arc<DataKey>,
    born: Instant,
}

/// The KMS side of a vault: the wrapper, the two caches and the call counter.
pub(crate) struct KmsKeys {
    wrapper: Box<dyn KeyWrapper>,
    limits: CacheLimits,
    encrypt: Mutex<HashMap<Vec<u8>, EncryptEntry>>,
    decrypt: Mutex<HashMap<(Vec<u8>, Vec<u8>), DecryptEntry>>,
    calls: AtomicU64,
}

impl KmsKeys {
    pub fn new(wrapper: Box<dyn KeyWrapper>, limits: CacheLimits) -> Self {
        KmsKeys {
            wrapper,
            limits,
            encrypt: Mutex::new(HashMap::new()),
            decrypt: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
        }
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// A data key for sealing under `ctx`: its plaintext and wrapped form.
    pub async fn for_sealing(&self, ctx: &Context) -> Result<Arc<(DataKey, Vec<u8>)>, VaultError> {
        {
            let mut cache = lock(&self.encrypt);
            if let Some(entry) = cache.get_mut(ctx.canonical())
                && entry.born.elapsed() < self.limits.max_age
                && entry.uses < self.limits.max_uses
            {
                entry.uses += 1;
                return Ok(Arc::clone(&entry.key));
            }
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let new = self.wrapper.generate(ctx).await?;
        let key = Arc::new((new.plaintext, new.wrapped));
        let now = Instant::now();
        if self.limits.max_uses > 0 {
            let mut cache = lock(&self.encrypt);
            make_room(&mut cache, self.limits, |e| e.born);
            if self.limits.max_entries > 0 {
                cache.insert(
                    ctx.canonical().to_vec(),
                    EncryptEntry {
                        key: Arc::clone(&key),
                        born: now,
                        uses: 1,
                    },
                );
            }
        }
        // The token about to be sealed can be opened at once without a KMS call.
        self.remember_unwrapped(&key.1, ctx, Arc::new(key.0.clone()), now);
        Ok(key)
    }

    /// The plaintext of `wrapped`, for opening a token sealed under `ctx`.
    pub async fn for_opening(
        &self,
        wrapped: &[u8],
        ctx: &Context,
    ) -> Result<Arc<DataKey>, VaultError> {
        let cache_key = (wrapped.to_vec(), ctx.canonical().to_vec());
        if let Some(entry) = lock(&self.decrypt).get(&cache_key)
            && entry.born.elapsed() < self.limits.max_age
        {
            return Ok(Arc::clone(&entry.key));
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let key = Arc::new(self.wrapper.unwrap(wrapped, ctx).await?);
        self.remember_unwrapped(wrapped, ctx, Arc::clone(&key), Instant::now());
        Ok(key)
    }

    fn remember_unwrapped(&self, wrapped: &[u8], ctx: &Context, key: Arc<DataKey>, born: Instant) {
        if self.limits.max_entries == 0 || self.limits.max_age.is_zero() {
            return;
        }
        let mut cache = lock(&self.decrypt);
        make_room(&mut cache, self.limits, |e| e.born);
        cache.insert(
            (wrapped.to_vec(), ctx.canonical().to_vec()),
            DecryptEntry { key, born },
        );
    }
}

/// Drops expired entries, then the oldest ones, until one more fits.
fn make_room<K: Clone + Eq + std::hash::Hash, V>(
    cache: &mut HashMap<K, V>,
    limits: CacheLimits,
    born: impl Fn(&V) -> Instant,
) {
    cache.retain(|_, v| born(v).elapsed() < limits.max_age);
    while !cache.is_empty() && cache.len() >= limits.max_entries {
        let oldest = cache
            .iter()
            .min_by_key(|(_, v)| born(v))
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => {
                cache.remove(&k);
            }
            None => break,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
