//! The result sink: records how a storm ended (published, or failed with a reason), every part's
//! media id, and runs the completion hooks (metrics, audit). One transaction per storm; a
//! redelivered result finds the storm already final and only re-runs the hooks.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};

use super::fifo::{Retry, WholeBatchFailed};
use super::quota::{Counts, QuotaStore, ReservationId};
use super::stage::{BoxFuture, Handled, Outgoing, Stage, parse, run_batch, to_lambda, unix_now};
use crate::audit::{Audit, AuditRecord, Category, Outcome as AuditOutcome};
use crate::clock::EpochMillis;
use crate::config::ConfigError;
use crate::metrics;
use crate::posts::{
    AccountId, Moved, PartOutcome, PostsStore, Reason, Status, StatusName, StormId, Transition,
};
use crate::resources::Resource;
use crate::runtime;
use crate::threads::{ContainerId, MediaId};

/// One part as it stands on Threads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPart {
    pub index: usize,
    pub media_id: MediaId,
    pub container_id: Option<ContainerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permalink: Option<String>,
}

/// How the poster finished with a storm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Every part is published, in order.
    Published { parts: Vec<PublishedPart> },
    /// Publishing stopped; `parts` are those already on Threads.
    Failed {
        reason: Reason,
        parts: Vec<PublishedPart>,
    },
}

impl Outcome {
    pub fn parts(&self) -> &[PublishedPart] {
        match self {
            Outcome::Published { parts } | Outcome::Failed { parts, .. } => parts,
        }
    }
}

/// The body of a message on the results queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultMessage {
    pub storm_id: StormId,
    pub account_id: AccountId,
    /// Who submitted the storm: the audit record names them.
    pub owner_user_id: String,
    pub version: u32,
    pub outcome: Outcome,
    /// Quota the gate reserved for parts that were never attempted (a storm that failed midway):
    /// given back by the result sink. The failing part's share is kept — it may have published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unused: Option<Counts>,
}

impl ResultMessage {
    pub fn to(&self, queue_url: &str) -> Outgoing {
        Outgoing::new(
            Stage::Results,
            queue_url,
            &self.storm_id,
            &self.account_id,
            self.version,
            self,
        )
    }
}

/// Failure of a completion hook: the result is retried (the status write is idempotent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("completion hook: {0}")]
pub struct HookError(pub String);

/// What happens once a storm is final: metrics, audit, notifications.
pub trait CompletionHooks: Send + Sync {
    fn finished<'a>(&'a self, result: &'a ResultMessage) -> BoxFuture<'a, Result<(), HookError>>;
}

/// Hooks that only log (tests, and tools that replay results).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOnly;

impl CompletionHooks for LogOnly {
    fn finished<'a>(&'a self, result: &'a ResultMessage) -> BoxFuture<'a, Result<(), HookError>> {
        Box::pin(async move {
            match &result.outcome {
                Outcome::Published { parts } => {
                    tracing::info!(storm = %result.storm_id, parts = parts.len(), "storm published")
                }
                Outcome::Failed { reason, parts } => tracing::warn!(
                    storm = %result.storm_id, code = %reason.code, reason = %reason.text,
                    published_parts = parts.len(), "storm failed"
                ),
            }
            Ok(())
        })
    }
}

/// The production hooks: a metric for every storm that ends (`posts_published`,
/// `publish_failures`) and an audit record for every storm that fails — a refusal at publish
/// time (not the owner's account, a revoked token) as an authorization record. A published storm
/// is recorded in the PostsTable itself (owner, account, media ids, time), so it costs no second
/// write here. A failed audit write fails the message, which is retried alone (case P3).
#[derive(Debug, Clone)]
pub struct AuditAndMetrics {
    pub audit: Audit,
}

impl CompletionHooks for AuditAndMetrics {
    fn finished<'a>(&'a self, result: &'a ResultMessage) -> BoxFuture<'a, Result<(), HookError>> {
        Box::pin(async move {
            let (reason, parts) = match &result.outcome {
                Outcome::Published { parts } => {
                    metrics::count(SERVICE, metrics::Metric::PostsPublished);
                    tracing::info!(storm = %result.storm_id, parts = parts.len(), "storm published");
                    return Ok(());
                }
                Outcome::Failed { reason, parts } => (reason, parts),
            };
            metrics::count(SERVICE, metrics::Metric::PublishFailures);
            let (category, outcome) = match reason.code.as_str() {
                "forbidden" | "needs_reauth" => (Category::Authorization, AuditOutcome::Denied),
                _ => (Category::System, AuditOutcome::Failure),
            };
            let record = AuditRecord::new(category, "storm.publish", outcome)
                .user(&result.owner_user_id)
                .description(format!(
                    "storm {} for account {} failed: {}",
                    result.storm_id, result.account_id, reason.code
                ))
                .metadata(serde_json::json!({
                    "storm_id": result.storm_id,
                    "account_id": result.account_id,
                    "reason_code": reason.code,
                    "reason": reason.text,
                    "published_parts": parts.iter().map(|p| p.media_id.as_str()).collect::<Vec<_>>(),
                }));
            self.audit
                .record(record)
                .await
                .map(|_| ())
                .map_err(|e| HookError(e.to_string()))
        })
    }
}

