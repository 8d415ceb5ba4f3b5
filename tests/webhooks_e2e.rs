//! Meta's webhooks end to end: the pipeline publishes storms to the Threads emulator (over moto),
//! then the emulator's webhook sender delivers signed `publish`, `delete`, `replies` and
//! `mentions` changes over HTTP to the webhooks function — behind a small front that hands each
//! request over exactly as API Gateway would — and the api function shows what came of them:
//! storms reconciled or marked deleted, and the inbox, newest first, a page at a time.

use std::sync::Arc;

use lambda_http::Body;
use serde_json::{Value, json};
use threads_emulator::webhook::{Change, DeliveryReport, ValuesShape};
use threads_emulator::{Endpoint, Fault, FaultPlan};
use threadstorm::accounts::{Account, AccountStatus, AccountStore};
use threadstorm::api::Api;
use threadstorm::config::Config;
use threadstorm::posts::{PartContent, StatusName, Storm};
use threadstorm::resources::{API, Resource, WEBHOOKS};
use threadstorm::runtime::Deps;
use threadstorm::threads::MediaId;
use threadstorm::threads::UserId as ThreadsUserId;
use threadstorm::webhooks::delivery::Publish;
use threadstorm::webhooks::reconcile;
use threadstorm::webhooks::routes::Webhooks;
use threadstorm_tests::support::gateway::{Front, event, front};
use threadstorm_tests::support::world::{ACCOUNT, Consumer, World, now};

/// Another user's account, for isolation checks.
const OTHER_ACCOUNT: &str = "17841400000000777";

struct E2e {
    w: World,
    api: Api,
    /// The webhooks function's callback URL on the local front.
    url: String,
    /// The ThreadStorm user who owns [`ACCOUNT`], and a session token for them.
    owner: String,
    token: String,
    _front: Front,
}

async fn e2e() -> E2e {
    let w = World::new().await;
    let emu = w.emu.config().clone();
    // Meta signs with the Threads app secret the webhooks function reads from Secrets Manager.
    w.stack
        .aws
        .secrets
        .put_secret_value()
        .secret_id(w.stack.name(Resource::ThreadsAppSecret))
        .secret_string(&emu.app_secret)
        .send()
        .await
        .expect("app secret stored");

    let mut env = w.stack.env(&WEBHOOKS);
    env.insert("THREADS_APP_ID".into(), emu.app_id.clone());
    let config = Config::from_lookup(&WEBHOOKS, |k| env.get(k).cloned()).expect("config");
    let deps = Deps {
        function: &WEBHOOKS,
        config,
        aws: w.stack.aws.clone(),
    };
    let hooks = Arc::new(Webhooks::from_deps(&deps).await.expect("webhooks start"));

    let env = w.stack.env(&API);
    let config = Config::from_lookup(&API, |k| env.get(k).cloned()).expect("config");
    let deps = Deps {
        function: &API,
        config,
        aws: w.stack.aws.clone(),
    };
    let api = Api::from_deps(&deps).await.expect("api starts");

    // The account's owner logs in with Threads, and the account is theirs.
    let login = api
        .users
        .upsert_on_login(&ThreadsUserId::parse(ACCOUNT).unwrap())
        .await
        .unwrap();
    let owner = login.user.user_id.as_str().to_owned();
    w.hand_over(&owner, ACCOUNT).await;
    let token = api
        .sessions
        .issue(&login.user.user_id)
        .await
        .unwrap()
        .token
        .expose()
        .to_owned();

    let served = front(move |req| {
        let hooks = hooks.clone();
        async move { hooks.handle(req).await }
    })
    .await;
    let url = format!("{}/webhooks/threads", served.url);
    E2e {
        w,
        api,
        url,
        owner,
        token,
        _front: served,
    }
}

impl E2e {
    /// Meta delivers these changes for the emulator's user ([`ACCOUNT`]), signed.
    async fn deliver(&self, changes: &[Change], duplicate: bool) -> DeliveryReport {
        let report = self
            .w
            .emu
            .send_webhook(&self.url, changes, ValuesShape::Array, duplicate)
            .await;
        let expected = if duplicate { 2 } else { 1 };
        assert_eq!(report.delivered, expected, "{report:?}");
        report
    }

    async fn get(&self, token: &str, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let auth = format!("Bearer {token}");
        let res = self
            .api
            .handle(event(
                "GET",
                path,
                query,
                &[("Authorization", auth.as_str())],
                None,
                false,
            ))
            .await;
        let status = res.status().as_u16();
        let json = match res.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (status, json)
    }

