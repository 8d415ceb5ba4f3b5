//! Intake, called by the api function: check a submitted storm, store it, then enqueue it.
//!
//! The storm is written first (status `queued`, or `scheduled` for later) and sent second. It is
//! written onto the sweep index — due at `publish_at`, or after a grace period when queued — so a
//! write whose send is lost is found by the scheduler and sent then.

use std::sync::Arc;

use serde::Deserialize;

use super::dedupe::ContentRules;
use super::stage::{Stage, StormMessage, send_all};
use crate::accounts::{AccountError, AccountStatus, AccountStore};
use crate::edge::{Problem, json_response};
use crate::posts::{
    AccountId, Created, MAX_PARTS, MediaType, Part, PartContent, PostsError, PostsStore, Status,
    Storm, StormId, StormKind,
};
use lambda_http::{Body, Response};

/// No string field of a part may be longer than this many bytes. Threads' own limits are far
/// lower (the content policy applies those); this only keeps stored items small.
pub const MAX_FIELD_BYTES: usize = 4_096;
/// How far ahead a storm may be scheduled.
pub const MAX_SCHEDULE_AHEAD_SECS: i64 = 366 * 24 * 60 * 60;
/// How far in the past `publish_at` may be: a time a little behind ours (a client's clock, a
/// request that waited) means "now"; one further back is a mistake, not a schedule.
pub const MAX_SCHEDULE_BEHIND_SECS: i64 = 24 * 60 * 60;

/// A storm as the API receives it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStorm {
    pub account_id: AccountId,
    pub parts: Vec<PartContent>,
    /// Unix seconds; absent or past means now.
    #[serde(default)]
    pub publish_at: Option<i64>,
}

/// What intake needs.
#[derive(Clone)]
pub struct IntakeDeps {
    pub posts: PostsStore,
    pub accounts: AccountStore,
    pub sqs: aws_sdk_sqs::Client,
    pub intake_queue: String,
    /// Checked at submission for an immediate answer; the dedupe stage checks again.
    pub rules: Option<Arc<dyn ContentRules>>,
    /// A queued storm is on the sweep index this long after submission.
    pub grace_secs: i64,
}

/// Why a storm was not accepted. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{detail}")]
    Invalid {
        code: &'static str,
        detail: String,
        field: Option<String>,
    },
    #[error("{code}: {detail}")]
    Refused { code: String, detail: String },
    #[error("the account is not yours to publish to")]
    Forbidden,
    #[error("the account must be connected again before publishing")]
    NeedsReauth,
    #[error(transparent)]
    Store(#[from] PostsError),
}

impl From<IntakeError> for Problem {
    fn from(err: IntakeError) -> Problem {
        match err {
            IntakeError::Invalid {
                code,
                detail,
                field,
            } => {
                let problem = Problem::bad_request(code, detail);
                match field {
                    Some(f) => problem.with_field(f),
                    None => problem,
                }
            }
            IntakeError::Refused { detail, .. } => Problem::new(422, "content_refused", detail),
            IntakeError::Forbidden => Problem::forbidden(
                "forbidden",
                "you cannot publish to this Threads account; connect it first",
            ),
            IntakeError::NeedsReauth => Problem::new(
                409,
                "needs_reauth",
                "Threads no longer accepts this account's token; connect the account again",
            ),
            IntakeError::Store(e) => {
                tracing::error!(error = %e, "intake could not store a storm");
                Problem::unavailable()
            }
        }
    }
}

/// `POST` of a storm by an authenticated `owner`, from the raw request body: 202 with the stored
/// storm, or a problem+json 4xx that says what to fix (nothing stored), or 503.
pub async fn accept(deps: &IntakeDeps, owner: &str, body: &[u8], now: i64) -> Response<Body> {
    let new: NewStorm = match serde_json::from_slice(body) {
        Ok(new) => new,
        Err(e) => {
            return Problem::bad_request("malformed_body", format!("the body is not a storm: {e}"))
                .into_response();
        }
    };
    match submit(deps, owner, new, now).await {
        Ok(storm) => json_response(202, &crate::posts::view::storm_json(&storm)),
        Err(e) => Problem::from(e).into_response(),
    }
}

