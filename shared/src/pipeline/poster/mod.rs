//! The poster stage: re-checks that the storm's owner may still publish to the account, opens
//! the token, publishes each part in order (each replying to the previous part's media id) exactly
//! once, and sends the outcome to the result sink.
//!
//! Failures are sorted by what happens next: Threads' rate limit defers the storm (the message is
//! deleted, no receive count burnt); a refused token flags the account `needs_reauth` and fails
//! the storm with a reason; validation and other permanent refusals fail it; transient trouble
//! retries the message, and on its last allowed delivery fails the storm rather than dropping it
//! silently into the dead-letter queue.

pub mod ledger;
mod part;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;

pub use crate::vault::{TokenError, TokenOpener};
pub use ledger::PublishLedger;
pub use part::{PartError, Published};

use super::fifo::{Retry, WholeBatchFailed, failures_from};
use super::gate::defer;
use super::idempotency::IdempotencyStore;
use super::results::{Outcome, PublishedPart, ResultMessage};
use super::stage::{
    BoxFuture, Handled, StormMessage, parse, prefetch, receive_count, run_batch, to_lambda,
    unix_now,
};
use crate::accounts::{Account, AccountError, AccountStatus, AccountStore};
use crate::audit::Audit;
use crate::metrics::{Metric, Metrics};
use crate::posts::{
    AccountId, Moved, PostsStore, Reason, Status, StatusName, Storm, StormId, Transition,
};
use crate::resources::Resource;
use crate::runtime;
use crate::secrets::SecretReader;
use crate::threads::{AccessToken, ThreadsClient};
use crate::vault::TokenUse;
use part::PartJob;

/// How hard the poster tries before giving up on a part, and how long it waits.
#[derive(Debug, Clone)]
pub struct PosterSettings {
    /// Backoff between retries: `backoff_between(attempt, base, cap)`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Publish calls on one container while Threads answers "not ready" (4279009).
    pub publish_attempts: u32,
    /// Status reads while a media container is processing.
    pub readiness_polls: u32,
    /// Calls made for one step while Threads fails transiently, before retrying the message.
    pub transient_attempts: u32,
    /// On this delivery of a message, a transient failure fails the storm with a reason (the
    /// queue's dead-letter threshold is one more).
    pub final_receive: u32,
    /// A part is not started with less time than this left in the invocation.
    pub margin: Duration,
    /// How long a rate-limited storm waits when Threads gives no Retry-After.
    pub rate_limit_wait: Duration,
    /// Pages of posts or replies read to find a published container's media id.
    pub recovery_pages: u32,
}

impl Default for PosterSettings {
    fn default() -> Self {
        PosterSettings {
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(8),
            publish_attempts: 5,
            readiness_polls: 10,
            transient_attempts: 3,
            final_receive: 4,
            margin: Duration::from_secs(10),
            rate_limit_wait: Duration::from_secs(15 * 60),
            recovery_pages: 3,
        }
    }
}

/// How long a part's publish record is kept after its last write: longer than any message can
/// live in the pipeline's queues (SQS keeps one at most 14 days), so a redelivery always finds it.
pub const PUBLISH_RECORDS_KEPT: Duration = Duration::from_secs(15 * 24 * 60 * 60);

/// What the poster needs.
#[derive(Clone)]
pub struct PosterDeps {
    pub posts: PostsStore,
    pub accounts: AccountStore,
    pub tokens: Arc<dyn TokenOpener>,
    pub ledger: Arc<dyn PublishLedger>,
    pub threads: ThreadsClient,
    pub sqs: aws_sdk_sqs::Client,
    pub results_queue: String,
    pub settings: PosterSettings,
}

pub use crate::runtime::StartError;

impl PosterDeps {
    /// The stage's dependencies from the function's configuration and clients.
    pub async fn from_runtime(deps: &runtime::Deps) -> Result<Self, StartError> {
        let config = &deps.config;
        let threads = deps.threads_client(None)?;
        let secrets = Arc::new(SecretReader::new(
            deps.aws.secrets.clone(),
            Duration::from_secs(300),
        ));
        let audit = Audit::from_config(deps.aws.dynamodb.clone(), config)?;
        let vault = deps.vault(secrets, audit).await?;
        Ok(PosterDeps {
            posts: PostsStore::new(
                deps.aws.dynamodb.clone(),
                config.resource(Resource::PostsTable)?,
            ),
            accounts: AccountStore::new(
                deps.aws.dynamodb.clone(),
                config.resource(Resource::AccountsTable)?,
            ),
            tokens: Arc::new(vault),
            ledger: Arc::new(IdempotencyStore::new(
                deps.aws.dynamodb.clone(),
                config.resource(Resource::IdempotencyTable)?,
                PUBLISH_RECORDS_KEPT,
            )),
            threads,
            sqs: deps.aws.sqs.clone(),
            results_queue: config.resource(Resource::ResultsQueue)?.to_owned(),
            settings: PosterSettings::default(),
        })
    }
}

