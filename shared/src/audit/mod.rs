//! Audit records: who did what, when, from where, with what outcome — redacted, then appended.
//!
//! Records go through an [`AuditSink`] (DynamoDB's AuditTable in production, memory in unit tests)
//! with a conditional put, so a record is never overwritten, and each partition's records form a
//! hash chain (see [`chain`]) that [`DynamoAuditSink::verify`] checks. Secrets are removed by
//! structure before anything is written: values under credential-like keys anywhere in the
//! metadata, and credential query parameters inside any string.

pub mod chain;
pub mod log;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::config::LogSwitches;
use crate::store::{Item, StoreError, n, s};
use chain::Head;

/// A boxed future, so [`AuditSink`] can be used as `dyn AuditSink`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What kind of event a record describes. `Security` records are written whatever the
/// `ENABLE_AUDIT_LOGS` switch says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Authentication,
    Authorization,
    DataAccess,
    System,
    Security,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Authentication,
        Category::Authorization,
        Category::DataAccess,
        Category::System,
        Category::Security,
    ];

    pub fn parse(raw: &str) -> Option<Category> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Authentication => "authentication",
            Category::Authorization => "authorization",
            Category::DataAccess => "data_access",
            Category::System => "system",
            Category::Security => "security",
        }
    }
}

/// How the audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    /// The action was attempted and failed (e.g. a token did not decrypt).
    Failure,
    /// The action was refused by a rule (authorization, rate limit, invalid state).
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// One audit record, with the seed's fields plus an outcome, a request id and a unique id.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Unique per record; with the timestamp it makes the sort key.
    pub id: Uuid,
    pub category: Category,
    /// A stable dotted name, e.g. `token.decrypt`, `session.revoke`.
    pub action: String,
    pub description: String,
    /// The ThreadStorm user the event is about; `None` for system events.
    pub user_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub timestamp: OffsetDateTime,
    /// Anything else worth keeping: redacted before it is written.
    pub metadata: Value,
    pub outcome: Outcome,
    pub request_id: Option<String>,
}

impl AuditRecord {
    /// A record stamped now, with a fresh id, no user and empty metadata.
    pub fn new(category: Category, action: impl Into<String>, outcome: Outcome) -> Self {
        AuditRecord {
            id: Uuid::new_v4(),
            category,
            action: action.into(),
            description: String::new(),
            user_id: None,
            ip_address: None,
            user_agent: None,
            timestamp: OffsetDateTime::now_utc(),
            metadata: Value::Object(Default::default()),
            outcome,
            request_id: None,
        }
    }

    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }
    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }
    pub fn ip_address(mut self, ip: impl Into<String>) -> Self {
        self.ip_address = Some(ip.into());
        self
    }
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = Some(agent.into());
        self
    }
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
    pub fn at(mut self, timestamp: OffsetDateTime) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// The partition key: `user#<user_id>`, or `system` for records about no user — so a user's
    /// records are one query and never mixed with another's.
    pub fn partition_key(&self) -> String {
        match &self.user_id {
            Some(user) => format!("user#{user}"),
            None => "system".to_owned(),
        }
    }

    /// The sort key: `<timestamp in ms, 13 digits>#<id>`, so records sort by time and two records
    /// in the same millisecond never share a key.
    pub fn sort_key(&self) -> String {
        let ms = self.timestamp.unix_timestamp_nanos() / 1_000_000;
        format!("{:013}#{}", ms.max(0), self.id)
    }

    /// The caller's address, agent and request id, as the HTTP edge saw them.
    pub fn caller(mut self, caller: &crate::edge::Caller) -> Self {
        self.ip_address = caller.ip_address.clone().or(self.ip_address);
        self.user_agent = caller.user_agent.clone().or(self.user_agent);
        self.request_id = caller.request_id.clone().or(self.request_id);
        self
    }

    /// The record with every secret removed: see [`redact_value`] and [`redact_text`].
    pub fn redacted(mut self) -> Self {
        self.description = redact_text(&self.description);
        self.action = redact_text(&self.action);
        self.user_agent = self.user_agent.map(|a| redact_text(&a));
        redact_value(&mut self.metadata);
        self
    }
}