/// Accepts a storm from `owner`: checks it, stores it, enqueues it. Returns the stored storm.
#[tracing::instrument(skip_all, fields(stage = "intake", parts = new.parts.len()))]
pub async fn submit(
    deps: &IntakeDeps,
    owner: &str,
    new: NewStorm,
    now: i64,
) -> Result<Storm, IntakeError> {
    check_shape(&new, now)?;
    if let Some(rules) = &deps.rules
        && let Err(rejected) = rules.check(&new.parts)
    {
        return Err(IntakeError::Refused {
            code: rejected.code,
            detail: rejected.reason,
        });
    }
    let account = match deps.accounts.get(&new.account_id).await {
        Ok(account) => account,
        Err(AccountError::Store(e)) => return Err(IntakeError::Store(e.into())),
        Err(e) => {
            tracing::error!(error = %e, "account record unreadable");
            None
        }
    };
    match account {
        Some(a) if a.owner_user_id == owner => match a.status {
            AccountStatus::Connected => {}
            AccountStatus::NeedsReauth => return Err(IntakeError::NeedsReauth),
            AccountStatus::Disconnected => return Err(IntakeError::Forbidden),
        },
        _ => return Err(IntakeError::Forbidden),
    }

    let scheduled = new.publish_at.filter(|at| *at > now);
    let storm = Storm {
        id: StormId::new(),
        kind: if new.parts.len() == 1 {
            StormKind::Post
        } else {
            StormKind::Storm
        },
        owner_user_id: owner.to_owned(),
        account_id: new.account_id,
        parts: new
            .parts
            .into_iter()
            .enumerate()
            .map(|(index, content)| Part {
                index,
                content,
                media_id: None,
                permalink: None,
                deleted_at: None,
            })
            .collect(),
        status: if scheduled.is_some() {
            Status::Scheduled
        } else {
            Status::Queued
        },
        publish_at: scheduled,
        created_at: now,
        updated_at: now,
        version: 0,
    };
    let sweep_at = scheduled.unwrap_or(now + deps.grace_secs);
    if deps.posts.create(&storm, Some(sweep_at)).await? == Created::AlreadyExists {
        // Ids are fresh UUIDs: only a retried request lands here; it was stored the first time.
        tracing::warn!(storm = %storm.id, "storm was already stored");
    }
    if scheduled.is_none() {
        let message = StormMessage::of(&storm);
        let outgoing = [(0, message.to(Stage::Dedupe, &deps.intake_queue))];
        if let Err(failed) = send_all(&deps.sqs, &outgoing).await {
            // Stored is accepted: the sweep sends it after the grace period.
            tracing::warn!(storm = %storm.id, reason = %failed.reason, "storm stored but not enqueued; the sweep will send it");
        }
    }
    Ok(storm)
}

