//! The gate stage: the kill switch, then one quota reservation for the whole storm (1 post and
//! n − 1 replies). No capacity, or publishing paused: the storm is deferred with `not_before` and
//! put on the sweep index — its message is deleted, never failed, so waiting for capacity burns
//! no receive count towards the dead-letter queue.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;

use super::dedupe::current;
use super::fifo::{Retry, WholeBatchFailed};
use super::stage::{BoxFuture, Handled, Stage, StormMessage, parse, prefetch, run_batch};
use crate::posts::{
    AccountId, Moved, PostsStore, Reason, Status, StatusName, Storm, StormId, Transition,
};
use crate::store::{StoreError, s};

/// Where the kill switch lives in the RateLimitsTable.
pub const KILL_SWITCH_PK: &str = "control";
pub const KILL_SWITCH_SK: &str = "kill-switch";

/// What a quota reservation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Capacity for the whole storm is held for it.
    Reserved,
    /// Not enough capacity; nothing was consumed. Try again at `not_before` (Unix seconds).
    Deferred { not_before: i64 },
    /// The storm needs more than a whole window allows: waiting would never help.
    NeverFits { reason: String },
}

/// A quota store could not answer; the message is retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quota: {0}")]
pub struct QuotaError(pub String);

/// Reserves a whole storm's share of every governor (Meta's rolling-24-hour posts and replies
/// and the operator's limits) atomically. Reserving again for the same storm (a redelivery) must
/// not count twice.
pub trait Quota: Send + Sync {
    fn reserve<'a>(
        &'a self,
        account: &'a AccountId,
        storm: &'a StormId,
        posts: u32,
        replies: u32,
        now: i64,
    ) -> BoxFuture<'a, Result<Reservation, QuotaError>>;
}

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
    pub quota: Arc<dyn Quota>,
    /// While paused without an `until`, deferred storms are looked at again after this long.
    pub pause_recheck_secs: i64,
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
    let message: StormMessage = match parse(record) {
        Ok(m) => m,
        Err(why) => {
            tracing::error!(%why, "unreadable message dropped");
            return Ok(vec![]);
        }
    };
    let Some(storm) = current(&deps.posts, storms, &message).await? else {
        return Ok(vec![]);
    };
    if let KillSwitch::Paused { until } = switch {
        let not_before = until
            .filter(|u| *u > now)
            .unwrap_or(now + deps.pause_recheck_secs);
        tracing::info!(storm = %storm.id, not_before, "publishing is paused; storm deferred");
        defer(&deps.posts, &storm, not_before, now).await?;
        return Ok(vec![]);
    }
    let (posts, replies) = storm.quota_cost();
    let reservation = deps
        .quota
        .reserve(&storm.account_id, &storm.id, posts, replies, now)
        .await
        .map_err(|e| Retry(e.to_string()))?;
    match reservation {
        Reservation::Reserved => Ok(vec![message.to(Stage::Poster, &deps.poster_queue)]),
        Reservation::Deferred { not_before } => {
            tracing::info!(storm = %storm.id, not_before, posts, replies, "no capacity; storm deferred");
            defer(&deps.posts, &storm, not_before, now).await?;
            Ok(vec![])
        }
        Reservation::NeverFits { reason } => {
            let reason = Reason::new(
                "exceeds_quota",
                format!(
                    "This storm needs more than Threads allows in 24 hours ({reason}); split it \
                     into smaller storms."
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
            if let Moved::Stale { current } = moved {
                tracing::info!(storm = %storm.id, ?current, "storm moved on meanwhile; not rejected");
            }
            Ok(vec![])
        }
    }
}

/// Moves a queued storm to `deferred` until `not_before`, on the sweep index at that time.
pub(crate) async fn defer(
    posts: &PostsStore,
    storm: &Storm,
    not_before: i64,
    now: i64,
) -> Result<(), Retry> {
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
    }
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
