//! Sessions and users against moto: a session is issued, verified, renewed and revoked; signing-key
//! rotation logs nobody out but a key two rotations old is refused; tampered and expired tokens are
//! refused; first login creates exactly one user, with the configured admins as super_admin.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::{HeaderMap, HeaderValue, header};
use local_stack::testing::TestStack;
use threadstorm::clock::ManualClock;
use threadstorm::resources::{OAUTH, Resource};
use threadstorm::secrets::{DEFAULT_TTL, SecretReader};
use threadstorm::sessions::{
    Refusal, SessionError, SessionLimits, SessionToken, Sessions, token_from_headers,
};
use threadstorm::threads;
use threadstorm::users::{Role, UserId, Users};
use threadstorm_tests::rotate_secret;

const START: i64 = 1_800_000_000;
const KEY_2: &str = "second-session-signing-key-0123456789-abcdefghijklmnopqrstuvwxyz";
const KEY_3: &str = "third-session-signing-key-0123456789-abcdefghijklmnopqrstuvwxyzA";

struct World {
    t: TestStack,
    clock: Arc<ManualClock>,
}

impl World {
    async fn new() -> World {
        World {
            t: TestStack::new().await,
            clock: Arc::new(ManualClock::at_unix(START)),
        }
    }

    /// The sessions of a function with its own secret cache (a separate warm function).
    fn sessions(&self) -> Sessions {
        self.sessions_with(SessionLimits::default(), DEFAULT_TTL)
    }

    fn sessions_with(&self, limits: SessionLimits, ttl: Duration) -> Sessions {
        let reader = Arc::new(SecretReader::new(self.t.aws.secrets.clone(), ttl));
        let config = self.t.config(&OAUTH).unwrap();
        Sessions::from_config(self.t.aws.dynamodb.clone(), reader, &config)
            .unwrap()
            .with_limits(limits)
            .with_clock(self.clock.clone())
    }

    async fn stored(
        &self,
        token: &SessionToken,
    ) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        let _ = token;
        self.t
            .aws
            .dynamodb
            .scan()
            .table_name(self.t.name(Resource::SessionsTable))
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }

    async fn rotate_key(&self, value: &str) {
        rotate_secret(
            &self.t.aws.secrets,
            &self.t.name(Resource::SessionKeySecret),
            value,
        )
        .await;
    }
}

fn user() -> UserId {
    UserId::parse("9f0c1c9e-5d1e-4a57-9d38-3f1f8f0e9a11").unwrap()
}