/// Why a record was not written. Never contains metadata values.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A record with the same key exists: it is kept, this one is not written.
    #[error("audit record {pk} / {sk} already exists; it was not overwritten")]
    Exists { pk: String, sk: String },
    /// The store could not be reached: the caller must not report the action as done.
    #[error("audit store: {0}")]
    Store(#[from] StoreError),
    /// Other writers kept extending the partition's chain first; nothing was written.
    #[error(
        "audit chain {pk} stayed contended after {attempts} attempts; the record was not written"
    )]
    Contended { pk: String, attempts: u32 },
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Written {
        pk: String,
        sk: String,
    },
    /// `ENABLE_AUDIT_LOGS` is off and the record's category is not `security`.
    Skipped,
}

/// Appends records somewhere; must never overwrite one.
pub trait AuditSink: Send + Sync {
    /// Appends `record` (already redacted), refusing with [`AuditError::Exists`] if its key exists.
    fn append<'a>(&'a self, record: &'a AuditRecord) -> BoxFuture<'a, Result<(), AuditError>>;
}

/// The audit writer handlers use: redacts, honours the audit switch, appends to its sink.
#[derive(Clone)]
pub struct Audit {
    sink: Arc<dyn AuditSink>,
    enabled: bool,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// A writer over `sink`; `enabled` is `ENABLE_AUDIT_LOGS` (security records are written
    /// either way).
    pub fn new(sink: Arc<dyn AuditSink>, enabled: bool) -> Self {
        Audit { sink, enabled }
    }

    /// The production writer: the AuditTable, with the configuration's audit switch.
    pub fn dynamodb(client: Client, table: impl Into<String>, logs: &LogSwitches) -> Self {
        Self::new(Arc::new(DynamoAuditSink::new(client, table)), logs.audit)
    }

    /// The AuditTable and audit switch of `config`.
    pub fn from_config(
        client: Client,
        config: &crate::config::Config,
    ) -> Result<Self, crate::config::ConfigError> {
        Ok(Self::dynamodb(
            client,
            config.resource(crate::resources::Resource::AuditTable)?,
            &config.logs,
        ))
    }

    /// Records `record`, logging a failure instead of returning it: for handlers whose answer does
    /// not depend on the record (the failure itself is an operational alarm).
    pub async fn record_best_effort(&self, record: AuditRecord) {
        if let Err(e) = self.record(record).await {
            tracing::error!(error = %e, "writing an audit record failed");
        }
    }

    /// Redacts `record` and appends it, unless audit logs are off and it is not a security record.
    pub async fn record(&self, record: AuditRecord) -> Result<Recorded, AuditError> {
        if !self.enabled && record.category != Category::Security {
            return Ok(Recorded::Skipped);
        }
        let record = record.redacted();
        self.sink.append(&record).await?;
        Ok(Recorded::Written {
            pk: record.partition_key(),
            sk: record.sort_key(),
        })
    }
}

/// The AuditTable: one item per record under `pk` / `sk`, written only if the key is new and
/// chained after the partition's head in the same transaction.
#[derive(Debug, Clone)]
pub struct DynamoAuditSink {
    client: Client,
    table: String,
    /// The last head this process wrote or read per partition, so a warm writer needs no read
    /// before its transaction; a stale entry costs one lost condition and a re-read.
    heads: Arc<Mutex<HashMap<String, Head>>>,
}

/// How many times an append re-reads the head and tries again when another writer got there first.
const APPEND_ATTEMPTS: u32 = 12;
/// Partitions whose head a process remembers.
const CACHED_HEADS: usize = 1024;

/// What one transaction attempt came to.
enum Attempt {
    Written,
    RecordExists,
    HeadMoved,
}

