//! The Threads client against the Threads emulator: every call, and every error class produced by
//! the emulator's faults in sequence, classified exactly as reference/threads-api.md says.

use std::time::Duration;

use threads_emulator::{
    Emulator, EmulatorConfig, Endpoint, Fault, FaultPlan, MediaInsights, Quotas,
};
use threadstorm::config::Secret;
use threadstorm::threads::{
    AccessToken, AppCredentials, AuthorizeRequest, ContainerId, ContainerStatus, ListThreads,
    MediaId, Metric, NewContainer, ReplyControl, Scope, ThreadsClient, ThreadsConfig, ThreadsError,
    UserId, backoff_between,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER: &str = "17841405793187218";
const BIG_USER: &str = "90071992547409931";
const REDIRECT: &str = "https://localhost:3000/oauth/callback";

struct World {
    emu: Emulator,
    client: ThreadsClient,
    token: AccessToken,
    user: UserId,
}

fn client_for(base: &str, authorize: &str, timeout: Duration) -> ThreadsClient {
    let config = ThreadsConfig::new(base, authorize)
        .unwrap()
        .with_timeouts(Duration::from_secs(2), timeout);
    ThreadsClient::new(config).unwrap()
}

async fn world_with(config: EmulatorConfig) -> World {
    let emu = Emulator::start(config).await.unwrap();
    let client = client_for(
        &emu.base_url(),
        &emu.authorize_url(),
        Duration::from_secs(5),
    );
    let token = AccessToken::new(emu.issue_long_lived_token(USER));
    World {
        emu,
        client,
        token,
        user: UserId::parse(USER).unwrap(),
    }
}

async fn world() -> World {
    world_with(EmulatorConfig::default()).await
}

fn app(emu: &Emulator) -> AppCredentials {
    AppCredentials {
        client_id: emu.config().app_id.clone(),
        client_secret: Secret::new(emu.config().app_secret.clone()),
    }
}

/// Opens the authorization window as a browser would and returns the redirect's code.
async fn authorize(world: &World, extra: &str) -> String {
    let request = AuthorizeRequest {
        client_id: world.emu.config().app_id.clone(),
        redirect_uri: REDIRECT.to_owned(),
        scopes: vec![Scope::ContentPublish, Scope::ManageReplies],
        state: "state-123".to_owned(),
        code_challenge: "w6Kgixo4GdOCtcS6zQP_jZ1mZ6C_aVV0H7comjW5Sas".to_owned(),
    };
    let url = format!("{}{extra}", world.client.authorize_url(&request));
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(REDIRECT) && location.ends_with("#_"),
        "{location}"
    );
    let parsed = url::Url::parse(&location).unwrap();
    let get = |k: &str| {
        parsed
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(get("state").as_deref(), Some("state-123"));
    // Keep Meta's `#_` on the code: the client must strip it.
    format!("{}#_", get("code").unwrap())
}

async fn publish_text(w: &World, text: &str) -> (ContainerId, MediaId) {
    let container = w
        .client
        .create_container(&w.token, &w.user, &NewContainer::text(text))
        .await
        .unwrap();
    let media = w
        .client
        .publish(&w.token, &w.user, &container)
        .await
        .unwrap();
    (container, media)
}

fn short() -> Duration {
    Duration::from_millis(1)
}

// ---- OAuth --------------------------------------------------------------------------------------

#[tokio::test]
async fn oauth_code_to_long_lived_token_to_refresh() {
    let w = world().await;
    let app = app(&w.emu);
    let code = authorize(&w, "").await;
    let short_lived = w
        .client
        .exchange_code(&app, &code, REDIRECT, Some("ts-verifier"))
        .await
        .unwrap();
    assert_eq!(short_lived.user_id.as_str(), USER);
    assert!(short_lived.access_token.expose().starts_with("TH"));

    let long = w
        .client
        .exchange_long_lived(&app, &short_lived.access_token)
        .await
        .unwrap();
    assert_eq!(long.expires_in, 5_184_000);
    assert_eq!(long.token_type.as_deref(), Some("bearer"));
    assert_eq!(
        w.client.me(&long.access_token).await.unwrap().id.as_str(),
        USER
    );

    // Too young to refresh: refused, and it says why.
    let err = w.client.refresh(&long.access_token).await.unwrap_err();
    assert!(matches!(err, ThreadsError::Validation { .. }), "{err:?}");
    assert!(err.reason().contains("24 hours"), "{}", err.reason());

    w.emu.clock().advance(Duration::from_secs(25 * 3600));
    let refreshed = w.client.refresh(&long.access_token).await.unwrap();
    assert_eq!(refreshed.lifetime(), Duration::from_secs(5_184_000));
    assert_ne!(refreshed.access_token, long.access_token);
    assert_eq!(w.emu.calls().token_total(), 4);
}

#[tokio::test]
async fn code_is_single_use_and_reuse_needs_a_new_authorization() {
    let w = world().await;
    let app = app(&w.emu);
    let code = authorize(&w, "").await;
    w.client
        .exchange_code(&app, &code, REDIRECT, None)
        .await
        .unwrap();
    let err = w
        .client
        .exchange_code(&app, &code, REDIRECT, None)
        .await
        .unwrap_err();
    let ThreadsError::NeedsReauth { reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        reason.contains("Matching code was not found or was already used"),
        "{reason}"
    );
}

#[tokio::test]
async fn code_expires_after_an_hour() {
    let w = world().await;
    let code = authorize(&w, "").await;
    w.emu.clock().advance(Duration::from_secs(3601));
    let err = w
        .client
        .exchange_code(&app(&w.emu), &code, REDIRECT, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ThreadsError::NeedsReauth { .. }), "{err:?}");
}

