//! The PostsTable adapter: create a storm in one transaction, read it whole in one Query, move its
//! status only from the status a stage expects (so a stale stage can never move a storm back),
//! and find due work on the sweep index without a Scan.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update, WriteRequest,
};

use super::item::{self, Corrupt};
use super::model::{
    AccountId, MAX_PARTS, MediaType, Status, StatusName, Storm, StormId, StormKind,
};
use crate::store::{Condition, Item, StoreError, n, s};
use crate::threads::{ContainerId, MediaId};

/// A failure of the posts store: DynamoDB did not answer (retry), or an item is malformed.
#[derive(Debug, thiserror::Error)]
pub enum PostsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
    /// More parts than one transaction can write.
    #[error("a storm has at most {max} parts; this one has {count}")]
    TooManyParts { count: usize, max: usize },
}

/// The outcome of [`PostsStore::create`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    /// A storm with this id exists already (a retried create): nothing was written.
    AlreadyExists,
}

/// The outcome of a status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    Moved,
    /// The storm was not in an expected status (or version, or owner): nothing changed. The
    /// storm's current status is given when it exists.
    Stale {
        current: Option<Status>,
    },
}

/// A status change: from one of `from` (and, if given, only at `version` / for `owner`) to `to`.
#[derive(Debug, Clone)]
pub struct Transition {
    pub from: Vec<StatusName>,
    pub to: Status,
    /// Put the storm on the sweep index due at this time; `None` takes it off.
    pub sweep_at: Option<i64>,
    pub version: Option<u32>,
    pub owner: Option<String>,
    /// Add one to the version: the scheduler does, each time it sends the storm again.
    pub bump_version: bool,
    pub now: i64,
}

impl Transition {
    pub fn new(from: &[StatusName], to: Status, now: i64) -> Self {
        Transition {
            from: from.to_vec(),
            to,
            sweep_at: None,
            version: None,
            owner: None,
            bump_version: false,
            now,
        }
    }
    pub fn sweep_at(mut self, due: i64) -> Self {
        self.sweep_at = Some(due);
        self
    }
    pub fn at_version(mut self, version: u32) -> Self {
        self.version = Some(version);
        self
    }
    pub fn owned_by(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }
    pub fn bump_version(mut self) -> Self {
        self.bump_version = true;
        self
    }
}

/// One storm the sweep index says is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueStorm {
    pub id: StormId,
    pub account_id: AccountId,
    pub part_count: usize,
    pub status: Status,
    pub version: u32,
    pub due_at: i64,
}

/// A storm in an owner's listing (no parts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StormSummary {
    pub id: StormId,
    pub kind: StormKind,
    pub account_id: AccountId,
    pub part_count: usize,
    pub status: Status,
    pub publish_at: Option<i64>,
    pub created_at: i64,
    /// When its first part was deleted on Threads.
    pub deleted_at: Option<i64>,
}

/// Where the next page of a listing starts (DynamoDB's LastEvaluatedKey).
pub type Cursor = Item;

/// Where the next page of an owner's listing starts: just after this storm. Opaque to clients
/// ([`ListAfter::encode`]), and rebuilt into a key for the caller's own partition only, so a
/// forged one can at worst skip the caller's own storms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAfter {
    pub created_at: i64,
    pub id: StormId,
}

impl ListAfter {
    /// `<created_at>.<storm id>`, base64url without padding.
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}.{}", self.created_at, self.id))
    }

    /// The cursor a client sent back; `None` for anything [`ListAfter::encode`] did not make.
    pub fn decode(raw: &str) -> Option<Self> {
        use base64::Engine;
        if raw.len() > 128 {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (at, id) = text.split_once('.')?;
        let created_at: i64 = at.parse().ok().filter(|at| *at >= 0)?;
        Some(ListAfter {
            created_at,
            id: StormId::parse(id).ok()?,
        })
    }

    fn key(&self, owner: &str) -> Cursor {
        let mut key = item::key(&self.id, item::STORM_SK);
        key.insert(item::GSI1PK.into(), s(item::owner_pk(owner)));
        key.insert(
            item::GSI1SK.into(),
            s(item::time_key(self.created_at, &self.id)),
        );
        key
    }
}

