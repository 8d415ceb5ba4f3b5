//! How a storm is laid out in the PostsTable, and read back.
//!
//! `pk = storm#<id>`: `sk = storm` holds the storm, `sk = part#<nnn>` each part, so one Query reads
//! a storm whole. `gsi1` lists an owner's storms newest first; `gsi2` is the sparse sweep index,
//! present only while the scheduler must look at the storm (scheduled, queued, deferred).
//! `ByMedia` (keys only) finds a part by its Threads media id, for Meta's webhooks. Beside the
//! storms, `pk = uncertain#<account>` holds the account's parts whose publish the poster could
//! not confirm, until a `publish` webhook or the poster itself settles them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::model::{
    AccountId, Part, PartContent, Reason, Status, StatusName, Storm, StormId, StormKind,
};
use crate::store::{Item, n, s};
use crate::threads::MediaId;

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
pub(crate) const STORM_SK: &str = "storm";
pub(crate) const GSI1PK: &str = "gsi1pk";
pub(crate) const GSI1SK: &str = "gsi1sk";
pub(crate) const GSI2PK: &str = "gsi2pk";
pub(crate) const GSI2SK: &str = "gsi2sk";
/// The one partition of the sweep index. A single partition keeps the sweep to one Query; at the
/// rate storms become due (thousands a minute at most) it is far from DynamoDB's partition limits.
pub(crate) const SWEEP_PARTITION: &str = "sweep#due";

pub(crate) const STATUS: &str = "status";
pub(crate) const VERSION: &str = "version";
pub(crate) const NOT_BEFORE: &str = "not_before";
pub(crate) const REASON_CODE: &str = "reason_code";
pub(crate) const REASON: &str = "reason";
pub(crate) const MEDIA_ID: &str = "media_id";
pub(crate) const PERMALINK: &str = "permalink";
pub(crate) const UPDATED_AT: &str = "updated_at";
pub(crate) const OWNER: &str = "owner_user_id";
pub(crate) const DUE_AT: &str = "due_at";
/// On a part (and on the storm item for its first part): when Threads said it was deleted.
pub(crate) const DELETED_AT: &str = "deleted_at";
/// On a part whose media id came from Meta's `publish` webhook rather than from the poster.
pub(crate) const RECONCILED_AT: &str = "reconciled_at";

pub(crate) const INDEX_BY_OWNER: &str = "ByOwner";
pub(crate) const INDEX_BY_SWEEP: &str = "BySweep";
/// Keys only, on `media_id`: which part (and storm item) a Threads media id belongs to.
pub(crate) const INDEX_BY_MEDIA: &str = "ByMedia";

/// The partition of an account's uncertain parts (see [`super::store::UncertainPart`]).
pub(crate) fn uncertain_pk(account: &AccountId) -> String {
    format!("uncertain#{account}")
}

pub(crate) fn uncertain_sk(id: &StormId, index: usize) -> String {
    format!("{}#{}", pk(id), part_sk(index))
}

pub(crate) fn pk(id: &StormId) -> String {
    format!("storm#{id}")
}

pub(crate) fn part_sk(index: usize) -> String {
    format!("part#{index:03}")
}

pub(crate) fn owner_pk(owner: &str) -> String {
    format!("owner#{owner}")
}

/// Zero-padded so that string order is time order.
pub(crate) fn time_key(epoch: i64, id: &StormId) -> String {
    format!("{:012}#{id}", epoch.max(0))
}

/// The exclusive upper bound of sweep keys due at or before `now`.
pub(crate) fn due_bound(now: i64) -> String {
    format!("{:012}", now.saturating_add(1).max(0))
}

pub(crate) fn key(id: &StormId, sk: &str) -> Item {
    HashMap::from([(PK.to_owned(), s(pk(id))), (SK.to_owned(), s(sk))])
}

/// A stored item that cannot be read back as a storm: a bug or a manual edit, never user input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storm {id}: stored item is malformed: {what}")]
pub struct Corrupt {
    pub id: String,
    pub what: String,
}

/// The status's own attributes, as `(name, value)` pairs to SET; the rest of
/// [`STATUS_ATTRIBUTES`] are removed.
pub(crate) fn status_attributes(status: &Status) -> Vec<(&'static str, AttributeValue)> {
    let mut out = vec![(STATUS, s(status.name().as_str()))];
    match status {
        Status::Deferred { not_before } => out.push((NOT_BEFORE, n(not_before))),
        Status::Published {
            media_id,
            permalink,
        } => {
            out.push((MEDIA_ID, s(media_id.as_str())));
            if let Some(link) = permalink {
                out.push((PERMALINK, s(link)));
            }
        }
        Status::Rejected(reason) | Status::Failed(reason) => {
            out.push((REASON_CODE, s(&reason.code)));
            out.push((REASON, s(&reason.text)));
        }
        Status::Scheduled | Status::Queued | Status::Publishing | Status::Cancelled => {}
    }
    out
}