#[tokio::test]
async fn wrong_app_secret_alerts_and_never_shows_the_secret() {
    let w = world().await;
    let wrong = AppCredentials {
        client_id: w.emu.config().app_id.clone(),
        client_secret: Secret::new("meta-app-secret"),
    };
    let code = authorize(&w, "").await;
    let err = w
        .client
        .exchange_code(&wrong, &code, REDIRECT, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ThreadsError::PermanentOther { alert: true, .. }),
        "{err:?}"
    );
    assert!(!format!("{err:?}").contains("meta-app-secret"));

    let short_lived = AccessToken::new(w.emu.issue_short_lived_token(USER));
    let err = w
        .client
        .exchange_long_lived(&wrong, &short_lived)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ThreadsError::PermanentOther { alert: true, .. }),
        "{err:?}"
    );
    let shown = format!("{err:?} {err}");
    assert!(
        !shown.contains("meta-app-secret") && !shown.contains(short_lived.expose()),
        "{shown}"
    );
}

#[tokio::test]
async fn mismatched_redirect_uri_is_a_setup_error() {
    let w = world().await;
    let code = authorize(&w, "").await;
    let err = w
        .client
        .exchange_code(
            &app(&w.emu),
            &code,
            "https://localhost:3000/oauth/callback/",
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ThreadsError::PermanentOther { alert: true, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn user_id_above_2_pow_53_survives_the_exchange_as_number_and_as_string() {
    for as_string in [false, true] {
        let w = world_with(EmulatorConfig {
            user_id_as_string: as_string,
            ..EmulatorConfig::default()
        })
        .await;
        let code = authorize(&w, &format!("&test_user={BIG_USER}")).await;
        let token = w
            .client
            .exchange_code(&app(&w.emu), &code, REDIRECT, None)
            .await
            .unwrap();
        assert_eq!(token.user_id.as_str(), BIG_USER, "as_string={as_string}");
    }
}

#[tokio::test]
async fn enforced_pkce_takes_the_verifier() {
    let w = world_with(EmulatorConfig {
        enforce_pkce: true,
        ..EmulatorConfig::default()
    })
    .await;
    let code = authorize(&w, "").await;
    let verifier = "ts-verifier-0123456789abcdefghijklmnopqrstuvwxyzABCD";
    let token = w
        .client
        .exchange_code(&app(&w.emu), &code, REDIRECT, Some(verifier))
        .await
        .unwrap();
    assert_eq!(token.user_id.as_str(), USER);
    let code = authorize(&w, "").await;
    let err = w
        .client
        .exchange_code(&app(&w.emu), &code, REDIRECT, Some("wrong"))
        .await
        .unwrap_err();
    assert!(matches!(err, ThreadsError::NeedsReauth { .. }), "{err:?}");
}

#[tokio::test]
async fn debug_token_reports_scopes_and_dead_tokens() {
    let w = world().await;
    let info = w.client.debug_token(&w.token, &w.token).await.unwrap();
    assert!(info.is_valid);
    assert!(info.has_scope(Scope::ContentPublish));
    assert_eq!(info.user_id.as_ref().map(UserId::as_str), Some(USER));
    assert!(info.expires_at.unwrap() > info.issued_at.unwrap());

    w.emu.revoke_token(w.token.expose());
    let app_token = app(&w.emu).app_token();
    let info = w.client.debug_token(&w.token, &app_token).await.unwrap();
    assert!(!info.is_valid);
    assert_eq!(info.error.unwrap().code, Some(190));
    // Inspected with itself, a dead token is refused outright.
    let err = w.client.debug_token(&w.token, &w.token).await.unwrap_err();
    assert!(matches!(err, ThreadsError::NeedsReauth { .. }), "{err:?}");
}

// ---- Tokens -------------------------------------------------------------------------------------

#[tokio::test]
async fn revoked_expired_and_faulted_tokens_need_reauth_with_the_subcode() {
    let w = world().await;
    w.emu.inject(FaultPlan::sequence(
        Endpoint::Read,
        vec![Some(Fault::TokenExpired), Some(Fault::TokenInvalidated)],
    ));
    for subcode in [463, 460] {
        let err = w.client.me(&w.token).await.unwrap_err();
        let ThreadsError::NeedsReauth { api, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(api.as_ref().and_then(|a| a.subcode), Some(subcode));
    }
    w.client.me(&w.token).await.unwrap();

    w.emu.clock().advance(Duration::from_secs(61 * 86_400));
    let err = w.client.me(&w.token).await.unwrap_err();
    assert!(
        matches!(&err, ThreadsError::NeedsReauth { reason, .. } if reason.contains("expired")),
        "{err:?}"
    );

    let other = AccessToken::new(w.emu.issue_long_lived_token(USER));
    w.emu.revoke_token(other.expose());
    let err = w
        .client
        .publish(&other, &w.user, &ContainerId::parse("1").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ThreadsError::NeedsReauth { api, .. } if api.as_ref().unwrap().subcode == Some(460)),
        "{err:?}"
    );
}

// ---- Publishing ---------------------------------------------------------------------------------

#[tokio::test]
async fn me_reads_the_profile() {
    let w = world().await;
    let me = w.client.me(&w.token).await.unwrap();
    assert_eq!(me.id.as_str(), USER);
    assert_eq!(me.username.as_deref(), Some("storm_tester"));
    assert_eq!(me.is_verified, Some(false));
}

#[tokio::test]
async fn p2_two_not_ready_then_success_on_the_same_container() {
    let w = world().await;
    w.emu
        .inject(FaultPlan::times(Endpoint::Publish, Fault::NotReady, 2));
    let container = w
        .client
        .create_container(&w.token, &w.user, &NewContainer::text("part 1"))
        .await
        .unwrap();
    let mut outcomes = Vec::new();
    let media = loop {
        match w.client.publish(&w.token, &w.user, &container).await {
            Ok(media) => break media,
            Err(err) => {
                outcomes.push(err.class());
                assert!(
                    matches!(err, ThreadsError::RetrySameContainer { .. }),
                    "{err:?}"
                );
                assert!(err.reason().contains("container_not_ready"));
                tokio::time::sleep(backoff_between(
                    outcomes.len() as u32,
                    short(),
                    Duration::from_millis(10),
                ))
                .await;
            }
        }
    };
    assert_eq!(outcomes, ["container_not_ready", "container_not_ready"]);
    let calls = w.emu.calls();
    assert_eq!((calls.create, calls.publish), (1, 3));
    let published = w.emu.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].container_id, container.as_str());
    assert_eq!(published[0].media_id, media.as_str());
    assert_ne!(media.as_str(), container.as_str());
}

#[tokio::test]
async fn publishing_before_ready_and_briefly_after_finished_retries_the_same_container() {
    let config = EmulatorConfig {
        readiness_delay: Duration::from_secs(10),
        not_found_after_ready: Duration::from_secs(5),
        ..EmulatorConfig::default()
    };
    let w = world_with(config).await;
    let container = w
        .client
        .create_container(&w.token, &w.user, &NewContainer::text("hello"))
        .await
        .unwrap();
    assert_eq!(
        w.client
            .container_status(&w.token, &container)
            .await
            .unwrap(),
        ContainerStatus::InProgress
    );
    let err = w
        .client
        .publish(&w.token, &w.user, &container)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ThreadsError::RetrySameContainer { .. }),
        "{err:?}"
    );

    w.emu.clock().advance(Duration::from_secs(11));
    assert_eq!(
        w.client
            .container_status(&w.token, &container)
            .await
            .unwrap(),
        ContainerStatus::Finished
    );
    let err = w
        .client
        .publish(&w.token, &w.user, &container)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ThreadsError::RetrySameContainer { .. }),
        "FINISHED but not yet visible: {err:?}"
    );

    w.emu.clock().advance(Duration::from_secs(5));
    w.client
        .publish(&w.token, &w.user, &container)
        .await
        .unwrap();
    assert_eq!(
        w.client
            .container_status(&w.token, &container)
            .await
            .unwrap(),
        ContainerStatus::Published
    );
    assert_eq!(w.emu.calls().create, 1);
}

