//! The Secrets Manager calls rotation makes, each turned into a plain result: a missing version is
//! `None`, an existing one on a put is its own outcome, anything else a [`RotationError::Aws`]
//! naming the secret and the operation — never a value.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::Client;

use super::RotationError;
use super::kind::{KIND_TAG, SecretKind};
use crate::config::Secret;

pub const CURRENT: &str = crate::secrets::CURRENT;
pub const PENDING: &str = "AWSPENDING";

/// What DescribeSecret says about a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// As Secrets Manager names it (its name; falls back to the id asked for).
    pub name: String,
    pub rotation_enabled: bool,
    /// Version id → its stages.
    pub versions: BTreeMap<String, Vec<String>>,
    /// The `threadstorm:secret-kind` tag, as written.
    pub kind_tag: Option<String>,
}

impl Described {
    pub fn stages(&self, version: &str) -> Option<&[String]> {
        self.versions.get(version).map(Vec::as_slice)
    }

    pub fn has_stage(&self, version: &str, stage: &str) -> bool {
        self.stages(version)
            .is_some_and(|stages| stages.iter().any(|s| s == stage))
    }

    /// The version carrying `stage`, if any.
    pub fn version_in(&self, stage: &str) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(version, _)| version.as_str())
    }

    pub fn kind(&self) -> Result<SecretKind, RotationError> {
        self.kind_tag
            .as_deref()
            .and_then(SecretKind::from_tag)
            .ok_or_else(|| RotationError::UnknownKind {
                secret: self.name.clone(),
                tag: self.kind_tag.clone(),
            })
    }
}

/// How a PutSecretValue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Written,
    /// A version with this token already exists (Secrets Manager refuses a second value for it).
    Exists,
}

/// The calls, over one client.
#[derive(Debug, Clone)]
pub struct SecretStore {
    client: Client,
}

impl SecretStore {
    pub fn new(client: Client) -> Self {
        SecretStore { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn describe(&self, id: &str) -> Result<Described, RotationError> {
        let out = self
            .client
            .describe_secret()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| aws_error(id, "DescribeSecret", &e))?;
        let versions = out
            .version_ids_to_stages()
            .map(|m| {
                m.iter()
                    .map(|(v, stages)| (v.clone(), stages.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let kind_tag = out
            .tags()
            .iter()
            .find(|t| t.key() == Some(KIND_TAG))
            .and_then(|t| t.value())
            .map(str::to_owned);
        Ok(Described {
            name: out.name().unwrap_or(id).to_owned(),
            rotation_enabled: out.rotation_enabled().unwrap_or(false),
            versions,
            kind_tag,
        })
    }

    /// The string value of the version `version` (if given) carrying `stage`; `None` when no such
    /// version has a value (Secrets Manager's ResourceNotFoundException).
    pub async fn value(
        &self,
        id: &str,
        version: Option<&str>,
        stage: &str,
    ) -> Result<Option<Secret>, RotationError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(id)
            .set_version_id(version.map(str::to_owned))
            .version_stage(stage)
            .send()
            .await;
        match result {
            Ok(out) => match out.secret_string() {
                Some(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
                _ => Err(RotationError::NoValue {
                    secret: id.to_owned(),
                    stage: stage.to_owned(),
                }),
            },
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(aws_error(id, "GetSecretValue", &err)),
        }
    }

    /// Puts `value` as version `token` with only the `AWSPENDING` stage.
    pub async fn put_pending(
        &self,
        id: &str,
        token: &str,
        value: &Secret,
        rotation_token: Option<&str>,
    ) -> Result<Put, RotationError> {
        let result = self
            .client
            .put_secret_value()
            .secret_id(id)
            .client_request_token(token)
            .secret_string(value.expose())
            .version_stages(PENDING)
            .set_rotation_token(rotation_token.map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Put::Written),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                Ok(Put::Exists)
            }
            Err(err) => Err(aws_error(id, "PutSecretValue", &err)),
        }
    }

    /// Moves `AWSCURRENT` to `token` from `from` (Secrets Manager moves `AWSPREVIOUS` to `from`).
    pub async fn move_current(
        &self,
        id: &str,
        token: &str,
        from: &str,
    ) -> Result<(), RotationError> {
        self.client
            .update_secret_version_stage()
            .secret_id(id)
            .version_stage(CURRENT)
            .move_to_version_id(token)
            .remove_from_version_id(from)
            .send()
            .await
            .map_err(|e| aws_error(id, "UpdateSecretVersionStage", &e))?;
        Ok(())
    }

    /// Takes `AWSPENDING` off `version`.
    pub async fn clear_pending(&self, id: &str, version: &str) -> Result<(), RotationError> {
        self.client
            .update_secret_version_stage()
            .secret_id(id)
            .version_stage(PENDING)
            .remove_from_version_id(version)
            .send()
            .await
            .map_err(|e| aws_error(id, "UpdateSecretVersionStage", &e))?;
        Ok(())
    }

    /// `length` random letters and digits, at least one of each type.
    pub async fn random_password(&self, id: &str, length: usize) -> Result<Secret, RotationError> {
        let out = self
            .client
            .get_random_password()
            .password_length(i64::try_from(length).unwrap_or(i64::MAX))
            .exclude_punctuation(true)
            .include_space(false)
            .require_each_included_type(true)
            .send()
            .await
            .map_err(|e| aws_error(id, "GetRandomPassword", &e))?;
        out.random_password()
            .map(Secret::new)
            .ok_or_else(|| RotationError::Generated {
                secret: id.to_owned(),
                reason: "GetRandomPassword returned no password",
            })
    }
}

fn aws_error<E, R>(
    id: &str,
    operation: &'static str,
    err: &aws_sdk_secretsmanager::error::SdkError<E, R>,
) -> RotationError
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let not_found = operation == "DescribeSecret"
        && err
            .as_service_error()
            .is_some_and(|e| e.code() == Some("ResourceNotFoundException"));
    if not_found {
        return RotationError::SecretNotFound {
            secret: id.to_owned(),
        };
    }
    RotationError::Aws {
        secret: id.to_owned(),
        operation,
        message: crate::aws::describe_error(err),
    }
}