    async fn post_view(&self, storm: &Storm) -> Value {
        let (status, view) = self
            .get(&self.token, &format!("/v1/posts/{}", storm.id), &[])
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    async fn submit(&self, texts: &[&str], t: i64) -> Storm {
        self.w
            .submit_parts(
                &self.owner,
                &self.w.account,
                texts.iter().map(|t| PartContent::text(*t)).collect(),
                t,
            )
            .await
    }

    /// How many webhook changes of `field` the InboxTable holds.
    async fn stored(&self, field: &str) -> usize {
        let items = self
            .w
            .stack
            .aws
            .dynamodb
            .scan()
            .table_name(self.w.stack.name(Resource::InboxTable))
            .send()
            .await
            .unwrap()
            .items()
            .to_vec();
        items
            .iter()
            .filter(|i| {
                i.get("field")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some(field)
            })
            .count()
    }

    /// Uncertain-part markers the poster left for the account.
    async fn uncertain(&self) -> usize {
        self.w
            .posts
            .uncertain_parts(&self.w.account, now())
            .await
            .unwrap()
            .len()
    }
}

/// Threads' timestamp format, `2024-09-12T23:17:39+0000`.
fn threads_time(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]+0000"
    ))
    .unwrap()
}

fn publish(media_id: &str, at: i64) -> Change {
    Change {
        field: "publish".into(),
        value: json!({
            "id": media_id,
            "media_type": "TEXT_POST",
            "permalink": format!("https://www.threads.net/@user/post/{media_id}"),
            "timestamp": threads_time(at),
            "username": "user",
        }),
    }
}

fn delete(media_id: &str, at: i64) -> Change {
    Change {
        field: "delete".into(),
        value: json!({
            "id": media_id,
            "owner": {"owner_id": ACCOUNT},
            "deleted_at": threads_time(at),
            "timestamp": threads_time(at - 60),
            "username": "user",
        }),
    }
}

fn reply(field: &str, id: &str, root: &str, text: &str, at: i64) -> Change {
    Change {
        field: field.into(),
        value: json!({
            "id": id,
            "username": "a_fan",
            "text": text,
            "media_type": "TEXT_POST",
            "permalink": format!("https://www.threads.net/@a_fan/post/{id}"),
            "replied_to": {"id": root},
            "root_post": {"id": root, "owner_id": ACCOUNT, "username": "user"},
            "shortcode": "abc",
            "timestamp": threads_time(at),
        }),
    }
}

