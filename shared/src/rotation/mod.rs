//! Secrets Manager rotation of the secrets ThreadStorm generates itself (session signing key,
//! webhook verify token, local token-encryption key, internal API keys), in the four steps
//! Secrets Manager calls the rotation function with; the manual two-phase rotation of the Threads
//! app secret ([`manual`]); and emergency rotation on demand ([`emergency`]).
//!
//! Secrets Manager retries a whole rotation after any failure, so every step is safe to run again:
//! each first checks where the rotation stands (DescribeSecret) and does only what is missing.
//! Readers accept `AWSCURRENT` and `AWSPREVIOUS` (see [`crate::secrets`]), so a finished rotation
//! logs nobody out and leaves every stored token readable. No value is ever logged or put in an
//! error.

pub mod emergency;
pub mod kind;
pub mod manual;
pub mod store;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{Audit, AuditError, AuditRecord, Category, Outcome};
use crate::config::ConfigError;
use kind::SecretKind;
use store::{CURRENT, Described, PENDING, Put, SecretStore};

/// Which of the four steps Secrets Manager asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Step {
    /// Make the new value and store it as `AWSPENDING`.
    #[serde(rename = "createSecret")]
    Create,
    /// Give the pending value to the system that checks it (none: only ThreadStorm reads these).
    #[serde(rename = "setSecret")]
    Set,
    /// Prove the pending value works.
    #[serde(rename = "testSecret")]
    Test,
    /// Make the pending value `AWSCURRENT`.
    #[serde(rename = "finishSecret")]
    Finish,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "createSecret",
            Step::Set => "setSecret",
            Step::Test => "testSecret",
            Step::Finish => "finishSecret",
        }
    }
}

/// The event Secrets Manager invokes the rotation function with. (`aws_lambda_events` has no
/// rotation event with `RotationToken`.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationEvent {
    pub step: Step,
    /// The secret's ARN (or name).
    pub secret_id: String,
    /// The id of the version being rotated in.
    pub client_request_token: String,
    /// Identifies the rotation to Secrets Manager; passed back on PutSecretValue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_token: Option<String>,
}

impl RotationEvent {
    pub fn new(step: Step, secret_id: impl Into<String>, token: impl Into<String>) -> Self {
        RotationEvent {
            step,
            secret_id: secret_id.into(),
            client_request_token: token.into(),
            rotation_token: None,
        }
    }

    fn validate(&self) -> Result<(), RotationError> {
        let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if self.secret_id.is_empty() || self.secret_id.len() > 2048 || !printable(&self.secret_id) {
            return Err(RotationError::BadEvent(
                "SecretId is empty, too long or not printable",
            ));
        }
        let token = &self.client_request_token;
        if token.is_empty() || token.len() > 64 || !printable(token) {
            return Err(RotationError::BadEvent(
                "ClientRequestToken is empty, longer than 64 characters or not printable",
            ));
        }
        Ok(())
    }
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// createSecret generated and stored the pending value.
    Created,
    /// createSecret found the pending value already there and wrote nothing.
    AlreadyCreated,
    /// setSecret: nothing outside Secrets Manager holds these values.
    NothingToSet,
    /// testSecret proved the pending value.
    Tested,
    /// finishSecret made the pending value current.
    Finished,
    /// The version is already `AWSCURRENT`: nothing to do (a finished rotation run again).
    AlreadyCurrent,
}

