//! Idempotency records: the first invocation to begin a key owns it until its Lambda deadline;
//! later ones get the stored result, "in progress", or a payload mismatch — never a silent replay.
//!
//! Powertools' record and put condition, improved where it is known to fail: the in-progress
//! expiry is always written (Powertools Python #4759), seconds and milliseconds are distinct types
//! (Powertools Java #1281), completion is fenced by a per-attempt owner token so an invocation that
//! overran its lock cannot overwrite the one that took over, and progress can be checkpointed
//! before a side effect so a retry finds it (the poster's container id before publishing).
//!
//! Item (table `IdempotencyTable`, key `id` = `<scope>#<key>`):
//! - `status`: `INPROGRESS` | `COMPLETED` (expired is computed on read, never written)
//! - `expires_at`: epoch **seconds**, also the table's TTL attribute
//! - `in_progress_expiry`: epoch **milliseconds**, the owner's Lambda deadline (INPROGRESS only)
//! - `validation`: SHA-256 hex of the payload
//! - `owner`: the fencing token of the attempt that holds the record
//! - `data`: the stored result (a JSON string, COMPLETED only)
//! - `checkpoint`, `checkpoint_for`: progress saved by an owner, and the `validation` it belongs to

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::clock::{EpochMillis, EpochSeconds};
use crate::store::{Condition, Item, StoreError, Updated, n, s, update_if};

const IN_PROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

/// The record's key: a scope (which stage or endpoint) and the key within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Why a scope or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid idempotency key: {0}")]
pub struct InvalidKey(String);

impl IdempotencyKey {
    /// Longest key part accepted (DynamoDB allows 2,048 bytes for the whole partition key).
    pub const MAX_KEY_LEN: usize = 1024;

