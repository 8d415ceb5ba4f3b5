//! The token vault against moto's KMS, Secrets Manager and AuditTable: sealed tokens open only for
//! their owner and purpose, reopening a token in a warm vault makes no KMS call, a KMS outage is an
//! error and never a fallback, local keys rotate, and every opening leaves an audit record.

use std::sync::Arc;
use std::time::Duration;

use local_stack::testing::TestStack;
use threadstorm::audit::{Audit, MemoryAuditSink};
use threadstorm::config::Config;
use threadstorm::resources::{POSTER, Resource};
use threadstorm::secrets::{DEFAULT_TTL, SecretReader};
use threadstorm::users::UserId;
use threadstorm::vault::{
    CacheLimits, LocalKeySource, Purpose, TokenOwner, Vault, VaultError, VaultMode,
};
use threadstorm_tests::rotate_secret;

const TOKEN: &str = "THAAplantedLongLivedToken-abcdefghijklmnopqrstuvwxyz0123456789";
const ACCESS: Purpose = Purpose::ThreadsAccessToken;

fn owner(user: &str, account: &str) -> TokenOwner {
    TokenOwner::new(UserId::parse(user).unwrap(), account)
}

fn memory_audit() -> (Arc<MemoryAuditSink>, Audit) {
    let sink = Arc::new(MemoryAuditSink::new());
    (sink.clone(), Audit::new(sink, true))
}

fn kms_vault(t: &TestStack) -> (Arc<MemoryAuditSink>, Vault) {
    let (sink, audit) = memory_audit();
    let vault = Vault::with_kms(
        t.aws.kms.clone(),
        t.name(Resource::TokenKey),
        CacheLimits::default(),
        audit,
    );
    (sink, vault)
}

/// The poster's configuration in this stack, outside production mode (which refuses local keys),
/// with `overrides`.
fn config_with(t: &TestStack, overrides: &[(&str, &str)]) -> Config {
    let mut env = t.env(&POSTER);
    env.insert("PRODUCTION_MODE".into(), "false".into());
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::from_lookup(&POSTER, |name| env.get(name).cloned()).unwrap()
}

#[tokio::test]
async fn kms_round_trip_binds_the_token_to_its_owner_and_purpose() {
    let t = TestStack::new().await;
    let (sink, vault) = kms_vault(&t);
    let a = owner("user-a", "17841405793187218");
    let sealed = vault.seal(TOKEN, &a, ACCESS).await.unwrap();
    assert!(!sealed.as_str().contains(TOKEN));

    // A fresh vault (a cold function) opens it through KMS.
    let (_s, cold) = kms_vault(&t);
    let opened = cold
        .unseal(sealed.as_str(), &a, ACCESS, "publish")
        .await
        .unwrap();
    assert_eq!(opened.expose(), TOKEN);
    assert_eq!(cold.kms_calls(), 1);

    // Another user, another account: refused — by KMS's context check (moto enforces it) and by
    // the AES-GCM associated data (proved without KMS in the vault's unit tests).
    for (i, other) in [
        owner("user-b", "17841405793187218"),
        owner("user-a", "17841400000000001"),
    ]
    .into_iter()
    .enumerate()
    {
        let (_s, cold) = kms_vault(&t);
        let err = cold
            .unseal(sealed.as_str(), &other, ACCESS, "publish")
            .await
            .unwrap_err();
        assert!(
            matches!(err, VaultError::Undecryptable),
            "case {i}: {err:?}"
        );
        // The warm vault that sealed it has the data key cached for A only: still refused.
        let err = vault
            .unseal(sealed.as_str(), &other, ACCESS, "publish")
            .await
            .unwrap_err();
        assert!(
            matches!(err, VaultError::Undecryptable),
            "warm case {i}: {err:?}"
        );
    }
    assert!(!format!("{:?}", sink.records()).contains(TOKEN));
}

#[tokio::test]
async fn reopening_a_token_in_a_warm_vault_makes_no_more_kms_calls() {
    let t = TestStack::new().await;
    let (sealer_sink, sealer) = kms_vault(&t);
    let a = owner("user-a", "1784");
    let sealed = sealer.seal(TOKEN, &a, ACCESS).await.unwrap();
    assert_eq!(sealer.kms_calls(), 1, "one GenerateDataKey");

    let (sink, warm) = kms_vault(&t);
    for _ in 0..100 {
        let opened = warm
            .unseal(sealed.as_str(), &a, ACCESS, "publish")
            .await
            .unwrap();
        assert_eq!(opened.expose(), TOKEN);
    }
    assert_eq!(warm.kms_calls(), 1, "one Decrypt, then the cache");
    assert_eq!(sink.records().len(), 100, "every opening is audited");

    // Re-sealing the same owner's refreshed token reuses the data key too.
    for _ in 0..10 {
        sealer.seal("THrefreshed", &a, ACCESS).await.unwrap();
    }
    assert_eq!(sealer.kms_calls(), 1);
    assert!(
        sealer_sink.records().is_empty(),
        "sealing is not an opening"
    );
}