/// Why a step (or a manual or emergency rotation) failed. Names secrets, versions and stages,
/// never a value.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("rotation event: {0}")]
    BadEvent(&'static str),
    #[error("secret {secret}: not found")]
    SecretNotFound { secret: String },
    #[error("secret {secret}: rotation is not enabled")]
    NotEnabled { secret: String },
    #[error("secret {secret}: {token} is not a version of this secret")]
    UnknownVersion { secret: String, token: String },
    #[error("secret {secret}: version {token} is not AWSPENDING (stages: {stages})")]
    NotPending {
        secret: String,
        token: String,
        stages: String,
    },
    #[error("secret {secret}: no version is {stage}, or it has no value")]
    Missing { secret: String, stage: &'static str },
    #[error("secret {secret}: the {stage} version holds no string value")]
    NoValue { secret: String, stage: String },
    #[error(
        "secret {secret}: tag threadstorm:secret-kind is {tag:?}, which names no kind ThreadStorm rotates"
    )]
    UnknownKind { secret: String, tag: Option<String> },
    #[error(
        "secret {secret}: the {kind} is issued by Meta and rotated by hand (stage, verify, promote: see the README), never generated"
    )]
    Manual { secret: String, kind: SecretKind },
    #[error(
        "secret {secret}: only the Threads app secret is rotated by hand; this one is a {kind}"
    )]
    NotManual { secret: String, kind: SecretKind },
    #[error("secret {secret}: a new value could not be made: {reason}")]
    Generated {
        secret: String,
        reason: &'static str,
    },
    #[error("secret {secret}: the pending {kind} failed its test: {reason}")]
    TestFailed {
        secret: String,
        kind: SecretKind,
        reason: String,
    },
    #[error("secret {secret}: version {version} is already AWSPENDING; promote or cancel it first")]
    PendingExists { secret: String, version: String },
    #[error("secret {secret}: {operation} failed: {message}")]
    Aws {
        secret: String,
        operation: &'static str,
        message: String,
    },
    #[error("not audited, so not done: {0}")]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl From<RotationError> for lambda_runtime::Diagnostic {
    fn from(err: RotationError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "RotationError".into(),
            error_message: err.to_string(),
        }
    }
}

/// Where a rotation stands for one version, per aws-semantics §4's checks.
enum Standing {
    /// The version is `AWSPENDING`: the step has work to do.
    Pending,
    /// The version is already `AWSCURRENT`.
    Current,
}

/// The checks every step makes first: rotation enabled, the token is a version of the secret, and
/// it is either already current (nothing to do) or pending (go on); anything else is an error.
fn standing(described: &Described, secret: &str, token: &str) -> Result<Standing, RotationError> {
    if !described.rotation_enabled {
        return Err(RotationError::NotEnabled {
            secret: secret.to_owned(),
        });
    }
    let stages = described
        .stages(token)
        .ok_or_else(|| RotationError::UnknownVersion {
            secret: secret.to_owned(),
            token: token.to_owned(),
        })?;
    if stages.iter().any(|s| s == CURRENT) {
        return Ok(Standing::Current);
    }
    if !stages.iter().any(|s| s == PENDING) {
        return Err(RotationError::NotPending {
            secret: secret.to_owned(),
            token: token.to_owned(),
            stages: stages.join(","),
        });
    }
    Ok(Standing::Pending)
}

/// The rotation function's handler.
#[derive(Debug, Clone)]
pub struct Rotator {
    store: SecretStore,
    audit: Audit,
}

impl Rotator {
    pub fn new(client: aws_sdk_secretsmanager::Client, audit: Audit) -> Self {
        Rotator {
            store: SecretStore::new(client),
            audit,
        }
    }

    /// The function's clients and its AuditTable.
    pub fn from_deps(deps: &crate::runtime::Deps) -> Result<Self, ConfigError> {
        let audit = Audit::from_config(deps.aws.dynamodb.clone(), &deps.config)?;
        Ok(Self::new(deps.aws.secrets.clone(), audit))
    }

    /// Runs one step of a rotation and logs what it did (never a value).
    #[tracing::instrument(skip_all, fields(step = event.step.as_str(), secret = %event.secret_id, version = %event.client_request_token))]
    pub async fn handle(&self, event: &RotationEvent) -> Result<StepOutcome, RotationError> {
        let result = self.run(event).await;
        match &result {
            Ok(outcome) => tracing::info!(outcome = ?outcome, "rotation step done"),
            Err(err) => tracing::error!(error = %err, "rotation step failed"),
        }
        result
    }