/// The Lambda entry point: one SQS batch, now, until the invocation's deadline.
pub fn lambda(
    deps: &PosterDeps,
    event: LambdaEvent<SqsEvent>,
) -> BoxFuture<'_, Result<SqsBatchResponse, lambda_runtime::Error>> {
    Box::pin(async move {
        let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
        to_lambda(handle(deps, &event.payload.records, unix_now(), deadline_ms).await)
    })
}

/// Handles one batch from the poster queue. `now` is Unix seconds; `deadline_ms` is when the
/// invocation ends (`lambda_runtime::Context::deadline`, Unix ms).
#[tracing::instrument(skip_all, fields(stage = "poster", messages = records.len()))]
pub async fn handle(
    deps: &PosterDeps,
    records: &[SqsMessage],
    now: i64,
    deadline_ms: i64,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    let storms = match prefetch(&deps.posts, records).await {
        Ok(storms) => storms,
        Err(err) => {
            tracing::warn!(error = %err, "storms unreadable; the batch is retried");
            return failures_from(records, 0);
        }
    };
    let invocation = Invocation::default();
    run_batch(records, &deps.sqs, |record| {
        one(deps, &storms, &invocation, record, now, deadline_ms)
    })
    .await
}

/// What one invocation reads once and reuses for every message of its batch (usually all of
/// one account): the account as read at the start, and its opened token.
#[derive(Default)]
struct Invocation {
    accounts: Mutex<HashMap<AccountId, Option<Account>>>,
    tokens: Mutex<HashMap<AccountId, AccessToken>>,
}

impl Invocation {
    async fn account(
        &self,
        deps: &PosterDeps,
        id: &AccountId,
    ) -> Result<Option<Account>, AccountError> {
        if let Some(known) = lock(&self.accounts).get(id) {
            return Ok(known.clone());
        }
        let account = deps.accounts.get(id).await?;
        lock(&self.accounts).insert(id.clone(), account.clone());
        Ok(account)
    }

    async fn token(&self, deps: &PosterDeps, account: &Account) -> Result<AccessToken, TokenError> {
        if let Some(token) = lock(&self.tokens).get(&account.account_id) {
            return Ok(token.clone());
        }
        let token = deps.tokens.open(account, TokenUse::Publish).await?;
        lock(&self.tokens).insert(account.account_id.clone(), token.clone());
        Ok(token)
    }