/// Attributes that belong to one status or another and are cleared when it changes.
pub(crate) const STATUS_ATTRIBUTES: [&str; 3] = [NOT_BEFORE, REASON_CODE, REASON];

/// The storm item and one item per part, ready for TransactWriteItems.
pub(crate) fn to_items(storm: &Storm, sweep_at: Option<i64>) -> Result<(Item, Vec<Item>), Corrupt> {
    let mut head = key(&storm.id, STORM_SK);
    head.insert("id".into(), s(storm.id.as_str()));
    head.insert("kind".into(), s(storm.kind.as_str()));
    head.insert(OWNER.into(), s(&storm.owner_user_id));
    head.insert("account_id".into(), s(storm.account_id.as_str()));
    head.insert("part_count".into(), n(storm.parts.len()));
    head.insert("created_at".into(), n(storm.created_at));
    head.insert(UPDATED_AT.into(), n(storm.updated_at));
    head.insert(VERSION.into(), n(storm.version));
    if let Some(at) = storm.publish_at {
        head.insert("publish_at".into(), n(at));
    }
    for (name, value) in status_attributes(&storm.status) {
        head.insert(name.into(), value);
    }
    head.insert(GSI1PK.into(), s(owner_pk(&storm.owner_user_id)));
    head.insert(GSI1SK.into(), s(time_key(storm.created_at, &storm.id)));
    if let Some(due) = sweep_at {
        head.insert(GSI2PK.into(), s(SWEEP_PARTITION));
        head.insert(GSI2SK.into(), s(time_key(due, &storm.id)));
        head.insert(DUE_AT.into(), n(due));
    }

    let mut parts = Vec::with_capacity(storm.parts.len());
    for part in &storm.parts {
        let mut item = key(&storm.id, &part_sk(part.index));
        item.insert("index".into(), n(part.index));
        let content = serde_json::to_string(&part.content).map_err(|e| Corrupt {
            id: storm.id.to_string(),
            what: format!("part {} content does not serialise: {e}", part.index),
        })?;
        item.insert("content".into(), s(content));
        if let Some(media) = &part.media_id {
            item.insert(MEDIA_ID.into(), s(media.as_str()));
        }
        if let Some(link) = &part.permalink {
            item.insert(PERMALINK.into(), s(link));
        }
        if let Some(at) = part.deleted_at {
            item.insert(DELETED_AT.into(), n(at));
        }
        parts.push(item);
    }
    Ok((head, parts))
}

/// Reads a storm back from its items (in any order).
pub(crate) fn from_items(id: &StormId, items: Vec<Item>) -> Result<Option<Storm>, Corrupt> {
    let corrupt = |what: String| Corrupt {
        id: id.to_string(),
        what,
    };
    let mut head = None;
    let mut parts = Vec::new();
    for item in items {
        match item.get(SK).and_then(|v| v.as_s().ok()).map(String::as_str) {
            Some(STORM_SK) => head = Some(item),
            Some(sk) if sk.starts_with("part#") => parts.push(read_part(&item).map_err(corrupt)?),
            _ => return Err(corrupt("an item with an unknown sort key".into())),
        }
    }
    let Some(head) = head else {
        return Ok(None);
    };
    parts.sort_by_key(|p| p.index);
    let count = num(&head, "part_count").map_err(corrupt)?;
    let in_order = parts.iter().enumerate().all(|(i, p)| p.index == i);
    if usize::try_from(count).ok() != Some(parts.len()) || !in_order {
        return Err(corrupt(format!(
            "part_count {count} but parts {:?} are stored",
            parts.iter().map(|p| p.index).collect::<Vec<_>>()
        )));
    }
    let storm = Storm {
        id: id.clone(),
        kind: StormKind::parse(&string(&head, "kind").map_err(corrupt)?)
            .ok_or_else(|| corrupt("unknown kind".into()))?,
        owner_user_id: string(&head, OWNER).map_err(corrupt)?,
        account_id: AccountId::parse(&string(&head, "account_id").map_err(corrupt)?)
            .map_err(|e| corrupt(e.to_string()))?,
        parts,
        status: read_status(&head).map_err(corrupt)?,
        publish_at: opt_num(&head, "publish_at").map_err(corrupt)?,
        created_at: num(&head, "created_at").map_err(corrupt)?,
        updated_at: num(&head, UPDATED_AT).map_err(corrupt)?,
        version: u32::try_from(num(&head, VERSION).map_err(corrupt)?)
            .map_err(|_| corrupt("version out of range".into()))?,
    };
    Ok(Some(storm))
}

