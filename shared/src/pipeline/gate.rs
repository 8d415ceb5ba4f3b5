//! The gate stage: the kill switch, then one quota reservation for the whole storm (1 post and
//! n − 1 replies). No capacity, or publishing paused: the storm is deferred with `not_before` and
//! put on the sweep index — its message is deleted, never failed, so waiting for capacity burns
//! no receive count towards the dead-letter queue.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::LambdaEvent;

use super::fifo::{Retry, WholeBatchFailed};
use super::quota::{QuotaStore, ReservationId, Reserve};
use super::stage::{
    BoxFuture, Handled, Stage, prefetch, queued_storm, run_batch, to_lambda, unix_now,
};
use crate::clock::EpochMillis;
use crate::config::ConfigError;
use crate::metrics::{Metric, Metrics};
use crate::posts::{Moved, PostsStore, Reason, Status, StatusName, Storm, StormId, Transition};
use crate::resources::Resource;
use crate::runtime;
use crate::store::{StoreError, s};

/// Where the kill switch lives in the RateLimitsTable.
pub const KILL_SWITCH_PK: &str = "control";
pub const KILL_SWITCH_SK: &str = "kill-switch";

/// The kill switch as stored: `paused` (bool), optionally `until` (Unix seconds) and `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillSwitch {
    Running,
    Paused { until: Option<i64> },
}

/// What the gate needs.
#[derive(Clone)]
pub struct GateDeps {
    pub posts: PostsStore,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub rate_limits_table: String,
    pub sqs: aws_sdk_sqs::Client,
    pub poster_queue: String,
    pub quota: Arc<QuotaStore>,
    /// While paused without an `until`, deferred storms are looked at again after this long.
    pub pause_recheck_secs: i64,
}

/// While paused without an end, how long before a deferred storm is looked at again.
pub const PAUSE_RECHECK_SECS: i64 = 60;

/// Accounts whose quota item a warm gate remembers (one conditional write per reservation
/// instead of a read and a write).
pub const QUOTA_CACHE_ACCOUNTS: usize = 1024;

impl GateDeps {
    /// The stage's dependencies from the function's configuration and clients.
    pub fn from_runtime(deps: &runtime::Deps) -> Result<Self, ConfigError> {
        let config = &deps.config;
        let rate_limits_table = config.resource(Resource::RateLimitsTable)?.to_owned();
        Ok(GateDeps {
            posts: PostsStore::new(
                deps.aws.dynamodb.clone(),
                config.resource(Resource::PostsTable)?,
            ),
            dynamodb: deps.aws.dynamodb.clone(),
            quota: Arc::new(
                QuotaStore::new(
                    deps.aws.dynamodb.clone(),
                    rate_limits_table.clone(),
                    config.governors,
                )
                .with_cache(QUOTA_CACHE_ACCOUNTS),
            ),
            rate_limits_table,
            sqs: deps.aws.sqs.clone(),
            poster_queue: config.resource(Resource::PosterQueue)?.to_owned(),
            pause_recheck_secs: PAUSE_RECHECK_SECS,
        })
    }
}

/// The Lambda entry point: one SQS batch, now.
pub fn lambda(
    deps: &GateDeps,
    event: LambdaEvent<SqsEvent>,
) -> BoxFuture<'_, Result<SqsBatchResponse, lambda_runtime::Error>> {
    Box::pin(async move { to_lambda(handle(deps, &event.payload.records, unix_now()).await) })
}

/// Handles one batch from the gate queue. `now` is Unix seconds.
#[tracing::instrument(skip_all, fields(stage = "gate", messages = records.len()))]
pub async fn handle(
    deps: &GateDeps,
    records: &[SqsMessage],
    now: i64,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    if records.is_empty() {
        return Ok(SqsBatchResponse::default());
    }
    // Read once per batch: one request for up to ten storms.
    let switch = match kill_switch(deps, now).await {
        Ok(switch) => switch,
        Err(err) => {
            tracing::warn!(error = %err, "kill switch unreadable; the batch is retried");
            return super::fifo::failures_from(records, 0);
        }
    };
    let storms = match prefetch(&deps.posts, records).await {
        Ok(storms) => storms,
        Err(err) => {
            tracing::warn!(error = %err, "storms unreadable; the batch is retried");
            return super::fifo::failures_from(records, 0);
        }
    };
    run_batch(records, &deps.sqs, |record| {
        one(deps, &storms, record, &switch, now)
    })
    .await
}