    /// Threads refused the account's token: nothing more is tried with it in this invocation.
    fn needs_reauth(&self, id: &AccountId) {
        lock(&self.tokens).remove(id);
        if let Some(Some(account)) = lock(&self.accounts).get_mut(id) {
            account.status = AccountStatus::NeedsReauth;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn one(
    deps: &PosterDeps,
    storms: &HashMap<StormId, Storm>,
    invocation: &Invocation,
    record: &SqsMessage,
    now: i64,
    deadline_ms: i64,
) -> Handled {
    let message: StormMessage = match parse(record) {
        Ok(m) => m,
        Err(why) => {
            tracing::error!(%why, "unreadable message dropped");
            return Ok(vec![]);
        }
    };
    let storm = match storms.get(&message.storm_id) {
        Some(storm) => Some(storm.clone()),
        None => deps
            .posts
            .load(&message.storm_id)
            .await
            .map_err(|e| Retry(e.to_string()))?,
    };
    let Some(storm) = storm else {
        tracing::warn!(storm = %message.storm_id, "message for a storm that does not exist dropped");
        return Ok(vec![]);
    };
    // Queued: first delivery. Publishing: a redelivery after a crash or a failed later step,
    // which resumes (published parts are skipped). Anything else: nothing to do.
    let resuming = match storm.status.name() {
        StatusName::Queued => false,
        StatusName::Publishing => true,
        _ => {
            tracing::info!(storm = %storm.id, status = %storm.status.name(), "nothing to do");
            return Ok(vec![]);
        }
    };
    if storm.version != message.version {
        tracing::info!(storm = %storm.id, "message of an older version dropped");
        return Ok(vec![]);
    }
    let finish = |outcome: Outcome| {
        let unused = match &outcome {
            Outcome::Failed { parts, .. } => storm.never_attempted_cost(parts.len()),
            Outcome::Published { .. } => None,
        };
        Ok(vec![
            ResultMessage {
                storm_id: storm.id.clone(),
                account_id: storm.account_id.clone(),
                owner_user_id: storm.owner_user_id.clone(),
                version: storm.version,
                outcome,
                unused,
            }
            .to(&deps.results_queue),
        ])
    };

    // Authorisation at publish time, before any Threads call.
    let account = match authorise(deps, invocation, &storm).await? {
        Ok(account) => account,
        Err(reason) => {
            tracing::warn!(storm = %storm.id, code = %reason.code, "storm may not be published");
            return finish(Outcome::Failed {
                reason,
                parts: vec![],
            });
        }
    };

    if !resuming {
        let moved = deps
            .posts
            .transition(
                &storm.id,
                Transition::new(&[StatusName::Queued], Status::Publishing, now)
                    .at_version(storm.version),
            )
            .await
            .map_err(|e| Retry(e.to_string()))?;
        if let Moved::Stale { current } = moved {
            // Cancelled (or handled) meanwhile: publishing must not start.
            tracing::info!(storm = %storm.id, ?current, "storm moved on before publishing");
            return Ok(vec![]);
        }
    }

    let token = match invocation.token(deps, &account).await {
        Ok(token) => token,
        Err(TokenError::Retryable(why)) => return Err(Retry(why)),
        Err(TokenError::Unusable(why)) => {
            return finish(Outcome::Failed {
                reason: Reason::new(
                    "needs_reauth",
                    format!(
                        "The stored Threads token of this account cannot be used ({why}). \
                         Connect the account again, then submit the storm again."
                    ),
                ),
                parts: vec![],
            });
        }
    };

    let mut published: Vec<PublishedPart> = Vec::with_capacity(storm.parts.len());
    for part in &storm.parts {
        let left = deadline_ms - now_ms();
        if left < i64::try_from(deps.settings.margin.as_millis()).unwrap_or(i64::MAX) {
            // Resumes from here on the next delivery.
            return Err(Retry(format!(
                "{left} ms left in the invocation; part {} waits for the next delivery",
                part.index + 1
            )));
        }
        let job = PartJob {
            deps,
            token: &token,
            user: &storm.account_id,
            storm: &storm,
            index: part.index,
            content: &part.content,
            parent: published.last().map(|p| &p.media_id),
            earlier: &published,
            deadline_ms,
            now,
        };
        match job.run().await {
            Ok(p) => published.push(PublishedPart {
                index: part.index,
                media_id: p.media_id,
                container_id: p.container_id,
                permalink: p.permalink,
            }),
            Err(PartError::Retry(why)) if receive_count(record) < deps.settings.final_receive => {
                return Err(Retry(why));
            }
            Err(PartError::Retry(why)) => {
                return finish(Outcome::Failed {
                    reason: Reason::new(
                        "threads_unavailable",
                        format!(
                            "Threads kept failing temporarily while publishing part {} ({why}); \
                             {} of {} parts are published. Submit the rest again later.",
                            part.index + 1,
                            published.len(),
                            storm.parts.len()
                        ),
                    ),
                    parts: published,
                });
            }
            Err(PartError::Defer { not_before, reason }) => {
                tracing::info!(storm = %storm.id, part = part.index, not_before, %reason, "rate limited by Threads; storm deferred");
                defer(&deps.posts, &storm, not_before, now).await?;
                return Ok(vec![]);
            }
            Err(PartError::Reauth(why)) => {
                let reason = format!(
                    "Threads refused this account's token: {why}. Connect the account again."
                );
                invocation.needs_reauth(&storm.account_id);
                deps.accounts
                    .mark_needs_reauth(&storm.account_id)
                    .await
                    .map_err(|e| Retry(e.to_string()))?;
                return finish(Outcome::Failed {
                    reason: Reason::new(
                        "needs_reauth",
                        format!(
                            "{reason} Then submit the storm again ({} of {} parts are published).",
                            published.len(),
                            storm.parts.len()
                        ),
                    ),
                    parts: published,
                });
            }
            Err(PartError::Fail(reason)) => {
                return finish(Outcome::Failed {
                    reason,
                    parts: published,
                });
            }
        }
    }
    count_publish_latency(Metrics::new(SERVICE), &storm, now_ms());
    finish(Outcome::Published { parts: published })
}

const SERVICE: &str = "poster";

/// How long a published storm waited: from when it was due — its `publish_at`, or its creation
/// when it was for "now" — to its last part being published, in milliseconds.
fn publish_latency_ms(storm: &Storm, published_ms: i64) -> f64 {
    let due = storm
        .publish_at
        .map_or(storm.created_at, |at| at.max(storm.created_at));
    let waited = published_ms.saturating_sub(due.saturating_mul(1000)).max(0);
    waited as f64
}

/// Records `publish_latency_ms` of a published storm in `metrics` (written when it is dropped;
/// returned for tests).
fn count_publish_latency(mut metrics: Metrics, storm: &Storm, published_ms: i64) -> Metrics {
    metrics.put(
        Metric::PublishLatencyMs,
        publish_latency_ms(storm, published_ms),
    );
    metrics
}

/// The account, if the storm's owner may publish to it now; else the reason why not.
async fn authorise(
    deps: &PosterDeps,
    invocation: &Invocation,
    storm: &Storm,
) -> Result<Result<Account, Reason>, Retry> {
    let forbidden =
        |text: &str| Reason::new("forbidden", format!("{text}; nothing was published."));
    let account = match invocation.account(deps, &storm.account_id).await {
        Ok(account) => account,
        Err(AccountError::Store(e)) => return Err(Retry(e.to_string())),
        Err(e) => {
            // A record the store cannot read authorises nothing.
            tracing::error!(storm = %storm.id, error = %e, "account record unreadable");
            return Ok(Err(forbidden("The Threads account's record is unreadable")));
        }
    };
    let Some(account) = account else {
        return Ok(Err(forbidden(
            "The Threads account is no longer connected to ThreadStorm",
        )));
    };
    if account.owner_user_id != storm.owner_user_id {
        return Ok(Err(forbidden(
            "The Threads account is not connected by the user who submitted this",
        )));
    }
    Ok(match account.status {
        AccountStatus::Connected => Ok(account),
        AccountStatus::NeedsReauth => Err(Reason::new(
            "needs_reauth",
            "Threads no longer accepts this account's token; connect the account again, then \
             submit the storm again. Nothing was published.",
        )),
        AccountStatus::Disconnected => Err(forbidden("The Threads account was disconnected")),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod metric_tests {
    use super::*;
    use crate::posts::{PartContent, StormKind};

    fn storm(created_at: i64, publish_at: Option<i64>) -> Storm {
        Storm {
            id: StormId::new(),
            kind: StormKind::Post,
            owner_user_id: "user_1".into(),
            account_id: AccountId::parse("17841400000000101").unwrap(),
            parts: vec![crate::posts::Part {
                index: 0,
                content: PartContent::text("hello"),
                media_id: None,
                permalink: None,
                deleted_at: None,
            }],
            status: Status::Publishing,
            publish_at,
            created_at,
            updated_at: created_at,
            version: 1,
        }
    }

    #[test]
    fn publish_latency_runs_from_creation_or_from_the_scheduled_time() {
        let now = storm(1_800_000_000, None);
        assert_eq!(publish_latency_ms(&now, 1_800_000_002_500), 2_500.0);
        let scheduled = storm(1_800_000_000, Some(1_800_000_060));
        assert_eq!(publish_latency_ms(&scheduled, 1_800_000_061_000), 1_000.0);
        // A publish_at before creation means "now"; a clock behind never gives a negative figure.
        let past = storm(1_800_000_000, Some(1_700_000_000));
        assert_eq!(publish_latency_ms(&past, 1_800_000_000_400), 400.0);
        assert_eq!(publish_latency_ms(&now, 1_799_999_999_000), 0.0);
    }

    #[test]
    fn a_published_storm_writes_publish_latency_ms_for_the_poster() {
        let docs = count_publish_latency(
            Metrics::detached(SERVICE),
            &storm(1_800_000_000, None),
            1_800_000_001_250,
        )
        .documents(0);
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["service"], "poster");
        assert_eq!(docs[0]["publish_latency_ms"], 1250);
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Milliseconds"
        );
        assert!(Metric::PublishLatencyMs.emitted_by().contains(&SERVICE));
    }
}
