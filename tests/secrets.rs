//! The Secrets Manager reader against moto: the current value, the previous one after a rotation,
//! never the pending one, and a cache that keeps reads off Secrets Manager within its TTL.

use std::time::Duration;

use local_stack::testing::TestStack;
use threadstorm::resources::Resource;
use threadstorm::secrets::{DEFAULT_TTL, SecretReader, SecretsError};
use threadstorm_tests::{rotate_secret, stage_pending, uuid_like};

fn values(v: &threadstorm::secrets::SecretVersions) -> Vec<String> {
    v.iter().map(|s| s.expose().to_owned()).collect()
}

#[tokio::test]
async fn a_fresh_secret_has_a_current_value_and_no_previous() {
    let t = TestStack::new().await;
    let id = t.name(Resource::SessionKeySecret);
    let reader = SecretReader::new(t.aws.secrets.clone(), DEFAULT_TTL);
    let versions = reader.current_and_previous(&id).await.unwrap();
    assert_eq!(
        versions.current.expose().len(),
        64,
        "generated from the template"
    );
    assert_eq!(versions.previous, None);
    assert_eq!(reader.current(&id).await.unwrap(), versions.current);
}

#[tokio::test]
async fn after_a_rotation_readers_get_the_new_current_and_the_old_as_previous() {
    let t = TestStack::new().await;
    let id = t.name(Resource::SessionKeySecret);
    let sm = &t.aws.secrets;
    let original = SecretReader::new(sm.clone(), Duration::ZERO)
        .current(&id)
        .await
        .unwrap();

    rotate_secret(sm, &id, "second-value").await;
    let reader = SecretReader::new(sm.clone(), DEFAULT_TTL);
    let versions = reader.current_and_previous(&id).await.unwrap();
    assert_eq!(
        values(&versions),
        ["second-value".to_owned(), original.expose().to_owned()]
    );

    rotate_secret(sm, &id, "third-value").await;
    let versions = SecretReader::new(sm.clone(), DEFAULT_TTL)
        .current_and_previous(&id)
        .await
        .unwrap();
    assert_eq!(values(&versions), ["third-value", "second-value"]);
}

#[tokio::test]
async fn a_pending_value_is_never_read() {
    let t = TestStack::new().await;
    let id = t.name(Resource::WebhookVerifyTokenSecret);
    let sm = &t.aws.secrets;
    let before = SecretReader::new(sm.clone(), Duration::ZERO)
        .current_and_previous(&id)
        .await
        .unwrap();
    stage_pending(sm, &id, "pending-untested-value", &uuid_like()).await;
    let after = SecretReader::new(sm.clone(), Duration::ZERO)
        .current_and_previous(&id)
        .await
        .unwrap();
    assert_eq!(after, before);
    assert!(!values(&after).iter().any(|v| v.contains("pending")));
}

#[tokio::test]
async fn the_cache_serves_reads_within_its_ttl_and_rereads_after_it() {
    let t = TestStack::new().await;
    let id = t.name(Resource::InternalApiKeySecret);
    let sm = &t.aws.secrets;
    let reader = SecretReader::new(sm.clone(), Duration::from_millis(300));
    let first = reader.current(&id).await.unwrap();
    let calls = reader.calls();
    for _ in 0..20 {
        reader.current_and_previous(&id).await.unwrap();
    }
    assert_eq!(reader.calls(), calls, "served from the cache");

    rotate_secret(sm, &id, "rotated-value").await;
    // Still cached: the old value, until the TTL passes.
    assert_eq!(reader.current(&id).await.unwrap(), first);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(reader.current(&id).await.unwrap().expose(), "rotated-value");
    assert!(reader.calls() > calls);

    // A refresh is refused while the cache is younger than asked, and done when older.
    assert!(
        reader
            .refresh_if_older_than(&id, Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
    let fresh = reader
        .refresh_if_older_than(&id, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fresh.current.expose(), "rotated-value");
}

#[tokio::test]
async fn a_missing_secret_is_not_found_and_names_no_value() {
    let t = TestStack::new().await;
    let reader = SecretReader::new(t.aws.secrets.clone(), DEFAULT_TTL);
    let err = reader.current("no-such-secret").await.unwrap_err();
    assert_eq!(
        err,
        SecretsError::NotFound {
            id: "no-such-secret".into()
        }
    );
}

#[tokio::test]
async fn an_unreachable_secrets_manager_is_an_unavailable_error_without_values() {
    let sdk = local_stack::moto::sdk_config_for("http://127.0.0.1:1");
    let config = aws_sdk_secretsmanager::config::Builder::from(&sdk)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let reader = SecretReader::new(
        aws_sdk_secretsmanager::Client::from_conf(config),
        DEFAULT_TTL,
    );
    let err = reader.current("threadstorm/session-key").await.unwrap_err();
    assert!(matches!(err, SecretsError::Unavailable { .. }), "{err:?}");
}