#[tokio::test]
async fn a_published_storm_is_marked_deleted_and_replies_and_mentions_reach_the_owners_inbox() {
    let e = e2e().await;
    let t = now();
    let storm = e.submit(&["first part", "second part"], t).await;
    e.w.drain(t).await;
    let posts = e.w.emu.published();
    assert_eq!(posts.len(), 2);
    let (root, second) = (posts[0].media_id.clone(), posts[1].media_id.clone());
    let view = e.post_view(&storm).await;
    assert_eq!(view["status"], "published");
    assert_eq!(view["deleted"], false);

    // A publish change for a post ThreadStorm already knows only gives it its permalink (the
    // storm's too, for its first part).
    assert_eq!(view.get("permalink"), None);
    let report = e.deliver(&[publish(&root, t)], false).await;
    assert_eq!(report.attempts.len(), 1);
    let link = format!("https://www.threads.net/@user/post/{root}");
    let mut expected = view.clone();
    expected["permalink"] = json!(link);
    expected["parts"][0]["permalink"] = json!(link);
    assert_eq!(e.post_view(&storm).await, expected);
    // The same change, said to concern another account, or with a link that is not Threads',
    // changes nothing of this account's storm.
    let forged = |link: &str| Publish {
        id: MediaId::parse(&second).unwrap(),
        media_type: Some("TEXT_POST".into()),
        permalink: Some(link.into()),
        timestamp: None,
        username: None,
    };
    let other = ThreadsUserId::parse(OTHER_ACCOUNT).unwrap();
    reconcile::publish(
        &e.w.posts,
        &other,
        &forged("https://www.threads.com/@x/post/CROSS"),
        t,
    )
    .await
    .unwrap();
    // A link that is not Threads' own is dropped where the delivery is read.
    let mut evil = publish(&second, t);
    evil.value["permalink"] = json!("https://evil.example/x");
    e.deliver(&[evil], false).await;
    assert_eq!(e.post_view(&storm).await, expected);

    // The first part is deleted on Threads; Meta delivers the change twice.
    e.deliver(&[delete(&root, t + 100)], true).await;
    assert_eq!(
        e.stored("delete").await,
        1,
        "a duplicate delivery is stored once"
    );
    let view = e.post_view(&storm).await;
    assert_eq!(view["status"], "published", "{view}");
    assert_eq!(view["deleted"], true);
    assert_eq!(view["deleted_at"], t + 100);
    assert_eq!(view["parts"][0]["deleted"], true);
    assert_eq!(view["parts"][1].get("deleted"), None);
    let (_, listed) = e.get(&e.token, "/v1/posts", &[]).await;
    assert_eq!(listed["items"][0]["deleted"], true, "{listed}");

    // Then the second part.
    e.deliver(&[delete(&second, t + 200)], false).await;
    let view = e.post_view(&storm).await;
    assert_eq!(view["parts"][1]["deleted_at"], t + 200);
    assert_eq!(view["deleted_at"], t + 100, "the first deletion time stays");

    // Replies and a mention, Meta-escaped non-ASCII text, one reply delivered twice.
    e.deliver(
        &[
            reply(
                "replies",
                "17920000000000901",
                &root,
                "first 🚀 reply",
                t + 10,
            ),
            reply(
                "replies",
                "17920000000000902",
                &second,
                "héllo / second",
                t + 20,
            ),
        ],
        false,
    )
    .await;
    e.deliver(
        &[reply(
            "replies",
            "17920000000000903",
            &root,
            "third",
            t + 30,
        )],
        true,
    )
    .await;
    e.deliver(
        &[reply(
            "mentions",
            "17920000000000904",
            &root,
            "@user look",
            t + 40,
        )],
        false,
    )
    .await;
    assert_eq!(e.stored("replies").await, 3);

    let (status, page) = e.get(&e.token, "/v1/inbox", &[("limit", "3")]).await;
    assert_eq!(status, 200, "{page}");
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "17920000000000904",
            "17920000000000903",
            "17920000000000902"
        ],
        "newest first: {page}"
    );
    assert_eq!(page["items"][0]["field"], "mentions");
    assert_eq!(page["items"][2]["text"], "héllo / second");
    assert_eq!(page["items"][2]["account_id"], ACCOUNT);
    assert_eq!(page["items"][2]["root_post_id"], second);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (status, rest) = e
        .get(
            &e.token,
            "/v1/inbox",
            &[("limit", "3"), ("cursor", &cursor)],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["id"], "17920000000000901");
    assert_eq!(rest["items"][0]["text"], "first 🚀 reply");
    assert_eq!(rest["next_cursor"], Value::Null);
    // No publish or delete record shows as inbox.
    let (_, all) = e.get(&e.token, "/v1/inbox", &[]).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 4, "{all}");
    let (_, only) = e.get(&e.token, "/v1/inbox", &[("account", ACCOUNT)]).await;
    assert_eq!(only["items"], all["items"]);

    // Another user sees none of it, with or without the owner's cursor, and cannot name the
    // owner's account.
    let bob = e
        .api
        .users
        .upsert_on_login(&ThreadsUserId::parse(OTHER_ACCOUNT).unwrap())
        .await
        .unwrap()
        .user;
    AccountStore::new(
        e.w.stack.aws.dynamodb.clone(),
        e.w.stack.name(Resource::AccountsTable),
    )
    .connect(&Account {
        account_id: ThreadsUserId::parse(OTHER_ACCOUNT).unwrap(),
        owner_user_id: bob.user_id.as_str().to_owned(),
        username: "bob".into(),
        status: AccountStatus::Connected,
        sealed_token: Some("sealed".into()),
        token_issued_at: t,
        token_expires_at: t + 5_000_000,
        connected_at: t,
    })
    .await
    .unwrap();
    let bob_token = e.api.sessions.issue(&bob.user_id).await.unwrap().token;
    let bob_token = bob_token.expose();
    for query in [vec![], vec![("cursor", cursor.as_str())]] {
        let (status, theirs) = e.get(bob_token, "/v1/inbox", &query).await;
        assert_eq!(status, 200);
        assert_eq!(theirs["items"], json!([]), "{theirs}");
    }
    let (status, _) = e.get(bob_token, "/v1/inbox", &[("account", ACCOUNT)]).await;
    assert_eq!(status, 404);
    for (name, value) in [
        ("account", "not-an-id"),
        ("limit", "0"),
        ("limit", "101"),
        ("cursor", "bm90IGEgY3Vyc29y"),
    ] {
        let (status, problem) = e.get(&e.token, "/v1/inbox", &[(name, value)]).await;
        assert_eq!(status, 400, "{name}={value}: {problem}");
        assert_eq!(problem["field"], name);
    }
}

