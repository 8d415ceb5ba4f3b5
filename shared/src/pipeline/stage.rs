//! What every stage shares: the message that carries a storm from one queue to the next, the
//! outbox that sends a batch's messages with SendMessageBatch after its handlers ran, and the
//! batch runner that keeps the FIFO rule across both.
//!
//! A message names a storm and its version; the storm itself is always read from the PostsTable.
//! `MessageGroupId` is the Threads account, `MessageDeduplicationId` is
//! `<storm>#<stage>#<version>`, so a re-sent message within SQS's five minutes is dropped by SQS,
//! and later ones by the stage (every stage tolerates redelivery).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsMessage};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};

use super::fifo::{Retry, WholeBatchFailed, failures_from, process_in_order};
use crate::posts::{AccountId, PostsError, PostsStore, StatusName, Storm, StormId};

/// A boxed future, so the narrow traits the stages depend on stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The queue a message is sent to, named after the stage that consumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Dedupe,
    Gate,
    Poster,
    Results,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Dedupe => "dedupe",
            Stage::Gate => "gate",
            Stage::Poster => "poster",
            Stage::Results => "results",
        }
    }
}

/// The body of every message between stages before the result sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StormMessage {
    pub storm_id: StormId,
    pub account_id: AccountId,
    pub version: u32,
    /// How many parts the storm has (fixed at intake), so a stage can read every storm of its
    /// batch in one BatchGetItem.
    pub parts: usize,
}

impl StormMessage {
    pub fn of(storm: &Storm) -> Self {
        StormMessage {
            storm_id: storm.id.clone(),
            account_id: storm.account_id.clone(),
            version: storm.version,
            parts: storm.parts.len(),
        }
    }
}

/// Every storm the batch's messages name, read in one go (BatchGetItem, strongly consistent).
/// Unreadable messages are skipped here; their handler drops them.
pub async fn prefetch(
    posts: &PostsStore,
    records: &[SqsMessage],
) -> Result<HashMap<StormId, Storm>, PostsError> {
    let wanted: Vec<(StormId, usize)> = records
        .iter()
        .filter_map(|r| parse::<StormMessage>(r).ok())
        .map(|m| (m.storm_id, m.parts))
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    posts.load_many(&wanted).await
}

impl StormMessage {
    /// This message, addressed to `stage`.
    pub fn to(&self, stage: Stage, queue_url: &str) -> Outgoing {
        Outgoing::new(
            stage,
            queue_url,
            &self.storm_id,
            &self.account_id,
            self.version,
            self,
        )
    }
}

/// A message to send once the batch's handlers have run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub queue_url: String,
    pub group_id: String,
    pub dedup_id: String,
    pub body: String,
}

impl Outgoing {
    pub fn new(
        stage: Stage,
        queue_url: &str,
        storm: &StormId,
        account: &AccountId,
        version: u32,
        body: &impl Serialize,
    ) -> Self {
        Outgoing {
            queue_url: queue_url.to_owned(),
            group_id: account.to_string(),
            dedup_id: format!("{storm}#{}#{version}", stage.as_str()),
            // Serialising these plain structs cannot fail; an empty body would be refused by
            // the stage that reads it, never mistaken for work.
            body: serde_json::to_string(body).unwrap_or_default(),
        }
    }
}

/// Reads a message body, or says why it cannot be read.
pub fn parse<T: serde::de::DeserializeOwned>(record: &SqsMessage) -> Result<T, String> {
    let body = record.body.as_deref().ok_or("the message has no body")?;
    serde_json::from_str(body).map_err(|e| format!("malformed message body: {e}"))
}

/// How many times SQS has delivered this message, counting this time.
pub fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A handler's answer as Lambda takes it: a whole failed batch becomes the invocation's error,
/// so Lambda redelivers every message of it.
pub fn to_lambda(
    answer: Result<SqsBatchResponse, WholeBatchFailed>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    answer.map_err(|e| Box::new(e) as lambda_runtime::Error)
}

/// What a message's handler decided: done (with messages to send on) or retry.
pub type Handled = Result<Vec<Outgoing>, Retry>;

/// Runs `handle` over the batch in order (the FIFO rule of [`process_in_order`]), then sends
/// every message the successful handlers produced, in order, ten per SendMessageBatch. If a send
/// fails, the message that produced it and every later message of the batch are reported as
/// failed, so they are redelivered and send again (SQS drops a resend within five minutes by
/// its deduplication id; after that the next stage drops it as already handled).
pub async fn run_batch<'a, F, Fut>(
    records: &'a [SqsMessage],
    sqs: &aws_sdk_sqs::Client,
    mut handle: F,
) -> Result<SqsBatchResponse, WholeBatchFailed>
where
    F: FnMut(&'a SqsMessage) -> Fut,
    Fut: Future<Output = Handled>,
{
    let outbox: Mutex<Vec<(usize, Outgoing)>> = Mutex::new(Vec::new());
    let mut next_index = 0;
    let response = process_in_order(records, |record| {
        let index = next_index;
        next_index += 1;
        let handled = handle(record);
        let outbox = &outbox;
        async move {
            let outgoing = handled.await?;
            let mut queued = outbox.lock().unwrap_or_else(|e| e.into_inner());
            queued.extend(outgoing.into_iter().map(|o| (index, o)));
            Ok(())
        }
    })
    .await?;
    let outgoing = outbox.into_inner().unwrap_or_else(|e| e.into_inner());
    match send_all(sqs, &outgoing).await {
        Ok(()) => Ok(response),
        Err(SendFailed { source, reason }) => {
            let handled_failures = response.batch_item_failures.len();
            let first_failed_handler = records.len() - handled_failures;
            if source < first_failed_handler {
                tracing::warn!(%reason, "sending on failed; the message and every later one will be retried");
                failures_from(records, source)
            } else {
                Ok(response)
            }
        }
    }
}

/// The first message whose send failed: the index of the record that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailed {
    pub source: usize,
    pub reason: String,
}