impl DynamoAuditSink {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoAuditSink {
            client,
            table: table.into(),
            heads: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn item(record: &AuditRecord) -> Item {
        let mut item = Item::from([
            ("pk".to_owned(), s(record.partition_key())),
            ("sk".to_owned(), s(record.sort_key())),
            ("id".to_owned(), s(record.id.to_string())),
            ("category".to_owned(), s(record.category.as_str())),
            ("action".to_owned(), s(record.action.clone())),
            ("outcome".to_owned(), s(record.outcome.as_str())),
            (
                "timestamp".to_owned(),
                s(record.timestamp.format(&Rfc3339).unwrap_or_default()),
            ),
            (
                "timestamp_ms".to_owned(),
                n(record.timestamp.unix_timestamp_nanos() / 1_000_000),
            ),
            ("metadata".to_owned(), s(record.metadata.to_string())),
        ]);
        if !record.description.is_empty() {
            item.insert("description".to_owned(), s(record.description.clone()));
        }
        let optional = [
            ("user_id", &record.user_id),
            ("ip_address", &record.ip_address),
            ("user_agent", &record.user_agent),
            ("request_id", &record.request_id),
        ];
        for (name, value) in optional {
            if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
                item.insert(name.to_owned(), AttributeValue::S(value.clone()));
            }
        }
        item
    }

    fn store_error(&self, operation: &'static str, message: String) -> StoreError {
        StoreError {
            operation,
            table: self.table.clone(),
            message,
        }
    }

    fn cached(&self, partition: &str) -> Option<Head> {
        self.heads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(partition)
            .cloned()
    }

    fn remember(&self, partition: &str, head: Option<Head>) {
        let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        match head {
            Some(head) => {
                if heads.len() >= CACHED_HEADS && !heads.contains_key(partition) {
                    heads.clear();
                }
                heads.insert(partition.to_owned(), head);
            }
            None => {
                heads.remove(partition);
            }
        }
    }

    /// The partition's head as stored now (strongly consistent); genesis when there is none.
    pub async fn head(&self, partition: &str) -> Result<Option<Head>, StoreError> {
        Ok(self
            .head_item(partition)
            .await?
            .as_ref()
            .and_then(Head::from_item))
    }

    /// The partition's head item as stored now (strongly consistent).
    async fn head_item(&self, partition: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(chain::head_pk(partition)))
            .key("sk", s(chain::HEAD_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.store_error("GetItem", DisplayErrorContext(e).to_string()))?;
        Ok(out.item().cloned())
    }

