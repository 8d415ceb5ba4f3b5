//! Cross-function integration and end-to-end tests. Each file is its own test binary; they share
//! the moto server support of `local_stack::testing` and the helpers below.

pub mod aws_calls;

use aws_sdk_secretsmanager::Client;

/// Rotates secret `id` to `value` as the secret-rotation function's four steps leave it: the new
/// version goes in as `AWSPENDING` (createSecret), then `finishSecret` moves `AWSCURRENT` to it —
/// Secrets Manager moves `AWSPREVIOUS` to the old version — and clears `AWSPENDING`. Returns the
/// new version id.
pub async fn rotate_secret(client: &Client, id: &str, value: &str) -> String {
    let token = uuid_like();
    stage_pending(client, id, value, &token).await;
    let current = version_in_stage(client, id, "AWSCURRENT")
        .await
        .expect("the secret has a current version");
    client
        .update_secret_version_stage()
        .secret_id(id)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&token)
        .remove_from_version_id(current)
        .send()
        .await
        .expect("finishSecret moves AWSCURRENT");
    client
        .update_secret_version_stage()
        .secret_id(id)
        .version_stage("AWSPENDING")
        .remove_from_version_id(&token)
        .send()
        .await
        .expect("finishSecret clears AWSPENDING");
    token
}

/// createSecret alone: `value` as a new `AWSPENDING` version with `token` as its id.
pub async fn stage_pending(client: &Client, id: &str, value: &str, token: &str) {
    client
        .put_secret_value()
        .secret_id(id)
        .client_request_token(token)
        .secret_string(value)
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("createSecret puts the pending value");
}

/// The version id that carries `stage`, if any.
pub async fn version_in_stage(client: &Client, id: &str, stage: &str) -> Option<String> {
    let described = client
        .describe_secret()
        .secret_id(id)
        .send()
        .await
        .expect("DescribeSecret");
    described
        .version_ids_to_stages()
        .into_iter()
        .flatten()
        .find(|(_, stages)| stages.iter().any(|s| s == stage))
        .map(|(version, _)| version.clone())
}

/// A fresh client request token (Secrets Manager wants 32–64 characters).
pub fn uuid_like() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub mod support;
