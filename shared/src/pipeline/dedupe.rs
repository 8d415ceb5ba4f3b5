//! The dedupe stage: the whole storm passes the content policy before anything is published, and
//! the same content for the same account is refused for 24 hours; what passes goes to the gate.
//!
//! The duplicate check is one conditional put of `dedup#<account>#<fingerprint>` in the
//! IdempotencyTable whose condition compares the expiry itself (TTL deletes lazily). The record
//! names the storm that claimed it, so a redelivered or re-sent storm finds its own claim.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;

use super::fifo::{Retry, WholeBatchFailed, failures_from};
use super::stage::{
    BoxFuture, Handled, Stage, prefetch, queued_storm, run_batch, to_lambda, unix_now,
};
use crate::config::ConfigError;
use crate::metrics::{Metric, Metrics};
use crate::policy::{ContentPolicy, PostDraft, content_fingerprint};
use crate::posts::{
    AccountId, Moved, PartContent, PostsStore, Reason, Status, StatusName, Storm, StormId,
    Transition,
};
use crate::resources::Resource;
use crate::runtime;
use crate::store::{Condition, Conditional, Item, n, put_if, s};

/// How long the same content is refused for the same account.
pub const DEDUP_WINDOW_SECS: i64 = 24 * 60 * 60;

/// Why content was refused, with a stable code and a reason a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub code: String,
    pub reason: String,
}

/// The content rules the stage applies: the content policy and its fingerprint.
pub trait ContentRules: Send + Sync {
    /// Checks every part of a storm; the first problem found (or a summary of all) is returned.
    fn check(&self, parts: &[PartContent]) -> Result<(), Rejected>;
    /// A digest of the normalised content of the storm for `account`: equal for content a reader
    /// would call the same.
    fn fingerprint(&self, account: &AccountId, parts: &[PartContent]) -> String;
}

impl ContentRules for ContentPolicy {
    fn check(&self, parts: &[PartContent]) -> Result<(), Rejected> {
        let drafts: Vec<PostDraft> = parts.iter().map(PostDraft::from).collect();
        self.check_storm(&drafts).map_err(|rejections| Rejected {
            code: rejections.code().to_owned(),
            reason: rejections.reason(),
        })
    }

    fn fingerprint(&self, account: &AccountId, parts: &[PartContent]) -> String {
        let drafts: Vec<PostDraft> = parts.iter().map(PostDraft::from).collect();
        content_fingerprint(account.as_str(), &drafts)
    }
}

/// What the dedupe stage needs.
#[derive(Clone)]
pub struct DedupeDeps {
    pub posts: PostsStore,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub idempotency_table: String,
    pub sqs: aws_sdk_sqs::Client,
    pub gate_queue: String,
    pub rules: Arc<dyn ContentRules>,
}

impl DedupeDeps {
    /// The stage's dependencies from the function's configuration and clients.
    pub fn from_runtime(deps: &runtime::Deps) -> Result<Self, ConfigError> {
        let config = &deps.config;
        Ok(DedupeDeps {
            posts: PostsStore::new(
                deps.aws.dynamodb.clone(),
                config.resource(Resource::PostsTable)?,
            ),
            dynamodb: deps.aws.dynamodb.clone(),
            idempotency_table: config.resource(Resource::IdempotencyTable)?.to_owned(),
            sqs: deps.aws.sqs.clone(),
            gate_queue: config.resource(Resource::GateQueue)?.to_owned(),
            rules: Arc::new(ContentPolicy::new(config.prohibited_terms.clone())),
        })
    }
}

/// The Lambda entry point: one SQS batch, now. Boxed, so the runtime's future stays small.
pub fn lambda(
    deps: &DedupeDeps,
    event: LambdaEvent<SqsEvent>,
) -> BoxFuture<'_, Result<SqsBatchResponse, lambda_runtime::Error>> {
    Box::pin(async move { to_lambda(handle(deps, &event.payload.records, unix_now()).await) })
}

/// Handles one batch from the intake queue. `now` is Unix seconds.
#[tracing::instrument(skip_all, fields(stage = "dedupe", messages = records.len()))]
pub async fn handle(
    deps: &DedupeDeps,
    records: &[SqsMessage],
    now: i64,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    let storms = match prefetch(&deps.posts, records).await {
        Ok(storms) => storms,
        Err(err) => {
            tracing::warn!(error = %err, "storms unreadable; the batch is retried");
            return failures_from(records, 0);
        }
    };
    run_batch(records, &deps.sqs, |record| one(deps, &storms, record, now)).await
}

async fn one(
    deps: &DedupeDeps,
    storms: &HashMap<StormId, Storm>,
    record: &SqsMessage,
    now: i64,
) -> Handled {
    let Some((message, storm)) = queued_storm(&deps.posts, storms, record).await? else {
        return Ok(vec![]);
    };

    if let Err(rejected) = deps.rules.check(&storm_contents(&storm)) {
        tracing::info!(storm = %storm.id, code = %rejected.code, "storm refused by the content policy");
        if reject(
            &deps.posts,
            &storm,
            Reason::new(rejected.code, rejected.reason),
            now,
        )
        .await?
        {
            count_refusal(Metrics::new(SERVICE), Refusal::Policy);
        }
        return Ok(vec![]);
    }

    let fingerprint = deps
        .rules
        .fingerprint(&storm.account_id, &storm_contents(&storm));
    match claim(deps, &storm, &fingerprint, now).await? {
        Claim::Ours => Ok(vec![message.to(Stage::Gate, &deps.gate_queue)]),
        Claim::DuplicateOf(original) => {
            tracing::info!(storm = %storm.id, %original, "duplicate content refused");
            let reason = Reason::new(
                "duplicate",
                format!(
                    "The same content was submitted for this account less than 24 hours ago \
                     (storm {original}); Threads would show it twice. Change the text or wait \
                     until 24 hours after the first one."
                ),
            );
            if reject(&deps.posts, &storm, reason, now).await? {
                count_refusal(Metrics::new(SERVICE), Refusal::Duplicate);
            }
            Ok(vec![])
        }
    }
}

