//! The secret-rotation handler against moto's Secrets Manager, driven step by step with the events
//! Secrets Manager sends (moto cannot run the rotation function itself): case S1, every step run
//! twice, a rotation interrupted and run again, the pre-checks, readers across rotations (sessions,
//! the token vault, the webhook handshake), the manual rotation of the Threads app secret, and
//! emergency rotation — with no secret value in any log line or error.
//!
//! A rotation is started as Secrets Manager starts one: rotation enabled, and a new version id
//! listed as `AWSPENDING` with no value. moto's RotateSecret leaves exactly that behind before it
//! tries to invoke the rotation function (which does not exist in moto) and then answers
//! ResourceNotFoundException.

use std::io::Write;
use std::sync::{Arc, Mutex};

use local_stack::testing::TestStack;
use threadstorm::audit::{Audit, MemoryAuditSink};
use threadstorm::config::Secret;
use threadstorm::resources::Resource;
use threadstorm::rotation::emergency::rotate_now;
use threadstorm::rotation::kind::SecretKind;
use threadstorm::rotation::manual;
use threadstorm::rotation::store::SecretStore;
use threadstorm::rotation::{RotationError, RotationEvent, Rotator, Step, StepOutcome};
use threadstorm::secrets::{DEFAULT_TTL, SecretReader, SecretVersions};
use threadstorm::sessions::{Refusal, SessionError, Sessions};
use threadstorm::users::UserId;
use threadstorm::vault::{Purpose, TokenOwner, Vault};
use threadstorm::webhooks::handshake::{self, HubQuery};
use threadstorm_tests::aws_calls::{Calls, counted_secretsmanager, expected};
use threadstorm_tests::{stage_pending, uuid_like, version_in_stage};

/// Where moto's RotateSecret would find the rotation function. Nothing is deployed there.
const ROTATION_LAMBDA: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:threadstorm-secret-rotation";

struct World {
    t: TestStack,
    rotator: Rotator,
    calls: Calls,
    audit: Arc<MemoryAuditSink>,
}

impl World {
    async fn new() -> World {
        let t = TestStack::new().await;
        let (client, calls) = counted_secretsmanager(&t.sdk);
        let audit = Arc::new(MemoryAuditSink::new());
        let rotator = Rotator::new(client, Audit::new(audit.clone(), true));
        World {
            t,
            rotator,
            calls,
            audit,
        }
    }

    fn id(&self, resource: Resource) -> String {
        self.t.name(resource)
    }

    async fn step(
        &self,
        step: Step,
        secret: &str,
        token: &str,
    ) -> Result<StepOutcome, RotationError> {
        self.rotator
            .handle(&RotationEvent::new(step, secret, token))
            .await
    }

    /// Enables rotation and lists `token` as a valueless `AWSPENDING` version, as Secrets Manager
    /// does when a rotation comes due.
    async fn start_rotation(&self, secret: &str, token: &str) {
        let result = self
            .t
            .aws
            .secrets
            .rotate_secret()
            .secret_id(secret)
            .client_request_token(token)
            .rotation_lambda_arn(ROTATION_LAMBDA)
            .rotation_rules(
                aws_sdk_secretsmanager::types::RotationRulesType::builder()
                    .automatically_after_days(30)
                    .build(),
            )
            .send()
            .await;
        // moto stops when it cannot find the function, after staging the version.
        if let Err(err) = result {
            let not_found = err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception());
            assert!(not_found, "RotateSecret: {err:?}");
        }
        assert_eq!(
            self.stages(secret, token).await,
            ["AWSPENDING"],
            "the rotation is listed"
        );
    }

    /// Runs the four steps for `token`, as Secrets Manager does.
    async fn rotate(&self, secret: &str) -> String {
        let token = uuid_like();
        self.start_rotation(secret, &token).await;
        for step in [Step::Create, Step::Set, Step::Test, Step::Finish] {
            self.step(step, secret, &token)
                .await
                .unwrap_or_else(|e| panic!("{step:?}: {e}"));
        }
        token
    }

    async fn stages(&self, secret: &str, version: &str) -> Vec<String> {
        let described = self
            .t
            .aws
            .secrets
            .describe_secret()
            .secret_id(secret)
            .send()
            .await
            .unwrap();
        described
            .version_ids_to_stages()
            .and_then(|m| m.get(version))
            .cloned()
            .unwrap_or_default()
    }

    /// The value of `version`, or `None` where Secrets Manager says ResourceNotFound.
    async fn value_of(&self, secret: &str, version: &str) -> Option<String> {
        match self
            .t
            .aws
            .secrets
            .get_secret_value()
            .secret_id(secret)
            .version_id(version)
            .send()
            .await
        {
            Ok(out) => out.secret_string().map(str::to_owned),
            Err(err) => {
                assert!(
                    err.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()),
                    "{err:?}"
                );
                None
            }
        }
    }

    async fn versions(&self, secret: &str) -> SecretVersions {
        SecretReader::new(self.t.aws.secrets.clone(), DEFAULT_TTL)
            .current_and_previous(secret)
            .await
            .unwrap()
    }
}

