//! Rolling quotas and threads_publishing_limit, deletion, and the read side.

mod common;

use std::time::Duration;

use common::{Harness, USER};
use threads_emulator::{EmulatorConfig, MediaInsights, Quotas};

const ALL_FIELDS: &str =
    "quota_usage,config,reply_quota_usage,reply_config,delete_quota_usage,delete_config";

fn small_quotas() -> EmulatorConfig {
    EmulatorConfig {
        quotas: Quotas {
            posts: 2,
            replies: 2,
            deletes: 1,
            ..Quotas::default()
        },
        ..EmulatorConfig::default()
    }
}

#[tokio::test]
async fn publishing_limit_has_the_reference_shape() {
    let h = Harness::new().await;
    let path = format!("/v1.0/{USER}/threads_publishing_limit");
    assert_eq!(
        h.get_auth(&path, &[]).await.body,
        r#"{"data":[{"quota_usage":0}]}"#
    );
    let full = h.get_auth(&path, &[("fields", ALL_FIELDS)]).await;
    assert_eq!(
        full.body,
        concat!(
            r#"{"data":[{"quota_usage":0,"config":{"quota_total":250,"quota_duration":86400},"#,
            r#""reply_quota_usage":0,"reply_config":{"quota_total":1000,"quota_duration":86400},"#,
            r#""delete_quota_usage":0,"delete_config":{"quota_total":100,"quota_duration":86400}}]}"#
        )
    );
    assert_eq!(h.emu.calls().publishing_limit, 2);
}

