//! Containers and publishing: validation at creation, the state machine on the clock, the
//! exact not-ready envelope, republish, replies and the publish record.

mod common;

use std::time::Duration;

use common::{Harness, USER};
use threads_emulator::{ContainerStatus, EmulatorConfig};

const TEXT_TOO_LONG: &str = "Param text must be at most 500 characters long.";

#[tokio::test]
async fn case_p1_five_hundred_bytes_pass_and_five_hundred_and_one_fail() {
    let h = Harness::new().await;
    let exactly = format!("{}🚀", "a".repeat(496));
    assert_eq!(exactly.len(), 500);
    let a = h.create_text(&exactly).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.starts_with(r#"{"id":"1789"#));

    let over = format!("{}🚀", "a".repeat(497));
    let quotes = format!("{}’’’", "a".repeat(495));
    assert_eq!((quotes.chars().count(), quotes.len()), (498, 504));
    for text in [over, quotes] {
        let a = h.create_text(&text).await;
        assert_eq!(a.status, 400);
        let error = &a.json()["error"];
        assert_eq!(error["message"], TEXT_TOO_LONG);
        assert_eq!(error["code"], 100);
        assert_eq!(error["is_transient"], false);
        assert!(error["fbtrace_id"].is_string());
    }
    assert!(h.emu.published().is_empty());
}

#[tokio::test]
async fn a_container_goes_in_progress_finished_published_on_the_clock() {
    let h = Harness::with(EmulatorConfig {
        readiness_delay: Duration::from_secs(5),
        ..EmulatorConfig::default()
    })
    .await;
    let container = h.create_text("hello").await.id();
    assert_eq!(container.len(), 17);
    let status = h.status(&container).await;
    assert_eq!(
        status.body,
        format!(r#"{{"id":"{container}","status":"IN_PROGRESS"}}"#)
    );

    let early = h.publish(&container).await;
    assert_eq!(early.status, 400);
    let prefix = r#"{"error":{"message":"The requested resource does not exist","type":"OAuthException","code":24,"error_subcode":4279009,"is_transient":false,"error_user_title":"Media Not Found","#;
    assert!(early.body.starts_with(prefix), "{}", early.body);
    assert!(h.emu.published().is_empty());

    h.emu.clock().advance(Duration::from_secs(5));
    assert_eq!(h.status(&container).await.json()["status"], "FINISHED");
    let media = h.publish(&container).await.id();
    assert_ne!(media, container);
    assert!(media.starts_with("1792") && media.len() == 17);
    assert_eq!(h.status(&container).await.json()["status"], "PUBLISHED");
    assert_eq!(
        h.emu.container_status(&container),
        Some(ContainerStatus::Published)
    );
    let record = h.emu.published();
    assert_eq!(record.len(), 1);
    assert_eq!(record[0].media_id, media);
    assert_eq!(record[0].container_id, container);
    assert_eq!(record[0].owner_user_id, USER);
    assert_eq!(record[0].text.as_deref(), Some("hello"));
    assert_eq!(record[0].media_type, "TEXT");
    assert_eq!(record[0].reply_to_id, None);
}

#[tokio::test]
async fn publishing_shortly_after_finished_can_still_be_not_found() {
    let h = Harness::with(EmulatorConfig {
        not_found_after_ready: Duration::from_secs(3),
        ..EmulatorConfig::default()
    })
    .await;
    let container = h.create_text("eventually consistent").await.id();
    assert_eq!(h.status(&container).await.json()["status"], "FINISHED");
    assert_eq!(h.publish(&container).await.subcode(), Some(4279009));
    h.emu.clock().advance(Duration::from_secs(3));
    assert_eq!(h.publish(&container).await.status, 200);
}

#[tokio::test]
async fn a_container_publishes_once_and_a_second_publish_is_refused() {
    let h = Harness::new().await;
    let (container, media) = h.post_text("only once").await;
    let again = h.publish(&container).await;
    assert_eq!(again.status, 400);
    assert_eq!(again.code(), Some(100));
    assert_eq!(
        again.json()["error"]["error_user_title"],
        "Media Already Published"
    );
    assert!(
        again.json()["error"]["error_user_msg"]
            .as_str()
            .unwrap()
            .contains(&media)
    );
    assert_eq!(h.emu.published().len(), 1);
    assert_eq!(h.emu.calls().publish, 2);
}

#[tokio::test]
async fn an_unpublished_container_expires_after_24_hours() {
    let h = Harness::new().await;
    let container = h.create_text("too late").await.id();
    h.emu.clock().advance(Duration::from_secs(86_400));
    assert_eq!(h.status(&container).await.json()["status"], "EXPIRED");
    let a = h.publish(&container).await;
    assert_eq!(a.code(), Some(100));
    assert!(h.emu.published().is_empty());
}

#[tokio::test]
async fn a_storm_is_a_reply_chain_in_the_record_in_order() {
    let h = Harness::new().await;
    let (_, root) = h.post_text("part 1").await;
    let (_, second) = h.reply(&root, "part 2").await;
    let (_, third) = h.reply(&second, "part 3").await;
    let record = h.emu.published();
    let texts: Vec<_> = record.iter().map(|p| p.text.clone().unwrap()).collect();
    assert_eq!(texts, ["part 1", "part 2", "part 3"]);
    assert_eq!(record[1].reply_to_id.as_deref(), Some(root.as_str()));
    assert_eq!(record[2].reply_to_id.as_deref(), Some(second.as_str()));
    assert_eq!(
        record.iter().map(|p| p.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let read = h
        .get_auth(
            &format!("/v1.0/{third}"),
            &[("fields", "id,is_reply,replied_to,root_post")],
        )
        .await;
    assert_eq!(
        read.body,
        format!(
            r#"{{"id":"{third}","is_reply":true,"replied_to":{{"id":"{second}"}},"root_post":{{"id":"{root}"}}}}"#
        )
    );
}

#[tokio::test]
async fn reply_to_a_container_id_or_an_unknown_id_is_code_100() {
    let h = Harness::new().await;
    let (container, _) = h.post_text("parent").await;
    for parent in [container.as_str(), "17920000000099999"] {
        let a = h
            .create(&[
                ("media_type", "TEXT"),
                ("text", "reply"),
                ("reply_to_id", parent),
            ])
            .await;
        assert_eq!(a.status, 400);
        assert_eq!(a.code(), Some(100), "{}", a.body);
    }
}

#[tokio::test]
async fn missing_scopes_are_code_10() {
    let h = Harness::new().await;
    let basic = h.emu.issue_token_with_scopes(USER, &["threads_basic"]);
    let a = h
        .create_with(&basic, &[("media_type", "TEXT"), ("text", "hi")])
        .await;
    assert_eq!(a.status, 500);
    assert_eq!(a.code(), Some(10));
    assert_eq!(
        a.json()["error"]["message"],
        "Application does not have permission for this action"
    );
    let (_, root) = h.post_text("root").await;
    let publisher = h
        .emu
        .issue_token_with_scopes(USER, &["threads_basic", "threads_content_publish"]);
    let reply = h
        .create_with(
            &publisher,
            &[
                ("media_type", "TEXT"),
                ("text", "r"),
                ("reply_to_id", &root),
            ],
        )
        .await;
    assert_eq!(reply.code(), Some(10));
}

#[tokio::test]
async fn more_than_five_unique_links_fail_at_creation() {
    let h = Harness::new().await;
    let five =
        "https://a.example https://b.example/x https://c.example www.d.example https://e.example";
    assert_eq!(h.create_text(five).await.status, 200);
    let repeated = format!("{five} https://a.example/ (https://b.example/x)");
    assert_eq!(h.create_text(&repeated).await.status, 200);
    let six = format!("{five} https://f.example");
    let a = h.create_text(&six).await;
    assert_eq!(a.status, 400);
    assert!(
        a.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("THREADS_API__LINK_LIMIT_EXCEEDED")
    );
    // A link attachment that differs from the text's links is one more.
    let a = h
        .create(&[
            ("media_type", "TEXT"),
            ("text", five),
            ("link_attachment", "https://f.example"),
        ])
        .await;
    assert!(a.body.contains("THREADS_API__LINK_LIMIT_EXCEEDED"));
    let a = h
        .create(&[
            ("media_type", "TEXT"),
            ("text", five),
            ("link_attachment", "https://a.example"),
        ])
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn topic_tag_link_attachment_and_alt_text_rules() {
    let h = Harness::new().await;
    let text = [("media_type", "TEXT"), ("text", "t")];
    let with = |extra: (&'static str, String)| {
        let mut params: Vec<(&str, String)> =
            text.iter().map(|(k, v)| (*k, v.to_string())).collect();
        params.push(extra);
        params
    };
    for (tag, ok) in [
        ("rust".to_string(), true),
        ("x".repeat(50), true),
        ("é".repeat(50), true),
        ("x".repeat(51), false),
        (String::new(), false),
        ("a.b".to_string(), false),
        ("a&b".to_string(), false),
    ] {
        let params = with(("topic_tag", tag.clone()));
        let refs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(h.create(&refs).await.status == 200, ok, "topic_tag {tag:?}");
    }
    let image = [
        ("media_type", "IMAGE"),
        ("image_url", "https://cdn.example/a.jpg"),
        ("link_attachment", "https://a.example"),
    ];
    assert_eq!(h.create(&image).await.code(), Some(100));
    let alt = "a".repeat(1001);
    let image = [
        ("media_type", "IMAGE"),
        ("image_url", "https://cdn.example/a.jpg"),
        ("alt_text", alt.as_str()),
    ];
    assert_eq!(h.create(&image).await.code(), Some(100));
    let alt = "a".repeat(1000);
    let image = [
        ("media_type", "IMAGE"),
        ("image_url", "https://cdn.example/a.jpg"),
        ("alt_text", alt.as_str()),
    ];
    assert_eq!(h.create(&image).await.status, 200);
    assert_eq!(
        h.create(&[("media_type", "POLL"), ("text", "x")])
            .await
            .code(),
        Some(100)
    );
    assert_eq!(h.create(&[("text", "x")]).await.code(), Some(100));
    assert_eq!(
        h.create(&[
            ("media_type", "TEXT"),
            ("text", "x"),
            ("reply_control", "nobody")
        ])
        .await
        .code(),
        Some(100)
    );
}

#[tokio::test]
async fn a_carousel_takes_two_to_twenty_items_and_counts_as_one_post() {
    let h = Harness::new().await;
    let mut items = Vec::new();
    for i in 0..3 {
        let url = format!("https://cdn.example/{i}.jpg");
        let a = h
            .create(&[
                ("media_type", "IMAGE"),
                ("image_url", &url),
                ("is_carousel_item", "true"),
            ])
            .await;
        items.push(a.id());
    }
    let one = h
        .create(&[("media_type", "CAROUSEL"), ("children", &items[0])])
        .await;
    assert_eq!(one.code(), Some(100));
    let plain = h
        .create(&[
            ("media_type", "IMAGE"),
            ("image_url", "https://cdn.example/p.jpg"),
        ])
        .await
        .id();
    let with_plain = format!("{},{plain}", items[0]);
    assert_eq!(
        h.create(&[("media_type", "CAROUSEL"), ("children", &with_plain)])
            .await
            .code(),
        Some(100)
    );
    // An item cannot be published on its own.
    assert_eq!(h.publish(&items[0]).await.code(), Some(100));

    let children = items.join(",");
    let carousel = h
        .create(&[
            ("media_type", "CAROUSEL"),
            ("children", &children),
            ("text", "album"),
        ])
        .await
        .id();
    let media = h.publish(&carousel).await.id();
    let record = h.emu.published();
    assert_eq!(record.len(), 1);
    assert_eq!(record[0].media_type, "CAROUSEL");
    let read = h
        .get_auth(
            &format!("/v1.0/{media}"),
            &[("fields", "media_type,children")],
        )
        .await;
    assert_eq!(read.json()["media_type"], "CAROUSEL_ALBUM");
    assert_eq!(read.json()["children"]["data"].as_array().unwrap().len(), 3);
    let limit = h
        .get_auth(&format!("/v1.0/{USER}/threads_publishing_limit"), &[])
        .await;
    assert_eq!(limit.body, r#"{"data":[{"quota_usage":1}]}"#);
}

#[tokio::test]
async fn auto_publish_text_answers_with_the_media_id() {
    let h = Harness::new().await;
    let a = h
        .create(&[
            ("media_type", "TEXT"),
            ("text", "now"),
            ("auto_publish_text", "true"),
        ])
        .await;
    let media = a.id();
    let record = h.emu.published();
    assert_eq!(record.len(), 1);
    assert_eq!(record[0].media_id, media);
    assert_ne!(record[0].container_id, media);
}

#[tokio::test]
async fn parameters_may_come_in_the_query_string() {
    let h = Harness::new().await;
    let response = h
        .http
        .post(h.url("/v1.0/me/threads"))
        .query(&[
            ("media_type", "TEXT"),
            ("text", "from query"),
            ("access_token", &h.token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let container: serde_json::Value = response.json().await.unwrap();
    let container = container["id"].as_str().unwrap().to_string();
    let response = h
        .http
        .post(h.url(&format!(
            "/v1.0/{USER}/threads_publish?creation_id={container}"
        )))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(h.emu.published()[0].text.as_deref(), Some("from query"));
}

#[tokio::test]
async fn malformed_requests_get_graph_errors_never_a_panic() {
    let h = Harness::new().await;
    let token = h.token.clone();
    let cases: Vec<(reqwest::RequestBuilder, &str)> = vec![
        (
            h.http
                .post(h.url("/v1.0/me/threads"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body("{not json"),
            "bad json",
        ),
        (
            h.http
                .post(h.url("/v1.0/me/threads"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body("[1,2]"),
            "json array",
        ),
        (
            h.http
                .post(h.url("/v1.0/me/threads"))
                .bearer_auth(&token)
                .body(vec![0xff, 0xfe, b'=', 0x80]),
            "binary form",
        ),
        (
            h.http
                .post(h.url("/v1.0/me/threads?media_type=TEXT%FF&text=%FF%FE"))
                .bearer_auth(&token),
            "bad utf8",
        ),
        (
            h.http
                .get(h.url("/v1.0/me/threads?limit=-1"))
                .bearer_auth(&token),
            "negative limit",
        ),
        (
            h.http
                .get(h.url("/v1.0/me/threads?after=!!!"))
                .bearer_auth(&token),
            "bad cursor",
        ),
        (
            h.http
                .get(h.url("/v1.0/me?fields=password"))
                .bearer_auth(&token),
            "unknown field",
        ),
        (
            h.http
                .get(h.url("/v1.0/nothing/here/at/all"))
                .bearer_auth(&token),
            "unknown path",
        ),
        (
            h.http.put(h.url("/v1.0/me/threads")).bearer_auth(&token),
            "wrong method",
        ),
        (
            h.http
                .post(h.url("/v1.0/me/threads_publish"))
                .bearer_auth(&token),
            "no creation_id",
        ),
        (
            h.http
                .post(h.url("/v1.0/me/threads_publish?creation_id=abc"))
                .bearer_auth(&token),
            "bad creation_id",
        ),
        (
            h.http
                .get(h.url("/v1.0/someone_else/threads"))
                .bearer_auth(&token),
            "other user",
        ),
        (
            h.http
                .get(h.url("/v1.0/me/threads_publishing_limit?fields=nope"))
                .bearer_auth(&token),
            "bad limit field",
        ),
        (
            h.http.get(h.url("/v1.0/me/insights")).bearer_auth(&token),
            "insights of a user",
        ),
        (h.http.get(h.url("/oauth/authorize")), "empty window"),
        (h.http.post(h.url("/oauth/access_token")), "empty exchange"),
        (h.http.get(h.url("/refresh_access_token")), "empty refresh"),
        (
            h.http
                .get(h.url("/access_token?grant_type=th_exchange_token")),
            "empty exchange",
        ),
        (
            h.http.get(h.url("/debug_token")).bearer_auth(&token),
            "no input token",
        ),
        (
            h.http
                .post(h.url("/v1.0/me/threads"))
                .bearer_auth(&token)
                .body("x".repeat(2 << 20)),
            "huge body",
        ),
    ];
    for (request, what) in cases {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!((400..500).contains(&status), "{what}: {status} {body}");
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
        assert!(
            json.get("error").is_some() || json.get("error_message").is_some(),
            "{what}: {body}"
        );
    }
}