    async fn run(&self, event: &RotationEvent) -> Result<StepOutcome, RotationError> {
        event.validate()?;
        let secret = event.secret_id.as_str();
        let token = event.client_request_token.as_str();
        let described = self.store.describe(secret).await?;
        if let Standing::Current = standing(&described, secret, token)? {
            // A finishSecret that stopped between its two stage moves left AWSPENDING on the new
            // current version; take it off, or the next rotation would think one is in progress.
            if event.step == Step::Finish && described.has_stage(token, PENDING) {
                self.store.clear_pending(secret, token).await?;
            }
            return Ok(StepOutcome::AlreadyCurrent);
        }
        let kind = described.kind()?;
        if kind.generation().is_none() {
            return Err(RotationError::Manual {
                secret: secret.to_owned(),
                kind,
            });
        }
        match event.step {
            Step::Create => {
                self.create(secret, token, kind, event.rotation_token.as_deref())
                    .await
            }
            Step::Set => Ok(StepOutcome::NothingToSet),
            Step::Test => self.test(secret, token, kind).await,
            Step::Finish => self.finish(&described, secret, token, kind).await,
        }
    }

    /// Stores a new value as version `token` unless it already has one. Never writes a second
    /// value for a token (Secrets Manager refuses that; moto would silently accept it).
    async fn create(
        &self,
        secret: &str,
        token: &str,
        kind: SecretKind,
        rotation_token: Option<&str>,
    ) -> Result<StepOutcome, RotationError> {
        let current = self.current_value(secret).await?;
        if self
            .store
            .value(secret, Some(token), PENDING)
            .await?
            .is_some()
        {
            return Ok(StepOutcome::AlreadyCreated);
        }
        let generation = kind.generation().ok_or_else(|| RotationError::Manual {
            secret: secret.to_owned(),
            kind,
        })?;
        let value = self
            .store
            .random_password(secret, generation.length)
            .await?;
        generation
            .check(&value)
            .map_err(|reason| RotationError::Generated {
                secret: secret.to_owned(),
                reason,
            })?;
        if value.expose() == current.expose() {
            return Err(RotationError::Generated {
                secret: secret.to_owned(),
                reason: "the generated value equals the current one",
            });
        }
        match self
            .store
            .put_pending(secret, token, &value, rotation_token)
            .await?
        {
            Put::Written => Ok(StepOutcome::Created),
            // A concurrent run stored its value first: that one stands.
            Put::Exists => match self.store.value(secret, Some(token), PENDING).await? {
                Some(_) => Ok(StepOutcome::AlreadyCreated),
                None => Err(RotationError::Missing {
                    secret: secret.to_owned(),
                    stage: PENDING,
                }),
            },
        }
    }

    async fn test(
        &self,
        secret: &str,
        token: &str,
        kind: SecretKind,
    ) -> Result<StepOutcome, RotationError> {
        let pending = self
            .store
            .value(secret, Some(token), PENDING)
            .await?
            .ok_or_else(|| RotationError::Missing {
                secret: secret.to_owned(),
                stage: PENDING,
            })?;
        let current = self.current_value(secret).await?;
        kind.prove(&pending, &current)
            .map_err(|reason| RotationError::TestFailed {
                secret: secret.to_owned(),
                kind,
                reason: reason.to_owned(),
            })?;
        Ok(StepOutcome::Tested)
    }