fn storm_contents(storm: &Storm) -> Vec<PartContent> {
    storm.parts.iter().map(|p| p.content.clone()).collect()
}

const SERVICE: &str = "dedupe";

/// Why the stage refused a storm, for its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Policy,
    Duplicate,
}

/// Counts one refused storm in `metrics`: `posts_rejected`, and `dedupe_hits` for a duplicate.
/// Written when `metrics` is dropped (returned here so tests can read the documents).
fn count_refusal(mut metrics: Metrics, refusal: Refusal) -> Metrics {
    metrics.put(Metric::PostsRejected, 1.0);
    if refusal == Refusal::Duplicate {
        metrics.put(Metric::DedupeHits, 1.0);
    }
    metrics
}

/// Moves the storm to `rejected`; true when this call moved it (a redelivery finds it moved).
async fn reject(
    posts: &PostsStore,
    storm: &Storm,
    reason: Reason,
    now: i64,
) -> Result<bool, Retry> {
    let moved = posts
        .transition(
            &storm.id,
            Transition::new(&[StatusName::Queued], Status::Rejected(reason), now)
                .at_version(storm.version),
        )
        .await
        .map_err(|e| Retry(e.to_string()))?;
    if let Moved::Stale { current } = moved {
        tracing::info!(storm = %storm.id, ?current, "storm moved on meanwhile; not rejected");
        return Ok(false);
    }
    Ok(true)
}

enum Claim {
    Ours,
    DuplicateOf(StormId),
}

/// Claims the content for this storm for 24 hours, unless another storm holds a live claim.
async fn claim(
    deps: &DedupeDeps,
    storm: &Storm,
    fingerprint: &str,
    now: i64,
) -> Result<Claim, Retry> {
    let key = format!("dedup#{}#{fingerprint}", storm.account_id);
    let record = |holder: &StormId| -> Item {
        Item::from([
            ("id".to_owned(), s(&key)),
            ("storm_id".to_owned(), s(holder.as_str())),
            ("expires_at".to_owned(), n(now + DEDUP_WINDOW_SECS)),
        ])
    };
    let free = Condition::new("attribute_not_exists(#id) OR #exp < :now OR #storm = :me")
        .name("#id", "id")
        .name("#exp", "expires_at")
        .name("#storm", "storm_id")
        .value(":now", n(now))
        .value(":me", s(storm.id.as_str()));
    let outcome = put_if(
        &deps.dynamodb,
        &deps.idempotency_table,
        record(&storm.id),
        free,
    )
    .await
    .map_err(|e| Retry(e.to_string()))?;
    let Conditional::Lost { existing } = outcome else {
        return Ok(Claim::Ours);
    };
    let holder = existing
        .as_ref()
        .and_then(|item| item.get("storm_id"))
        .and_then(|v| v.as_s().ok())
        .and_then(|raw| StormId::parse(raw).ok());
    let Some(holder) = holder else {
        return Err(Retry(format!("dedup record {key} names no storm")));
    };

    // A claim held by a storm that will never publish (refused, failed, cancelled, deleted)
    // does not make this one a duplicate: take it over, conditionally on the same holder.
    let holder_gone = match deps.posts.load(&holder).await {
        Ok(None) => true,
        Ok(Some(original)) => matches!(
            original.status.name(),
            StatusName::Rejected | StatusName::Failed | StatusName::Cancelled
        ),
        Err(e) => return Err(Retry(e.to_string())),
    };
    if !holder_gone {
        return Ok(Claim::DuplicateOf(holder));
    }
    let same_holder = Condition::new("#storm = :holder")
        .name("#storm", "storm_id")
        .value(":holder", s(holder.as_str()));
    match put_if(
        &deps.dynamodb,
        &deps.idempotency_table,
        record(&storm.id),
        same_holder,
    )
    .await
    .map_err(|e| Retry(e.to_string()))?
    {
        Conditional::Written => Ok(Claim::Ours),
        // Another storm took it over first: retry, and the next attempt sees who holds it.
        Conditional::Lost { .. } => Err(Retry(format!("dedup record {key} changed hands"))),
    }
}

#[cfg(test)]
mod metric_tests {
    use super::*;

    #[test]
    fn a_refused_storm_counts_posts_rejected_and_a_duplicate_also_a_dedupe_hit() {
        let policy = count_refusal(Metrics::detached(SERVICE), Refusal::Policy).documents(0);
        assert_eq!(policy.len(), 1);
        assert_eq!(policy[0]["service"], "dedupe");
        assert_eq!(policy[0]["posts_rejected"], 1);
        assert!(policy[0].get("dedupe_hits").is_none());

        let duplicate = count_refusal(Metrics::detached(SERVICE), Refusal::Duplicate).documents(0);
        assert_eq!(duplicate.len(), 1);
        assert_eq!(duplicate[0]["posts_rejected"], 1);
        assert_eq!(duplicate[0]["dedupe_hits"], 1);
        for metric in [Metric::PostsRejected, Metric::DedupeHits] {
            assert!(metric.emitted_by().contains(&SERVICE));
        }
    }
}