#[tokio::test]
async fn storm_parts_reply_to_the_previous_media_id_in_order() {
    let w = world().await;
    let (_, root) = publish_text(&w, "1/3 a storm").await;
    let mut parent = root.clone();
    for part in ["2/3", "3/3"] {
        let spec = NewContainer::text(part)
            .reply_to(parent.clone())
            .reply_control(ReplyControl::Everyone);
        let container = w
            .client
            .create_container(&w.token, &w.user, &spec)
            .await
            .unwrap();
        parent = w
            .client
            .publish(&w.token, &w.user, &container)
            .await
            .unwrap();
    }
    let published = w.emu.published();
    assert_eq!(published.len(), 3);
    assert_eq!(published[0].reply_to_id, None);
    assert_eq!(published[1].reply_to_id.as_deref(), Some(root.as_str()));
    assert_eq!(
        published[2].reply_to_id.as_deref(),
        Some(published[1].media_id.as_str())
    );
    let limit = w.client.publishing_limit(&w.token, &w.user).await.unwrap();
    assert_eq!((limit.quota_usage, limit.reply_quota_usage), (1, 2));
}

#[tokio::test]
async fn code_10_that_published_is_uncertain_and_status_says_published() {
    let w = world().await;
    w.emu
        .inject(FaultPlan::once(Endpoint::Publish, Fault::FalseFailure));
    let container = w
        .client
        .create_container(&w.token, &w.user, &NewContainer::text("false failure"))
        .await
        .unwrap();
    let err = w
        .client
        .publish(&w.token, &w.user, &container)
        .await
        .unwrap_err();
    let ThreadsError::UncertainPublish { api, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        api.as_ref().map(|a| (a.code, a.http_status)),
        Some((Some(10), 500))
    );

    // The caller's next step: read the status, do not publish again.
    assert_eq!(
        w.client
            .container_status(&w.token, &container)
            .await
            .unwrap(),
        ContainerStatus::Published
    );
    assert_eq!(w.emu.published().len(), 1);
    // The media id is recovered from the profile's own posts.
    let posts = w
        .client
        .threads_pages(&w.token, &w.user, ListThreads::default())
        .collect_all()
        .await
        .unwrap();
    let found = posts
        .iter()
        .find(|p| p.text.as_deref() == Some("false failure"))
        .unwrap();
    assert_eq!(found.id.as_str(), w.emu.published()[0].media_id);
}

