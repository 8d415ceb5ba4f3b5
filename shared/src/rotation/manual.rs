//! The Threads app secret's rotation, by hand in two phases, because Meta issues it:
//!
//! 1. The operator resets the secret in Meta's dashboard and [`stage`]s the new value as
//!    `AWSPENDING` (no reader uses a pending value).
//! 2. [`verify`] proves the pending value against Threads (an app-token call), then [`promote`]
//!    makes it `AWSCURRENT`; the old value becomes `AWSPREVIOUS`, which webhook and
//!    `signed_request` verification still accept while deliveries signed before the reset arrive.
//!
//! [`cancel`] drops a staged value that should not be promoted. Every step is audited.

use serde_json::json;

use super::RotationError;
use super::kind::SecretKind;
use super::store::{CURRENT, Described, PENDING, Put, SecretStore};
use crate::audit::{Audit, AuditRecord, Category, Outcome};
use crate::config::Secret;
use crate::threads::{AppCredentials, ThreadsClient};

/// Longest value accepted (Meta's app secrets are 32 hex characters).
const MAX_VALUE_CHARS: usize = 256;

/// Where a manual rotation stands: the version ids of each stage (never values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub kind: SecretKind,
    pub current: Option<String>,
    pub previous: Option<String>,
    /// A staged value waiting to be promoted (or cancelled).
    pub pending: Option<String>,
}

/// The stages of any of ThreadStorm's secrets (to follow a manual or an emergency rotation).
pub async fn status(store: &SecretStore, secret: &str) -> Result<Status, RotationError> {
    let described = store.describe(secret).await?;
    Ok(Status {
        kind: described.kind()?,
        current: described.version_in(CURRENT).map(str::to_owned),
        previous: described.version_in("AWSPREVIOUS").map(str::to_owned),
        pending: pending_version(&described).map(str::to_owned),
    })
}

/// Phase 1: puts `value` as a new `AWSPENDING` version and returns its id. Refused if a value is
/// already staged, if `value` is empty, too long or has whitespace, or equals the current value.
pub async fn stage(
    store: &SecretStore,
    audit: &Audit,
    secret: &str,
    value: &Secret,
    who: &str,
) -> Result<String, RotationError> {
    let described = manual_secret(store, secret).await?;
    if let Some(version) = pending_version(&described) {
        return Err(RotationError::PendingExists {
            secret: secret.to_owned(),
            version: version.to_owned(),
        });
    }
    let text = value.expose();
    if text.is_empty()
        || text.chars().count() > MAX_VALUE_CHARS
        || text.chars().any(char::is_whitespace)
    {
        return Err(RotationError::Generated {
            secret: secret.to_owned(),
            reason: "the new value is empty, too long or contains whitespace",
        });
    }
    let current = store.value(secret, None, CURRENT).await?;
    if current.is_some_and(|c| c.expose() == text) {
        return Err(RotationError::Generated {
            secret: secret.to_owned(),
            reason: "the new value equals the current one",
        });
    }
    let version = uuid::Uuid::new_v4().to_string();
    audit
        .record(
            AuditRecord::new(Category::Security, "secret.stage", Outcome::Success)
                .user(who)
                .description("a new Threads app secret was staged for promotion")
                .metadata(json!({"secret": described.name, "version": version})),
        )
        .await?;
    match store.put_pending(secret, &version, value, None).await? {
        Put::Written => Ok(version),
        Put::Exists => Err(RotationError::PendingExists {
            secret: secret.to_owned(),
            version,
        }),
    }
}

/// Phase 2a: proves the staged value is the app secret Threads knows, by inspecting the app token
/// `{app_id}|{pending}` with itself (`debug_token`): Threads refuses a wrong secret.
pub async fn verify(
    store: &SecretStore,
    threads: &ThreadsClient,
    app_id: &str,
    secret: &str,
) -> Result<String, RotationError> {
    let described = manual_secret(store, secret).await?;
    let version = required_pending(&described, secret)?;
    let pending = store
        .value(secret, Some(&version), PENDING)
        .await?
        .ok_or_else(|| RotationError::Missing {
            secret: secret.to_owned(),
            stage: PENDING,
        })?;
    let app = AppCredentials {
        client_id: app_id.to_owned(),
        client_secret: pending,
    };
    let token = app.app_token();
    match threads.debug_token(&token, &token).await {
        Ok(_) => Ok(version),
        Err(e) => {
            // Belt and braces: the client redacts credentials, and the value is cut out again.
            let reason = crate::audit::redact_text(&e.to_string())
                .replace(app.client_secret.expose(), crate::audit::REDACTED);
            Err(RotationError::TestFailed {
                secret: secret.to_owned(),
                kind: SecretKind::ThreadsAppSecret,
                reason: format!("Threads refused the app token made with it: {reason}"),
            })
        }
    }
}

/// Phase 2b: makes the staged value current. The caller verifies first ([`verify`]).
pub async fn promote(
    store: &SecretStore,
    audit: &Audit,
    secret: &str,
    who: &str,
) -> Result<String, RotationError> {
    let described = manual_secret(store, secret).await?;
    let version = required_pending(&described, secret)?;
    let old = described
        .version_in(CURRENT)
        .ok_or_else(|| RotationError::Missing {
            secret: secret.to_owned(),
            stage: CURRENT,
        })?
        .to_owned();
    audit
        .record(
            AuditRecord::new(Category::Security, "secret.promote", Outcome::Success)
                .user(who)
                .description("the staged Threads app secret was made current")
                .metadata(
                    json!({"secret": described.name, "version": version, "previous_version": old}),
                ),
        )
        .await?;
    store.move_current(secret, &version, &old).await?;
    store.clear_pending(secret, &version).await?;
    Ok(version)
}

/// Drops the staged value (it stays as a version with no stage; Secrets Manager removes those).
pub async fn cancel(
    store: &SecretStore,
    audit: &Audit,
    secret: &str,
    who: &str,
) -> Result<Option<String>, RotationError> {
    let described = manual_secret(store, secret).await?;
    let Some(version) = pending_version(&described).map(str::to_owned) else {
        return Ok(None);
    };
    audit
        .record(
            AuditRecord::new(Category::Security, "secret.cancel", Outcome::Success)
                .user(who)
                .description("a staged Threads app secret was dropped")
                .metadata(json!({"secret": described.name, "version": version})),
        )
        .await?;
    store.clear_pending(secret, &version).await?;
    Ok(Some(version))
}

async fn manual_secret(store: &SecretStore, secret: &str) -> Result<Described, RotationError> {
    let described = store.describe(secret).await?;
    let kind = described.kind()?;
    if kind.generation().is_some() {
        return Err(RotationError::NotManual {
            secret: secret.to_owned(),
            kind,
        });
    }
    Ok(described)
}

/// The version carrying `AWSPENDING`, unless it is the current one (a leftover label).
fn pending_version(described: &Described) -> Option<&str> {
    described
        .version_in(PENDING)
        .filter(|v| !described.has_stage(v, CURRENT))
}

/// The staged version, or the error that says nothing is staged.
fn required_pending(described: &Described, secret: &str) -> Result<String, RotationError> {
    pending_version(described)
        .map(str::to_owned)
        .ok_or_else(|| RotationError::Missing {
            secret: secret.to_owned(),
            stage: PENDING,
        })
}