fn refused(result: Result<threadstorm::sessions::Session, SessionError>) -> Refusal {
    match result {
        Err(SessionError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_session_is_issued_verified_renewed_and_revoked() {
    let w = World::new().await;
    let sessions = w.sessions();
    let issued = sessions.issue(&user()).await.unwrap();
    assert_eq!(issued.session.user_id, user());
    let cookie = issued.set_cookie();
    assert!(
        cookie.starts_with("__Host-threadstorm_session="),
        "{cookie}"
    );
    assert!(
        cookie.contains("Max-Age=604800; Path=/; HttpOnly; Secure; SameSite=Lax"),
        "{cookie}"
    );

    // Stored by a hash of its id, never the token or the id.
    let items = w.stored(&issued.token).await;
    assert_eq!(items.len(), 1);
    let stored = format!("{items:?}");
    let (id_part, _) = issued.token.expose().split_once('.').unwrap();
    assert!(!stored.contains(id_part), "{stored}");
    assert!(items[0]["id"].as_s().unwrap().starts_with("session#"));
    assert_eq!(
        items[0]["expires_at"].as_n().unwrap(),
        &(START + 12 * 3600).to_string()
    );

    // The same token works as a cookie and as a Bearer credential, in another warm function.
    let other_function = w.sessions();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {}", issued.token.expose())).unwrap(),
    );
    let bearer = token_from_headers(&headers).unwrap();
    let verified = other_function.verify(&bearer).await.unwrap();
    assert_eq!(verified.user_id, user());
    assert!(!verified.renewed, "just issued: no renewal write");

    // Eleven hours later it is still live, and use slides the idle deadline.
    w.clock.advance(Duration::from_secs(11 * 3600));
    let renewed = sessions.verify(&issued.token).await.unwrap();
    assert!(renewed.renewed);
    assert_eq!(renewed.expires_at.unix_timestamp(), START + 23 * 3600);
    // Within the renewal interval nothing is written again.
    w.clock.advance(Duration::from_secs(60));
    assert!(!sessions.verify(&issued.token).await.unwrap().renewed);
    // Past the first 12 hours, alive thanks to the renewal.
    w.clock.advance(Duration::from_secs(2 * 3600));
    assert!(sessions.verify(&issued.token).await.is_ok());

    // Logout revokes it everywhere.
    assert!(sessions.revoke(&issued.token).await.unwrap());
    assert_eq!(
        refused(other_function.verify(&issued.token).await),
        Refusal::Unknown
    );
    assert!(
        !sessions.revoke(&issued.token).await.unwrap(),
        "already gone"
    );
    assert!(w.stored(&issued.token).await.is_empty());
}

#[tokio::test]
async fn an_expired_session_is_refused_although_its_record_still_exists() {
    let w = World::new().await;
    let sessions = w.sessions();
    let idle = sessions.issue(&user()).await.unwrap();
    w.clock.advance(Duration::from_secs(12 * 3600));
    assert_eq!(
        refused(sessions.verify(&idle.token).await),
        Refusal::Expired
    );
    assert_eq!(
        w.stored(&idle.token).await.len(),
        1,
        "TTL has not deleted it (moto never does)"
    );

    // An active session still ends at its absolute limit.
    let active = sessions.issue(&user()).await.unwrap();
    let absolute_end = active.session.absolute_expires_at;
    let mut refusal = None;
    for _ in 0..20 {
        w.clock.advance(Duration::from_secs(11 * 3600));
        match sessions.verify(&active.token).await {
            Ok(session) => assert!(session.expires_at <= absolute_end),
            Err(err) => {
                refusal = Some(refused(Err(err)));
                break;
            }
        }
    }
    assert_eq!(refusal, Some(Refusal::Expired));
    assert!(
        w.clock_now() >= absolute_end,
        "used every 11 hours, it lived 7 days"
    );
}

impl World {
    fn clock_now(&self) -> time::OffsetDateTime {
        use threadstorm::clock::Clock;
        self.clock.now()
    }
}

#[tokio::test]
async fn key_rotation_keeps_sessions_but_a_key_two_rotations_old_is_refused() {
    let w = World::new().await;
    let issued = w.sessions().issue(&user()).await.unwrap();

    w.rotate_key(KEY_2).await;
    // Signed with what is now AWSPREVIOUS: still verifies.
    let after_one = w.sessions();
    assert!(after_one.verify(&issued.token).await.is_ok());
    let newer = after_one.issue(&user()).await.unwrap();

    w.rotate_key(KEY_3).await;
    let after_two = w.sessions();
    assert!(
        after_two.verify(&newer.token).await.is_ok(),
        "signed with AWSPREVIOUS"
    );
    assert_eq!(
        refused(after_two.verify(&issued.token).await),
        Refusal::BadSignature,
        "signed with a key that is neither current nor previous"
    );
}

#[tokio::test]
async fn a_warm_function_rereads_the_key_when_a_newer_one_signed_the_token() {
    let w = World::new().await;
    let no_wait = SessionLimits {
        key_refresh_after: Duration::ZERO,
        ..SessionLimits::default()
    };
    let warm = w.sessions_with(no_wait, DEFAULT_TTL);
    let stubborn = w.sessions_with(
        SessionLimits {
            key_refresh_after: Duration::from_secs(3600),
            ..SessionLimits::default()
        },
        DEFAULT_TTL,
    );
    let before = warm.issue(&user()).await.unwrap();
    stubborn.verify(&before.token).await.unwrap();

    w.rotate_key(KEY_2).await;
    let fresh = w.sessions().issue(&user()).await.unwrap();
    // Both cached the old key; the one allowed to re-read accepts the new session at once.
    assert!(warm.verify(&fresh.token).await.is_ok());
    assert_eq!(
        refused(stubborn.verify(&fresh.token).await),
        Refusal::BadSignature
    );
}

#[tokio::test]
async fn tampered_forged_and_malformed_tokens_are_refused() {
    let w = World::new().await;
    let sessions = w.sessions();
    let issued = sessions.issue(&user()).await.unwrap();
    let token = issued.token.expose();
    let (id, sig) = token.split_once('.').unwrap();

    let flip = |s: &str| {
        let mut c: Vec<char> = s.chars().collect();
        c[5] = if c[5] == 'x' { 'y' } else { 'x' };
        c.into_iter().collect::<String>()
    };
    // Tampered signature; another id under the same signature.
    for bad in [format!("{id}.{}", flip(sig)), format!("{}.{sig}", flip(id))] {
        assert_eq!(
            refused(sessions.verify(&SessionToken::new(bad)).await),
            Refusal::BadSignature
        );
    }
    for bad in [
        "",
        "x",
        &format!("{id}."),
        &format!("{token}.x"),
        &format!("{id}{sig}"),
    ] {
        assert_eq!(
            refused(sessions.verify(&SessionToken::new(bad)).await),
            Refusal::Malformed,
            "{bad:?}"
        );
    }
    // Errors never carry the token.
    let err = sessions
        .verify(&SessionToken::new(format!("{id}.{}", flip(sig))))
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains(id));
    // A forged token cannot revoke anything either.
    assert!(
        sessions
            .revoke(&SessionToken::new(format!("{id}.{}", flip(sig))))
            .await
            .is_err()
    );
    assert!(sessions.verify(&issued.token).await.is_ok());
}

fn tid(raw: &str) -> threads::UserId {
    threads::UserId::parse(raw).unwrap()
}

#[tokio::test]
async fn first_login_creates_one_user_and_later_logins_find_it() {
    let t = TestStack::new().await;
    let table = t.name(Resource::UsersTable);
    let admin = tid("17841400000000001");
    let users = Users::new(t.aws.dynamodb.clone(), &table, [admin.clone()]);

    let first = users
        .upsert_on_login(&tid("17841405793187218"))
        .await
        .unwrap();
    assert!(first.first_login);
    assert_eq!(first.user.role, Role::User);
    assert_eq!(first.user.threads_user_id, tid("17841405793187218"));
    assert!(uuid::Uuid::parse_str(first.user.user_id.as_str()).is_ok());

    let again = users
        .upsert_on_login(&tid("17841405793187218"))
        .await
        .unwrap();
    assert!(!again.first_login);
    assert_eq!(again.user, first.user);
    assert_eq!(
        users.get(&first.user.user_id).await.unwrap(),
        Some(first.user.clone())
    );

    let boss = users.upsert_on_login(&admin).await.unwrap();
    assert_eq!(boss.user.role, Role::SuperAdmin);

    // The ByThreadsUser index finds exactly the user, not the guard item.
    let by_threads = t
        .aws
        .dynamodb
        .query()
        .table_name(&table)
        .index_name("ByThreadsUser")
        .key_condition_expression("threads_user_id = :t")
        .expression_attribute_values(":t", AttributeValue::S("17841405793187218".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(by_threads.count(), 1);
}

#[tokio::test]
async fn racing_first_logins_create_exactly_one_user() {
    let t = TestStack::new().await;
    let users = Arc::new(Users::new(
        t.aws.dynamodb.clone(),
        t.name(Resource::UsersTable),
        [],
    ));
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let users = users.clone();
            tokio::spawn(async move { users.upsert_on_login(&tid("17841405793187299")).await })
        })
        .collect();
    let mut logins = Vec::new();
    for racer in racers {
        logins.push(racer.await.unwrap().unwrap());
    }
    let created = logins.iter().filter(|l| l.first_login).count();
    assert_eq!(created, 1);
    assert!(logins.iter().all(|l| l.user == logins[0].user));
}

#[tokio::test]
async fn admins_come_from_configuration_and_the_role_is_read_fresh() {
    let t = TestStack::new().await;
    let mut env = t.env(&OAUTH);
    env.insert("ADMIN_THREADS_USER_IDS".into(), "17841400000000007".into());
    let config =
        threadstorm::config::Config::from_lookup(&OAUTH, |name| env.get(name).cloned()).unwrap();
    let users = Users::from_config(t.aws.dynamodb.clone(), &config).unwrap();
    let login = users
        .upsert_on_login(&tid("17841400000000007"))
        .await
        .unwrap();
    assert_eq!(login.user.role, Role::SuperAdmin);

    // A role changed in the table is what the next read sees (the session does not carry it).
    t.aws
        .dynamodb
        .update_item()
        .table_name(t.name(Resource::UsersTable))
        .key("user_id", AttributeValue::S(login.user.user_id.to_string()))
        .update_expression("SET #r = :r")
        .expression_attribute_names("#r", "role")
        .expression_attribute_values(":r", AttributeValue::S("pro".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        users.get(&login.user.user_id).await.unwrap().unwrap().role,
        Role::Pro
    );
    // Later logins never change the role back.
    let again = users
        .upsert_on_login(&tid("17841400000000007"))
        .await
        .unwrap();
    assert_eq!(again.user.role, Role::Pro);
}