#[tokio::test]
async fn posts_replies_and_deletes_have_separate_rolling_quotas() {
    let h = Harness::with(small_quotas()).await;
    let (_, first) = h.post_text("one").await;
    h.emu.clock().advance(Duration::from_secs(3_600));
    let (_, second) = h.post_text("two").await;
    let third = h.create_text("three").await.id();
    let refused = h.publish(&third).await;
    assert_eq!(refused.status, 400);
    let error = &refused.json()["error"];
    assert_eq!(error["code"], 4);
    assert_eq!(error["message"], "Application request limit reached");
    assert_eq!(error["is_transient"], true);
    // Replies still have room: a reply is not a post.
    h.reply(&first, "r1").await;
    h.reply(&second, "r2").await;
    let r3 = h
        .create(&[
            ("media_type", "TEXT"),
            ("text", "r3"),
            ("reply_to_id", &first),
        ])
        .await
        .id();
    assert_eq!(h.publish(&r3).await.code(), Some(4));
    let usage = h
        .get_auth(
            &format!("/v1.0/{USER}/threads_publishing_limit"),
            &[("fields", ALL_FIELDS)],
        )
        .await
        .json();
    assert_eq!(usage["data"][0]["quota_usage"], 2);
    assert_eq!(usage["data"][0]["reply_quota_usage"], 2);
    assert_eq!(usage["data"][0]["config"]["quota_total"], 2);

    // 24 hours after the first post, one slot frees; the same container publishes.
    h.emu.clock().advance(Duration::from_secs(23 * 3_600));
    assert_eq!(h.publish(&third).await.status, 200);
    assert_eq!(h.emu.published().len(), 5);

    let deleted = h.delete(&format!("/v1.0/{first}")).await;
    assert_eq!(
        deleted.body,
        format!(r#"{{"success":true,"deleted_id":"{first}"}}"#)
    );
    assert_eq!(h.delete(&format!("/v1.0/{second}")).await.code(), Some(4));
    assert_eq!(h.emu.calls().delete, 2);
}

#[tokio::test]
async fn a_deleted_post_is_gone_but_its_replies_stay() {
    let h = Harness::new().await;
    let (_, root) = h.post_text("root").await;
    let (_, reply) = h.reply(&root, "reply").await;
    assert_eq!(h.delete(&format!("/v1.0/{root}")).await.status, 200);
    let gone = h.get_auth(&format!("/v1.0/{root}"), &[]).await;
    assert_eq!((gone.code(), gone.subcode()), (Some(100), Some(33)));
    assert_eq!(h.get_auth(&format!("/v1.0/{reply}"), &[]).await.status, 200);
    assert_eq!(h.delete(&format!("/v1.0/{root}")).await.code(), Some(100));
    let token = h.emu.issue_token_with_scopes(USER, &["threads_basic"]);
    let a = h
        .http
        .delete(h.url(&format!("/v1.0/{reply}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 500);
}

#[tokio::test]
async fn the_threads_list_pages_newest_first_with_graph_fields() {
    let h = Harness::new().await;
    h.emu.clock().set(1_726_183_059);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(h.post_text(&format!("post {i}")).await.1);
        h.emu.clock().advance(Duration::from_secs(60));
    }
    h.reply(&ids[0], "a reply is not listed").await;
    let fields = "id,media_type,permalink,text,timestamp,shortcode,is_reply,username";
    let page = h
        .get_auth("/v1.0/me/threads", &[("fields", fields), ("limit", "2")])
        .await
        .json();
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], ids[4].as_str());
    assert_eq!(data[1]["id"], ids[3].as_str());
    assert_eq!(data[0]["media_type"], "TEXT_POST");
    assert_eq!(data[0]["is_reply"], false);
    assert_eq!(data[0]["text"], "post 4");
    let timestamp = data[0]["timestamp"].as_str().unwrap();
    assert!(
        timestamp.starts_with("2024-09-12T23:2") && timestamp.ends_with("+0000"),
        "{timestamp}"
    );
    assert_eq!(timestamp.len(), "2024-09-12T23:17:39+0000".len());
    let shortcode = data[0]["shortcode"].as_str().unwrap();
    assert_eq!(
        data[0]["permalink"],
        format!("https://www.threads.com/@storm_tester/post/{shortcode}")
    );
    assert!(page["paging"]["cursors"]["after"].is_string());
    // Follow `next` as a client would.
    let next = page["paging"]["next"].as_str().unwrap().to_string();
    assert!(next.starts_with(&h.emu.base_url()));
    let page2: serde_json::Value = h
        .http
        .get(&next)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids2: Vec<_> = page2["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids2, [ids[2].as_str(), ids[1].as_str()]);
    let next = page2["paging"]["next"].as_str().unwrap().to_string();
    let page3: serde_json::Value = h
        .http
        .get(&next)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page3["data"].as_array().unwrap().len(), 1);
    assert!(page3["paging"].get("next").is_none());
    // since/until bound the list by publish time.
    let since = (1_726_183_059 + 150).to_string();
    let recent = h
        .get_auth("/v1.0/me/threads", &[("since", &since)])
        .await
        .json();
    assert_eq!(recent["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn media_and_profile_fields_and_status_only_on_containers() {
    let h = Harness::new().await;
    let (container, media) = h.post_text("hello https://x.example").await;
    let a = h
        .get_auth(&format!("/v1.0/{media}"), &[("fields", "status")])
        .await;
    assert_eq!(
        a.json()["error"]["message"],
        "Tried accessing nonexisting field (status)"
    );
    assert_eq!(h.status(&container).await.json()["status"], "PUBLISHED");
    let me = h
        .get_auth(
            "/v1.0/me",
            &[(
                "fields",
                "id,username,name,threads_profile_picture_url,threads_biography,is_verified",
            )],
        )
        .await
        .json();
    assert_eq!(me["id"], USER);
    assert_eq!(me["username"], "storm_tester");
    assert_eq!(me["is_verified"], false);
    assert_eq!(
        h.get_auth("/v1.0/me", &[]).await.body,
        format!(r#"{{"id":"{USER}"}}"#)
    );
    let replies = h
        .get_auth(&format!("/v1.0/{media}/replies"), &[("fields", "id,text")])
        .await;
    assert_eq!(replies.body, r#"{"data":[]}"#);
    let (_, reply) = h.reply(&media, "first!").await;
    let replies = h
        .get_auth(&format!("/v1.0/{media}/replies"), &[("fields", "id,text")])
        .await;
    assert_eq!(replies.json()["data"][0]["id"], reply.as_str());
    let (_, deeper) = h.reply(&reply, "deeper").await;
    let conversation = h
        .get_auth(&format!("/v1.0/{media}/conversation"), &[])
        .await
        .json();
    assert_eq!(conversation["data"].as_array().unwrap().len(), 2);
    assert_eq!(conversation["data"][0]["id"], deeper.as_str());
}

#[tokio::test]
async fn insights_come_from_settable_counters_in_the_reference_item_shape() {
    let h = Harness::new().await;
    let (_, media) = h.post_text("count me").await;
    assert!(h.emu.set_media_insights(
        &media,
        MediaInsights {
            views: 1234,
            likes: 5,
            ..MediaInsights::default()
        }
    ));
    let a = h
        .get_auth(
            &format!("/v1.0/{media}/insights"),
            &[("metric", "views,likes")],
        )
        .await;
    let item = &a.json()["data"][0];
    assert_eq!(item["name"], "views");
    assert_eq!(item["period"], "lifetime");
    assert_eq!(item["values"], serde_json::json!([{"value": 1234}]));
    assert_eq!(item["title"], "Views");
    assert_eq!(item["id"], format!("{media}/insights/views/lifetime"));
    assert!(a.body.contains(r#""name":"views","period":"lifetime","values":[{"value":1234}],"title":"Views","description":"#));
    assert_eq!(a.json()["data"][1]["values"][0]["value"], 5);
    let bad = h
        .get_auth(
            &format!("/v1.0/{media}/insights"),
            &[("metric", "followers")],
        )
        .await;
    assert_eq!(bad.code(), Some(100));
    // Counters can also be set over HTTP.
    let set = h
        .post_json(
            "/_emulator/insights",
            &serde_json::json!({"media_id": media, "views": 7}),
        )
        .await;
    assert_eq!(set.status, 200);
    let a = h
        .get_auth(&format!("/v1.0/{media}/insights"), &[("metric", "views")])
        .await;
    assert_eq!(a.json()["data"][0]["values"][0]["value"], 7);
}

/// 2026-12-03T12:00:00Z: in Meta's days (midnight to midnight Pacific, `end_time` 07:00 UTC)
/// that is 3 December, which ends at 2026-12-04T07:00:00+0000.
const NOON: i64 = 1_796_299_200;
const DAY: i64 = 86_400;
const ALL_USER_METRICS: &str = "views,likes,replies,reposts,quotes,clicks,followers_count";

/// Two posts and a reply published at NOON with counters set, and 57 followers.
async fn profile_with_posts() -> (Harness, [String; 3]) {
    let mut h = Harness::new().await;
    h.emu.clock().set(NOON);
    h.token = h.emu.issue_long_lived_token(USER);
    let (_, first) = h.post_text("one https://example.com/a").await;
    let (_, second) = h.post_text("two").await;
    let (_, reply) = h.reply(&first, "a reply").await;
    for (media, views, likes, clicks) in
        [(&first, 100, 4, 7), (&second, 20, 1, 5), (&reply, 3, 0, 0)]
    {
        assert!(h.emu.set_media_insights(
            media,
            MediaInsights {
                views,
                likes,
                replies: 1,
                quotes: 2,
                clicks,
                ..MediaInsights::default()
            }
        ));
    }
    h.emu.set_followers_count(USER, 57);
    (h, [first, second, reply])
}

#[tokio::test]
async fn profile_insights_give_views_by_day_and_the_rest_as_totals() {
    let (h, [_, second, _]) = profile_with_posts().await;
    let path = format!("/v1.0/{USER}/threads_insights");
    let a = h.get_auth(&path, &[("metric", ALL_USER_METRICS)]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let body = a.json();
    let data = body["data"].as_array().unwrap();
    let names: Vec<&str> = data.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "views",
            "likes",
            "replies",
            "reposts",
            "quotes",
            "clicks",
            "followers_count"
        ]
    );
    // Without since/until: yesterday through today, one value a day.
    assert_eq!(
        data[0],
        serde_json::json!({
            "name": "views",
            "period": "day",
            "values": [
                {"value": 0, "end_time": "2026-12-03T07:00:00+0000"},
                {"value": 123, "end_time": "2026-12-04T07:00:00+0000"}
            ],
            "title": "views",
            "description": "The number of times your profile was viewed.",
            "id": format!("{USER}/insights/views/day")
        })
    );
    assert!(data[0].get("total_value").is_none());
    let total = |i: usize| data[i]["total_value"]["value"].as_i64();
    assert_eq!(
        (total(1), total(2), total(3), total(4), total(6)),
        (Some(5), Some(3), Some(0), Some(6), Some(57))
    );
    for item in &data[1..] {
        assert!(item.get("values").is_none(), "{item}");
        assert_eq!(item["period"], "day");
    }
    // Clicks are counted per link; a post without a link has none to count.
    assert_eq!(
        data[5]["link_total_values"],
        serde_json::json!([{"value": 7, "link_url": "https://example.com/a"}])
    );
    assert_eq!(
        data[6]["id"],
        format!("{USER}/insights/followers_count/day")
    );
    // The raw text keeps Meta's key order.
    assert!(
        a.body.contains(r#"{"name":"likes","period":"day","title":"likes","description":"The number of likes on your posts.","total_value":{"value":5},"id":""#),
        "{}",
        a.body
    );

    // `me` is the caller too; a deleted post no longer counts.
    assert_eq!(h.delete(&format!("/v1.0/{second}")).await.status, 200);
    let me = h
        .get_auth("/v1.0/me/threads_insights", &[("metric", "views,likes")])
        .await;
    assert_eq!(me.json()["data"][0]["values"][1]["value"], 103);
    assert_eq!(me.json()["data"][1]["total_value"]["value"], 4);
    // Followers can be set over HTTP too.
    let set = h
        .post_json(
            "/_emulator/followers",
            &serde_json::json!({"user_id": USER, "followers_count": 9}),
        )
        .await;
    assert_eq!(set.status, 200);
    let followers = h.get_auth(&path, &[("metric", "followers_count")]).await;
    assert_eq!(followers.json()["data"][0]["total_value"]["value"], 9);
    let calls = h.emu.calls();
    assert_eq!((calls.user_insights, calls.insights), (3, 0));
}

#[tokio::test]
async fn profile_insights_cover_since_through_until_and_followers_ignore_them() {
    let (h, _) = profile_with_posts().await;
    let path = format!("/v1.0/{USER}/threads_insights");
    let ask = |since: i64, until: i64| {
        let (since, until) = (since.to_string(), until.to_string());
        let h = &h;
        let path = &path;
        async move {
            let a = h
                .get_auth(
                    path,
                    &[
                        ("metric", "views,likes,followers_count"),
                        ("since", &since),
                        ("until", &until),
                    ],
                )
                .await;
            assert_eq!(a.status, 200, "{}", a.body);
            a.json()["data"].clone()
        }
    };
    // A week up to now: seven days of values, the posts on the last.
    let week = ask(NOON - 6 * DAY, NOON + 60).await;
    let views: Vec<i64> = week[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_i64().unwrap())
        .collect();
    assert_eq!(views, [0, 0, 0, 0, 0, 0, 123]);
    assert_eq!(week[1]["total_value"]["value"], 5);
    // A range that ends before the posts: nothing counted, but followers are the count now.
    let before = ask(NOON - 3 * DAY, NOON - DAY).await;
    assert_eq!(before[0]["values"].as_array().unwrap().len(), 3);
    assert!(
        before[0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["value"] == 0)
    );
    assert_eq!(before[1]["total_value"]["value"], 0);
    assert_eq!(before[2]["total_value"]["value"], 57);
    // Days still to come have no values.
    let ahead = ask(NOON - 60, NOON + 5 * DAY).await;
    assert_eq!(ahead[0]["values"].as_array().unwrap().len(), 1);
    assert_eq!(ahead[1]["total_value"]["value"], 5);
    // The earliest since Meta accepts.
    let earliest = ask(1_712_991_600, NOON + 60).await;
    assert_eq!(earliest[1]["total_value"]["value"], 5);
}

#[tokio::test]
async fn profile_insights_are_refused_as_graph_refuses_them() {
    let (h, _) = profile_with_posts().await;
    let path = format!("/v1.0/{USER}/threads_insights");
    let noon = NOON.to_string();
    let refused = [
        vec![("metric", "shares")],
        vec![("metric", "views,impressions")],
        vec![],
        vec![
            ("metric", "views"),
            ("since", "1712991599"),
            ("until", &noon),
        ],
        vec![
            ("metric", "views"),
            ("since", &noon),
            ("until", "1712991600"),
        ],
        vec![("metric", "views"), ("since", "yesterday")],
        vec![("metric", "views"), ("until", "-9223372036854775808")],
        vec![
            ("metric", "views"),
            ("since", "9223372036854775807"),
            ("until", "1712991600"),
        ],
    ];
    for query in refused {
        let a = h.get_auth(&path, &query).await;
        assert_eq!(
            (a.status, a.code()),
            (400, Some(100)),
            "{query:?}: {}",
            a.body
        );
    }
    let bad = h.get_auth(&path, &[("metric", "views,impressions")]).await;
    let message = bad.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("metric[1] must be one of"), "{message}");
    // Only the caller's own profile.
    let other = h
        .get_auth(
            "/v1.0/17841400000000999/threads_insights",
            &[("metric", "views")],
        )
        .await;
    assert_eq!((other.code(), other.subcode()), (Some(100), Some(33)));
    // threads_manage_insights is needed.
    let basic = h.emu.issue_token_with_scopes(USER, &["threads_basic"]);
    let a = h
        .get(&path, &[("metric", "views"), ("access_token", &basic)])
        .await;
    assert_eq!(a.code(), Some(10));
    // A revoked token, then an expired one: 190.
    let revoked = h.emu.issue_long_lived_token(USER);
    h.emu.revoke_token(&revoked);
    let a = h
        .get(&path, &[("metric", "views"), ("access_token", &revoked)])
        .await;
    assert_eq!((a.code(), a.subcode()), (Some(190), Some(460)));
    h.emu
        .clock()
        .advance(std::time::Duration::from_secs(61 * DAY as u64));
    let a = h.get_auth(&path, &[("metric", "views")]).await;
    assert_eq!((a.status, a.code()), (400, Some(190)), "{}", a.body);
    assert_eq!(h.emu.calls().user_insights, 13);
}