/// The shape a storm must have before it is stored: parts, media fields, sizes, schedule.
pub fn check_shape(new: &NewStorm, now: i64) -> Result<(), IntakeError> {
    let invalid =
        |code: &'static str, detail: String, field: Option<String>| IntakeError::Invalid {
            code,
            detail,
            field,
        };
    if new.parts.is_empty() {
        return Err(invalid(
            "no_parts",
            "a post needs at least one part".into(),
            Some("parts".into()),
        ));
    }
    if new.parts.len() > MAX_PARTS {
        return Err(invalid(
            "too_many_parts",
            format!(
                "a storm has at most {MAX_PARTS} parts; this one has {}",
                new.parts.len()
            ),
            Some("parts".into()),
        ));
    }
    if let Some(at) = new.publish_at
        && at > now.saturating_add(MAX_SCHEDULE_AHEAD_SECS)
    {
        return Err(invalid(
            "publish_at_too_far",
            "a storm can be scheduled at most a year ahead".into(),
            Some("publish_at".into()),
        ));
    }
    if let Some(at) = new.publish_at
        && at < now.saturating_sub(MAX_SCHEDULE_BEHIND_SECS)
    {
        return Err(invalid(
            "publish_at_in_past",
            "publish_at is more than a day in the past: leave it out to publish now".into(),
            Some("publish_at".into()),
        ));
    }
    for (i, part) in new.parts.iter().enumerate() {
        let field = |name: &str| Some(format!("parts[{i}].{name}"));
        let strings = [
            ("text", part.text.as_deref()),
            ("image_url", part.image_url.as_deref()),
            ("video_url", part.video_url.as_deref()),
            ("reply_control", part.reply_control.as_deref()),
            ("topic_tag", part.topic_tag.as_deref()),
            ("link_attachment", part.link_attachment.as_deref()),
            ("alt_text", part.alt_text.as_deref()),
        ];
        for (name, value) in strings {
            if value.is_some_and(|v| v.len() > MAX_FIELD_BYTES) {
                return Err(invalid(
                    "field_too_long",
                    format!("part {}: {name} is over {MAX_FIELD_BYTES} bytes", i + 1),
                    field(name),
                ));
            }
        }
        let (needs, forbids): (&[&str], &[&str]) = match part.media_type {
            MediaType::Text => (&["text"], &["image_url", "video_url", "children"]),
            MediaType::Image => (&["image_url"], &["video_url", "children"]),
            MediaType::Video => (&["video_url"], &["image_url", "children"]),
            MediaType::Carousel => (&["children"], &["image_url", "video_url"]),
        };
        let present = |name: &str| match name {
            "text" => part.text.is_some(),
            "image_url" => part.image_url.is_some(),
            "video_url" => part.video_url.is_some(),
            _ => !part.children.is_empty(),
        };
        for name in needs {
            if !present(name) {
                return Err(invalid(
                    "missing_field",
                    format!(
                        "part {}: media_type {} needs {name}",
                        i + 1,
                        part.media_type.as_str()
                    ),
                    field(name),
                ));
            }
        }
        for name in forbids {
            if present(name) {
                return Err(invalid(
                    "unexpected_field",
                    format!(
                        "part {}: media_type {} takes no {name}",
                        i + 1,
                        part.media_type.as_str()
                    ),
                    field(name),
                ));
            }
        }
        for (c, child) in part.children.iter().enumerate() {
            if !matches!(child.media_type, MediaType::Image | MediaType::Video)
                || child.url.len() > MAX_FIELD_BYTES
                || child
                    .alt_text
                    .as_ref()
                    .is_some_and(|a| a.len() > MAX_FIELD_BYTES)
            {
                return Err(invalid(
                    "invalid_child",
                    format!(
                        "part {}: carousel item {} must be an IMAGE or VIDEO with a URL",
                        i + 1,
                        c + 1
                    ),
                    field(&format!("children[{c}]")),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storm(parts: Vec<PartContent>) -> NewStorm {
        NewStorm {
            account_id: AccountId::parse("17841405793187218").unwrap(),
            parts,
            publish_at: None,
        }
    }

    #[test]
    fn shape_refuses_empty_oversized_and_mismatched_storms() {
        assert!(check_shape(&storm(vec![]), 0).is_err());
        let many = vec![PartContent::text("x"); MAX_PARTS + 1];
        assert!(matches!(
            check_shape(&storm(many), 0),
            Err(IntakeError::Invalid {
                code: "too_many_parts",
                ..
            })
        ));
        assert!(check_shape(&storm(vec![PartContent::text("x"); MAX_PARTS]), 0).is_ok());
        let mut image_without_url = PartContent::image("u", None);
        image_without_url.image_url = None;
        let err =
            check_shape(&storm(vec![PartContent::text("a"), image_without_url]), 0).unwrap_err();
        let problem = Problem::from(err);
        assert_eq!(problem.status, 400);
        assert_eq!(problem.field.as_deref(), Some("parts[1].image_url"));
        let mut text_with_video = PartContent::text("a");
        text_with_video.video_url = Some("https://v".into());
        assert!(check_shape(&storm(vec![text_with_video]), 0).is_err());
        let huge = PartContent::text("a".repeat(MAX_FIELD_BYTES + 1));
        assert!(check_shape(&storm(vec![huge]), 0).is_err());
        let mut later = storm(vec![PartContent::text("a")]);
        later.publish_at = Some(MAX_SCHEDULE_AHEAD_SECS + 10);
        assert!(check_shape(&later, 0).is_err());
        let now = 1_796_000_000;
        let mut past = storm(vec![PartContent::text("a")]);
        past.publish_at = Some(now - MAX_SCHEDULE_BEHIND_SECS - 1);
        assert!(check_shape(&past, now).is_err());
        past.publish_at = Some(now - 60);
        assert!(check_shape(&past, now).is_ok());
    }

    #[test]
    fn unknown_fields_in_a_submission_are_refused() {
        let body = r#"{"account_id":"17841405793187218","parts":[{"media_type":"TEXT","text":"hi"}],"status":"published"}"#;
        assert!(serde_json::from_str::<NewStorm>(body).is_err());
        let body =
            r#"{"account_id":"17841405793187218","parts":[{"media_type":"TEXT","text":"hi"}]}"#;
        assert!(serde_json::from_str::<NewStorm>(body).is_ok());
    }
}
