//! Reads secrets from Secrets Manager with a short per-secret cache.
//!
//! Readers get the `AWSCURRENT` value and, when one exists, the `AWSPREVIOUS` value, so that during
//! a rotation (and its grace period) a signature or key made with either is still accepted. An
//! `AWSPENDING` value is never read: until `finishSecret` promotes it, it has not been tested and
//! no writer uses it. Values are [`Secret`]s (their `Debug` is redacted) and no error carries one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::config::Secret;

/// How long a read value is reused before Secrets Manager is asked again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

/// The stage Secrets Manager gives the value in use.
pub const CURRENT: &str = "AWSCURRENT";
/// The stage Secrets Manager moves the replaced value to when a rotation finishes.
pub const PREVIOUS: &str = "AWSPREVIOUS";

/// Why a secret could not be read. Names the secret id and stage, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// The secret (or its `AWSCURRENT` version) does not exist: a deployment problem, not transient.
    #[error("secret {id}: not found")]
    NotFound { id: String },
    /// The version has no `SecretString` (binary or empty): ThreadStorm's secrets are strings.
    #[error("secret {id}: the {stage} version holds no string value")]
    NoValue { id: String, stage: &'static str },
    /// Secrets Manager could not be reached or refused (throttling, network, permissions): retry
    /// later.
    #[error("secret {id}: Secrets Manager unavailable: {message}")]
    Unavailable { id: String, message: String },
}

/// The values a reader accepts: the current one first, then the previous one if it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersions {
    pub current: Secret,
    pub previous: Option<Secret>,
}

impl SecretVersions {
    /// The current value, then the previous one: the order in which to try them.
    pub fn iter(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }
}

struct Cached {
    fetched: Instant,
    versions: Arc<SecretVersions>,
}

/// A Secrets Manager reader with a cache per secret id, bounded by a time to live measured on the
/// monotonic clock. Cheap to share behind an `Arc`.
pub struct SecretReader {
    client: Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
    calls: AtomicU64,
}

impl std::fmt::Debug for SecretReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretReader")
            .field("ttl", &self.ttl)
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl SecretReader {
    /// A reader that reuses a value for `ttl` ([`DEFAULT_TTL`] is a good default; zero disables
    /// the cache).
    pub fn new(client: Client, ttl: Duration) -> Self {
        SecretReader {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
        }
    }

    /// The `AWSCURRENT` value of secret `id` (a name or ARN).
    pub async fn current(&self, id: &str) -> Result<Secret, SecretsError> {
        Ok(self.versions(id).await?.current.clone())
    }

    /// The `AWSCURRENT` value and, if the secret has one, the `AWSPREVIOUS` value.
    pub async fn current_and_previous(&self, id: &str) -> Result<SecretVersions, SecretsError> {
        Ok(SecretVersions::clone(&*self.versions(id).await?))
    }

    /// Reads secret `id` again if its cached values are older than `min_age`, and returns the new
    /// values; `None` when the cache is younger (nothing was read).
    ///
    /// For a reader that refused something with cached values: a rotation finished elsewhere may
    /// have made a new current value it has not seen yet. `min_age` bounds how often refused input
    /// can make this reader call Secrets Manager.
    pub async fn refresh_if_older_than(
        &self,
        id: &str,
        min_age: Duration,
    ) -> Result<Option<SecretVersions>, SecretsError> {
        let stale = match self.lock().get(id) {
            Some(cached) => cached.fetched.elapsed() >= min_age,
            None => true,
        };
        if !stale {
            return Ok(None);
        }
        let versions = self.fetch(id).await?;
        Ok(Some(SecretVersions::clone(&versions)))
    }

    /// Drops the cached values of `id`, so the next read asks Secrets Manager.
    pub fn invalidate(&self, id: &str) {
        self.lock().remove(id);
    }

    /// How many `GetSecretValue` requests this reader has made.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    async fn versions(&self, id: &str) -> Result<Arc<SecretVersions>, SecretsError> {
        if let Some(cached) = self.lock().get(id)
            && cached.fetched.elapsed() < self.ttl
        {
            return Ok(Arc::clone(&cached.versions));
        }
        self.fetch(id).await
    }

    async fn fetch(&self, id: &str) -> Result<Arc<SecretVersions>, SecretsError> {
        let (current, previous) = tokio::join!(self.stage(id, CURRENT), self.stage(id, PREVIOUS));
        let (current_version, current) =
            current?.ok_or_else(|| SecretsError::NotFound { id: id.to_owned() })?;
        // A rotation that finished between the two reads can show the same version under both
        // stages; the previous value is then unknown until the next read, not a duplicate.
        let previous = previous?
            .filter(|(version, _)| *version != current_version)
            .map(|(_, value)| value);
        let versions = Arc::new(SecretVersions { current, previous });
        self.lock().insert(
            id.to_owned(),
            Cached {
                fetched: Instant::now(),
                versions: Arc::clone(&versions),
            },
        );
        Ok(versions)
    }

    /// One stage's version id and value; `None` when the stage is on no version.
    async fn stage(
        &self,
        id: &str,
        stage: &'static str,
    ) -> Result<Option<(String, Secret)>, SecretsError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let result = self
            .client
            .get_secret_value()
            .secret_id(id)
            .version_stage(stage)
            .send()
            .await;
        match result {
            Ok(output) => {
                let value = output
                    .secret_string()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| SecretsError::NoValue {
                        id: id.to_owned(),
                        stage,
                    })?;
                let version = output.version_id().unwrap_or_default().to_owned();
                Ok(Some((version, Secret::new(value))))
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(SecretsError::Unavailable {
                id: id.to_owned(),
                message: DisplayErrorContext(err).to_string(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        // A panic while holding the lock cannot leave the map half-written: recover it.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_iterate_current_then_previous() {
        let both = SecretVersions {
            current: Secret::new("new"),
            previous: Some(Secret::new("old")),
        };
        let order: Vec<&str> = both.iter().map(Secret::expose).collect();
        assert_eq!(order, ["new", "old"]);
        let only = SecretVersions {
            current: Secret::new("new"),
            previous: None,
        };
        assert_eq!(only.iter().count(), 1);
    }

    #[test]
    fn versions_debug_shows_no_value() {
        let both = SecretVersions {
            current: Secret::new("planted-current-value"),
            previous: Some(Secret::new("planted-previous-value")),
        };
        let shown = format!("{both:?}");
        assert!(!shown.contains("planted"), "{shown}");
    }
}