#[tokio::test]
async fn code_10_off_publish_is_a_missing_permission() {
    let w = world().await;
    let token = AccessToken::new(w.emu.issue_token_with_scopes(USER, &["threads_basic"]));
    let err = w
        .client
        .create_container(&token, &w.user, &NewContainer::text("x"))
        .await
        .unwrap_err();
    let ThreadsError::PermanentOther { reason, alert, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(!alert && reason.contains("permission"), "{reason}");
}

#[tokio::test]
async fn transient_faults_retry_and_publish_transient_is_uncertain() {
    let w = world().await;
    w.emu
        .inject(FaultPlan::once(Endpoint::Create, Fault::Transient));
    let err = w
        .client
        .create_container(&w.token, &w.user, &NewContainer::text("t"))
        .await
        .unwrap_err();
    assert!(matches!(err, ThreadsError::Transient { .. }), "{err:?}");
    let container = w
        .client
        .create_container(&w.token, &w.user, &NewContainer::text("t"))
        .await
        .unwrap();

    w.emu
        .inject(FaultPlan::once(Endpoint::Publish, Fault::Transient));
    let err = w
        .client
        .publish(&w.token, &w.user, &container)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ThreadsError::UncertainPublish { .. }),
        "{err:?}"
    );
    // Not published this time: status says FINISHED, so publishing the same container again is safe.
    assert_eq!(
        w.client
            .container_status(&w.token, &container)
            .await
            .unwrap(),
        ContainerStatus::Finished
    );
    w.client
        .publish(&w.token, &w.user, &container)
        .await
        .unwrap();
    assert_eq!(w.emu.published().len(), 1);

    w.emu
        .inject(FaultPlan::once(Endpoint::Status, Fault::Transient));
    let err = w
        .client
        .container_status(&w.token, &container)
        .await
        .unwrap_err();
    assert!(matches!(err, ThreadsError::Transient { .. }), "{err:?}");
}