    /// `scope` is 1–32 of `[a-z0-9_-]` (a name chosen in code); `key` is 1–1024 bytes without
    /// control characters (it may come from a client's `Idempotency-Key` header).
    pub fn new(scope: &str, key: &str) -> Result<Self, InvalidKey> {
        let scope_ok = !scope.is_empty()
            && scope.len() <= 32
            && scope
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !scope_ok {
            return Err(InvalidKey(format!(
                "scope {scope:?} must be 1–32 of a-z, 0-9, _ and -"
            )));
        }
        if key.is_empty() || key.len() > Self::MAX_KEY_LEN {
            return Err(InvalidKey(format!(
                "key is {} bytes long (1–{} allowed)",
                key.len(),
                Self::MAX_KEY_LEN
            )));
        }
        if key.chars().any(char::is_control) {
            return Err(InvalidKey("key contains control characters".into()));
        }
        Ok(IdempotencyKey(format!("{scope}#{key}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHA-256 of a request's payload, lowercase hex: same key with another payload is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PayloadHash(String);

impl PayloadHash {
    pub fn of(payload: &[u8]) -> Self {
        PayloadHash(hex::encode(Sha256::digest(payload)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The fencing token of one attempt: random, 128 bits. Only the attempt holding it can checkpoint,
/// complete or release the record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnerToken(String);

impl OwnerToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        OwnerToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The answer to [`IdempotencyStore::begin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// This attempt owns the record. `checkpoint` is what an earlier owner of the same payload
    /// saved before it died or released the record (e.g. a container id): resume from it.
    Acquired {
        owner: OwnerToken,
        checkpoint: Option<String>,
    },
    /// The work was done for this payload; here is its result.
    AlreadyCompleted { data: String },
    /// Another attempt holds the record until `until`: report the message as failed so it is
    /// redelivered later.
    InProgress { until: EpochMillis },
    /// The key was used with another payload: a validation error, never a replay.
    PayloadMismatch,
}

/// The answer to an owner's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Fenced {
    Applied,
    /// Another attempt took the record over (or it completed, or this owner released it): this
    /// attempt must stop and write nothing more.
    LostOwnership,
}

/// A record's status as read at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    /// Past `expires_at` (whatever was written), or in progress past its owner's deadline.
    Expired,
}

/// A record as read, with its status computed for the instant of reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub status: Status,
    pub expires_at: EpochSeconds,
    pub in_progress_expiry: Option<EpochMillis>,
    pub validation: String,
    pub owner: Option<String>,
    pub data: Option<String>,
    pub checkpoint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("idempotency record {key} is damaged: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("idempotency record {key} kept vanishing between write and check; retry")]
    Contended { key: String },
}

/// Begins, checkpoints, completes and releases records in the idempotency table.
#[derive(Debug, Clone)]
pub struct IdempotencyStore {
    client: Client,
    table: String,
    expires_after: Duration,
}

impl IdempotencyStore {
    /// `expires_after`: how long a record (in progress or completed) is kept from its last write.
    pub fn new(client: Client, table: impl Into<String>, expires_after: Duration) -> Self {
        IdempotencyStore {
            client,
            table: table.into(),
            expires_after,
        }
    }

    /// Claims `key` for `payload` until `deadline` (`lambda_runtime::Context::deadline`, see
    /// [`EpochMillis::from_lambda_deadline`]). One `UpdateItem`.
    ///
    /// The in-progress expiry is always written, at least `now + 1 ms` (an invocation with no time
    /// left still leaves an expiry that lapses at once; Powertools #4759 left it unset and the key
    /// stayed locked until the record expired) and at most the record's own expiry.
    ///
    /// Condition: Powertools' `attribute_not_exists(#id) OR #expiry < :now OR (#status =
    /// :inprogress AND attribute_exists(#in_progress_expiry) AND #in_progress_expiry <
    /// :now_in_millis)`, with the stale-lock takeover also requiring the same payload, so one
    /// payload's checkpoint is never handed to another. An update rather than a put, so a
    /// checkpoint survives a takeover.
    #[tracing::instrument(skip(self, payload), fields(table = %self.table))]
    pub async fn begin(
        &self,
        key: &IdempotencyKey,
        payload: &PayloadHash,
        deadline: EpochMillis,
        now: EpochMillis,
    ) -> Result<Begin, IdempotencyError> {
        let expires_at = now.floor_seconds().saturating_add(self.expires_after);
        let in_progress_expiry = deadline
            .min(expires_at.to_millis())
            .max(now.saturating_add(Duration::from_millis(1)));
        // A record deleted by TTL between the failed condition and its report comes back as no
        // item: begin again (twice is plenty; it cannot vanish more than once).
        for _ in 0..3 {
            let owner = OwnerToken::generate();
            let condition = Condition::new(
                "attribute_not_exists(#id) OR #expiry < :now \
                 OR (#status = :inprogress AND attribute_exists(#in_progress_expiry) \
                     AND #in_progress_expiry < :now_in_millis AND #validation = :validation)",
            )
            .name("#id", "id")
            .name("#expiry", "expires_at")
            .name("#status", "status")
            .name("#in_progress_expiry", "in_progress_expiry")
            .name("#validation", "validation")
            .name("#owner", "owner")
            .name("#data", "data")
            .value(":now", n(now.floor_seconds().get()))
            .value(":now_in_millis", n(now.get()))
            .value(":inprogress", s(IN_PROGRESS))
            .value(":validation", s(payload.as_str()))
            .value(":owner", s(owner.as_str()))
            .value(":expires_at", n(expires_at.get()))
            .value(":in_progress_expiry", n(in_progress_expiry.get()));
            let update = "SET #status = :inprogress, #owner = :owner, \
                          #in_progress_expiry = :in_progress_expiry, #expiry = :expires_at, \
                          #validation = :validation REMOVE #data";
            match update_if(&self.client, &self.table, self.key(key), update, condition).await? {
                Updated::Written { old } => {
                    // Progress saved for this payload by an earlier owner; none after a completion
                    // (completing removes it) or for another payload.
                    let checkpoint = old.and_then(|old| {
                        let same = text(&old, "checkpoint_for") == Some(payload.as_str());
                        same.then(|| text(&old, "checkpoint").map(str::to_owned))
                            .flatten()
                    });
                    return Ok(Begin::Acquired { owner, checkpoint });
                }
                Updated::Lost {
                    existing: Some(existing),
                } => return self.losing_begin(key, payload, &existing),
                Updated::Lost { existing: None } => continue,
            }
        }
        Err(IdempotencyError::Contended {
            key: key.to_string(),
        })
    }

    /// Why a begin lost, from the record that made it lose.
    fn losing_begin(
        &self,
        key: &IdempotencyKey,
        payload: &PayloadHash,
        existing: &Item,
    ) -> Result<Begin, IdempotencyError> {
        let record = parse(key, existing, None)?;
        if record.validation != payload.as_str() {
            return Ok(Begin::PayloadMismatch);
        }
        match record.status {
            Status::Completed => match record.data {
                Some(data) => Ok(Begin::AlreadyCompleted { data }),
                None => Err(corrupt(key, "COMPLETED without data")),
            },
            Status::InProgress | Status::Expired => match record.in_progress_expiry {
                Some(until) => Ok(Begin::InProgress { until }),
                None => Err(corrupt(key, "INPROGRESS without in_progress_expiry")),
            },
        }
    }

    /// Saves progress (e.g. the container id, before publishing) for whoever owns the record next
    /// if this attempt dies. One `UpdateItem`, fenced by the owner token.
    pub async fn checkpoint(
        &self,
        key: &IdempotencyKey,
        owner: &OwnerToken,
        data: &str,
    ) -> Result<Fenced, IdempotencyError> {
        let condition = fence(owner)
            .name("#checkpoint", "checkpoint")
            .name("#checkpoint_for", "checkpoint_for")
            .name("#validation", "validation")
            .value(":checkpoint", s(data));
        self.fenced(
            key,
            "SET #checkpoint = :checkpoint, #checkpoint_for = #validation",
            condition,
        )
        .await
    }

    /// Stores the result and marks the record completed until `now + expires_after`. One
    /// `UpdateItem`, fenced: an attempt that lost its record gets [`Fenced::LostOwnership`] and
    /// overwrites nothing.
    pub async fn complete(
        &self,
        key: &IdempotencyKey,
        owner: &OwnerToken,
        data: &str,
        now: EpochMillis,
    ) -> Result<Fenced, IdempotencyError> {
        let expires_at = now.floor_seconds().saturating_add(self.expires_after);
        let condition = fence(owner)
            .name("#data", "data")
            .name("#expiry", "expires_at")
            .name("#in_progress_expiry", "in_progress_expiry")
            .name("#checkpoint", "checkpoint")
            .name("#checkpoint_for", "checkpoint_for")
            .value(":completed", s(COMPLETED))
            .value(":data", s(data))
            .value(":expires_at", n(expires_at.get()));
        self.fenced(
            key,
            "SET #status = :completed, #data = :data, #expiry = :expires_at \
             REMOVE #in_progress_expiry, #checkpoint, #checkpoint_for",
            condition,
        )
        .await
    }

    /// Gives the record up after a retryable failure, so the retry can begin at once: its
    /// in-progress expiry is set to 0 and its owner removed. The record (and its checkpoint) stays,
    /// so the retry resumes rather than repeats. One `UpdateItem`, fenced.
    pub async fn release(
        &self,
        key: &IdempotencyKey,
        owner: &OwnerToken,
    ) -> Result<Fenced, IdempotencyError> {
        let condition = fence(owner)
            .name("#in_progress_expiry", "in_progress_expiry")
            .value(":released", n(0));
        self.fenced(
            key,
            "SET #in_progress_expiry = :released REMOVE #owner",
            condition,
        )
        .await
    }

    /// Deletes the record this owner holds, so the key is as if never used: for an attempt that
    /// was refused before it did anything (its answer is not worth replaying, and a corrected
    /// request under the same key must run). One `DeleteItem`, fenced by the owner token.
    pub async fn forget(
        &self,
        key: &IdempotencyKey,
        owner: &OwnerToken,
    ) -> Result<Fenced, IdempotencyError> {
        let condition = fence(owner);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key(key)))
            .condition_expression(condition.expression)
            .set_expression_attribute_names(Some(condition.names))
            .set_expression_attribute_values(Some(condition.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Fenced::Applied),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(Fenced::LostOwnership)
            }
            Err(err) => Err(StoreError::new("DeleteItem", &self.table, err).into()),
        }
    }

    /// The record under `key` with its status at `now` (one strongly consistent read).
    pub async fn read(
        &self,
        key: &IdempotencyKey,
        now: EpochMillis,
    ) -> Result<Option<Record>, IdempotencyError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| StoreError::new("GetItem", &self.table, err))?;
        output
            .item()
            .map(|item| parse(key, item, Some(now)))
            .transpose()
    }

    async fn fenced(
        &self,
        key: &IdempotencyKey,
        update: &str,
        condition: Condition,
    ) -> Result<Fenced, IdempotencyError> {
        // The fence needs the record to exist; without `attribute_exists` the update would create
        // a stray item for a key that is gone.
        let condition = Condition {
            expression: format!("attribute_exists(#id) AND ({})", condition.expression),
            ..condition
        }
        .name("#id", "id");
        match update_if(&self.client, &self.table, self.key(key), update, condition).await? {
            Updated::Written { .. } => Ok(Fenced::Applied),
            Updated::Lost { .. } => Ok(Fenced::LostOwnership),
        }
    }

    fn key(&self, key: &IdempotencyKey) -> Item {
        HashMap::from([("id".to_owned(), s(key.as_str()))])
    }
}

/// `#status = :inprogress AND #owner = :me`.
fn fence(owner: &OwnerToken) -> Condition {
    Condition::new("#status = :inprogress AND #owner = :me")
        .name("#status", "status")
        .name("#owner", "owner")
        .value(":inprogress", s(IN_PROGRESS))
        .value(":me", s(owner.as_str()))
}

fn corrupt(key: &IdempotencyKey, reason: impl Into<String>) -> IdempotencyError {
    IdempotencyError::Corrupt {
        key: key.to_string(),
        reason: reason.into(),
    }
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn number(key: &IdempotencyKey, item: &Item, name: &str) -> Result<Option<i64>, IdempotencyError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| corrupt(key, format!("`{name}` = {v:?}"))),
        Some(_) => Err(corrupt(key, format!("`{name}` is not a number"))),
    }
}

/// Reads a record; with `now`, its status is computed for that instant (expired records are
/// reported as such however they were written). Without, the written status is kept.
fn parse(
    key: &IdempotencyKey,
    item: &Item,
    now: Option<EpochMillis>,
) -> Result<Record, IdempotencyError> {
    let expires_at = EpochSeconds::new(
        number(key, item, "expires_at")?.ok_or_else(|| corrupt(key, "no `expires_at`"))?,
    );
    let in_progress_expiry = number(key, item, "in_progress_expiry")?.map(EpochMillis::new);
    let written = match text(item, "status") {
        Some(IN_PROGRESS) => Status::InProgress,
        Some(COMPLETED) => Status::Completed,
        other => return Err(corrupt(key, format!("status {other:?}"))),
    };
    let status = match now {
        Some(now) if expires_at < now.floor_seconds() => Status::Expired,
        Some(now)
            if written == Status::InProgress
                && in_progress_expiry.is_none_or(|until| until < now) =>
        {
            Status::Expired
        }
        _ => written,
    };
    let validation = text(item, "validation")
        .ok_or_else(|| corrupt(key, "no `validation`"))?
        .to_owned();
    Ok(Record {
        status,
        expires_at,
        in_progress_expiry,
        validation,
        owner: text(item, "owner").map(str::to_owned),
        data: text(item, "data").map(str::to_owned),
        checkpoint: text(item, "checkpoint").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_scoped_and_bounded() {
        assert_eq!(
            IdempotencyKey::new("poster", "post-1").unwrap().as_str(),
            "poster#post-1"
        );
        assert!(IdempotencyKey::new("Poster", "k").is_err());
        assert!(IdempotencyKey::new("", "k").is_err());
        assert!(IdempotencyKey::new("a#b", "k").is_err());
        assert!(IdempotencyKey::new("intake", "").is_err());
        assert!(IdempotencyKey::new("intake", "a\nb").is_err());
        assert!(IdempotencyKey::new("intake", &"k".repeat(1025)).is_err());
        assert!(IdempotencyKey::new("intake", "user-1#clé ✓").is_ok());
    }

    #[test]
    fn payload_hash_is_sha256_hex() {
        assert_eq!(
            PayloadHash::of(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn owner_tokens_differ_per_attempt() {
        let (a, b) = (OwnerToken::generate(), OwnerToken::generate());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 22);
    }

    fn record(status: &str, expires_at: i64, in_progress_expiry: Option<i64>) -> Item {
        let mut item = HashMap::from([
            ("id".to_owned(), s("k#1")),
            ("status".to_owned(), s(status)),
            ("expires_at".to_owned(), n(expires_at)),
            ("validation".to_owned(), s("v")),
        ]);
        if let Some(ms) = in_progress_expiry {
            item.insert("in_progress_expiry".to_owned(), n(ms));
        }
        item
    }

    #[test]
    fn expired_is_computed_on_read_in_the_right_unit() {
        let key = IdempotencyKey::new("k", "1").unwrap();
        let now = EpochMillis::new(1_800_000_000_500);
        let status = |item: Item| parse(&key, &item, Some(now)).unwrap().status;
        // expires_at is seconds: 1_800_000_000 is this very second, not yet past.
        assert_eq!(
            status(record(COMPLETED, 1_800_000_000, None)),
            Status::Completed
        );
        assert_eq!(
            status(record(COMPLETED, 1_799_999_999, None)),
            Status::Expired
        );
        // in_progress_expiry is milliseconds.
        let live = record(IN_PROGRESS, 1_800_003_600, Some(1_800_000_000_501));
        assert_eq!(status(live), Status::InProgress);
        let stale = record(IN_PROGRESS, 1_800_003_600, Some(1_800_000_000_499));
        assert_eq!(status(stale), Status::Expired);
        // A seconds value where milliseconds belong reads as long past, never as far future.
        let swapped = record(IN_PROGRESS, 1_800_003_600, Some(1_800_000_001));
        assert_eq!(status(swapped), Status::Expired);
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let key = IdempotencyKey::new("k", "1").unwrap();
        let mut item = record("DONE", 1, None);
        assert!(parse(&key, &item, None).is_err());
        item.insert("status".to_owned(), s(COMPLETED));
        item.insert("expires_at".to_owned(), s("soon"));
        assert!(parse(&key, &item, None).is_err());
        item.remove("expires_at");
        assert!(parse(&key, &item, None).is_err());
    }
}
