//! A verified webhook body → typed changes. Parse only what [`super::signature::verify`] accepted.
//!
//! Threads' envelope is `{"app_id","topic","target_id","time","subscription_id","has_uid_field",
//! "values"}` where `values` is one `{"value","field"}` object (documented) or an array of them
//! (seen live); both are read, up to [`MAX_CHANGES`].
//!
//! Decisions: the envelope must be a JSON object naming ThreadStorm's app (else 400 / 403); its
//! other keys are informational and read leniently. Inside a change only `value.id` is required;
//! other attributes are kept when they have the expected type and left out otherwise. A known
//! field whose value has no usable id becomes [`Change::Malformed`] instead of failing the whole
//! delivery — Meta would redeliver it for 36 hours and then drop every good change with it.
//! Unknown fields are [`Change::Unknown`]; unknown keys are ignored everywhere.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::value::MapAccessDeserializer};
use serde_json::{Map, Value};

use super::{MAX_BODY_BYTES, StatusCode};
use crate::threads::{MediaId, UserId};

/// Meta batches at most this many changes in one delivery; more is refused.
pub const MAX_CHANGES: usize = 1000;

/// Why a delivery body was refused. No variant carries the body or any part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("the body has {0} bytes, over the limit of {MAX_BODY_BYTES}")]
    TooLarge(usize),
    #[error("the body is {what} (line {line}, column {column})")]
    NotJson {
        what: &'static str,
        line: usize,
        column: usize,
    },
    #[error("the body is not UTF-8 (from byte {0})")]
    NotUtf8(usize),
    #[error("the body is not a JSON object")]
    NotAnObject,
    #[error("the envelope has no app_id")]
    MissingAppId,
    #[error("the delivery is for another app than ThreadStorm's Threads app")]
    WrongApp,
    #[error("the envelope has no values")]
    NoValues,
    #[error("the delivery has {0} changes, over the limit of {MAX_CHANGES}")]
    TooManyChanges(usize),
    #[error("ThreadStorm's Threads App ID is not configured")]
    NoAppId,
}

impl DeliveryError {
    /// A stable machine-readable code for the problem+json answer.
    pub fn code(&self) -> &'static str {
        match self {
            DeliveryError::WrongApp => "wrong_app",
            DeliveryError::TooLarge(_) => "body_too_large",
            DeliveryError::TooManyChanges(_) => "too_many_changes",
            _ => "malformed_delivery",
        }
    }

    /// The answer at the edge: [`Self::status`], [`Self::code`] and the reason.
    pub fn problem(&self) -> crate::edge::Problem {
        super::problem(self.status(), self.code(), self)
    }

    /// The HTTP status the webhook route answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            DeliveryError::TooLarge(_) | DeliveryError::TooManyChanges(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            DeliveryError::WrongApp => StatusCode::FORBIDDEN,
            DeliveryError::NoAppId => StatusCode::INTERNAL_SERVER_ERROR,
            DeliveryError::NotJson { .. }
            | DeliveryError::NotUtf8(_)
            | DeliveryError::NotAnObject
            | DeliveryError::MissingAppId
            | DeliveryError::NoValues => StatusCode::BAD_REQUEST,
        }
    }

    fn from_json(err: &serde_json::Error) -> Self {
        let what = match err.classify() {
            serde_json::error::Category::Data => "JSON of the wrong shape",
            _ => "not valid JSON",
        };
        DeliveryError::NotJson {
            what,
            line: err.line(),
            column: err.column(),
        }
    }
}

/// One verified, parsed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub app_id: String,
    pub topic: Option<String>,
    /// The subscribed Threads user the changes concern.
    pub target_id: Option<UserId>,
    /// Unix seconds.
    pub time: Option<i64>,
    pub subscription_id: Option<String>,
    pub has_uid_field: Option<bool>,
    /// In delivery order; duplicates (within or across deliveries) are the caller's to drop by
    /// [`Change::dedup_key`].
    pub changes: Vec<Change>,
}