#[tokio::test]
async fn throttles_defer_without_failing() {
    let w = world().await;
    w.emu.inject(FaultPlan::sequence(
        Endpoint::Create,
        vec![Some(Fault::Throttle), Some(Fault::UserThrottle), None],
    ));
    for code in [4, 17] {
        let err = w
            .client
            .create_container(&w.token, &w.user, &NewContainer::text("x"))
            .await
            .unwrap_err();
        let ThreadsError::RateLimited { api, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(api.as_ref().and_then(|a| a.code), Some(code));
    }
    w.client
        .create_container(&w.token, &w.user, &NewContainer::text("x"))
        .await
        .unwrap();
}

#[tokio::test]
async fn quota_exhaustion_is_rate_limited_and_the_limit_reports_the_reference_shape() {
    let config = EmulatorConfig {
        quotas: Quotas {
            posts: 2,
            ..Quotas::default()
        },
        ..EmulatorConfig::default()
    };
    let w = world_with(config).await;
    publish_text(&w, "one").await;
    publish_text(&w, "two").await;
    let container = w
        .client
        .create_container(&w.token, &w.user, &NewContainer::text("three"))
        .await
        .unwrap();
    let err = w
        .client
        .publish(&w.token, &w.user, &container)
        .await
        .unwrap_err();
    assert!(matches!(err, ThreadsError::RateLimited { .. }), "{err:?}");
    assert_eq!(w.emu.published().len(), 2);

    let limit = w.client.publishing_limit(&w.token, &w.user).await.unwrap();
    assert_eq!(limit.quota_usage, 2);
    assert_eq!(
        (limit.config.quota_total, limit.config.quota_duration),
        (2, 86_400)
    );
    assert_eq!(
        (
            limit.reply_config.quota_total,
            limit.delete_config.quota_total
        ),
        (1000, 100)
    );

    // The rolling window frees (the old container has expired by then: a new one publishes).
    w.emu.clock().advance(Duration::from_secs(86_401));
    publish_text(&w, "three, a day later").await;
    assert_eq!(
        w.client
            .publishing_limit(&w.token, &w.user)
            .await
            .unwrap()
            .quota_usage,
        1
    );
}

#[tokio::test]
async fn media_fetch_failure_is_permanent_for_that_media() {
    let w = world().await;
    w.emu
        .inject(FaultPlan::once(Endpoint::Create, Fault::MediaFetchFailed));
    let err = w
        .client
        .create_container(
            &w.token,
            &w.user,
            &NewContainer::image("https://cdn.example/a.jpg"),
        )
        .await
        .unwrap_err();
    let ThreadsError::PermanentOther { reason, alert, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        !alert && reason.contains("could not fetch the media") && reason.contains("2207052"),
        "{reason}"
    );
}

#[tokio::test]
async fn validation_errors_name_the_parameter() {
    let w = world().await;
    let too_long = format!("{}🚀", "a".repeat(497));
    let (_, published) = publish_text(&w, "a parent").await;
    let unready = w
        .client
        .create_container(&w.token, &w.user, &NewContainer::text("c"))
        .await
        .unwrap();
    let six_links = (1..=6)
        .map(|i| format!("https://e{i}.example"))
        .collect::<Vec<_>>()
        .join(" ");
    let cases: Vec<(NewContainer, Option<&str>, &str)> = vec![
        (NewContainer::text(too_long), Some("text"), "at most 500"),
        (
            NewContainer::text(six_links),
            None,
            "at most 5 unique links",
        ),
        (
            NewContainer::text("t").topic_tag("a.b"),
            Some("topic_tag"),
            "periods",
        ),
        (
            NewContainer::text("t").reply_to(MediaId::parse(unready.as_str()).unwrap()),
            Some("reply_to_id"),
            "not of a media container",
        ),
        (
            NewContainer::image("https://cdn.example/a.jpg").link_attachment("https://e.example"),
            Some("link_attachment"),
            "only supported for TEXT",
        ),
        (
            NewContainer::carousel(vec![unready.clone()]),
            Some("children"),
            "between 2 and 20",
        ),
    ];
    for (spec, param, words) in cases {
        let err = w
            .client
            .create_container(&w.token, &w.user, &spec)
            .await
            .unwrap_err();
        let ThreadsError::Validation {
            param: got, reason, ..
        } = &err
        else {
            panic!("{spec:?}: {err:?}")
        };
        assert_eq!(got.as_deref(), param, "{reason}");
        assert!(reason.contains(words), "{reason}");
    }
    // A reply to the published media id is fine.
    w.client
        .create_container(
            &w.token,
            &w.user,
            &NewContainer::text("ok").reply_to(published),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn container_errors_and_expiry_come_back_as_typed_statuses() {
    let w = world().await;
    w.emu.inject(FaultPlan::once(
        Endpoint::Create,
        Fault::ContainerError("FAILED_DOWNLOADING_VIDEO".into()),
    ));
    let failed = w
        .client
        .create_container(
            &w.token,
            &w.user,
            &NewContainer::video("https://cdn.example/v.mp4"),
        )
        .await
        .unwrap();
    let ContainerStatus::Error(failure) =
        w.client.container_status(&w.token, &failed).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(failure.code.as_deref(), Some("FAILED_DOWNLOADING_VIDEO"));
    assert!(failure.describe().contains("could not download the video"));

    let late = w
        .client
        .create_container(&w.token, &w.user, &NewContainer::text("late"))
        .await
        .unwrap();
    w.emu.clock().advance(Duration::from_secs(86_401));
    assert_eq!(
        w.client.container_status(&w.token, &late).await.unwrap(),
        ContainerStatus::Expired
    );
    let err = w
        .client
        .publish(&w.token, &w.user, &late)
        .await
        .unwrap_err();
    assert!(matches!(err, ThreadsError::Validation { .. }), "{err:?}");
}

#[tokio::test]
async fn carousel_of_two_images_publishes_as_one_post() {
    let w = world().await;
    let mut children = Vec::new();
    for n in 1..=2 {
        let item = NewContainer::image(format!("https://cdn.example/{n}.jpg"))
            .alt_text("a cat")
            .carousel_item();
        children.push(
            w.client
                .create_container(&w.token, &w.user, &item)
                .await
                .unwrap(),
        );
    }
    let carousel = NewContainer::carousel(children)
        .with_text("two cats")
        .topic_tag("cats");
    let container = w
        .client
        .create_container(&w.token, &w.user, &carousel)
        .await
        .unwrap();
    w.client
        .publish(&w.token, &w.user, &container)
        .await
        .unwrap();
    let published = w.emu.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].media_type, "CAROUSEL");
    assert_eq!(published[0].topic_tag.as_deref(), Some("cats"));
    assert_eq!(
        w.client
            .publishing_limit(&w.token, &w.user)
            .await
            .unwrap()
            .quota_usage,
        1
    );
}

#[tokio::test]
async fn quote_and_link_attachment_reach_threads() {
    let w = world().await;
    let (_, quoted) = publish_text(&w, "quoted").await;
    let spec = NewContainer::text("see this")
        .quote(quoted.clone())
        .link_attachment("https://example.org/post");
    let container = w
        .client
        .create_container(&w.token, &w.user, &spec)
        .await
        .unwrap();
    w.client
        .publish(&w.token, &w.user, &container)
        .await
        .unwrap();
    let last = w.emu.published().pop().unwrap();
    assert_eq!(last.quote_post_id.as_deref(), Some(quoted.as_str()));
    assert_eq!(
        last.link_attachment.as_deref(),
        Some("https://example.org/post")
    );
}

// ---- Reading and deleting -----------------------------------------------------------------------

#[tokio::test]
async fn own_threads_are_walked_page_by_page_newest_first() {
    let w = world().await;
    for n in 1..=5 {
        publish_text(&w, &format!("post {n}")).await;
        w.emu.clock().advance(Duration::from_secs(60));
    }
    let filter = ListThreads {
        limit: Some(2),
        ..ListThreads::default()
    };
    let mut pages = w.client.threads_pages(&w.token, &w.user, filter.clone());
    let mut sizes = Vec::new();
    let mut texts = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        sizes.push(page.len());
        texts.extend(page.into_iter().map(|p| p.text.unwrap_or_default()));
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(texts, ["post 5", "post 4", "post 3", "post 2", "post 1"]);
    assert!(pages.next_page().await.unwrap().is_none());

    let first = w
        .client
        .list_threads(&w.token, &w.user, &filter, None)
        .await
        .unwrap();
    assert!(first.next_cursor().is_some());
    let post = &first.data[0];
    assert!(
        post.posted_at().is_some()
            && post.permalink.is_some()
            && post.media_type.as_deref() == Some("TEXT_POST")
    );
}

#[tokio::test]
async fn a_failed_page_can_be_asked_again() {
    let w = world().await;
    for n in 1..=3 {
        publish_text(&w, &format!("p{n}")).await;
    }
    let mut pages = w.client.threads_pages(
        &w.token,
        &w.user,
        ListThreads {
            limit: Some(2),
            ..ListThreads::default()
        },
    );
    assert_eq!(pages.next_page().await.unwrap().unwrap().len(), 2);
    w.emu
        .inject(FaultPlan::once(Endpoint::Read, Fault::Transient));
    assert!(matches!(
        pages.next_page().await,
        Err(ThreadsError::Transient { .. })
    ));
    assert_eq!(pages.next_page().await.unwrap().unwrap().len(), 1);
    assert!(pages.next_page().await.unwrap().is_none());
}

#[tokio::test]
async fn insights_read_the_counters() {
    let w = world().await;
    let (_, media) = publish_text(&w, "measured").await;
    assert!(w.emu.set_media_insights(
        media.as_str(),
        MediaInsights {
            views: 120,
            likes: 7,
            ..MediaInsights::default()
        }
    ));
    let insights = w
        .client
        .media_insights(&w.token, &media, &[Metric::Views, Metric::Likes])
        .await
        .unwrap();
    let got: Vec<(&str, Option<u64>)> = insights
        .iter()
        .map(|i| (i.name.as_str(), i.value()))
        .collect();
    assert_eq!(got, [("views", Some(120)), ("likes", Some(7))]);
    assert_eq!(
        w.client
            .media_insights(&w.token, &media, &[])
            .await
            .unwrap()
            .len(),
        Metric::ALL.len()
    );
}

#[tokio::test]
async fn delete_removes_once_then_the_object_is_gone() {
    let w = world().await;
    let (_, media) = publish_text(&w, "regret").await;
    let deleted = w.client.delete(&w.token, &media).await.unwrap();
    assert!(deleted.success);
    assert_eq!(deleted.deleted_id.as_ref(), Some(&media));
    let err = w.client.delete(&w.token, &media).await.unwrap_err();
    assert!(
        matches!(err, ThreadsError::PermanentOther { alert: false, .. }),
        "{err:?}"
    );
    assert_eq!(
        w.client
            .publishing_limit(&w.token, &w.user)
            .await
            .unwrap()
            .delete_quota_usage,
        1
    );

    w.emu
        .inject(FaultPlan::once(Endpoint::Delete, Fault::Transient));
    let (_, other) = publish_text(&w, "again").await;
    assert!(matches!(
        w.client.delete(&w.token, &other).await,
        Err(ThreadsError::Transient { .. })
    ));
}

// ---- Transport ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_publish_that_times_out_is_uncertain_and_did_publish() {
    let w = world().await;
    let client = client_for(
        &w.emu.base_url(),
        &w.emu.authorize_url(),
        Duration::from_millis(300),
    );
    let container = client
        .create_container(&w.token, &w.user, &NewContainer::text("slow"))
        .await
        .unwrap();
    w.emu
        .inject(FaultPlan::once(Endpoint::Publish, Fault::Timeout));
    let err = client
        .publish(&w.token, &w.user, &container)
        .await
        .unwrap_err();
    let ThreadsError::UncertainPublish { reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(reason.contains("timed out"), "{reason}");
    assert_eq!(
        client.container_status(&w.token, &container).await.unwrap(),
        ContainerStatus::Published
    );
    assert_eq!(w.emu.published().len(), 1);

    w.emu
        .inject(FaultPlan::once(Endpoint::Read, Fault::Timeout));
    assert!(matches!(
        client.me(&w.token).await,
        Err(ThreadsError::Transient { .. })
    ));
    // A slow answer inside the timeout is just slow.
    w.emu
        .inject(FaultPlan::once(Endpoint::Read, Fault::Slow(50)));
    client.me(&w.token).await.unwrap();
}

#[tokio::test]
async fn a_timed_out_token_exchange_never_shows_the_secret_or_token() {
    let w = world().await;
    let client = client_for(
        &w.emu.base_url(),
        &w.emu.authorize_url(),
        Duration::from_millis(300),
    );
    let short_lived = AccessToken::new(w.emu.issue_short_lived_token(USER));
    w.emu
        .inject(FaultPlan::once(Endpoint::Token, Fault::Timeout));
    let err = client
        .exchange_long_lived(&app(&w.emu), &short_lived)
        .await
        .unwrap_err();
    assert!(matches!(err, ThreadsError::Transient { .. }), "{err:?}");
    let shown = format!("{err:?} {err}");
    assert!(shown.contains("grant_type=th_exchange_token"), "{shown}");
    assert!(
        !shown.contains(short_lived.expose()) && !shown.contains("test_app_secret"),
        "{shown}"
    );
}

#[tokio::test]
async fn connection_refused_is_transient_even_on_publish() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = client_for(
        &base,
        &format!("{base}/oauth/authorize"),
        Duration::from_secs(2),
    );
    let token = AccessToken::new("THnothing");
    let user = UserId::parse(USER).unwrap();
    let err = client
        .publish(&token, &user, &ContainerId::parse("1").unwrap())
        .await
        .unwrap_err();
    let ThreadsError::Transient { reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(reason.contains("could not connect"), "{reason}");
}

/// A one-shot HTTP server that answers `status` with `headers` and `body`, and hands back the
/// request it read.
async fn fake_server(
    status: &str,
    headers: &str,
    body: &str,
) -> (String, tokio::task::JoinHandle<String>) {
    let response = format!(
        "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() >= head_end + 4 + length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        socket.write_all(response.as_bytes()).await.unwrap();
        socket.shutdown().await.ok();
        String::from_utf8_lossy(&request).into_owned()
    });
    (base, task)
}