const SERVICE: &str = "result-sink";

/// What the result sink needs.
#[derive(Clone)]
pub struct ResultSinkDeps {
    pub posts: PostsStore,
    pub sqs: aws_sdk_sqs::Client,
    pub hooks: Arc<dyn CompletionHooks>,
    /// Where unused quota of a failed storm is given back.
    pub quota: Arc<QuotaStore>,
}

impl ResultSinkDeps {
    /// The stage's dependencies from the function's configuration and clients.
    pub fn from_runtime(deps: &runtime::Deps) -> Result<Self, ConfigError> {
        Ok(ResultSinkDeps {
            posts: PostsStore::new(
                deps.aws.dynamodb.clone(),
                deps.config.resource(Resource::PostsTable)?,
            ),
            sqs: deps.aws.sqs.clone(),
            hooks: Arc::new(AuditAndMetrics {
                audit: Audit::from_config(deps.aws.dynamodb.clone(), &deps.config)?,
            }),
            quota: Arc::new(QuotaStore::new(
                deps.aws.dynamodb.clone(),
                deps.config.resource(Resource::RateLimitsTable)?,
                deps.config.governors,
            )),
        })
    }
}

/// The Lambda entry point: one SQS batch, now. Boxed, so the runtime's future stays small.
pub fn lambda(
    deps: &ResultSinkDeps,
    event: LambdaEvent<SqsEvent>,
) -> BoxFuture<'_, Result<SqsBatchResponse, lambda_runtime::Error>> {
    Box::pin(async move { to_lambda(handle(deps, &event.payload.records, unix_now()).await) })
}

/// Handles one batch from the results queue. `now` is Unix seconds.
#[tracing::instrument(skip_all, fields(stage = "result-sink", messages = records.len()))]
pub async fn handle(
    deps: &ResultSinkDeps,
    records: &[SqsMessage],
    now: i64,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    run_batch(records, &deps.sqs, |record| one(deps, record, now)).await
}

async fn one(deps: &ResultSinkDeps, record: &SqsMessage, now: i64) -> Handled {
    let result: ResultMessage = match parse(record) {
        Ok(m) => m,
        Err(why) => {
            tracing::error!(%why, "unreadable result dropped");
            return Ok(vec![]);
        }
    };
    let parts: Vec<PartOutcome> = result
        .outcome
        .parts()
        .iter()
        .map(|p| PartOutcome {
            index: p.index,
            media_id: p.media_id.clone(),
            permalink: p.permalink.clone(),
        })
        .collect();
    let (from, to): (&[StatusName], Status) = match &result.outcome {
        Outcome::Published { parts } => {
            let Some(first) = parts.iter().find(|p| p.index == 0) else {
                tracing::error!(storm = %result.storm_id, "published result without its first part dropped");
                return Ok(vec![]);
            };
            (
                &[StatusName::Publishing],
                Status::Published {
                    media_id: first.media_id.clone(),
                    permalink: first.permalink.clone(),
                },
            )
        }
        // A storm fails before publishing starts when its owner may not publish to the account.
        Outcome::Failed { reason, .. } => (
            &[StatusName::Queued, StatusName::Publishing],
            Status::Failed(reason.clone()),
        ),
    };
    let target = to.name();
    let moved = deps
        .posts
        .finish(&result.storm_id, Transition::new(from, to, now), &parts)
        .await
        .map_err(|e| Retry(e.to_string()))?;
    match moved {
        Moved::Moved => {}
        // A redelivery: the write is done; the hooks may not be (case P3).
        Moved::Stale { current } if current.as_ref().map(Status::name) == Some(target) => {}
        Moved::Stale { current } => {
            tracing::warn!(storm = %result.storm_id, ?current, "result for a storm in another status ignored");
            return Ok(vec![]);
        }
    }
    if let Some(unused) = result.unused {
        give_back(deps, &result, unused, now).await?;
    }
    deps.hooks
        .finished(&result)
        .await
        .map_err(|e| Retry(e.to_string()))?;
    Ok(vec![])
}

/// Gives back what a failed storm reserved for parts it never attempted, so later storms are not
/// deferred for capacity nobody used. Once only: a redelivery finds it released.
async fn give_back(
    deps: &ResultSinkDeps,
    result: &ResultMessage,
    unused: Counts,
    now: i64,
) -> Result<(), Retry> {
    let Ok(id) = ReservationId::parse(result.storm_id.as_str()) else {
        return Ok(());
    };
    let released = deps
        .quota
        .release_by_id(
            &result.account_id,
            &id,
            unused,
            EpochMillis::new(now.saturating_mul(1000)),
        )
        .await
        .map_err(|e| Retry(e.to_string()))?;
    tracing::info!(storm = %result.storm_id, ?released, "unused quota given back");
    Ok(())
}