/// A part whose publish the poster could not confirm: its container may be on Threads, but its
/// media id is unknown (the publish answered 5xx, code 10 or timed out and the post could not be
/// found again). Kept under the account until Meta's `publish` webhook or the poster settles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncertainPart {
    pub storm_id: StormId,
    pub index: usize,
    pub container_id: Option<ContainerId>,
    pub media_type: MediaType,
    /// When its container was created (Unix seconds): a post published earlier is not it.
    pub since: i64,
    /// The media ids of the storm's parts published before it: Meta reports those too, perhaps
    /// before the storm's end records them, and none of them is this part.
    pub published_before: Vec<MediaId>,
}

/// How long an uncertain part is remembered: Meta retries a webhook for 36 hours.
pub const UNCERTAIN_KEPT_SECS: i64 = 48 * 3600;

/// The outcome of [`PostsStore::record_media`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The part now has this media id.
    Recorded,
    /// The part already had this media id: nothing changed.
    Unchanged,
    /// The part already has another media id (the poster's own, which wins), or is gone.
    Refused,
}

/// What one part ended as on Threads, for [`PostsStore::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartOutcome {
    pub index: usize,
    pub media_id: MediaId,
    pub permalink: Option<String>,
}

/// The PostsTable.
#[derive(Debug, Clone)]
pub struct PostsStore {
    client: Client,
    table: String,
}