#[tokio::test]
async fn html_from_a_proxy_is_transient_and_names_the_status() {
    let html = "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>";
    let (base, server) = fake_server("502 Bad Gateway", "content-type: text/html\r\n", html).await;
    let client = client_for(
        &base,
        &format!("{base}/oauth/authorize"),
        Duration::from_secs(2),
    );
    let err = client.me(&AccessToken::new("THtoken")).await.unwrap_err();
    server.await.unwrap();
    let ThreadsError::Transient { reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        reason.contains("HTTP 502") && reason.contains("not JSON"),
        "{reason}"
    );
}

#[tokio::test]
async fn the_token_travels_in_the_authorization_header_and_params_in_the_form() {
    let (base, server) = fake_server(
        "200 OK",
        "content-type: application/json\r\n",
        r#"{"id":"17890000000000001"}"#,
    )
    .await;
    let client = client_for(
        &base,
        &format!("{base}/oauth/authorize"),
        Duration::from_secs(2),
    );
    let user = UserId::parse(USER).unwrap();
    let spec =
        NewContainer::text("héllo & more").reply_to(MediaId::parse("17920000000000009").unwrap());
    let id = client
        .create_container(&AccessToken::new("THsecret-token"), &user, &spec)
        .await
        .unwrap();
    assert_eq!(id.as_str(), "17890000000000001");
    let request = server.await.unwrap();
    let request_line = request.lines().next().unwrap();
    assert_eq!(request_line, format!("POST /v1.0/{USER}/threads HTTP/1.1"));
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer thsecret-token"),
        "{request}"
    );
    assert!(
        request.contains("application/x-www-form-urlencoded"),
        "{request}"
    );
    assert!(
        request.ends_with("media_type=TEXT&text=h%C3%A9llo+%26+more&reply_to_id=17920000000000009"),
        "{request}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed_and_the_location_is_redacted() {
    let location = "location: https://elsewhere.example/v1.0/me?access_token=THleak\r\n";
    let (base, server) = fake_server("302 Found", location, "").await;
    let client = client_for(
        &base,
        &format!("{base}/oauth/authorize"),
        Duration::from_secs(2),
    );
    let err = client.me(&AccessToken::new("THtoken")).await.unwrap_err();
    server.await.unwrap();
    let ThreadsError::PermanentOther { reason, alert, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        *alert && reason.contains("302") && reason.contains("elsewhere.example"),
        "{reason}"
    );
    assert!(!reason.contains("THleak"), "{reason}");
}