async fn one(
    deps: &GateDeps,
    storms: &HashMap<StormId, Storm>,
    record: &SqsMessage,
    switch: &KillSwitch,
    now: i64,
) -> Handled {
    let Some((message, storm)) = queued_storm(&deps.posts, storms, record).await? else {
        return Ok(vec![]);
    };
    if let KillSwitch::Paused { until } = switch {
        let not_before = until
            .filter(|u| *u > now)
            .unwrap_or(now + deps.pause_recheck_secs);
        tracing::info!(storm = %storm.id, not_before, "publishing is paused; storm deferred");
        if defer(&deps.posts, &storm, not_before, now).await? {
            count_deferral(Metrics::new(SERVICE), Deferral::Paused);
        }
        return Ok(vec![]);
    }
    let demand = storm.quota_cost();
    let id = ReservationId::parse(storm.id.as_str()).map_err(|e| Retry(e.to_string()))?;
    let reservation = deps
        .quota
        .reserve(
            &storm.account_id,
            &id,
            demand,
            EpochMillis::new(now.saturating_mul(1000)),
        )
        .await
        .map_err(|e| Retry(e.to_string()))?;
    match reservation {
        Reserve::Reserved(_) => Ok(vec![message.to(Stage::Poster, &deps.poster_queue)]),
        Reserve::Deferred { not_before, limit } => {
            let not_before = not_before.ceil_seconds().get();
            tracing::info!(storm = %storm.id, not_before, limit = limit.as_str(), ?demand, "no capacity; storm deferred");
            if defer(&deps.posts, &storm, not_before, now).await? {
                count_deferral(Metrics::new(SERVICE), Deferral::NoCapacity);
            }
            Ok(vec![])
        }
        Reserve::NeverFits {
            limit,
            needed,
            allowed,
        } => {
            let reason = Reason::new(
                "exceeds_quota",
                format!(
                    "This storm needs {needed} of {} where at most {allowed} are allowed; split \
                     it into smaller storms.",
                    limit.describe()
                ),
            );
            let moved = deps
                .posts
                .transition(
                    &storm.id,
                    Transition::new(&[StatusName::Queued], Status::Rejected(reason), now)
                        .at_version(storm.version),
                )
                .await
                .map_err(|e| Retry(e.to_string()))?;
            match moved {
                Moved::Stale { current } => {
                    tracing::info!(storm = %storm.id, ?current, "storm moved on meanwhile; not rejected");
                }
                Moved::Moved => {
                    Metrics::new(SERVICE).put(Metric::PostsRejected, 1.0);
                }
            }
            Ok(vec![])
        }
    }
}

const SERVICE: &str = "gate";

/// Why the gate deferred a storm: a property of its `posts_deferred` document, never a dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deferral {
    Paused,
    NoCapacity,
}

impl Deferral {
    fn as_str(self) -> &'static str {
        match self {
            Deferral::Paused => "paused",
            Deferral::NoCapacity => "no_capacity",
        }
    }
}

/// Counts one deferred storm in `metrics` (written when it is dropped; returned for tests).
fn count_deferral(mut metrics: Metrics, why: Deferral) -> Metrics {
    metrics
        .put(Metric::PostsDeferred, 1.0)
        .property("deferred_because", why.as_str());
    metrics
}

/// Moves a queued storm to `deferred` until `not_before`, on the sweep index at that time.
/// True when this call moved it (a redelivery finds it moved already).
pub(crate) async fn defer(
    posts: &PostsStore,
    storm: &Storm,
    not_before: i64,
    now: i64,
) -> Result<bool, Retry> {
    let moved = posts
        .transition(
            &storm.id,
            Transition::new(
                &[StatusName::Queued, StatusName::Publishing],
                Status::Deferred { not_before },
                now,
            )
            .at_version(storm.version)
            .sweep_at(not_before),
        )
        .await
        .map_err(|e| Retry(e.to_string()))?;
    if let Moved::Stale { current } = moved {
        tracing::info!(storm = %storm.id, ?current, "storm moved on meanwhile; not deferred");
        return Ok(false);
    }
    Ok(true)
}

/// Sets the kill switch (the admin API's pause and resume): `Paused` with an optional end, or
/// `Running`. `by` and `reason` are kept on the item for whoever looks at it next.
pub async fn set_kill_switch(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    switch: &KillSwitch,
    by: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let mut put = client
        .put_item()
        .table_name(table)
        .item("pk", s(KILL_SWITCH_PK))
        .item("sk", s(KILL_SWITCH_SK))
        .item(
            "paused",
            AttributeValue::Bool(matches!(switch, KillSwitch::Paused { .. })),
        )
        .item("updated_by", s(by))
        .item("updated_at", AttributeValue::N(now.to_string()));
    if let KillSwitch::Paused { until: Some(until) } = switch {
        put = put.item("until", AttributeValue::N(until.to_string()));
    }
    if let Some(reason) = reason.filter(|r| !r.is_empty()) {
        put = put.item("reason", s(reason));
    }
    put.send().await.map_err(|e| StoreError {
        operation: "PutItem",
        table: table.to_owned(),
        message: aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
    })?;
    Ok(())
}

/// Reads the kill switch (strongly consistent: an operator's pause applies at once).
pub async fn kill_switch(deps: &GateDeps, now: i64) -> Result<KillSwitch, StoreError> {
    let output = deps
        .dynamodb
        .get_item()
        .table_name(&deps.rate_limits_table)
        .key("pk", s(KILL_SWITCH_PK))
        .key("sk", s(KILL_SWITCH_SK))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| StoreError {
            operation: "GetItem",
            table: deps.rate_limits_table.clone(),
            message: aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
        })?;
    let Some(item) = output.item() else {
        return Ok(KillSwitch::Running);
    };
    let paused = matches!(item.get("paused"), Some(AttributeValue::Bool(true)));
    let until = item
        .get("until")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok());
    Ok(match (paused, until) {
        (false, _) => KillSwitch::Running,
        // A pause with an end in the past is over.
        (true, Some(until)) if until <= now => KillSwitch::Running,
        (true, until) => KillSwitch::Paused { until },
    })
}

#[cfg(test)]
mod metric_tests {
    use super::*;

    #[test]
    fn a_deferred_storm_counts_posts_deferred_with_the_reason_as_a_property() {
        for (why, text) in [
            (Deferral::Paused, "paused"),
            (Deferral::NoCapacity, "no_capacity"),
        ] {
            let docs = count_deferral(Metrics::detached(SERVICE), why).documents(0);
            assert_eq!(docs.len(), 1);
            assert_eq!(docs[0]["service"], "gate");
            assert_eq!(docs[0]["posts_deferred"], 1);
            assert_eq!(docs[0]["deferred_because"], text);
            assert_eq!(
                docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                serde_json::json!([["service"]]),
                "the reason is never a dimension"
            );
        }
        assert!(Metric::PostsDeferred.emitted_by().contains(&SERVICE));
    }
}
