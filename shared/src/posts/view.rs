//! A storm as its owner sees it over the API: status with its data, each part's place on Threads
//! once published, and whether it was deleted there since. Never the owner id or anything
//! internal (version, sweep keys).

use serde_json::{Value, json};

use super::model::{Status, Storm};
use super::store::StormSummary;

/// The status as JSON: `{"status": "...", ...its data}`.
pub fn status_json(status: &Status) -> Value {
    let mut out = json!({ "status": status.name().as_str() });
    match status {
        Status::Deferred { not_before } => out["not_before"] = json!(not_before),
        Status::Published {
            media_id,
            permalink,
        } => {
            out["media_id"] = json!(media_id);
            if let Some(link) = permalink {
                out["permalink"] = json!(link);
            }
        }
        Status::Rejected(reason) | Status::Failed(reason) => {
            out["reason"] = json!({ "code": reason.code, "text": reason.text });
        }
        Status::Scheduled | Status::Queued | Status::Publishing | Status::Cancelled => {}
    }
    out
}

/// The whole storm.
pub fn storm_json(storm: &Storm) -> Value {
    let mut out = json!({
        "id": storm.id,
        "kind": storm.kind.as_str(),
        "account_id": storm.account_id,
        "publish_at": storm.publish_at,
        "created_at": storm.created_at,
        "updated_at": storm.updated_at,
        "parts": storm.parts.iter().map(|p| {
            let mut part = json!({ "index": p.index, "content": p.content });
            if let Some(media) = &p.media_id {
                part["media_id"] = json!(media);
            }
            if let Some(link) = &p.permalink {
                part["permalink"] = json!(link);
            }
            if let Some(at) = p.deleted_at {
                part["deleted"] = json!(true);
                part["deleted_at"] = json!(at);
            }
            part
        }).collect::<Vec<_>>(),
    });
    merge_status(&mut out, &storm.status);
    // The storm is known by its first part: once that is deleted on Threads, so is the post.
    deleted(&mut out, storm.parts.first().and_then(|p| p.deleted_at));
    out
}

/// One line of an owner's listing.
pub fn summary_json(summary: &StormSummary) -> Value {
    let mut out = json!({
        "id": summary.id,
        "kind": summary.kind.as_str(),
        "account_id": summary.account_id,
        "part_count": summary.part_count,
        "publish_at": summary.publish_at,
        "created_at": summary.created_at,
    });
    merge_status(&mut out, &summary.status);
    deleted(&mut out, summary.deleted_at);
    out
}

/// `"deleted": true|false`, and `deleted_at` when it is.
fn deleted(out: &mut Value, at: Option<i64>) {
    out["deleted"] = json!(at.is_some());
    if let Some(at) = at {
        out["deleted_at"] = json!(at);
    }
}

fn merge_status(out: &mut Value, status: &Status) {
    if let (Some(map), Value::Object(fields)) = (out.as_object_mut(), status_json(status)) {
        map.extend(fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posts::{AccountId, Part, PartContent, Reason, StormId, StormKind};

    #[test]
    fn a_failed_storm_shows_its_reason_and_nothing_internal() {
        let storm = Storm {
            id: StormId::new(),
            kind: StormKind::Post,
            owner_user_id: "secret-owner".into(),
            account_id: AccountId::parse("17841405793187218").unwrap(),
            parts: vec![Part {
                index: 0,
                content: PartContent::text("hi"),
                media_id: None,
                permalink: None,
                deleted_at: None,
            }],
            status: Status::Failed(Reason::new("forbidden", "not yours")),
            publish_at: None,
            created_at: 1,
            updated_at: 2,
            version: 7,
        };
        let v = storm_json(&storm);
        assert_eq!(v["status"], "failed");
        assert_eq!(v["reason"]["code"], "forbidden");
        assert_eq!(v["parts"][0]["content"]["text"], "hi");
        let text = v.to_string();
        assert!(
            !text.contains("secret-owner") && !text.contains("version"),
            "{text}"
        );
    }
}