/// The webhook fields ThreadStorm subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Replies,
    Mentions,
    Publish,
    Delete,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Replies => "replies",
            Field::Mentions => "mentions",
            Field::Publish => "publish",
            Field::Delete => "delete",
        }
    }

    fn parse(name: &str) -> Option<Field> {
        match name {
            "replies" => Some(Field::Replies),
            "mentions" => Some(Field::Mentions),
            "publish" => Some(Field::Publish),
            "delete" => Some(Field::Delete),
            _ => None,
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Reply(Reply),
    Mention(Mention),
    Publish(Publish),
    Delete(Delete),
    /// A field ThreadStorm does not handle, by name; callers ignore it.
    Unknown(String),
    /// A change that could not be read: `field` as sent (empty when absent) and what was wrong.
    /// Callers log it and go on with the rest of the delivery.
    Malformed {
        field: String,
        reason: &'static str,
    },
}

/// What makes a change a duplicate: Meta redelivers, and a delivery may repeat a change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DedupKey {
    pub field: Field,
    pub id: MediaId,
}

impl fmt::Display for DedupKey {
    /// `replies:17920000000000999` — the field's letters and the id's digits cannot run together.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.field, self.id)
    }
}

impl Change {
    /// `(field, value.id)` for the changes ThreadStorm acts on; `None` for unknown or malformed.
    pub fn dedup_key(&self) -> Option<DedupKey> {
        let (field, id) = match self {
            Change::Reply(r) => (Field::Replies, &r.id),
            Change::Mention(m) => (Field::Mentions, &m.id),
            Change::Publish(p) => (Field::Publish, &p.id),
            Change::Delete(d) => (Field::Delete, &d.id),
            Change::Unknown(_) | Change::Malformed { .. } => return None,
        };
        Some(DedupKey {
            field,
            id: id.clone(),
        })
    }
}

/// A reply to one of the user's posts (`replies`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: MediaId,
    pub username: Option<String>,
    pub text: Option<String>,
    /// Read-side names: TEXT_POST, IMAGE, VIDEO, CAROUSEL_ALBUM, AUDIO, REPOST_FACADE.
    pub media_type: Option<String>,
    pub permalink: Option<String>,
    /// From `replied_to.id` (or a flat `replied_to_id`).
    pub replied_to_id: Option<MediaId>,
    pub root_post: Option<RootPost>,
    pub shortcode: Option<String>,
    /// As Threads writes it, e.g. `2024-09-12T23:17:39+0000`.
    pub timestamp: Option<String>,
}

/// A post that mentions the user (`mentions`): a media object of the same shape as a reply.
pub type Mention = Reply;

/// The top of the conversation a reply belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootPost {
    pub id: Option<MediaId>,
    pub owner_id: Option<UserId>,
    pub username: Option<String>,
}

/// The user published a post (`publish`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub id: MediaId,
    pub media_type: Option<String>,
    pub permalink: Option<String>,
    pub timestamp: Option<String>,
    pub username: Option<String>,
}

/// A post was deleted (`delete`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub id: MediaId,
    /// From `owner.owner_id` (or a flat `owner_id`).
    pub owner_id: Option<UserId>,
    pub deleted_at: Option<String>,
    pub timestamp: Option<String>,
    pub username: Option<String>,
}

/// Parses a verified body. `app_id` is ThreadStorm's Threads App ID: a delivery for any other
/// app is refused (403), whatever it contains.
pub fn parse(body: &[u8], app_id: &str) -> Result<Delivery, DeliveryError> {
    if app_id.is_empty() {
        return Err(DeliveryError::NoAppId);
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(DeliveryError::TooLarge(body.len()));
    }
    // JSON is UTF-8 throughout; serde_json would skip over bad bytes in keys it ignores.
    let text = std::str::from_utf8(body).map_err(|e| DeliveryError::NotUtf8(e.valid_up_to()))?;
    // A derived struct would also accept a JSON array, field by position.
    if !text.trim_start().starts_with('{') {
        return match serde_json::from_str::<IgnoredAny>(text) {
            Err(err) => Err(DeliveryError::from_json(&err)),
            Ok(_) => Err(DeliveryError::NotAnObject),
        };
    }
    let raw: RawEnvelope =
        serde_json::from_str(text).map_err(|err| DeliveryError::from_json(&err))?;
    let sent_app = raw
        .app_id
        .as_ref()
        .and_then(scalar_text)
        .ok_or(DeliveryError::MissingAppId)?;
    if sent_app != app_id {
        return Err(DeliveryError::WrongApp);
    }
    let values = raw.values.ok_or(DeliveryError::NoValues)?;
    if values.total > MAX_CHANGES {
        return Err(DeliveryError::TooManyChanges(values.total));
    }
    Ok(Delivery {
        app_id: sent_app,
        topic: raw.topic.as_ref().and_then(string),
        target_id: raw.target_id.as_ref().and_then(id),
        time: raw.time.as_ref().and_then(integer),
        subscription_id: raw.subscription_id.as_ref().and_then(scalar_text),
        has_uid_field: raw.has_uid_field.as_ref().and_then(Value::as_bool),
        changes: values.kept.iter().map(change).collect(),
    })
}

