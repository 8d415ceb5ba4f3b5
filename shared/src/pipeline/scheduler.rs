//! The scheduled sweep: finds due storms on the sweep index (scheduled whose `publish_at` has
//! come, deferred whose `not_before` has passed, queued ones whose enqueue may have been lost)
//! and sends them to the intake queue.
//!
//! Each storm is first moved conditionally on the status and version the sweep read — queued,
//! version + 1, due again after the grace period — so of two overlapping sweeps only one sends
//! it, and a storm whose send is lost is found again after the grace period.

use lambda_runtime::LambdaEvent;

use super::stage::{BoxFuture, Outgoing, Stage, StormMessage, send_all, unix_now};
use crate::config::ConfigError;
use crate::posts::{Moved, PostsError, PostsStore, Status, StatusName, Transition};
use crate::resources::Resource;
use crate::runtime;

/// What the scheduler needs.
#[derive(Debug, Clone)]
pub struct SchedulerDeps {
    pub posts: PostsStore,
    pub sqs: aws_sdk_sqs::Client,
    pub intake_queue: String,
    pub settings: SweepSettings,
}

#[derive(Debug, Clone, Copy)]
pub struct SweepSettings {
    /// A queued storm not out of the pipeline after this long is sent again.
    pub grace_secs: i64,
    /// Storms read per Query.
    pub page: i32,
    /// At most this many storms per sweep; the rest wait for the next one.
    pub max_per_sweep: usize,
}

impl Default for SweepSettings {
    fn default() -> Self {
        SweepSettings {
            grace_secs: 15 * 60,
            page: 100,
            max_per_sweep: 2_000,
        }
    }
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Due storms read from the index.
    pub seen: usize,
    /// Moved and sent to the intake queue.
    pub enqueued: usize,
    /// Moved on by someone else between the read and the move.
    pub skipped: usize,
    /// Moved but not sent: found again after the grace period.
    pub send_failed: usize,
}

/// The sweep failed to read or move storms; what it did before is kept.
#[derive(Debug, thiserror::Error)]
#[error("sweep stopped after {report:?}: {source}")]
pub struct SweepError {
    pub report: SweepReport,
    #[source]
    pub source: PostsError,
}

impl SchedulerDeps {
    /// The sweep's dependencies from the function's configuration and clients.
    pub fn from_runtime(deps: &runtime::Deps) -> Result<Self, ConfigError> {
        Ok(SchedulerDeps {
            posts: PostsStore::new(
                deps.aws.dynamodb.clone(),
                deps.config.resource(Resource::PostsTable)?,
            ),
            sqs: deps.aws.sqs.clone(),
            intake_queue: deps.config.resource(Resource::IntakeQueue)?.to_owned(),
            settings: SweepSettings::default(),
        })
    }
}

/// The Lambda entry point: the schedule's event carries nothing the sweep needs.
pub fn lambda(
    deps: &SchedulerDeps,
    _event: LambdaEvent<serde_json::Value>,
) -> BoxFuture<'_, Result<SweepReport, lambda_runtime::Error>> {
    Box::pin(async move {
        sweep(deps, unix_now())
            .await
            .map_err(|e| Box::new(e) as lambda_runtime::Error)
    })
}

/// One sweep at `now` (Unix seconds).
#[tracing::instrument(skip_all, fields(stage = "scheduler"))]
pub async fn sweep(deps: &SchedulerDeps, now: i64) -> Result<SweepReport, SweepError> {
    let mut report = SweepReport::default();
    let mut start = None;
    let settings = deps.settings;
    loop {
        let (due, next) = match deps.posts.due(now, settings.page, start).await {
            Ok(page) => page,
            Err(source) => return Err(SweepError { report, source }),
        };
        let mut outgoing: Vec<(usize, Outgoing)> = Vec::new();
        for storm in due {
            report.seen += 1;
            let from = match storm.status.name() {
                name @ (StatusName::Scheduled | StatusName::Deferred | StatusName::Queued) => name,
                // The index is eventually consistent: a storm that left it may still show.
                _ => {
                    report.skipped += 1;
                    continue;
                }
            };
            let moved = deps
                .posts
                .transition(
                    &storm.id,
                    Transition::new(&[from], Status::Queued, now)
                        .at_version(storm.version)
                        .bump_version()
                        .sweep_at(now + settings.grace_secs),
                )
                .await;
            match moved {
                Ok(Moved::Moved) => {
                    let message = StormMessage {
                        storm_id: storm.id,
                        account_id: storm.account_id,
                        version: storm.version + 1,
                        parts: storm.part_count,
                    };
                    outgoing.push((
                        outgoing.len(),
                        message.to(Stage::Dedupe, &deps.intake_queue),
                    ));
                }
                Ok(Moved::Stale { .. }) => report.skipped += 1,
                Err(source) => {
                    send(deps, &outgoing, &mut report).await;
                    return Err(SweepError { report, source });
                }
            }
        }
        send(deps, &outgoing, &mut report).await;
        start = next;
        if start.is_none() || report.seen >= settings.max_per_sweep {
            return Ok(report);
        }
    }
}

async fn send(deps: &SchedulerDeps, outgoing: &[(usize, Outgoing)], report: &mut SweepReport) {
    // Storms are independent here: send them all; one failed chunk does not hold back others.
    let mut rest = outgoing;
    while !rest.is_empty() {
        match send_all(&deps.sqs, rest).await {
            Ok(()) => {
                report.enqueued += rest.len();
                return;
            }
            Err(failed) => {
                let at = rest
                    .iter()
                    .position(|(i, _)| *i == failed.source)
                    .unwrap_or(0);
                tracing::warn!(reason = %failed.reason, "sweep send failed; the storm is found again after the grace period");
                report.enqueued += at;
                report.send_failed += 1;
                rest = &rest[at + 1..];
            }
        }
    }
}