    /// Puts `item` (already linked to `new`) and moves the head from `old` to `new`, or neither.
    async fn transact(
        &self,
        partition: &str,
        item: Item,
        old: &Head,
        new: &Head,
    ) -> Result<Attempt, StoreError> {
        let record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| self.store_error("TransactWriteItems", e.to_string()))?;
        let head_item = Item::from([
            ("pk".to_owned(), s(chain::head_pk(partition))),
            ("sk".to_owned(), s(chain::HEAD_SK)),
            (chain::SEQ.to_owned(), n(new.seq)),
            (chain::HASH.to_owned(), s(new.hash.clone())),
        ]);
        let head = Put::builder()
            .table_name(&self.table)
            .set_item(Some(head_item));
        let head = if old.seq == 0 {
            head.condition_expression("attribute_not_exists(pk)")
        } else {
            head.condition_expression("#seq = :seq AND #hash = :hash")
                .expression_attribute_names("#seq", chain::SEQ)
                .expression_attribute_names("#hash", chain::HASH)
                .expression_attribute_values(":seq", n(old.seq))
                .expression_attribute_values(":hash", s(old.hash.clone()))
        }
        .build()
        .map_err(|e| self.store_error("TransactWriteItems", e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(record).build())
            .transact_items(TransactWriteItem::builder().put(head).build())
            // The SDK's own retries of this call are then idempotent.
            .client_request_token(&new.hash[..36])
            .send()
            .await;
        match result {
            Ok(_) => Ok(Attempt::Written),
            Err(err) => {
                match err.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                        let code = |i: usize| {
                            e.cancellation_reasons()
                                .get(i)
                                .and_then(|r| r.code())
                                .unwrap_or("")
                                .to_owned()
                        };
                        if code(0) == "ConditionalCheckFailed" {
                            Ok(Attempt::RecordExists)
                        } else {
                            Ok(Attempt::HeadMoved)
                        }
                    }
                    Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
                        Ok(Attempt::HeadMoved)
                    }
                    _ => Err(self
                        .store_error("TransactWriteItems", DisplayErrorContext(err).to_string())),
                }
            }
        }
    }

    /// Checks the chains: of one partition (`user#<id>` or `system`), or of the whole table.
    pub async fn verify(&self, partition: Option<&str>) -> Result<chain::Report, StoreError> {
        match partition {
            Some(partition) => self.verify_partition(partition).await,
            None => {
                let items = self.scan_all().await?;
                let first = chain::verify(&items);
                // A head read by the scan after records were added looks ahead of its records:
                // check those partitions again, head first.
                let mut again: Vec<String> = first
                    .problems
                    .iter()
                    .filter(|p| {
                        matches!(p.fault, chain::Fault::Missing | chain::Fault::HeadMismatch)
                    })
                    .map(|p| p.partition.clone())
                    .collect();
                again.sort();
                again.dedup();
                if again.is_empty() {
                    return Ok(first);
                }
                let mut report = chain::Report {
                    problems: first
                        .problems
                        .into_iter()
                        .filter(|p| !again.contains(&p.partition))
                        .collect(),
                    ..chain::Report::default()
                };
                let recheck_records: usize = items
                    .iter()
                    .filter(|i| !chain::is_head(i))
                    .filter(|i| {
                        i.get("pk")
                            .and_then(|v| v.as_s().ok())
                            .is_some_and(|pk| again.contains(pk))
                    })
                    .count();
                report.partitions = first.partitions.saturating_sub(again.len());
                report.records = first.records.saturating_sub(recheck_records);
                for partition in &again {
                    report.merge(self.verify_partition(partition).await?);
                }
                Ok(report)
            }
        }
    }

    async fn verify_partition(&self, partition: &str) -> Result<chain::Report, StoreError> {
        // The head first: every record it names was written before it was read.
        let mut items: Vec<Item> = self.head_item(partition).await?.into_iter().collect();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(partition))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.store_error("Query", DisplayErrorContext(e).to_string()))?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key().filter(|k| !k.is_empty()) {
                Some(next) => start = Some(next.clone()),
                None => break,
            }
        }
        Ok(chain::verify(&items))
    }

    async fn scan_all(&self) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.store_error("Scan", DisplayErrorContext(e).to_string()))?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key().filter(|k| !k.is_empty()) {
                Some(next) => start = Some(next.clone()),
                None => break,
            }
        }
        Ok(items)
    }
}

impl AuditSink for DynamoAuditSink {
    fn append<'a>(&'a self, record: &'a AuditRecord) -> BoxFuture<'a, Result<(), AuditError>> {
        Box::pin(async move {
            let partition = record.partition_key();
            let base = Self::item(record);
            let mut known = self.cached(&partition);
            for attempt in 0..APPEND_ATTEMPTS {
                let old = match known.take() {
                    Some(head) => head,
                    None => self.head(&partition).await?.unwrap_or_else(Head::genesis),
                };
                let mut item = base.clone();
                let new = chain::link(&mut item, &old);
                match self.transact(&partition, item, &old, &new).await? {
                    Attempt::Written => {
                        self.remember(&partition, Some(new));
                        return Ok(());
                    }
                    Attempt::RecordExists => {
                        return Err(AuditError::Exists {
                            pk: partition,
                            sk: record.sort_key(),
                        });
                    }
                    Attempt::HeadMoved => {
                        self.remember(&partition, None);
                        // Spread the retries of writers that collided.
                        let jitter = rand::random::<u64>() % (5 * u64::from(attempt + 1));
                        tokio::time::sleep(Duration::from_millis(jitter)).await;
                    }
                }
            }
            Err(AuditError::Contended {
                pk: partition,
                attempts: APPEND_ATTEMPTS,
            })
        })
    }
}

/// Keeps records in memory: for unit tests of handlers that audit.
#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    records: Mutex<Vec<AuditRecord>>,
}