#[tokio::test]
async fn a_publish_webhook_settles_a_post_the_poster_gave_up_on_as_uncertain() {
    let e = e2e().await;
    let t = now();
    // Publishing answers code 10 but publishes; the post can then never be found again by
    // listing, so the poster cannot tell its media id and finally gives up.
    e.w.emu
        .inject(FaultPlan::once(Endpoint::Publish, Fault::FalseFailure));
    e.w.emu
        .inject(FaultPlan::rate(Endpoint::Read, Fault::Transient, 1.0));
    let storm = e.submit(&["did it go out?"], t).await;
    e.w.drain(t).await;
    let view = e.post_view(&storm).await;
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(e.uncertain().await, 1);
    let posts = e.w.emu.published();
    assert_eq!(posts.len(), 1, "it did go out");
    let media = posts[0].media_id.clone();

    // Meta reports the post; delivered twice, it is reconciled once.
    e.w.emu.clear_faults();
    let report = e.deliver(&[publish(&media, t + 1)], true).await;
    assert!(report.attempts.iter().all(|a| a.status == Some(200)));
    let view = e.post_view(&storm).await;
    assert_eq!(view["status"], "published", "{view}");
    assert_eq!(view["media_id"], media);
    assert_eq!(view["parts"][0]["media_id"], media);
    assert_eq!(
        view["permalink"],
        format!("https://www.threads.net/@user/post/{media}")
    );
    assert_eq!(view.get("reason"), None);
    assert_eq!(e.uncertain().await, 0);
    assert_eq!(e.stored("publish").await, 1);
    assert_eq!(e.w.emu.published().len(), 1, "nothing was published again");

    // A publish of an unrelated post (made in the Threads app) changes nothing now.
    e.deliver(&[publish("17920000000000555", t + 5)], false)
        .await;
    assert_eq!(e.post_view(&storm).await, view);
}

#[tokio::test]
async fn a_publish_webhook_lets_the_poster_finish_a_storm_whose_part_was_uncertain() {
    let e = e2e().await;
    let t = now();
    let storm = e.submit(&["part one", "part two"], t).await;
    e.w.pass(Consumer::Dedupe, t).await;
    e.w.pass(Consumer::Gate, t).await;
    // Part one publishes; part two answers code 10 but publishes, and cannot be listed.
    e.w.emu.inject(FaultPlan::sequence(
        Endpoint::Publish,
        vec![None, Some(Fault::FalseFailure)],
    ));
    e.w.emu
        .inject(FaultPlan::rate(Endpoint::Read, Fault::Transient, 1.0));
    let (_, answer) = e.w.step(Consumer::Poster, t).await.expect("a batch");
    assert_eq!(
        answer.unwrap().batch_item_failures.len(),
        1,
        "retried later"
    );
    assert_eq!(
        e.w.storm(&storm.id).await.status.name(),
        StatusName::Publishing
    );
    assert_eq!(e.uncertain().await, 1);
    let posts = e.w.emu.published();
    assert_eq!(posts.len(), 2);

    // Meta reports both posts: the first is not uncertain, the second settles part two.
    let report = e
        .deliver(
            &[
                publish(&posts[0].media_id, t),
                publish(&posts[1].media_id, t),
            ],
            false,
        )
        .await;
    assert_eq!(report.attempts.len(), 1);
    let stored = e.w.storm(&storm.id).await;
    assert_eq!(
        stored.status.name(),
        StatusName::Publishing,
        "left to the poster"
    );
    assert_eq!(
        stored.parts[1].media_id.as_ref().map(|m| m.as_str()),
        Some(posts[1].media_id.as_str())
    );

    // The redelivered message finishes the storm with that media id, listing still failing.
    e.w.drain(t).await;
    let view = e.post_view(&storm).await;
    assert_eq!(view["status"], "published", "{view}");
    assert_eq!(view["media_id"], posts[0].media_id);
    assert_eq!(view["parts"][1]["media_id"], posts[1].media_id);
    assert_eq!(e.uncertain().await, 0);
    let published = e.w.emu.published();
    assert_eq!(published.len(), 2, "exactly once each: {published:?}");
    assert_eq!(
        published[1].reply_to_id.as_deref(),
        Some(published[0].media_id.as_str())
    );
}