fn read_part(item: &Item) -> Result<Part, String> {
    let index = usize::try_from(num(item, "index")?).map_err(|_| "negative part index")?;
    let content: PartContent = serde_json::from_str(&string(item, "content")?)
        .map_err(|e| format!("part {index} content: {e}"))?;
    Ok(Part {
        index,
        content,
        media_id: opt_media(item)?,
        permalink: opt_string(item, PERMALINK),
        deleted_at: opt_num(item, DELETED_AT)?,
    })
}

/// The status stored in `item` with its attributes.
pub(crate) fn read_status(item: &Item) -> Result<Status, String> {
    let name = string(item, STATUS)?;
    let reason = || -> Result<Reason, String> {
        Ok(Reason {
            code: string(item, REASON_CODE)?,
            text: string(item, REASON)?,
        })
    };
    Ok(
        match StatusName::parse(&name).ok_or_else(|| format!("unknown status {name:?}"))? {
            StatusName::Scheduled => Status::Scheduled,
            StatusName::Queued => Status::Queued,
            StatusName::Deferred => Status::Deferred {
                not_before: num(item, NOT_BEFORE)?,
            },
            StatusName::Publishing => Status::Publishing,
            StatusName::Published => Status::Published {
                media_id: opt_media(item)?.ok_or("published without a media id")?,
                permalink: opt_string(item, PERMALINK),
            },
            StatusName::Rejected => Status::Rejected(reason()?),
            StatusName::Failed => Status::Failed(reason()?),
            StatusName::Cancelled => Status::Cancelled,
        },
    )
}

pub(crate) fn string(item: &Item, name: &str) -> Result<String, String> {
    opt_string(item, name).ok_or_else(|| format!("{name} is missing or not a string"))
}

pub(crate) fn opt_string(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub(crate) fn num(item: &Item, name: &str) -> Result<i64, String> {
    opt_num(item, name)?.ok_or_else(|| format!("{name} is missing"))
}

pub(crate) fn opt_num(item: &Item, name: &str) -> Result<Option<i64>, String> {
    match item.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_n()
            .ok()
            .and_then(|n| n.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{name} is not an integer")),
    }
}

fn opt_media(item: &Item) -> Result<Option<MediaId>, String> {
    opt_string(item, MEDIA_ID)
        .map(|m| MediaId::parse(&m).map_err(|e| e.to_string()))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storm(parts: usize, status: Status) -> Storm {
        Storm {
            id: StormId::new(),
            kind: StormKind::Storm,
            owner_user_id: "u-1".into(),
            account_id: AccountId::parse("17841405793187218").unwrap(),
            parts: (0..parts)
                .map(|index| Part {
                    index,
                    content: PartContent::text(format!("part {index}")),
                    media_id: None,
                    permalink: None,
                    deleted_at: None,
                })
                .collect(),
            status,
            publish_at: Some(1_800_000_000),
            created_at: 1_700_000_000,
            updated_at: 1_700_000_001,
            version: 3,
        }
    }

    #[test]
    fn a_storm_round_trips_through_its_items_in_any_order() {
        for status in [
            Status::Queued,
            Status::Deferred { not_before: 42 },
            Status::Published {
                media_id: MediaId::parse("17920000000000009").unwrap(),
                permalink: Some("https://www.threads.net/@x/post/abc".into()),
            },
            Status::Rejected(Reason::new("duplicate", "same as storm_x")),
            Status::Failed(Reason::new("forbidden", "not yours")),
        ] {
            let original = storm(3, status);
            let (head, parts) = to_items(&original, Some(100)).unwrap();
            assert_eq!(head.get(GSI2PK), Some(&s(SWEEP_PARTITION)));
            let mut items = parts;
            items.reverse();
            items.insert(1, head);
            let back = from_items(&original.id, items).unwrap().unwrap();
            assert_eq!(back, original);
        }
    }

    #[test]
    fn a_missing_part_is_reported_not_hidden() {
        let original = storm(3, Status::Queued);
        let (head, mut parts) = to_items(&original, None).unwrap();
        parts.remove(1);
        parts.push(head);
        let err = from_items(&original.id, parts).unwrap_err();
        assert!(err.what.contains("part_count 3"), "{err}");
    }

    #[test]
    fn keys_sort_by_time() {
        let id = StormId::new();
        assert!(time_key(99, &id) < time_key(100, &id));
        assert!(time_key(100, &id) < due_bound(100));
        assert!(due_bound(99) < time_key(100, &id));
        assert_eq!(part_sk(7), "part#007");
    }
}