impl PostsStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        PostsStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Writes the storm and all its parts in one TransactWriteItems, only if the id is new.
    /// `sweep_at` puts it on the sweep index, so a storm whose enqueue is lost is still found.
    /// The request token makes a retried call within ten minutes a no-op.
    pub async fn create(
        &self,
        storm: &Storm,
        sweep_at: Option<i64>,
    ) -> Result<Created, PostsError> {
        if storm.parts.len() > MAX_PARTS {
            return Err(PostsError::TooManyParts {
                count: storm.parts.len(),
                max: MAX_PARTS,
            });
        }
        let (head, parts) = item::to_items(storm, sweep_at)?;
        let mut actions = Vec::with_capacity(parts.len() + 1);
        for it in std::iter::once(head).chain(parts) {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(it))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", item::PK)
                .build()
                .map_err(|e| self.error("TransactWriteItems", e))?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        // The token is at most 36 characters: the id's UUID part is 32.
        let token = storm.id.as_str().trim_start_matches("storm_").to_owned();
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .client_request_token(token)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Created::Created),
            Err(err) if cancelled_by_condition(&err).is_some() => Ok(Created::AlreadyExists),
            Err(err) => Err(self.sdk_error("TransactWriteItems", err).into()),
        }
    }

    /// The storm and all its parts (strongly consistent), or `None`.
    pub async fn load(&self, id: &StormId) -> Result<Option<Storm>, PostsError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", item::PK)
                .expression_attribute_values(":pk", s(item::pk(id)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.sdk_error("Query", e))?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(item::from_items(id, items)?)
    }

    /// Several storms, each read whole, in as few BatchGetItem requests as their items allow
    /// (100 keys each), strongly consistent. `wanted` names each storm with its part count (an
    /// immutable fact its messages carry); a storm that does not exist is absent from the map.
    pub async fn load_many(
        &self,
        wanted: &[(StormId, usize)],
    ) -> Result<HashMap<StormId, Storm>, PostsError> {
        let mut keys = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (id, parts) in wanted {
            if !seen.insert(id) {
                continue;
            }
            keys.push(item::key(id, item::STORM_SK));
            for index in 0..(*parts).min(MAX_PARTS) {
                keys.push(item::key(id, &item::part_sk(index)));
            }
        }
        let mut by_storm: HashMap<String, Vec<Item>> = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut pending = chunk.to_vec();
            // UnprocessedKeys come back under load: ask again, with a short pause, a few times.
            for attempt in 0..5u32 {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending.clone()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| self.error("BatchGetItem", e))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| self.sdk_error("BatchGetItem", e))?;
                for it in output
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    if let Some(pk) = it.get(item::PK).and_then(|v| v.as_s().ok()) {
                        by_storm.entry(pk.clone()).or_default().push(it.clone());
                    }
                }
                pending = output
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt == 4 {
                    return Err(self
                        .error("BatchGetItem", "keys left unprocessed after 5 attempts")
                        .into());
                }
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
        }
        let mut storms = HashMap::new();
        for (id, _) in wanted {
            let Some(items) = by_storm.remove(&item::pk(id)) else {
                continue;
            };
            match item::from_items(id, items) {
                Ok(Some(storm)) => {
                    storms.insert(id.clone(), storm);
                }
                Ok(None) => {}
                // Asked with a wrong part count, or damaged: left out, so the caller reads it
                // alone (and sees the real problem there).
                Err(e) => tracing::warn!(error = %e, "storm left out of a batch read"),
            }
        }
        Ok(storms)
    }

    /// Moves the storm's status if it is in one of `t.from` (and at `t.version`, for `t.owner`).
    pub async fn transition(&self, id: &StormId, t: Transition) -> Result<Moved, PostsError> {
        let update = UpdateParts::for_transition(id, &t);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::key(id, item::STORM_SK)))
            .update_expression(update.expression)
            .condition_expression(update.condition)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Moved::Moved),
            Err(err) => match err.as_service_error() {
                Some(e) if e.is_conditional_check_failed_exception() => {
                    let old = match e {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => c.item().cloned(),
                        _ => None,
                    };
                    Ok(Moved::Stale {
                        current: self.status_of(id, old)?,
                    })
                }
                _ => Err(self.sdk_error("UpdateItem", err).into()),
            },
        }
    }

    /// Cancels `owner`'s storm if nothing has been sent to Threads yet (scheduled, queued or
    /// deferred). `Stale` says it was not: publishing began, it ended, or it is not theirs.
    pub async fn cancel(&self, id: &StormId, owner: &str, now: i64) -> Result<Moved, PostsError> {
        self.transition(
            id,
            Transition::new(
                &[
                    StatusName::Scheduled,
                    StatusName::Queued,
                    StatusName::Deferred,
                ],
                Status::Cancelled,
                now,
            )
            .owned_by(owner),
        )
        .await
    }

    /// Records the storm's end and each published part in one transaction: `to` (published or
    /// failed) only from one of `from`. Parts already recorded are simply written again.
    pub async fn finish(
        &self,
        id: &StormId,
        t: Transition,
        parts: &[PartOutcome],
    ) -> Result<Moved, PostsError> {
        if parts.len() > MAX_PARTS {
            return Err(PostsError::TooManyParts {
                count: parts.len(),
                max: MAX_PARTS,
            });
        }
        let update = UpdateParts::for_transition(id, &t);
        let storm_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(item::key(id, item::STORM_SK)))
            .update_expression(update.expression)
            .condition_expression(update.condition)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| self.error("TransactWriteItems", e))?;
        let mut actions = vec![TransactWriteItem::builder().update(storm_update).build()];
        for part in parts {
            let mut expression = "SET #m = :m".to_owned();
            let mut values = HashMap::from([(":m".to_owned(), s(part.media_id.as_str()))]);
            let mut names = HashMap::from([
                ("#m".to_owned(), item::MEDIA_ID.to_owned()),
                ("#pk".to_owned(), item::PK.to_owned()),
            ]);
            if let Some(link) = &part.permalink {
                expression.push_str(", #p = :p");
                values.insert(":p".into(), s(link));
                names.insert("#p".into(), item::PERMALINK.into());
            }
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(item::key(id, &item::part_sk(part.index))))
                .update_expression(expression)
                .condition_expression("attribute_exists(#pk)")
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .build()
                .map_err(|e| self.error("TransactWriteItems", e))?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Moved::Moved),
            Err(err) => match cancelled_by_condition(&err) {
                Some(old) => Ok(Moved::Stale {
                    current: self.status_of(id, old)?,
                }),
                None => Err(self.sdk_error("TransactWriteItems", err).into()),
            },
        }
    }

    /// Storms on the sweep index due at or before `now`, oldest first, one page of at most
    /// `limit`. The index is eventually consistent: callers move each storm with a conditional
    /// [`Transition`] on the status and version read here.
    pub async fn due(
        &self,
        now: i64,
        limit: i32,
        start: Option<Cursor>,
    ) -> Result<(Vec<DueStorm>, Option<Cursor>), PostsError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(item::INDEX_BY_SWEEP)
            .key_condition_expression("#p = :p AND #s < :bound")
            .expression_attribute_names("#p", item::GSI2PK)
            .expression_attribute_names("#s", item::GSI2SK)
            .expression_attribute_values(":p", s(item::SWEEP_PARTITION))
            .expression_attribute_values(":bound", s(item::due_bound(now)))
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| self.sdk_error("Query", e))?;
        let mut due = Vec::new();
        for it in page.items() {
            let read = || -> Result<DueStorm, String> {
                Ok(DueStorm {
                    id: StormId::parse(&item::string(it, "id")?).map_err(|e| e.to_string())?,
                    account_id: AccountId::parse(&item::string(it, "account_id")?)
                        .map_err(|e| e.to_string())?,
                    part_count: usize::try_from(item::num(it, "part_count")?)
                        .map_err(|_| "negative part_count")?,
                    status: item::read_status(it)?,
                    version: u32::try_from(item::num(it, item::VERSION)?)
                        .map_err(|_| "version out of range")?,
                    due_at: item::num(it, item::DUE_AT)?,
                })
            };
            match read() {
                Ok(d) => due.push(d),
                // One malformed item must not stop the sweep of every other storm.
                Err(what) => tracing::error!(%what, "malformed item on the sweep index skipped"),
            }
        }
        let next = page.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
        Ok((due, next))
    }

    /// One page of `owner`'s storms, newest first.
    pub async fn list_by_owner(
        &self,
        owner: &str,
        limit: i32,
        after: Option<&ListAfter>,
    ) -> Result<(Vec<StormSummary>, Option<ListAfter>), PostsError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(item::INDEX_BY_OWNER)
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", item::GSI1PK)
            .expression_attribute_values(":p", s(item::owner_pk(owner)))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(after.map(|a| a.key(owner)))
            .send()
            .await
            .map_err(|e| self.sdk_error("Query", e))?;
        let mut out = Vec::new();
        for it in page.items() {
            let id = item::string(it, "id")
                .and_then(|raw| StormId::parse(&raw).map_err(|e| e.to_string()))
                .map_err(|what| Corrupt {
                    id: "?".into(),
                    what,
                })?;
            let corrupt = |what: String| Corrupt {
                id: id.to_string(),
                what,
            };
            out.push(StormSummary {
                kind: StormKind::parse(&item::string(it, "kind").map_err(corrupt)?)
                    .ok_or_else(|| corrupt("unknown kind".into()))?,
                account_id: AccountId::parse(&item::string(it, "account_id").map_err(corrupt)?)
                    .map_err(|e| corrupt(e.to_string()))?,
                part_count: usize::try_from(item::num(it, "part_count").map_err(corrupt)?)
                    .map_err(|_| corrupt("negative part_count".into()))?,
                status: item::read_status(it).map_err(corrupt)?,
                publish_at: item::opt_num(it, "publish_at").map_err(corrupt)?,
                created_at: item::num(it, "created_at").map_err(corrupt)?,
                deleted_at: item::opt_num(it, item::DELETED_AT).map_err(corrupt)?,
                id,
            });
        }
        let more = page.last_evaluated_key().is_some_and(|k| !k.is_empty());
        let next = out
            .last()
            .filter(|_| more)
            .map(|last: &StormSummary| ListAfter {
                created_at: last.created_at,
                id: last.id.clone(),
            });
        Ok((out, next))
    }

    /// Erases, for a data deletion, every storm of `owner` that `pick` selects: the storm item and
    /// its parts are deleted, not emptied. A storm a stage is still handling is simply gone when
    /// the stage next reads it. Returns how many storms were erased.
    pub async fn erase_where(
        &self,
        owner: &str,
        pick: impl Fn(&StormSummary) -> bool,
    ) -> Result<u64, PostsError> {
        let mut erased = 0;
        let mut after: Option<ListAfter> = None;
        loop {
            let (page, next) = self.list_by_owner(owner, 100, after.as_ref()).await?;
            for storm in page.iter().filter(|storm| pick(storm)) {
                self.erase(&storm.id, storm.part_count).await?;
                erased += 1;
            }
            match next {
                Some(next) => after = Some(next),
                None => return Ok(erased),
            }
        }
    }

    /// Deletes storm `id` and its `part_count` parts, 25 keys per BatchWriteItem, retrying what
    /// DynamoDB leaves unprocessed.
    async fn erase(&self, id: &StormId, part_count: usize) -> Result<(), PostsError> {
        const ATTEMPTS: u32 = 5;
        let mut keys = vec![item::key(id, item::STORM_SK)];
        keys.extend(
            (0..part_count.min(MAX_PARTS)).map(|index| item::key(id, &item::part_sk(index))),
        );
        for chunk in keys.chunks(25) {
            let mut pending = chunk
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map(|delete| WriteRequest::builder().delete_request(delete).build())
                        .map_err(|e| self.error("BatchWriteItem", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                if attempt > ATTEMPTS {
                    return Err(self
                        .error("BatchWriteItem", "deletes left unprocessed after retries")
                        .into());
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| self.sdk_error("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items()
                    .and_then(|left| left.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
            }
        }
        Ok(())
    }

    /// Forgets every uncertain-part marker of `account` (a data deletion).
    pub async fn erase_uncertain(&self, account: &AccountId) -> Result<(), PostsError> {
        for part in self.uncertain_parts(account, 0).await? {
            self.clear_uncertain(account, &part.storm_id, part.index)
                .await?;
        }
        Ok(())
    }

    /// Remembers `part` of `account` as uncertain (one PutItem; repeating it is harmless).
    pub async fn mark_uncertain(
        &self,
        account: &AccountId,
        part: &UncertainPart,
        now: i64,
    ) -> Result<(), PostsError> {
        let mut it = Item::from([
            (item::PK.to_owned(), s(item::uncertain_pk(account))),
            (
                item::SK.to_owned(),
                s(item::uncertain_sk(&part.storm_id, part.index)),
            ),
            ("storm_id".to_owned(), s(part.storm_id.as_str())),
            ("index".to_owned(), n(part.index)),
            ("media_type".to_owned(), s(part.media_type.as_str())),
            ("since".to_owned(), n(part.since)),
            (
                "expires_at".to_owned(),
                n(now.saturating_add(UNCERTAIN_KEPT_SECS)),
            ),
        ]);
        if let Some(container) = &part.container_id {
            it.insert("container_id".to_owned(), s(container.as_str()));
        }
        if !part.published_before.is_empty() {
            let ids: Vec<&str> = part.published_before.iter().map(MediaId::as_str).collect();
            it.insert("published_before".to_owned(), s(ids.join(",")));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(it))
            .send()
            .await
            .map_err(|e| self.sdk_error("PutItem", e))?;
        Ok(())
    }

    /// Forgets that a part was uncertain (settled by the poster or a webhook).
    pub async fn clear_uncertain(
        &self,
        account: &AccountId,
        id: &StormId,
        index: usize,
    ) -> Result<(), PostsError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(item::PK, s(item::uncertain_pk(account)))
            .key(item::SK, s(item::uncertain_sk(id, index)))
            .send()
            .await
            .map_err(|e| self.sdk_error("DeleteItem", e))?;
        Ok(())
    }

    /// The account's uncertain parts that have not expired, in storm then part order.
    pub async fn uncertain_parts(
        &self,
        account: &AccountId,
        now: i64,
    ) -> Result<Vec<UncertainPart>, PostsError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", item::PK)
            .expression_attribute_values(":pk", s(item::uncertain_pk(account)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error("Query", e))?;
        let mut out = Vec::new();
        for it in page.items() {
            let read = || -> Result<Option<UncertainPart>, String> {
                // TTL deletes late: an expired marker is already forgotten.
                if item::opt_num(it, "expires_at")?.is_some_and(|at| at <= now) {
                    return Ok(None);
                }
                Ok(Some(UncertainPart {
                    storm_id: StormId::parse(&item::string(it, "storm_id")?)
                        .map_err(|e| e.to_string())?,
                    index: usize::try_from(item::num(it, "index")?)
                        .map_err(|_| "negative part index")?,
                    container_id: item::opt_string(it, "container_id")
                        .map(|c| ContainerId::parse(&c).map_err(|e| e.to_string()))
                        .transpose()?,
                    media_type: parse_media_type(&item::string(it, "media_type")?)
                        .ok_or("unknown media_type")?,
                    since: item::num(it, "since")?,
                    published_before: item::opt_string(it, "published_before")
                        .unwrap_or_default()
                        .split(',')
                        .filter(|id| !id.is_empty())
                        .map(|id| MediaId::parse(id).map_err(|e| e.to_string()))
                        .collect::<Result<_, _>>()?,
                }))
            };
            match read() {
                Ok(Some(part)) => out.push(part),
                Ok(None) => {}
                Err(what) => tracing::error!(%what, "malformed uncertain-part marker skipped"),
            }
        }
        Ok(out)
    }

    /// The parts that carry `media` (normally one), by the keys-only `ByMedia` index.
    pub async fn parts_with_media(
        &self,
        media: &MediaId,
    ) -> Result<Vec<(StormId, usize)>, PostsError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(item::INDEX_BY_MEDIA)
            .key_condition_expression("#m = :m")
            .expression_attribute_names("#m", item::MEDIA_ID)
            .expression_attribute_values(":m", s(media.as_str()))
            .send()
            .await
            .map_err(|e| self.sdk_error("Query", e))?;
        let mut out = Vec::new();
        for it in page.items() {
            let pk = item::opt_string(it, item::PK).unwrap_or_default();
            let sk = item::opt_string(it, item::SK).unwrap_or_default();
            // The storm item carries its first part's media id too; the part says the same.
            let (Some(id), Some(index)) = (
                pk.strip_prefix("storm#")
                    .and_then(|id| StormId::parse(id).ok()),
                sk.strip_prefix("part#")
                    .and_then(|i| i.parse::<usize>().ok()),
            ) else {
                continue;
            };
            out.push((id, index));
        }
        Ok(out)
    }

    /// Records `media` as part `index`'s media id, as Meta's `publish` webhook reported it, unless
    /// the part already has one. The poster's own record (at the storm's end) overwrites it.
    pub async fn record_media(
        &self,
        id: &StormId,
        index: usize,
        media: &MediaId,
        permalink: Option<&str>,
        now: i64,
    ) -> Result<Recorded, PostsError> {
        let mut expression = "SET #m = :m, #r = :now".to_owned();
        let mut names = HashMap::from([
            ("#pk".to_owned(), item::PK.to_owned()),
            ("#m".to_owned(), item::MEDIA_ID.to_owned()),
            ("#r".to_owned(), item::RECONCILED_AT.to_owned()),
        ]);
        let mut values = HashMap::from([
            (":m".to_owned(), s(media.as_str())),
            (":now".to_owned(), n(now)),
        ]);
        if let Some(link) = permalink {
            expression.push_str(", #p = :p");
            names.insert("#p".into(), item::PERMALINK.into());
            values.insert(":p".into(), s(link));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::key(id, &item::part_sk(index))))
            .update_expression(expression)
            .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#m)")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Recorded::Recorded),
            Err(err) => match err.as_service_error() {
                Some(
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c),
                ) => {
                    let had = c
                        .item()
                        .and_then(|old| item::opt_string(old, item::MEDIA_ID));
                    Ok(if had.as_deref() == Some(media.as_str()) {
                        Recorded::Unchanged
                    } else {
                        Recorded::Refused
                    })
                }
                _ => Err(self.sdk_error("UpdateItem", err).into()),
            },
        }
    }

    /// Records `link` as the permalink of part `index` (and of the storm, for its first part),
    /// if that part carries `media` (a publish change Meta sent for a post ThreadStorm
    /// published). Repeating it is harmless; a part that is gone or carries another media id is
    /// left alone.
    pub async fn record_permalink(
        &self,
        id: &StormId,
        index: usize,
        media: &MediaId,
        link: &str,
    ) -> Result<(), PostsError> {
        let condition = Condition::new("attribute_exists(#pk) AND #m = :m")
            .name("#pk", item::PK)
            .name("#m", item::MEDIA_ID)
            .name("#p", item::PERMALINK)
            .value(":m", s(media.as_str()))
            .value(":p", s(link));
        self.update_part_and_storm(id, index, "SET #p = :p", condition)
            .await
    }

    /// Marks part `index` deleted on Threads at `at` (and the storm item too for the first part,
    /// so listings show it). Keeps the first time given: a repeated deletion changes nothing.
    pub async fn mark_deleted(
        &self,
        id: &StormId,
        index: usize,
        at: i64,
    ) -> Result<(), PostsError> {
        let condition = Condition::new("attribute_exists(#pk)")
            .name("#pk", item::PK)
            .name("#d", item::DELETED_AT)
            .value(":at", n(at));
        self.update_part_and_storm(id, index, "SET #d = if_not_exists(#d, :at)", condition)
            .await
    }

    /// Applies `update` to part `index` and, for the first part, to the storm item (which
    /// carries the first part's media id, permalink and deletion for listings). An item whose
    /// `condition` fails — gone (the storm was erased), or not the one meant — is left alone.
    async fn update_part_and_storm(
        &self,
        id: &StormId,
        index: usize,
        update: &str,
        condition: Condition,
    ) -> Result<(), PostsError> {
        let mut keys = vec![item::key(id, &item::part_sk(index))];
        if index == 0 {
            keys.push(item::key(id, item::STORM_SK));
        }
        for key in keys {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression(update)
                .condition_expression(&condition.expression)
                .set_expression_attribute_names(Some(condition.names.clone()))
                .set_expression_attribute_values(Some(condition.values.clone()))
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(err) => return Err(self.sdk_error("UpdateItem", err).into()),
            }
        }
        Ok(())
    }

    fn status_of(&self, id: &StormId, old: Option<Item>) -> Result<Option<Status>, Corrupt> {
        old.map(|it| {
            item::read_status(&it).map_err(|what| Corrupt {
                id: id.to_string(),
                what,
            })
        })
        .transpose()
    }

    fn error(&self, operation: &'static str, err: impl std::fmt::Display) -> StoreError {
        StoreError {
            operation,
            table: self.table.clone(),
            message: err.to_string(),
        }
    }

    fn sdk_error<E, R>(&self, operation: &'static str, err: SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        self.error(operation, DisplayErrorContext(err))
    }
}

