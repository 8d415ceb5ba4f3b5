//! Emergency rotation: start a rotation of a generated secret now (a leak is suspected), instead of
//! at its next scheduled time, and record who asked. Secrets Manager then runs the rotation
//! function's four steps as it does on schedule.

use serde_json::json;

use super::RotationError;
use super::store::SecretStore;
use crate::audit::{Audit, AuditRecord, Category, Outcome};

/// A rotation that was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The version the rotation creates (its ClientRequestToken).
    pub version: String,
}

/// Asks Secrets Manager to rotate `secret` immediately (`RotateSecret`, `RotateImmediately`), with
/// the rotation function and schedule it already has, and audits it as `who` (a user id or an
/// operator's name) with `reason`, whether it started or failed.
///
/// Refused, without calling RotateSecret, for the Threads app secret (rotated by hand: see
/// [`super::manual`]) and for a secret whose rotation is not enabled.
pub async fn rotate_now(
    store: &SecretStore,
    audit: &Audit,
    secret: &str,
    who: &str,
    reason: &str,
) -> Result<Started, RotationError> {
    let described = store.describe(secret).await?;
    let kind = described.kind()?;
    if kind.generation().is_none() {
        return Err(RotationError::Manual {
            secret: secret.to_owned(),
            kind,
        });
    }
    if !described.rotation_enabled {
        return Err(RotationError::NotEnabled {
            secret: secret.to_owned(),
        });
    }
    let version = uuid::Uuid::new_v4().to_string();
    let result = store
        .client()
        .rotate_secret()
        .secret_id(secret)
        .client_request_token(&version)
        .rotate_immediately(true)
        .send()
        .await
        .map_err(|e| RotationError::Aws {
            secret: secret.to_owned(),
            operation: "RotateSecret",
            message: crate::aws::describe_error(&e),
        });
    let (outcome, error) = match &result {
        Ok(_) => (Outcome::Success, None),
        Err(e) => (Outcome::Failure, Some(e.to_string())),
    };
    let record = AuditRecord::new(Category::Security, "secret.rotate_now", outcome)
        .user(who)
        .description(format!("emergency rotation of the {kind}: {reason}"))
        .metadata(json!({
            "secret": described.name,
            "kind": kind.tag(),
            "version": version,
            "reason": reason,
            "error": error,
        }));
    let audited = audit.record(record).await;
    result?;
    // The rotation has started either way; a missing record is still an error for the caller.
    audited?;
    tracing::warn!(secret = %described.name, kind = %kind, version = %version, who, "emergency rotation started");
    Ok(Started { version })
}