/// Secrets Manager's tokens are 32–64 characters: case S1's `tok-1`, made long enough.
fn tok(name: &str) -> String {
    format!("{name}-{}", uuid_like())
}

fn writes(calls: &Calls) -> usize {
    calls
        .take()
        .iter()
        .filter(|(op, _)| matches!(op.as_str(), "PutSecretValue" | "UpdateSecretVersionStage"))
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn s1_create_secret_is_idempotent_and_checks_the_token() {
    let w = World::new().await;
    let app = w.id(Resource::SessionKeySecret);
    let tok_1 = tok("tok-1");
    w.start_rotation(&app, &tok_1).await;
    assert_eq!(
        w.value_of(&app, &tok_1).await,
        None,
        "listed as AWSPENDING with no value yet"
    );
    let current = w.versions(&app).await.current;
    w.calls.take();

    assert_eq!(
        w.step(Step::Create, &app, &tok_1).await.unwrap(),
        StepOutcome::Created
    );
    let calls = w.calls.take();
    assert_eq!(calls.get("PutSecretValue"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("GetRandomPassword"), Some(&1), "{calls:?}");
    let created = w.value_of(&app, &tok_1).await.expect("a pending value");
    assert_eq!(w.stages(&app, &tok_1).await, ["AWSPENDING"]);
    assert_eq!(created.len(), 64);
    assert!(created.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_ne!(created, current.expose());

    assert_eq!(
        w.step(Step::Create, &app, &tok_1).await.unwrap(),
        StepOutcome::AlreadyCreated
    );
    let calls = w.calls.take();
    assert_eq!(calls.get("PutSecretValue"), None, "{calls:?}");
    assert_eq!(calls.get("GetRandomPassword"), None, "{calls:?}");
    assert_eq!(w.value_of(&app, &tok_1).await.as_deref(), Some(&*created));
    assert_eq!(w.versions(&app).await.current, current, "current unchanged");

    // A token that is not listed on the secret.
    let stranger = tok("tok-9");
    let err = w.step(Step::Create, &app, &stranger).await.unwrap_err();
    assert!(
        matches!(err, RotationError::UnknownVersion { .. }),
        "{err:?}"
    );
    assert_eq!(writes(&w.calls), 0);

    // A token that is already AWSCURRENT: success, nothing done.
    let current_version = version_in_stage(&w.t.aws.secrets, &app, "AWSCURRENT")
        .await
        .unwrap();
    for step in [Step::Create, Step::Set, Step::Test, Step::Finish] {
        assert_eq!(
            w.step(step, &app, &current_version).await.unwrap(),
            StepOutcome::AlreadyCurrent
        );
    }
    assert_eq!(
        w.calls.take(),
        expected(&[("DescribeSecret", 4)]),
        "nothing but the checks"
    );
}

#[tokio::test]
async fn every_step_run_twice_completes_exactly_one_rotation() {
    let w = World::new().await;
    let secret = w.id(Resource::InternalApiKeySecret);
    let before = w.versions(&secret).await.current;
    let old_version = version_in_stage(&w.t.aws.secrets, &secret, "AWSCURRENT")
        .await
        .unwrap();
    let token = tok("twice");
    w.start_rotation(&secret, &token).await;
    w.calls.take();

    let outcomes = [
        (
            Step::Create,
            StepOutcome::Created,
            StepOutcome::AlreadyCreated,
        ),
        (
            Step::Set,
            StepOutcome::NothingToSet,
            StepOutcome::NothingToSet,
        ),
        (Step::Test, StepOutcome::Tested, StepOutcome::Tested),
        (
            Step::Finish,
            StepOutcome::Finished,
            StepOutcome::AlreadyCurrent,
        ),
    ];
    for (step, first, second) in outcomes {
        assert_eq!(w.step(step, &secret, &token).await.unwrap(), first);
        assert_eq!(w.step(step, &secret, &token).await.unwrap(), second);
    }
    let calls = w.calls.take();
    assert_eq!(calls.get("PutSecretValue"), Some(&1), "{calls:?}");
    assert_eq!(
        calls.get("UpdateSecretVersionStage"),
        Some(&2),
        "move AWSCURRENT, clear AWSPENDING: {calls:?}"
    );

    assert_eq!(w.stages(&secret, &token).await, ["AWSCURRENT"]);
    assert_eq!(w.stages(&secret, &old_version).await, ["AWSPREVIOUS"]);
    let after = w.versions(&secret).await;
    assert_eq!(after.current.expose().len(), 48);
    assert_eq!(after.previous, Some(before));
    let records = w.audit.records();
    assert_eq!(records.len(), 1, "one finished rotation, one record");
    assert_eq!(records[0].action, "secret.rotate");
    assert_eq!(records[0].metadata["version"], token.as_str());

    // The next scheduled rotation starts cleanly (no AWSPENDING left behind).
    w.rotate(&secret).await;
    assert_eq!(w.versions(&secret).await.previous, Some(after.current));
}

#[tokio::test]
async fn a_finish_interrupted_between_its_two_moves_is_completed_by_the_retry() {
    let w = World::new().await;
    let secret = w.id(Resource::WebhookVerifyTokenSecret);
    let token = tok("half");
    w.start_rotation(&secret, &token).await;
    for step in [Step::Create, Step::Set, Step::Test] {
        w.step(step, &secret, &token).await.unwrap();
    }
    // finishSecret moved AWSCURRENT, then died before clearing AWSPENDING.
    let old = version_in_stage(&w.t.aws.secrets, &secret, "AWSCURRENT")
        .await
        .unwrap();
    w.t.aws
        .secrets
        .update_secret_version_stage()
        .secret_id(&secret)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&token)
        .remove_from_version_id(&old)
        .send()
        .await
        .unwrap();
    let mut stages = w.stages(&secret, &token).await;
    stages.sort();
    assert_eq!(stages, ["AWSCURRENT", "AWSPENDING"]);

    assert_eq!(
        w.step(Step::Finish, &secret, &token).await.unwrap(),
        StepOutcome::AlreadyCurrent
    );
    assert_eq!(w.stages(&secret, &token).await, ["AWSCURRENT"]);
    w.rotate(&secret).await;
}

#[tokio::test]
async fn a_rotation_interrupted_after_create_secret_runs_again_from_the_start() {
    let w = World::new().await;
    let secret = w.id(Resource::SessionKeySecret);
    let before = w.versions(&secret).await.current;
    let token = tok("retry");
    w.start_rotation(&secret, &token).await;
    assert_eq!(
        w.step(Step::Create, &secret, &token).await.unwrap(),
        StepOutcome::Created
    );
    let created = w.value_of(&secret, &token).await.unwrap();
    // The function died here. Readers never see the pending value meanwhile.
    assert_eq!(w.versions(&secret).await.current, before);

    // Secrets Manager retries the whole rotation with the same token.
    let outcomes = [
        StepOutcome::AlreadyCreated,
        StepOutcome::NothingToSet,
        StepOutcome::Tested,
        StepOutcome::Finished,
    ];
    for (step, outcome) in [Step::Create, Step::Set, Step::Test, Step::Finish]
        .into_iter()
        .zip(outcomes)
    {
        assert_eq!(w.step(step, &secret, &token).await.unwrap(), outcome);
    }
    let after = w.versions(&secret).await;
    assert_eq!(after.current.expose(), created, "the value created first");
    assert_eq!(after.previous, Some(before));

    // An abandoned rotation (a new one started with another token) is not a blocker either.
    let abandoned = tok("abandoned");
    w.start_rotation(&secret, &abandoned).await;
    w.step(Step::Create, &secret, &abandoned).await.unwrap();
    let fresh = w.rotate(&secret).await;
    assert_eq!(w.stages(&secret, &fresh).await, ["AWSCURRENT"]);
    let err = w.step(Step::Create, &secret, &abandoned).await.unwrap_err();
    assert!(matches!(err, RotationError::NotPending { .. }), "{err:?}");
}

#[tokio::test]
async fn rotation_disabled_or_a_token_that_is_not_pending_is_an_error_and_writes_nothing() {
    let w = World::new().await;
    // Rotation never enabled on this secret; a pending version exists all the same.
    let secret = w.id(Resource::TokenEncryptionKeySecret);
    let token = uuid_like();
    stage_pending(
        &w.t.aws.secrets,
        &secret,
        "pending-but-not-rotating-0123456789abcdef",
        &token,
    )
    .await;
    w.calls.take();
    for step in [Step::Create, Step::Set, Step::Test, Step::Finish] {
        let err = w.step(step, &secret, &token).await.unwrap_err();
        assert!(matches!(err, RotationError::NotEnabled { .. }), "{err:?}");
    }
    assert_eq!(writes(&w.calls), 0);

    // After a rotation, the old version is AWSPREVIOUS: not pending, refused.
    let secret = w.id(Resource::InternalApiKeySecret);
    let old = version_in_stage(&w.t.aws.secrets, &secret, "AWSCURRENT")
        .await
        .unwrap();
    w.rotate(&secret).await;
    w.calls.take();
    let err = w.step(Step::Finish, &secret, &old).await.unwrap_err();
    assert!(matches!(err, RotationError::NotPending { .. }), "{err:?}");
    assert_eq!(writes(&w.calls), 0);

    // A secret that does not exist.
    let err = w
        .step(Step::Create, "no-such-secret", &uuid_like())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RotationError::SecretNotFound { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_threads_app_secret_is_never_generated_by_the_rotation_function() {
    let w = World::new().await;
    let secret = w.id(Resource::ThreadsAppSecret);
    let token = tok("app");
    w.start_rotation(&secret, &token).await;
    w.calls.take();
    for step in [Step::Create, Step::Test, Step::Finish] {
        let err = w.step(step, &secret, &token).await.unwrap_err();
        assert!(
            matches!(
                err,
                RotationError::Manual {
                    kind: SecretKind::ThreadsAppSecret,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    assert_eq!(writes(&w.calls), 0);
    assert_eq!(w.value_of(&secret, &token).await, None);
}

#[tokio::test]
async fn test_secret_refuses_a_pending_value_that_does_not_fit_its_kind() {
    let w = World::new().await;
    let secret = w.id(Resource::SessionKeySecret);
    let token = tok("weak");
    w.start_rotation(&secret, &token).await;
    // Someone put a short value under the token (as an older moto would copy a value in).
    stage_pending(&w.t.aws.secrets, &secret, "planted-weak-key", &token).await;
    assert_eq!(
        w.step(Step::Create, &secret, &token).await.unwrap(),
        StepOutcome::AlreadyCreated,
        "a value is there: never a second one for the same token"
    );
    let err = w.step(Step::Test, &secret, &token).await.unwrap_err();
    assert!(
        matches!(
            err,
            RotationError::TestFailed {
                kind: SecretKind::SessionKey,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("planted"));
    assert_eq!(
        w.stages(&secret, &token).await,
        ["AWSPENDING"],
        "not promoted"
    );
}

fn user() -> UserId {
    UserId::parse("5b0f6c2e-3f4a-4d1e-9a8b-7c6d5e4f3a21").unwrap()
}

#[tokio::test]
async fn rotating_the_session_key_logs_nobody_out_but_two_rotations_old_is_refused() {
    let w = World::new().await;
    let key = w.id(Resource::SessionKeySecret);
    // Each phase is a freshly started function (its own secret cache).
    let sessions = || {
        Sessions::new(
            w.t.aws.dynamodb.clone(),
            w.id(Resource::SessionsTable),
            Arc::new(SecretReader::new(w.t.aws.secrets.clone(), DEFAULT_TTL)),
            key.clone(),
        )
    };
    let before = sessions().issue(&user()).await.unwrap();

    w.rotate(&key).await;
    let after_one = sessions();
    assert!(
        after_one.verify(&before.token).await.is_ok(),
        "nobody logged out"
    );
    let between = after_one.issue(&user()).await.unwrap();

    w.rotate(&key).await;
    let after_two = sessions();
    assert!(after_two.verify(&between.token).await.is_ok());
    match after_two.verify(&before.token).await {
        Err(SessionError::Refused(Refusal::BadSignature)) => {}
        other => panic!("a session signed two rotations ago must be refused: {other:?}"),
    }
}

fn owner() -> TokenOwner {
    TokenOwner::new(user(), "17841400000000042")
}

#[tokio::test]
async fn a_token_sealed_before_rotating_the_local_key_opens_after_it() {
    const TOKEN: &str = "THAA-long-lived-token-sealed-before-the-rotation";
    let w = World::new().await;
    let key = w.id(Resource::TokenEncryptionKeySecret);
    let vault = || async {
        let reader = Arc::new(SecretReader::new(w.t.aws.secrets.clone(), DEFAULT_TTL));
        Vault::with_local_secret(
            reader,
            key.clone(),
            Audit::new(Arc::new(MemoryAuditSink::new()), true),
        )
        .await
        .unwrap()
    };
    let sealed_before = vault()
        .await
        .seal(TOKEN, &owner(), Purpose::ThreadsAccessToken)
        .await
        .unwrap();

    w.rotate(&key).await;
    let after = vault().await;
    let opened = after
        .unseal(
            sealed_before.as_str(),
            &owner(),
            Purpose::ThreadsAccessToken,
            "publish",
        )
        .await
        .unwrap();
    assert_eq!(opened.expose(), TOKEN);
    // Sealed again (as the token refresher does at its next refresh): under the newest key, which
    // the next rotation keeps readable too.
    let resealed = after
        .seal(opened.expose(), &owner(), Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    w.rotate(&key).await;
    let opened = vault()
        .await
        .unseal(
            resealed.as_str(),
            &owner(),
            Purpose::ThreadsAccessToken,
            "publish",
        )
        .await
        .unwrap();
    assert_eq!(opened.expose(), TOKEN);
}

#[tokio::test]
async fn rotating_the_webhook_verify_token_keeps_the_handshake_answering_both() {
    let w = World::new().await;
    let secret = w.id(Resource::WebhookVerifyTokenSecret);
    let old = w.versions(&secret).await.current;
    w.rotate(&secret).await;
    let versions = w.versions(&secret).await;
    assert_eq!(versions.current.expose().len(), 40);
    let tokens: Vec<&Secret> = versions.iter().collect();
    for given in [&old, &versions.current] {
        let query = HubQuery::from_pairs([
            ("hub.mode", "subscribe"),
            ("hub.verify_token", given.expose()),
            ("hub.challenge", "1158201444"),
        ]);
        assert_eq!(
            handshake::answer(&query, &tokens).unwrap().as_str(),
            "1158201444"
        );
    }
}

#[tokio::test]
async fn the_threads_app_secret_is_staged_verified_against_threads_and_promoted() {
    let new_secret = "0123456789abcdef0123456789abcdef";
    let emu = threads_emulator::Emulator::start(threads_emulator::EmulatorConfig {
        app_secret: new_secret.to_owned(),
        ..threads_emulator::EmulatorConfig::default()
    })
    .await
    .unwrap();
    let threads = threadstorm::threads::ThreadsClient::new(
        threadstorm::threads::ThreadsConfig::new(&emu.base_url(), &emu.authorize_url()).unwrap(),
    )
    .unwrap();
    let app_id = emu.config().app_id.clone();

    let w = World::new().await;
    let secret = w.id(Resource::ThreadsAppSecret);
    let store = SecretStore::new(w.t.aws.secrets.clone());
    let audit = Audit::new(w.audit.clone(), true);
    let old = w.versions(&secret).await.current;

    // A mistyped value is staged: verification fails and names no value; it is cancelled.
    let typo = "0123456789abcdef0123456789abcdeX";
    manual::stage(&store, &audit, &secret, &Secret::new(typo), "ops-alice")
        .await
        .unwrap();
    let err = manual::stage(
        &store,
        &audit,
        &secret,
        &Secret::new(new_secret),
        "ops-alice",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RotationError::PendingExists { .. }),
        "{err:?}"
    );
    let err = manual::verify(&store, &threads, &app_id, &secret)
        .await
        .unwrap_err();
    assert!(matches!(err, RotationError::TestFailed { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(typo), "{err}");
    assert!(
        manual::cancel(&store, &audit, &secret, "ops-alice")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(w.versions(&secret).await.current, old, "nothing promoted");

    // The right value: staged (readers still use the old one), verified, promoted.
    let version = manual::stage(
        &store,
        &audit,
        &secret,
        &Secret::new(new_secret),
        "ops-alice",
    )
    .await
    .unwrap();
    assert_eq!(w.versions(&secret).await.current, old);
    assert_eq!(
        manual::verify(&store, &threads, &app_id, &secret)
            .await
            .unwrap(),
        version
    );
    assert_eq!(
        manual::promote(&store, &audit, &secret, "ops-alice")
            .await
            .unwrap(),
        version
    );
    let after = w.versions(&secret).await;
    assert_eq!(after.current.expose(), new_secret);
    assert_eq!(
        after.previous,
        Some(old),
        "old signatures verify in the grace window"
    );
    let status = manual::status(&store, &secret).await.unwrap();
    assert_eq!(status.current.as_deref(), Some(version.as_str()));
    assert_eq!(status.pending, None);

    let actions: Vec<String> = w.audit.records().iter().map(|r| r.action.clone()).collect();
    assert_eq!(
        actions,
        [
            "secret.stage",
            "secret.cancel",
            "secret.stage",
            "secret.promote"
        ]
    );
    assert!(
        w.audit
            .records()
            .iter()
            .all(|r| r.user_id.as_deref() == Some("ops-alice"))
    );

    // Generated secrets are not rotated by hand.
    let err = manual::stage(
        &store,
        &audit,
        &w.id(Resource::SessionKeySecret),
        &Secret::new(new_secret),
        "ops-alice",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RotationError::NotManual { .. }), "{err:?}");
}

#[tokio::test]
async fn emergency_rotation_starts_a_rotation_and_records_who_asked() {
    let w = World::new().await;
    let store = SecretStore::new(w.t.aws.secrets.clone());
    let audit = Audit::new(w.audit.clone(), true);
    let secret = w.id(Resource::SessionKeySecret);

    // Not on a rotation schedule yet: refused, nothing started.
    let err = rotate_now(&store, &audit, &secret, "admin-1", "suspected leak")
        .await
        .unwrap_err();
    assert!(matches!(err, RotationError::NotEnabled { .. }), "{err:?}");
    let err = rotate_now(
        &store,
        &audit,
        &w.id(Resource::ThreadsAppSecret),
        "admin-1",
        "leak",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RotationError::Manual { .. }), "{err:?}");

    w.rotate(&secret).await;
    let records_before = w.audit.records().len();
    let started = rotate_now(&store, &audit, &secret, "admin-1", "suspected leak")
        .await
        .unwrap();
    assert!(
        !w.stages(&secret, &started.version).await.is_empty(),
        "Secrets Manager has the rotation's version"
    );
    let records = w.audit.records();
    assert_eq!(records.len(), records_before + 1);
    let record = records.last().unwrap();
    assert_eq!(record.action, "secret.rotate_now");
    assert_eq!(record.user_id.as_deref(), Some("admin-1"));
    assert_eq!(record.metadata["version"], started.version.as_str());
    assert_eq!(record.metadata["reason"], "suspected leak");
}

/// Collects log lines in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_value_appears_in_logs_or_errors() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("threadstorm=trace"))
        .with_writer(move || writer.clone())
        .finish();
    // Global, not scoped: a scoped subscriber missed events whose call sites other tests' threads
    // met first. Other tests' lines land here too; none of this test's values may be in any.
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let w = World::new().await;
    let mut values = Vec::new();
    let mut shown = String::new();
    for resource in [
        Resource::SessionKeySecret,
        Resource::WebhookVerifyTokenSecret,
        Resource::TokenEncryptionKeySecret,
        Resource::InternalApiKeySecret,
    ] {
        let secret = w.id(resource);
        values.push(w.versions(&secret).await.current.expose().to_owned());
        let token = w.rotate(&secret).await;
        values.push(w.value_of(&secret, &token).await.unwrap());
        // Failures too: a token not on the secret, and a test of a weak planted value.
        let err = w.step(Step::Test, &secret, &tok("nope")).await.unwrap_err();
        shown.push_str(&format!("{err} {err:?}\n"));
        let weak = tok("weak");
        w.start_rotation(&secret, &weak).await;
        stage_pending(&w.t.aws.secrets, &secret, "planted-weak-value", &weak).await;
        let err = w.step(Step::Test, &secret, &weak).await.unwrap_err();
        shown.push_str(&format!("{err} {err:?}\n"));
        values.push("planted-weak-value".to_owned());
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("rotation step done"),
        "the steps do log: {logs}"
    );
    assert!(logs.contains("rotation step failed"));
    for value in &values {
        assert!(!logs.contains(value.as_str()), "a value in the logs");
        assert!(
            !shown.contains(value.as_str()),
            "a value in an error: {shown}"
        );
    }
}