/// The envelope, each key kept as it came so that a wrong type is ignored rather than fatal.
#[derive(Deserialize)]
struct RawEnvelope {
    app_id: Option<Value>,
    topic: Option<Value>,
    target_id: Option<Value>,
    time: Option<Value>,
    subscription_id: Option<Value>,
    has_uid_field: Option<Value>,
    #[serde(default, deserialize_with = "values")]
    values: Option<Values>,
}

/// `values`: the changes kept (at most [`MAX_CHANGES`]) and how many there were, so an
/// oversized delivery is counted without being held in memory.
struct Values {
    kept: Vec<Value>,
    total: usize,
}

fn values<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Values>, D::Error> {
    d.deserialize_any(ValuesVisitor)
}

struct ValuesVisitor;

impl<'de> Visitor<'de> for ValuesVisitor {
    type Value = Option<Values>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("values as a {value, field} object or an array of them")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let one = Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(Some(Values {
            kept: vec![one],
            total: 1,
        }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        let mut total = 0usize;
        loop {
            if total < MAX_CHANGES {
                match seq.next_element::<Value>()? {
                    Some(v) => kept.push(v),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            total += 1;
        }
        Ok(Some(Values { kept, total }))
    }
}

/// One `{"value": {...}, "field": "..."}` → a typed change.
fn change(raw: &Value) -> Change {
    let Some(raw) = raw.as_object() else {
        return malformed("", "the change is not an object");
    };
    let Some(name) = raw.get("field").and_then(Value::as_str) else {
        return malformed("", "the change has no field name");
    };
    let Some(field) = Field::parse(name) else {
        return Change::Unknown(name.to_owned());
    };
    let Some(value) = raw.get("value").and_then(Value::as_object) else {
        return malformed(name, "value is missing or not an object");
    };
    let Some(media) = value.get("id").and_then(id::<MediaId>) else {
        return malformed(name, "value.id is missing or not a Threads id");
    };
    let text = |key: &str| value.get(key).and_then(scalar_text);
    let permalink = || text("permalink").filter(|link| is_threads_permalink(link));
    match field {
        Field::Replies | Field::Mentions => {
            let reply = Reply {
                id: media,
                username: text("username"),
                text: text("text"),
                media_type: text("media_type"),
                permalink: permalink(),
                replied_to_id: nested(value, "replied_to", "id")
                    .or_else(|| value.get("replied_to_id"))
                    .and_then(id),
                root_post: value
                    .get("root_post")
                    .and_then(Value::as_object)
                    .map(|root| RootPost {
                        id: root.get("id").and_then(id),
                        owner_id: root.get("owner_id").and_then(id),
                        username: root.get("username").and_then(scalar_text),
                    }),
                shortcode: text("shortcode"),
                timestamp: text("timestamp"),
            };
            if field == Field::Replies {
                Change::Reply(reply)
            } else {
                Change::Mention(reply)
            }
        }
        Field::Publish => Change::Publish(Publish {
            id: media,
            media_type: text("media_type"),
            permalink: permalink(),
            timestamp: text("timestamp"),
            username: text("username"),
        }),
        Field::Delete => Change::Delete(Delete {
            id: media,
            owner_id: nested(value, "owner", "owner_id")
                .or_else(|| value.get("owner_id"))
                .and_then(id),
            deleted_at: text("deleted_at"),
            timestamp: text("timestamp"),
            username: text("username"),
        }),
    }
}

fn malformed(field: &str, reason: &'static str) -> Change {
    Change::Malformed {
        field: field.to_owned(),
        reason,
    }
}

fn nested<'a>(value: &'a Map<String, Value>, outer: &str, inner: &str) -> Option<&'a Value> {
    value.get(outer)?.as_object()?.get(inner)
}

fn string(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// Whether `link` is one of Threads' own permalinks (`https://www.threads.com/@user/post/…`, or
/// on threads.net). A signed delivery is Meta's, but a link ThreadStorm shows its users (on a
/// post, in the inbox) is checked all the same; any other value is dropped.
fn is_threads_permalink(link: &str) -> bool {
    const HOSTS: [&str; 4] = [
        "www.threads.com",
        "threads.com",
        "www.threads.net",
        "threads.net",
    ];
    link.len() <= 2048
        && url::Url::parse(link).is_ok_and(|url| {
            url.scheme() == "https"
                && url.username().is_empty()
                && url.password().is_none()
                && url.port().is_none()
                && url.host_str().is_some_and(|host| HOSTS.contains(&host))
        })
}

/// A string, or a number written out (timestamps and ids sometimes come as numbers).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A Threads id from a digit string or a JSON integer, exact above 2^53 (a float is refused).
fn id<T: std::str::FromStr>(value: &Value) -> Option<T> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64()?.to_string().parse().ok(),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use threads_emulator::webhook::{Change as SentChange, ValuesShape, envelope, meta_json};

    const APP: &str = "1234567890";
    const TARGET: &str = "17841405793187218";

    fn reply_value(id: &str, text: &str) -> Value {
        json!({
            "id": id,
            "username": "a_replier",
            "text": text,
            "media_type": "TEXT_POST",
            "permalink": "https://www.threads.com/@storm_tester/post/C0dEfGhIjKl",
            "replied_to": {"id": "17920000000000001"},
            "root_post": {"id": "17920000000000001", "owner_id": TARGET, "username": "storm_tester"},
            "shortcode": "C0dEfGhIjKl",
            "timestamp": "2024-09-12T23:17:39+0000",
        })
    }

    fn sent(field: &str, value: Value) -> SentChange {
        SentChange {
            field: field.into(),
            value,
        }
    }

    fn body(changes: &[SentChange], shape: ValuesShape) -> String {
        envelope(APP, TARGET, 1_723_000_000, changes, shape)
    }

    fn media(id: &str) -> MediaId {
        MediaId::parse(id).unwrap()
    }

    #[test]
    fn an_object_shaped_reply_in_metas_escaping_parses_to_the_original_text() {
        let raw = body(
            &[sent(
                "replies",
                reply_value("17920000000000999", "héllo 🚀 see https://x.example/a"),
            )],
            ValuesShape::Object,
        );
        assert!(raw.contains(r#"h\u00e9llo \ud83d\ude80"#), "{raw}");
        assert!(raw.contains(r#"https:\/\/x.example\/a"#), "{raw}");
        let delivery = parse(raw.as_bytes(), APP).unwrap();
        assert_eq!(delivery.app_id, APP);
        assert_eq!(delivery.topic.as_deref(), Some("moderate"));
        assert_eq!(delivery.target_id, Some(UserId::parse(TARGET).unwrap()));
        assert_eq!(delivery.time, Some(1_723_000_000));
        assert_eq!(delivery.has_uid_field, Some(false));
        assert_eq!(
            delivery.changes,
            vec![Change::Reply(Reply {
                id: media("17920000000000999"),
                username: Some("a_replier".into()),
                text: Some("héllo 🚀 see https://x.example/a".into()),
                media_type: Some("TEXT_POST".into()),
                permalink: Some("https://www.threads.com/@storm_tester/post/C0dEfGhIjKl".into()),
                replied_to_id: Some(media("17920000000000001")),
                root_post: Some(RootPost {
                    id: Some(media("17920000000000001")),
                    owner_id: Some(UserId::parse(TARGET).unwrap()),
                    username: Some("storm_tester".into()),
                }),
                shortcode: Some("C0dEfGhIjKl".into()),
                timestamp: Some("2024-09-12T23:17:39+0000".into()),
            })]
        );
    }

    #[test]
    fn only_threads_own_https_permalinks_are_kept_on_every_kind_of_change() {
        let permalink_of = |field: &str, link: &str| {
            let mut value = reply_value("17920000000000999", "hi");
            value["permalink"] = json!(link);
            let raw = body(&[sent(field, value)], ValuesShape::Object);
            match parse(raw.as_bytes(), APP).unwrap().changes.remove(0) {
                Change::Reply(r) | Change::Mention(r) => r.permalink,
                Change::Publish(p) => p.permalink,
                other => panic!("{other:?}"),
            }
        };
        for field in ["replies", "mentions", "publish"] {
            for good in [
                "https://www.threads.com/@storm_tester/post/C0dEfGhIjKl",
                "https://threads.net/@user/post/abc",
            ] {
                assert_eq!(permalink_of(field, good).as_deref(), Some(good), "{field}");
            }
            for bad in [
                "https://evil.example/x",
                "http://www.threads.com/@u/post/a",
                "javascript:alert(1)",
                "https://www.threads.com.evil.example/@u",
                "https://user@www.threads.com/@u",
                "https://www.threads.com:8443/@u",
                "not a url",
            ] {
                assert_eq!(permalink_of(field, bad), None, "{field} {bad}");
            }
        }
    }

    #[test]
    fn w1_text_parses_to_the_same_string_from_either_encoding() {
        for raw in [
            r#"{"app_id":"1234567890","values":{"field":"replies","value":{"id":"1","text":"h\u00e9llo \ud83d\ude80"}}}"#,
            "{\"app_id\":\"1234567890\",\"values\":{\"field\":\"replies\",\"value\":{\"id\":\"1\",\"text\":\"héllo 🚀\"}}}",
        ] {
            let delivery = parse(raw.as_bytes(), APP).unwrap();
            let Change::Reply(reply) = &delivery.changes[0] else {
                panic!("{:?}", delivery.changes)
            };
            assert_eq!(reply.text.as_deref(), Some("héllo 🚀"));
        }
    }

    #[test]
    fn an_array_of_every_field_parses_in_order_and_unknown_fields_are_kept_by_name() {
        let changes = [
            sent("replies", reply_value("17920000000000101", "first")),
            sent(
                "mentions",
                reply_value("17920000000000102", "@storm_tester look"),
            ),
            sent(
                "publish",
                json!({"id": "17920000000000103", "media_type": "TEXT_POST",
                       "permalink": "https://www.threads.com/@storm_tester/post/X",
                       "timestamp": "2024-09-12T23:17:39+0000", "username": "storm_tester"}),
            ),
            sent(
                "delete",
                json!({"id": "17920000000000104", "owner": {"owner_id": TARGET},
                       "deleted_at": "2024-09-13T01:00:00+0000",
                       "timestamp": "2024-09-12T23:17:39+0000", "username": "storm_tester"}),
            ),
            sent("quotes", json!({"id": "17920000000000105"})),
        ];
        let delivery = parse(body(&changes, ValuesShape::Array).as_bytes(), APP).unwrap();
        let keys: Vec<String> = delivery
            .changes
            .iter()
            .filter_map(|c| c.dedup_key().map(|k| k.to_string()))
            .collect();
        assert_eq!(
            keys,
            [
                "replies:17920000000000101",
                "mentions:17920000000000102",
                "publish:17920000000000103",
                "delete:17920000000000104"
            ]
        );
        assert!(
            matches!(&delivery.changes[1], Change::Mention(m) if m.text.as_deref() == Some("@storm_tester look"))
        );
        assert_eq!(
            delivery.changes[2],
            Change::Publish(Publish {
                id: media("17920000000000103"),
                media_type: Some("TEXT_POST".into()),
                permalink: Some("https://www.threads.com/@storm_tester/post/X".into()),
                timestamp: Some("2024-09-12T23:17:39+0000".into()),
                username: Some("storm_tester".into()),
            })
        );
        assert_eq!(
            delivery.changes[3],
            Change::Delete(Delete {
                id: media("17920000000000104"),
                owner_id: Some(UserId::parse(TARGET).unwrap()),
                deleted_at: Some("2024-09-13T01:00:00+0000".into()),
                timestamp: Some("2024-09-12T23:17:39+0000".into()),
                username: Some("storm_tester".into()),
            })
        );
        assert_eq!(delivery.changes[4], Change::Unknown("quotes".into()));
        assert_eq!(delivery.changes[4].dedup_key(), None);
    }

    #[test]
    fn ids_sent_as_large_json_numbers_keep_every_digit() {
        let raw = r#"{"app_id":1234567890,"target_id":90071992547409931,"time":"1723000000",
            "values":[{"field":"delete","value":{"id":90071992547409931,"owner_id":17841405793187218}},
                      {"field":"replies","value":{"id":17920000000000999,"replied_to_id":17920000000000001,
                       "root_post":{"id":17920000000000001,"owner_id":17841405793187218}}}]}"#;
        let delivery = parse(raw.as_bytes(), APP).unwrap();
        assert_eq!(delivery.app_id, APP);
        assert_eq!(delivery.target_id.unwrap().as_str(), "90071992547409931");
        assert_eq!(delivery.time, Some(1_723_000_000));
        let Change::Delete(delete) = &delivery.changes[0] else {
            panic!()
        };
        assert_eq!(delete.id.as_str(), "90071992547409931");
        assert_eq!(delete.owner_id.as_ref().unwrap().as_str(), TARGET);
        let Change::Reply(reply) = &delivery.changes[1] else {
            panic!()
        };
        assert_eq!(reply.id.as_str(), "17920000000000999");
        assert_eq!(reply.replied_to_id, Some(media("17920000000000001")));
        assert_eq!(
            reply.root_post.as_ref().and_then(|r| r.owner_id.clone()),
            Some(UserId::parse(TARGET).unwrap())
        );
    }

    #[test]
    fn unknown_keys_and_mistyped_extras_are_ignored() {
        let raw = r#"{"app_id":"1234567890","new_key":{"deep":[1,2]},"topic":7,"time":"soon",
            "target_id":"not-an-id","subscription_id":123,"has_uid_field":"no",
            "values":{"field":"replies","extra":true,"value":{"id":"5","text":["x"],"username":null,
            "root_post":"nope","replied_to":{"id":"abc"},"brand_new":{}}}}"#;
        let delivery = parse(raw.as_bytes(), APP).unwrap();
        assert_eq!(delivery.topic, None);
        assert_eq!(delivery.time, None);
        assert_eq!(delivery.target_id, None);
        assert_eq!(delivery.subscription_id.as_deref(), Some("123"));
        assert_eq!(delivery.has_uid_field, None);
        assert_eq!(
            delivery.changes,
            vec![Change::Reply(Reply {
                id: media("5"),
                username: None,
                text: None,
                media_type: None,
                permalink: None,
                replied_to_id: None,
                root_post: None,
                shortcode: None,
                timestamp: None,
            })]
        );
    }

    #[test]
    fn a_change_without_a_usable_id_is_malformed_and_the_rest_still_counts() {
        let raw = r#"{"app_id":"1234567890","values":[
            {"field":"replies","value":{"text":"no id"}},
            {"field":"delete","value":{"id":"12.5"}},
            {"field":"publish","value":{"id":1.5}},
            {"field":"mentions","value":"not an object"},
            {"value":{"id":"1"}},
            [1,2],
            {"field":"replies","value":{"id":"17920000000000999"}}]}"#;
        let changes = parse(raw.as_bytes(), APP).unwrap().changes;
        let reasons: Vec<(&str, &str)> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Malformed { field, reason } => Some((field.as_str(), *reason)),
                _ => None,
            })
            .collect();
        assert_eq!(
            reasons,
            [
                ("replies", "value.id is missing or not a Threads id"),
                ("delete", "value.id is missing or not a Threads id"),
                ("publish", "value.id is missing or not a Threads id"),
                ("mentions", "value is missing or not an object"),
                ("", "the change has no field name"),
                ("", "the change is not an object"),
            ]
        );
        assert_eq!(
            changes[6].dedup_key().unwrap().to_string(),
            "replies:17920000000000999"
        );
    }

    #[test]
    fn another_apps_delivery_is_403() {
        for raw in [
            r#"{"app_id":"999","values":{"field":"replies","value":{"id":"1"}}}"#,
            r#"{"app_id":"12345678900","values":[]}"#,
            r#"{"app_id":" 1234567890","values":[]}"#,
        ] {
            let err = parse(raw.as_bytes(), APP).unwrap_err();
            assert_eq!(err, DeliveryError::WrongApp, "{raw}");
            assert_eq!(err.status(), StatusCode::FORBIDDEN);
        }
        let err = parse(br#"{"app_id":"1234567890","values":[]}"#, "").unwrap_err();
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn malformed_envelopes_are_400() {
        let cases: [(&[u8], DeliveryError); 11] = [
            (
                b"",
                DeliveryError::NotJson {
                    what: "not valid JSON",
                    line: 1,
                    column: 0,
                },
            ),
            (
                b"not json",
                DeliveryError::NotJson {
                    what: "not valid JSON",
                    line: 1,
                    column: 2,
                },
            ),
            (b"[1,2]", DeliveryError::NotAnObject),
            (b"\"1234567890\"", DeliveryError::NotAnObject),
            (
                b"{\"app_id\":\"1234567890\",",
                DeliveryError::NotJson {
                    what: "not valid JSON",
                    line: 1,
                    column: 23,
                },
            ),
            (br#"{"values":[]}"#, DeliveryError::MissingAppId),
            (
                br#"{"app_id":null,"values":[]}"#,
                DeliveryError::MissingAppId,
            ),
            (
                br#"{"app_id":["1234567890"],"values":[]}"#,
                DeliveryError::MissingAppId,
            ),
            (br#"{"app_id":"1234567890"}"#, DeliveryError::NoValues),
            (
                br#"{"app_id":"1234567890","values":null}"#,
                DeliveryError::NoValues,
            ),
            (
                b"{\"app_id\":\"1234567890\",\"values\":[],\"x\":\"\xff\"}",
                DeliveryError::NotUtf8(40),
            ),
        ];
        for (raw, expected) in cases {
            let err = parse(raw, APP).unwrap_err();
            assert_eq!(err, expected, "{}", String::from_utf8_lossy(raw));
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        for raw in [
            r#"{"app_id":"1234567890","values":"replies"}"#,
            r#"{"app_id":"1234567890","app_id":"1234567890","values":[]}"#,
            r#"{"app_id":"1234567890","values":[]} trailing"#,
        ] {
            let err = parse(raw.as_bytes(), APP).unwrap_err();
            assert!(matches!(err, DeliveryError::NotJson { .. }), "{raw}: {err}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn a_thousand_changes_pass_and_one_more_is_413() {
        let one = sent("replies", json!({"id": "17920000000000999"}));
        let full = body(&vec![one.clone(); MAX_CHANGES], ValuesShape::Array);
        assert_eq!(
            parse(full.as_bytes(), APP).unwrap().changes.len(),
            MAX_CHANGES
        );
        let over = body(&vec![one; MAX_CHANGES + 1], ValuesShape::Array);
        let err = parse(over.as_bytes(), APP).unwrap_err();
        assert_eq!(err, DeliveryError::TooManyChanges(MAX_CHANGES + 1));
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let huge = format!(
            r#"{{"app_id":"1234567890","values":[{}0]}}"#,
            "0,".repeat(200_000)
        );
        assert_eq!(
            parse(huge.as_bytes(), APP),
            Err(DeliveryError::TooManyChanges(200_001))
        );
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            parse(&big, APP),
            Err(DeliveryError::TooLarge(MAX_BODY_BYTES + 1))
        );
    }

    #[test]
    fn duplicate_changes_share_a_dedup_key_and_fields_keep_keys_apart() {
        let raw = body(
            &[
                sent("replies", json!({"id": "17920000000000999", "text": "a"})),
                sent("replies", json!({"id": 17920000000000999u64, "text": "b"})),
                sent("delete", json!({"id": "17920000000000999"})),
            ],
            ValuesShape::Array,
        );
        let keys: Vec<DedupKey> = parse(raw.as_bytes(), APP)
            .unwrap()
            .changes
            .iter()
            .filter_map(Change::dedup_key)
            .collect();
        assert_eq!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
        assert_eq!(keys[2].to_string(), "delete:17920000000000999");
    }

    #[test]
    fn errors_never_echo_the_body() {
        let raw = br#"{"app_id":"1234567890","values":"secret-looking-content"}"#;
        let message = parse(raw, APP).unwrap_err().to_string();
        assert!(!message.contains("secret-looking"), "{message}");
    }

    // ---- property tests ----

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,24}".prop_map(Value::from),
            "[0-9]{1,20}".prop_map(Value::from),
        ];
        let key = prop_oneof![
            Just("app_id".to_owned()),
            Just("values".to_owned()),
            Just("value".to_owned()),
            Just("field".to_owned()),
            Just("id".to_owned()),
            Just("text".to_owned()),
            Just("root_post".to_owned()),
            Just("owner".to_owned()),
            "\\PC{0,8}",
        ];
        leaf.prop_recursive(4, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn field_name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("replies".to_owned()),
            Just("mentions".to_owned()),
            Just("publish".to_owned()),
            Just("delete".to_owned()),
            "[a-z_]{0,10}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn arbitrary_bytes_never_panic_and_are_refused_with_a_4xx(
            raw in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            if let Err(err) = parse(&raw, APP) {
                prop_assert!(err.status().is_client_error());
            }
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value(), escaped in any::<bool>()) {
            let raw = if escaped { meta_json(&value) } else { value.to_string() };
            match parse(raw.as_bytes(), APP) {
                Ok(delivery) => prop_assert!(delivery.changes.len() <= MAX_CHANGES),
                Err(err) => prop_assert!(err.status().is_client_error()),
            }
        }

        #[test]
        fn arbitrary_changes_in_a_real_envelope_parse_in_both_shapes_and_both_encodings(
            changes in proptest::collection::vec(
                (field_name(), json_value(), proptest::option::of(any::<u64>()), "\\PC{0,40}"),
                1..8,
            ),
            as_array in any::<bool>(),
        ) {
            let sent_changes: Vec<SentChange> = changes
                .iter()
                .map(|(field, extra, id, text)| {
                    let mut value = match extra {
                        Value::Object(map) => map.clone(),
                        _ => Map::new(),
                    };
                    match id {
                        Some(id) => value.insert("id".into(), json!(id.to_string())),
                        None => value.remove("id"),
                    };
                    value.insert("text".into(), json!(text));
                    sent(field, Value::Object(value))
                })
                .collect();
            let shape = if as_array { ValuesShape::Array } else { ValuesShape::Object };
            let escaped = body(&sent_changes, shape);
            let delivery = parse(escaped.as_bytes(), APP).unwrap();
            // Meta's escaping and plain UTF-8 read the same.
            let plain: Value = serde_json::from_str(&escaped).unwrap();
            let utf8 = parse(plain.to_string().as_bytes(), APP).unwrap();
            prop_assert_eq!(&delivery, &utf8);
            prop_assert_eq!(delivery.changes.len(), sent_changes.len());
            for ((field, _, id, text), got) in changes.iter().zip(&delivery.changes) {
                match (Field::parse(field), id) {
                    (None, _) => prop_assert_eq!(got, &Change::Unknown(field.clone())),
                    (Some(known), Some(id)) => {
                        let key = got.dedup_key().unwrap();
                        prop_assert_eq!(key.field, known);
                        prop_assert_eq!(key.id.as_str(), id.to_string());
                        if let Change::Reply(r) | Change::Mention(r) = got {
                            prop_assert_eq!(r.text.as_deref(), Some(text.as_str()));
                        }
                    }
                    (Some(_), None) => prop_assert!(
                        matches!(got, Change::Malformed { .. }),
                        "{:?}", got
                    ),
                }
            }
        }
    }
}