/// Sends `(source, message)` pairs in order, grouped ten to a SendMessageBatch per queue run;
/// stops at the first failure.
pub async fn send_all(
    sqs: &aws_sdk_sqs::Client,
    outgoing: &[(usize, Outgoing)],
) -> Result<(), SendFailed> {
    let mut rest = outgoing;
    while let Some((_, first)) = rest.first() {
        // A chunk: up to ten consecutive messages for the same queue.
        let len = rest
            .iter()
            .take(10)
            .take_while(|(_, o)| o.queue_url == first.queue_url)
            .count();
        let (chunk, tail) = rest.split_at(len);
        send_chunk(sqs, chunk).await?;
        rest = tail;
    }
    Ok(())
}

async fn send_chunk(
    sqs: &aws_sdk_sqs::Client,
    chunk: &[(usize, Outgoing)],
) -> Result<(), SendFailed> {
    let Some((first_source, first)) = chunk.first() else {
        return Ok(());
    };
    let fail = |source: usize, reason: String| SendFailed { source, reason };
    let mut entries = Vec::with_capacity(chunk.len());
    for (i, (source, o)) in chunk.iter().enumerate() {
        let entry = SendMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .message_body(&o.body)
            .message_group_id(&o.group_id)
            .message_deduplication_id(&o.dedup_id)
            .build()
            .map_err(|e| fail(*source, e.to_string()))?;
        entries.push(entry);
    }
    let output = sqs
        .send_message_batch()
        .queue_url(&first.queue_url)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| {
            fail(
                *first_source,
                aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
            )
        })?;
    let failed = output
        .failed()
        .iter()
        .filter_map(|f| f.id().parse::<usize>().ok().map(|i| (i, f)))
        .min_by_key(|(i, _)| *i);
    match failed {
        Some((i, f)) => Err(fail(
            chunk.get(i).map_or(*first_source, |(source, _)| *source),
            format!("{}: {}", f.code(), f.message().unwrap_or("no message")),
        )),
        None => Ok(()),
    }
}

/// The message of `record` and the storm it names, if the stage should work on it: the body reads,
/// the storm exists, the message is of its current version, and it is still `queued`. Anything
/// else is dropped with a log line: a redelivery, a stale message, or a body only a bug could
/// write (only ThreadStorm writes these queues; the storm, if any, is still on the sweep index
/// and will be sent again).
pub(crate) async fn queued_storm(
    posts: &PostsStore,
    prefetched: &HashMap<StormId, Storm>,
    record: &SqsMessage,
) -> Result<Option<(StormMessage, Storm)>, Retry> {
    let message: StormMessage = match parse(record) {
        Ok(m) => m,
        Err(why) => {
            tracing::error!(%why, "unreadable message dropped");
            return Ok(None);
        }
    };
    let storm = match prefetched.get(&message.storm_id) {
        Some(storm) => Some(storm.clone()),
        // Not in the batch read (absent, or asked for with another part count): read it alone.
        None => posts
            .load(&message.storm_id)
            .await
            .map_err(|e| Retry(e.to_string()))?,
    };
    let Some(storm) = storm else {
        tracing::warn!(storm = %message.storm_id, "message for a storm that does not exist dropped");
        return Ok(None);
    };
    if storm.version != message.version || storm.status.name() != StatusName::Queued {
        tracing::info!(
            storm = %storm.id, status = %storm.status.name(), version = storm.version,
            message_version = message.version, "nothing to do: already handled or superseded"
        );
        return Ok(None);
    }
    Ok(Some((message, storm)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_grouped_by_account_and_deduplicated_by_storm_stage_and_version() {
        let message = StormMessage {
            storm_id: StormId::parse("storm_0190c7d8a1b27c3d8e9f001122334455").unwrap(),
            account_id: AccountId::parse("17841405793187218").unwrap(),
            version: 2,
            parts: 3,
        };
        let out = message.to(Stage::Gate, "https://q");
        assert_eq!(out.group_id, "17841405793187218");
        assert_eq!(
            out.dedup_id,
            "storm_0190c7d8a1b27c3d8e9f001122334455#gate#2"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out.body).unwrap(),
            serde_json::json!({"storm_id":"storm_0190c7d8a1b27c3d8e9f001122334455","account_id":"17841405793187218","version":2,"parts":3})
        );
    }

    #[test]
    fn receive_count_defaults_to_first_delivery() {
        let mut m = SqsMessage::default();
        assert_eq!(receive_count(&m), 1);
        m.attributes
            .insert("ApproximateReceiveCount".into(), "4".into());
        assert_eq!(receive_count(&m), 4);
    }
}