    /// Audits, then moves `AWSCURRENT` to `token` (Secrets Manager moves `AWSPREVIOUS` to the old
    /// version) and takes `AWSPENDING` off it.
    async fn finish(
        &self,
        described: &Described,
        secret: &str,
        token: &str,
        kind: SecretKind,
    ) -> Result<StepOutcome, RotationError> {
        let old = described
            .version_in(CURRENT)
            .ok_or_else(|| RotationError::Missing {
                secret: secret.to_owned(),
                stage: CURRENT,
            })?;
        let record = AuditRecord::new(Category::Security, "secret.rotate", Outcome::Success)
            .description(format!("{kind} rotated to a new generated value"))
            .metadata(json!({
                "secret": described.name,
                "kind": kind.tag(),
                "version": token,
                "previous_version": old,
            }));
        self.audit.record(record).await?;
        self.store.move_current(secret, token, old).await?;
        self.store.clear_pending(secret, token).await?;
        Ok(StepOutcome::Finished)
    }

    async fn current_value(&self, secret: &str) -> Result<crate::config::Secret, RotationError> {
        self.store
            .value(secret, None, CURRENT)
            .await?
            .ok_or_else(|| RotationError::Missing {
                secret: secret.to_owned(),
                stage: CURRENT,
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn the_event_secrets_manager_sends_parses_with_and_without_a_rotation_token() {
        let raw = r#"{"Step":"createSecret","SecretId":"arn:aws:secretsmanager:us-east-1:1:secret:s","ClientRequestToken":"4f7c8d1e-2b3a-4c5d-8e9f-0a1b2c3d4e5f","RotationToken":"rt-1"}"#;
        let event: RotationEvent = serde_json::from_str(raw).unwrap();
        assert_eq!(event.step, Step::Create);
        assert_eq!(event.rotation_token.as_deref(), Some("rt-1"));
        assert!(event.validate().is_ok());
        for step in ["setSecret", "testSecret", "finishSecret"] {
            let raw = format!(r#"{{"Step":"{step}","SecretId":"s","ClientRequestToken":"t"}}"#);
            let event: RotationEvent = serde_json::from_str(&raw).unwrap();
            assert_eq!(event.step.as_str(), step);
            assert_eq!(event.rotation_token, None);
        }
    }

    #[test]
    fn a_bad_event_is_a_clear_error_not_a_panic() {
        for raw in [
            r#"{"Step":"deleteSecret","SecretId":"s","ClientRequestToken":"t"}"#,
            r#"{"SecretId":"s","ClientRequestToken":"t"}"#,
            r#"{"Step":"createSecret","ClientRequestToken":"t"}"#,
            "[]",
        ] {
            assert!(serde_json::from_str::<RotationEvent>(raw).is_err(), "{raw}");
        }
        for (secret, token) in [("", "t"), ("s", ""), ("s", &"t".repeat(65)), ("s\n", "t")] {
            let event = RotationEvent::new(Step::Create, secret, token);
            assert!(matches!(event.validate(), Err(RotationError::BadEvent(_))));
        }
    }

    fn described(enabled: bool, versions: &[(&str, &[&str])]) -> Described {
        Described {
            name: "s".into(),
            rotation_enabled: enabled,
            versions: versions
                .iter()
                .map(|(v, st)| {
                    (
                        (*v).to_owned(),
                        st.iter().map(|s| (*s).to_owned()).collect(),
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            kind_tag: Some("session-key".into()),
        }
    }

    #[test]
    fn standing_follows_the_four_checks_in_order() {
        let d = described(true, &[("old", &["AWSCURRENT"]), ("new", &["AWSPENDING"])]);
        assert!(matches!(standing(&d, "s", "new"), Ok(Standing::Pending)));
        assert!(matches!(standing(&d, "s", "old"), Ok(Standing::Current)));
        assert!(matches!(
            standing(&d, "s", "other"),
            Err(RotationError::UnknownVersion { .. })
        ));
        let d = described(true, &[("old", &["AWSPREVIOUS"]), ("cur", &["AWSCURRENT"])]);
        assert!(matches!(
            standing(&d, "s", "old"),
            Err(RotationError::NotPending { .. })
        ));
        let d = described(false, &[("new", &["AWSPENDING"])]);
        assert!(matches!(
            standing(&d, "s", "new"),
            Err(RotationError::NotEnabled { .. })
        ));
    }
}