#[tokio::test]
async fn unreachable_kms_is_an_error_and_never_a_fallback() {
    let t = TestStack::new().await;
    let (_s, good) = kms_vault(&t);
    let a = owner("user-a", "1784");
    let sealed = good.seal(TOKEN, &a, ACCESS).await.unwrap();

    let sdk = local_stack::moto::sdk_config_for("http://127.0.0.1:1");
    let down = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(&sdk)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build(),
    );
    // Even with a local key configured, KMS mode never uses it.
    let config = config_with(
        &t,
        &[(
            "TOKEN_ENCRYPTION_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )],
    );
    let reader = Arc::new(SecretReader::new(t.aws.secrets.clone(), DEFAULT_TTL));
    let (sink, audit) = memory_audit();
    let vault = Vault::open(&config, down, reader, audit).await.unwrap();
    assert!(matches!(vault.mode(), VaultMode::Kms { .. }));

    let err = vault.seal(TOKEN, &a, ACCESS).await.unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::KmsUnavailable {
                operation: "GenerateDataKey",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    let err = vault
        .unseal(sealed.as_str(), &a, ACCESS, "publish")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::KmsUnavailable {
                operation: "Decrypt",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains(TOKEN));
    let records = sink.records();
    assert_eq!(records.len(), 1, "the failed opening is audited");
    assert_eq!(records[0].metadata["error"], "kms_unavailable");
}

/// A key that is gone (deleted, or a wrong id deployed). moto does not refuse a disabled or
/// pending-deletion key, so the missing key stands in for every "the key cannot be used" state.
#[tokio::test]
async fn a_kms_key_that_is_gone_is_an_outage_not_a_fallback() {
    let t = TestStack::new().await;
    let (_s, vault) = kms_vault(&t);
    let a = owner("user-a", "1784");
    let sealed = vault.seal(TOKEN, &a, ACCESS).await.unwrap();

    let gone = Vault::with_kms(
        t.aws.kms.clone(),
        "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555",
        CacheLimits::default(),
        memory_audit().1,
    );
    let err = gone.seal(TOKEN, &a, ACCESS).await.unwrap_err();
    assert!(matches!(err, VaultError::KmsUnavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("no fallback"), "{err}");
    let err = gone
        .unseal(sealed.as_str(), &a, ACCESS, "publish")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::KmsUnavailable {
                operation: "Decrypt",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn open_from_configuration_reports_the_mode_in_force() {
    let t = TestStack::new().await;
    let reader = Arc::new(SecretReader::new(t.aws.secrets.clone(), DEFAULT_TTL));
    let kms_config = t.config(&POSTER).unwrap();
    let vault = Vault::open(
        &kms_config,
        t.aws.kms.clone(),
        reader.clone(),
        memory_audit().1,
    )
    .await
    .unwrap();
    assert_eq!(
        vault.mode(),
        &VaultMode::Kms {
            key_id: kms_config.kms_key_id.clone().unwrap()
        }
    );
    // The configured key is the ARN: it seals and opens.
    let a = owner("user-a", "1784");
    let sealed = vault.seal(TOKEN, &a, ACCESS).await.unwrap();
    assert_eq!(
        vault
            .unseal(sealed.as_str(), &a, ACCESS, "t")
            .await
            .unwrap()
            .expose(),
        TOKEN
    );

    let local_config = config_with(
        &t,
        &[
            ("ENABLE_KMS_ENCRYPTION", "false"),
            (
                "TOKEN_ENCRYPTION_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ),
        ],
    );
    let vault = Vault::open(
        &local_config,
        t.aws.kms.clone(),
        reader.clone(),
        memory_audit().1,
    )
    .await
    .unwrap();
    assert_eq!(
        vault.mode(),
        &VaultMode::LocalKey {
            source: LocalKeySource::Config
        }
    );

    // KMS off and no local key anywhere (the poster does not declare the key secret): refused.
    let nothing = config_with(&t, &[("ENABLE_KMS_ENCRYPTION", "false")]);
    let err = Vault::open(
        &nothing,
        t.aws.kms.clone(),
        reader.clone(),
        memory_audit().1,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, VaultError::LocalKey(_)), "{err:?}");
    // A malformed key is refused without echoing it.
    let weak = config_with(
        &t,
        &[
            ("ENABLE_KMS_ENCRYPTION", "false"),
            ("TOKEN_ENCRYPTION_KEY", "hunter2-weak-key"),
        ],
    );
    let err = Vault::open(&weak, t.aws.kms.clone(), reader, memory_audit().1)
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn local_keys_from_the_key_secret_survive_rotation_and_bind_the_owner() {
    let t = TestStack::new().await;
    let id = t.name(Resource::TokenEncryptionKeySecret);
    let a = owner("user-a", "1784");
    let open = || async {
        let reader = Arc::new(SecretReader::new(t.aws.secrets.clone(), DEFAULT_TTL));
        Vault::with_local_secret(reader, id.clone(), memory_audit().1)
            .await
            .unwrap()
    };
    let first = open().await;
    assert!(matches!(
        first.mode(),
        VaultMode::LocalKey {
            source: LocalKeySource::Secret { .. }
        }
    ));
    let sealed_first = first.seal(TOKEN, &a, ACCESS).await.unwrap();
    assert!(matches!(
        first
            .unseal(sealed_first.as_str(), &owner("user-b", "1784"), ACCESS, "t")
            .await,
        Err(VaultError::Undecryptable)
    ));

    rotate_secret(
        &t.aws.secrets,
        &id,
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    )
    .await;
    let second = open().await;
    assert_eq!(
        second
            .unseal(sealed_first.as_str(), &a, ACCESS, "refresh")
            .await
            .unwrap()
            .expose(),
        TOKEN,
        "sealed under the previous key"
    );
    let sealed_second = second.seal(TOKEN, &a, ACCESS).await.unwrap();

    rotate_secret(
        &t.aws.secrets,
        &id,
        "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
    )
    .await;
    let third = open().await;
    assert_eq!(
        third
            .unseal(sealed_second.as_str(), &a, ACCESS, "t")
            .await
            .unwrap()
            .expose(),
        TOKEN
    );
    let err = third
        .unseal(sealed_first.as_str(), &a, ACCESS, "t")
        .await
        .unwrap_err();
    assert!(
        matches!(err, VaultError::UnknownLocalKey { .. }),
        "two rotations old: {err:?}"
    );
}

#[tokio::test]
async fn openings_are_written_to_the_audit_table() {
    let t = TestStack::new().await;
    let table = t.name(Resource::AuditTable);
    let config = t.config(&POSTER).unwrap();
    let audit = Audit::dynamodb(t.aws.dynamodb.clone(), &table, &config.logs);
    let vault = Vault::with_kms(
        t.aws.kms.clone(),
        t.name(Resource::TokenKey),
        CacheLimits::default(),
        audit,
    );
    let a = owner("user-a", "1784");
    let sealed = vault.seal(TOKEN, &a, ACCESS).await.unwrap();
    vault
        .unseal(sealed.as_str(), &a, ACCESS, "publish")
        .await
        .unwrap();
    let _ = vault
        .unseal(sealed.as_str(), &owner("user-b", "1784"), ACCESS, "publish")
        .await;

    let query = |pk: &'static str| {
        t.aws
            .dynamodb
            .query()
            .table_name(&table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(pk.into()),
            )
            .send()
    };
    let a_items = query("user#user-a")
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(a_items.len(), 1);
    let item = &a_items[0];
    assert_eq!(item["action"].as_s().unwrap(), "token.decrypt");
    assert_eq!(item["category"].as_s().unwrap(), "data_access");
    assert_eq!(item["outcome"].as_s().unwrap(), "success");
    let metadata: serde_json::Value =
        serde_json::from_str(item["metadata"].as_s().unwrap()).unwrap();
    assert_eq!(metadata["reason"], "publish");
    assert_eq!(metadata["account_id"], "1784");

    let b_items = query("user#user-b")
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(b_items.len(), 1);
    assert_eq!(b_items[0]["category"].as_s().unwrap(), "security");
    assert_eq!(b_items[0]["outcome"].as_s().unwrap(), "failure");

    let everything = format!("{a_items:?} {b_items:?}");
    assert!(!everything.contains(TOKEN));
}