fn parse_media_type(name: &str) -> Option<MediaType> {
    Some(match name {
        "TEXT" => MediaType::Text,
        "IMAGE" => MediaType::Image,
        "VIDEO" => MediaType::Video,
        "CAROUSEL" => MediaType::Carousel,
        _ => return None,
    })
}

/// An UpdateItem's expression, condition and placeholders.
struct UpdateParts {
    expression: String,
    condition: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl UpdateParts {
    fn for_transition(id: &StormId, t: &Transition) -> Self {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut set = Vec::new();
        let mut remove = Vec::new();

        let attributes = item::status_attributes(&t.to);
        for (i, (name, value)) in attributes.iter().enumerate() {
            names.insert(format!("#a{i}"), (*name).to_owned());
            values.insert(format!(":a{i}"), value.clone());
            set.push(format!("#a{i} = :a{i}"));
        }
        for (i, name) in item::STATUS_ATTRIBUTES.iter().enumerate() {
            if !attributes.iter().any(|(set_name, _)| set_name == name) {
                names.insert(format!("#r{i}"), (*name).to_owned());
                remove.push(format!("#r{i}"));
            }
        }
        names.insert("#updated".into(), item::UPDATED_AT.into());
        values.insert(":now".into(), n(t.now));
        set.push("#updated = :now".into());

        names.insert("#g2p".into(), item::GSI2PK.into());
        names.insert("#g2s".into(), item::GSI2SK.into());
        names.insert("#due".into(), item::DUE_AT.into());
        match t.sweep_at {
            Some(due) => {
                values.insert(":g2p".into(), s(item::SWEEP_PARTITION));
                values.insert(":g2s".into(), s(item::time_key(due, id)));
                values.insert(":due".into(), n(due));
                set.push("#g2p = :g2p".into());
                set.push("#g2s = :g2s".into());
                set.push("#due = :due".into());
            }
            None => {
                remove.push("#g2p".into());
                remove.push("#g2s".into());
                remove.push("#due".into());
            }
        }

        names.insert("#status".into(), item::STATUS.into());
        let mut condition = format!(
            "#status IN ({})",
            t.from
                .iter()
                .enumerate()
                .map(|(i, from)| {
                    values.insert(format!(":f{i}"), s(from.as_str()));
                    format!(":f{i}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        if t.version.is_some() || t.bump_version {
            names.insert("#version".into(), item::VERSION.into());
        }
        if let Some(version) = t.version {
            values.insert(":v".into(), n(version));
            condition.push_str(" AND #version = :v");
        }
        if t.bump_version {
            values.insert(":one".into(), n(1));
            set.push("#version = #version + :one".into());
        }
        if let Some(owner) = &t.owner {
            names.insert("#owner".into(), item::OWNER.into());
            values.insert(":owner".into(), s(owner));
            condition.push_str(" AND #owner = :owner");
        }

        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        UpdateParts {
            expression,
            condition,
            names,
            values,
        }
    }
}

/// When a transaction was cancelled by a failed condition on its first action, the old item of
/// that action (if returned); `None` when it failed for another reason.
fn cancelled_by_condition<R>(
    err: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Option<Option<Item>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error()
    else {
        return None;
    };
    let reasons = e.cancellation_reasons();
    let first = reasons.first()?;
    if first.code() == Some("ConditionalCheckFailed") {
        Some(first.item().cloned())
    } else {
        None
    }
}