impl MemoryAuditSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record appended so far, in order.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl AuditSink for MemoryAuditSink {
    fn append<'a>(&'a self, record: &'a AuditRecord) -> BoxFuture<'a, Result<(), AuditError>> {
        Box::pin(async move {
            let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
            let key = (record.partition_key(), record.sort_key());
            if records
                .iter()
                .any(|r| (r.partition_key(), r.sort_key()) == key)
            {
                return Err(AuditError::Exists {
                    pk: key.0,
                    sk: key.1,
                });
            }
            records.push(record.clone());
            Ok(())
        })
    }
}

/// What replaces a removed secret.
pub const REDACTED: &str = "<redacted>";

/// Whether a metadata key names a secret. Keys are compared lower-cased with `-` read as `_`, so
/// `Authorization`, `X-Hub-Signature-256` and `client-secret` all match.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace('-', "_");
    const EXACT: &[&str] = &[
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "app_secret",
        "secret",
        "code",
        "code_verifier",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "password",
        "passwd",
        "signature",
        "signed_request",
        "api_key",
        "session",
        "session_id",
        "session_token",
        "private_key",
        "plaintext",
    ];
    const SUFFIXES: &[&str] = &["_token", "_secret", "_password", "_signature", "_cookie"];
    const PREFIXES: &[&str] = &["x_hub_signature"];
    EXACT.contains(&key.as_str())
        || SUFFIXES.iter().any(|s| key.ends_with(s))
        || PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Removes secrets from `value` by structure: the value under any secret key (see
/// [`is_secret_key`]) at any depth becomes `"<redacted>"` whatever its type, and every string
/// elsewhere goes through [`redact_text`].
pub fn redact_value(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if is_secret_key(key) {
                    *child = Value::String(REDACTED.to_owned());
                } else {
                    redact_value(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::String(text) => {
            let clean = redact_text(text);
            if clean != *text {
                *text = clean;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Removes credentials from free text: the value of every `key=value` whose key is a secret key or
/// a credential query parameter (`access_token=`, `client_secret=`, `code=`, …) — in a URL's query
/// or fragment or anywhere in the text — and the credential after `Bearer `.
pub fn redact_text(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            // The key: the run of key characters right before '='.
            let start = text[..i]
                .char_indices()
                .rev()
                .find(|(_, c)| !is_key_char(*c))
                .map_or(0, |(p, c)| p + c.len_utf8());
            let key = &text[start..i];
            if !key.is_empty() && (is_secret_key(key) || crate::threads::is_sensitive_param(key)) {
                let end = value_end(bytes, i + 1);
                if end > i + 1 {
                    out.push_str(&text[copied..=i]);
                    out.push_str(REDACTED);
                    copied = end;
                    i = end;
                    continue;
                }
            }
        } else if let Some(after) = bearer_at(text, i) {
            let end = value_end(bytes, after);
            if end > after {
                out.push_str(&text[copied..after]);
                out.push_str(REDACTED);
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    redact_threads_tokens(&out)
}

/// The shortest run of letters and digits starting `TH` that is taken for a Threads access token
/// (Meta's are far longer); shorter words such as `THANKS` or `THREADSTORM` stay.
pub const THREADS_TOKEN_MIN_CHARS: usize = 32;

/// Removes anything shaped like a Threads access token (`TH` then letters and digits, at least
/// [`THREADS_TOKEN_MIN_CHARS`] long) wherever it appears in free text, e.g. pasted into a reason.
fn redact_threads_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphanumeric()) {
        out.push_str(&rest[..start]);
        let word = &rest[start..];
        let len = word
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(word.len());
        let (run, after) = word.split_at(len);
        if run.starts_with("TH") && run.len() >= THREADS_TOKEN_MIN_CHARS {
            out.push_str(REDACTED);
        } else {
            out.push_str(run);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Where a parameter value that starts at `from` ends.
fn value_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|b| {
            b.is_ascii_whitespace()
                || matches!(
                    b,
                    b'&' | b'#' | b';' | b',' | b'"' | b'\'' | b'<' | b'>' | b')'
                )
        })
        .map_or(bytes.len(), |p| from + p)
}

/// If a `Bearer ` credential starts at byte `i` (case-insensitive, at a word start), the offset of
/// the credential.
fn bearer_at(text: &str, i: usize) -> Option<usize> {
    const WORD: &str = "bearer ";
    let rest = text.get(i..)?;
    let head = rest.get(..WORD.len())?;
    let at_word_start = i == 0 || !text.as_bytes()[i - 1].is_ascii_alphanumeric();
    (at_word_start && head.eq_ignore_ascii_case(WORD)).then_some(i + WORD.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PLANTED: &str = "THplantedSECRET123";

    #[test]
    fn threads_token_shapes_are_redacted_in_free_text_and_short_words_stay() {
        let token = "THAAGkZ8abcdefghijklmnopqrstuvwxyz0123456789";
        let text = format!("paused: {token} was pasted (THANKS, THREADSTORM; ünïcode)");
        let clean = redact_text(&text);
        assert!(!clean.contains(token), "{clean}");
        assert_eq!(
            clean,
            format!("paused: {REDACTED} was pasted (THANKS, THREADSTORM; ünïcode)")
        );
        let mut metadata = json!({"reason": format!("x {token}"), "list": [token]});
        redact_value(&mut metadata);
        assert!(!metadata.to_string().contains(token));
    }

    #[test]
    fn secret_keys_are_redacted_at_any_depth_whatever_their_type() {
        let mut metadata = json!({
            "account_id": "178414",
            "access_token": PLANTED,
            "nested": {
                "Client_Secret": PLANTED,
                "headers": {"Authorization": format!("Bearer {PLANTED}"), "Cookie": format!("s={PLANTED}"),
                            "X-Hub-Signature-256": format!("sha256={PLANTED}"), "content-type": "text/plain"},
                "list": [{"code": PLANTED}, {"code_verifier": PLANTED}, {"password": 12345}],
                "token": {"value": PLANTED},
                "refresh_token": [PLANTED],
                "secret": true,
                "signature": PLANTED,
            },
            "token_count": 3,
            "reason": "publish"
        });
        redact_value(&mut metadata);
        let text = metadata.to_string();
        assert!(!text.contains(PLANTED), "{text}");
        assert!(!text.contains("12345"), "{text}");
        assert_eq!(metadata["account_id"], "178414");
        assert_eq!(metadata["token_count"], 3);
        assert_eq!(metadata["reason"], "publish");
        assert_eq!(metadata["nested"]["headers"]["content-type"], "text/plain");
        assert_eq!(metadata["nested"]["token"], REDACTED);
        assert_eq!(metadata["nested"]["list"][2]["password"], REDACTED);
    }

    #[test]
    fn credential_query_parameters_inside_strings_are_redacted() {
        let mut metadata = json!({
            "url": format!("https://graph.threads.net/access_token?grant_type=th_exchange_token&client_secret={PLANTED}&access_token={PLANTED}"),
            "note": format!("callback https://app.example/oauth/callback?code={PLANTED}#_ then state=abc"),
            "urls": [format!("/v1.0/me?fields=id&ACCESS_TOKEN={PLANTED}")],
            "fragment": format!("https://x.example/cb#access_token={PLANTED}&expires_in=3600"),
        });
        redact_value(&mut metadata);
        let text = metadata.to_string();
        assert!(!text.contains(PLANTED), "{text}");
        assert!(text.contains("grant_type=th_exchange_token"), "{text}");
        assert!(text.contains("state=abc"), "{text}");
        assert!(text.contains("fields=id"), "{text}");
        assert!(text.contains("expires_in=3600"), "{text}");
    }

    #[test]
    fn free_text_loses_bearer_credentials_and_keeps_the_rest() {
        let text = format!("call failed: Authorization: Bearer {PLANTED} (401)");
        let clean = redact_text(&text);
        assert!(!clean.contains(PLANTED), "{clean}");
        assert!(clean.contains("(401)"), "{clean}");
        assert_eq!(redact_text("no secrets here=1"), "no secrets here=1");
        assert_eq!(redact_text("code="), "code=");
        assert_eq!(redact_text("é code=ü&x=1"), "é code=<redacted>&x=1");
        assert_eq!(redact_text("écode=1"), "écode=<redacted>");
        assert_eq!(
            redact_text("ü=1 ñaccess_token=x"),
            "ü=1 ñaccess_token=<redacted>"
        );
    }

    proptest::proptest! {
        #[test]
        fn redaction_never_panics_on_any_text(text in "\\PC{0,120}") {
            let _ = redact_text(&text);
        }

        #[test]
        fn redaction_never_panics_near_separators(
            parts in proptest::collection::vec(
                proptest::prop_oneof!["=", "&", "é", "code", "Bearer ", "token", " ", "ü=", "#"],
                0..30,
            )
        ) {
            let text: String = parts.concat();
            let clean = redact_text(&text);
            proptest::prop_assert!(clean.is_char_boundary(clean.len()));
        }
    }

    #[test]
    fn record_redaction_covers_description_and_user_agent() {
        let record = AuditRecord::new(Category::Security, "oauth.callback", Outcome::Denied)
            .description(format!("replayed state for /cb?code={PLANTED}"))
            .user_agent(format!("curl/8 access_token={PLANTED}"))
            .metadata(json!({"session": PLANTED}))
            .redacted();
        let shown = format!("{record:?}");
        assert!(!shown.contains(PLANTED), "{shown}");
    }

    #[test]
    fn keys_sort_by_time_and_separate_users_from_system() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let user = AuditRecord::new(Category::DataAccess, "token.decrypt", Outcome::Success)
            .user("u-1")
            .at(at);
        assert_eq!(user.partition_key(), "user#u-1");
        assert!(
            user.sort_key().starts_with("1800000000000#"),
            "{}",
            user.sort_key()
        );
        let system = AuditRecord::new(Category::System, "start", Outcome::Success).at(at);
        assert_eq!(system.partition_key(), "system");
        let early = AuditRecord::new(Category::System, "a", Outcome::Success)
            .at(OffsetDateTime::from_unix_timestamp(999_999_999).unwrap());
        assert!(early.sort_key() < system.sort_key());
    }

    #[tokio::test]
    async fn audit_switch_skips_all_but_security_records() {
        let sink = Arc::new(MemoryAuditSink::new());
        let audit = Audit::new(sink.clone(), false);
        let skipped = audit
            .record(AuditRecord::new(
                Category::DataAccess,
                "token.decrypt",
                Outcome::Success,
            ))
            .await
            .unwrap();
        assert_eq!(skipped, Recorded::Skipped);
        let written = audit
            .record(AuditRecord::new(
                Category::Security,
                "token.decrypt",
                Outcome::Failure,
            ))
            .await
            .unwrap();
        assert!(matches!(written, Recorded::Written { .. }));
        assert_eq!(sink.records().len(), 1);
        assert_eq!(sink.records()[0].category, Category::Security);
    }

    #[tokio::test]
    async fn the_writer_redacts_before_the_sink_sees_the_record() {
        let sink = Arc::new(MemoryAuditSink::new());
        let audit = Audit::new(sink.clone(), true);
        audit
            .record(
                AuditRecord::new(Category::Authentication, "login", Outcome::Success)
                    .metadata(json!({"access_token": PLANTED})),
            )
            .await
            .unwrap();
        assert!(!format!("{:?}", sink.records()).contains(PLANTED));
    }

    #[tokio::test]
    async fn memory_sink_never_overwrites() {
        let sink = Arc::new(MemoryAuditSink::new());
        let audit = Audit::new(sink.clone(), true);
        let record = AuditRecord::new(Category::System, "x", Outcome::Success);
        audit.record(record.clone()).await.unwrap();
        let again = audit
            .record(record.description("changed"))
            .await
            .unwrap_err();
        assert!(matches!(again, AuditError::Exists { .. }));
        assert_eq!(sink.records()[0].description, "");
    }
}
