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
