//! SQS event source mappings: one poller per SQS event of a function, long-polling its queue in
//! the local AWS and invoking the function with batches shaped exactly as Lambda sends them.
//!
//! After the invocation, as Lambda does: success deletes the whole batch; with
//! `ReportBatchItemFailures`, only the messages not listed in `batchItemFailures` are deleted, and
//! a malformed response or an empty/unknown `itemIdentifier` fails the whole batch; a function
//! error, timeout or crash deletes nothing. Messages left behind become visible again after the
//! queue's visibility timeout (never changed here), and the queue itself moves a message to its
//! dead-letter queue after `maxReceiveCount` receives. Ordering within a FIFO message group comes
//! from the queue, which hands out nothing more of a group while one of its messages is in flight.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::functions::SqsEventDef;
use crate::invocation::{BatchMessage, BatchRecord, Journal, Outcome, Trigger};
use crate::process::{FunctionHandle, FunctionState};

/// Long-poll wait: short enough to notice a stop quickly, long enough not to spin.
const WAIT_SECONDS: i32 = 2;
/// FIFO event source mappings take at most 10 messages a batch.
const MAX_BATCH: u32 = 10;

/// What the event source mapping does with a batch after the invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    DeleteAll,
    /// Delete all but these message ids.
    DeleteAllBut(HashSet<String>),
    /// Delete nothing, and why.
    DeleteNone(String),
}

/// Lambda's reading of an invocation's outcome for a batch with `message_ids`.
pub fn judge(
    outcome: &Outcome,
    report_batch_item_failures: bool,
    message_ids: &[String],
) -> Verdict {
    let payload = match outcome {
        Outcome::Response(payload) => payload,
        Outcome::FunctionError(e) => {
            return Verdict::DeleteNone(format!("function error {}", e.error_type));
        }
        Outcome::TimedOut(_) => return Verdict::DeleteNone("timed out".into()),
        Outcome::Crashed(_) => return Verdict::DeleteNone("runtime exited".into()),
        Outcome::InitFailed(_) => return Verdict::DeleteNone("init failed".into()),
    };
    if !report_batch_item_failures {
        return Verdict::DeleteAll;
    }
    let malformed = |why: &str| Verdict::DeleteNone(format!("malformed batch response: {why}"));
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Verdict::DeleteAll;
    }
    let value: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(_) => return malformed("not JSON"),
    };
    let object = match value {
        Value::Null => return Verdict::DeleteAll,
        Value::Object(object) => object,
        _ => return malformed("not a JSON object"),
    };
    let failures = match object.get("batchItemFailures") {
        None | Some(Value::Null) => return Verdict::DeleteAll,
        Some(Value::Array(failures)) => failures,
        Some(_) => return malformed("batchItemFailures is not a list"),
    };
    let known: HashSet<&str> = message_ids.iter().map(String::as_str).collect();
    let mut failed = HashSet::new();
    for failure in failures {
        match failure.get("itemIdentifier") {
            Some(Value::String(id)) if !id.is_empty() && known.contains(id.as_str()) => {
                failed.insert(id.clone());
            }
            Some(Value::String(id)) if !id.is_empty() => {
                return malformed(&format!("itemIdentifier {id:?} is not in the batch"));
            }
            _ => return malformed("an itemIdentifier is missing, empty or not a string"),
        }
    }
    if failed.is_empty() {
        Verdict::DeleteAll
    } else {
        Verdict::DeleteAllBut(failed)
    }
}

/// The SQS event Lambda sends for `messages`.
pub fn sqs_event(messages: &[Message], queue_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: Map<String, Value> = m
                .attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                .collect();
            let message_attributes: Map<String, Value> = m
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(name, a)| {
                    let value = json!({
                        "stringValue": a.string_value(),
                        "binaryValue": a.binary_value().map(|b| BASE64.encode(b.as_ref())),
                        "stringListValues": a.string_list_values(),
                        "binaryListValues": a.binary_list_values().iter()
                            .map(|b| BASE64.encode(b.as_ref())).collect::<Vec<_>>(),
                        "dataType": a.data_type(),
                    });
                    (name.clone(), value)
                })
                .collect();
            let mut record = json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body().unwrap_or(""),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            });
            if let (Some(md5), Some(object)) =
                (m.md5_of_message_attributes(), record.as_object_mut())
            {
                object.insert(
                    "md5OfMessageAttributes".into(),
                    Value::String(md5.to_owned()),
                );
            }
            record
        })
        .collect();
    json!({ "Records": records })
}

/// Polls one queue for one function until the runner stops.
pub(crate) struct Poller {
    pub mapping: SqsEventDef,
    pub function: FunctionHandle,
    pub sqs: Client,
    pub region: String,
    pub journal: Journal,
    pub shutdown: watch::Receiver<bool>,
}

impl Poller {
    pub async fn run(self) {
        let name = self.function.def().logical_id.clone();
        let mut shutdown = self.shutdown.clone();
        let mut last_error: Option<String> = None;
        loop {
            // Never take messages the function cannot be given yet.
            let state = tokio::select! {
                s = self.function.settled() => s,
                () = stopping(&mut shutdown) => return,
            };
            match state {
                FunctionState::Ready => {}
                FunctionState::Failed(_) => {
                    eprintln!(
                        "local-runner: {name} failed to initialise; its mapping from {} is stopped \
                         (the messages stay in the queue)",
                        self.mapping.queue
                    );
                    return;
                }
                FunctionState::Stopped => return,
                FunctionState::Starting => continue,
            }
            let received = tokio::select! {
                r = self.receive() => r,
                () = stopping(&mut shutdown) => return,
            };
            let messages = match received {
                Ok(messages) => {
                    last_error = None;
                    messages
                }
                Err(error) => {
                    if last_error.as_deref() != Some(error.as_str()) {
                        eprintln!(
                            "local-runner: {name} polling {}: {error}",
                            self.mapping.queue
                        );
                    }
                    last_error = Some(error);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = stopping(&mut shutdown) => return,
                    }
                }
            };
            if messages.is_empty() {
                continue;
            }
            self.deliver(messages).await;
        }
    }

    async fn receive(&self) -> Result<Vec<Message>, String> {
        let output = self
            .sqs
            .receive_message()
            .queue_url(&self.mapping.queue_url)
            .max_number_of_messages(self.mapping.batch_size.clamp(1, MAX_BATCH) as i32)
            .wait_time_seconds(WAIT_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        Ok(output.messages.unwrap_or_default())
    }

    async fn deliver(&self, messages: Vec<Message>) {
        let event = sqs_event(&messages, &self.mapping.queue_arn, &self.region);
        let event = serde_json::to_vec(&event).unwrap_or_default();
        let Ok(invocation) = self.function.invoke(event).await else {
            return; // the runner is stopping; the messages come back after their visibility timeout
        };
        let ids: Vec<String> = messages
            .iter()
            .map(|m| m.message_id().unwrap_or_default().to_owned())
            .collect();
        let verdict = judge(
            &invocation.outcome,
            self.mapping.report_batch_item_failures,
            &ids,
        );
        let keep: HashSet<String> = match &verdict {
            Verdict::DeleteAll => HashSet::new(),
            Verdict::DeleteAllBut(failed) => failed.clone(),
            Verdict::DeleteNone(_) => ids.iter().cloned().collect(),
        };
        let to_delete: Vec<&Message> = messages
            .iter()
            .filter(|m| !keep.contains(m.message_id().unwrap_or_default()))
            .collect();
        let not_deleted = self.delete(&to_delete).await;

        let group = MessageSystemAttributeName::MessageGroupId;
        let count = MessageSystemAttributeName::ApproximateReceiveCount;
        let record = BatchRecord {
            queue: self.mapping.queue.clone(),
            messages: messages
                .iter()
                .map(|m| {
                    let id = m.message_id().unwrap_or_default().to_owned();
                    let attribute = |name: &MessageSystemAttributeName| {
                        m.attributes().and_then(|a| a.get(name)).cloned()
                    };
                    BatchMessage {
                        deleted: !keep.contains(&id) && !not_deleted.contains(&id),
                        group_id: attribute(&group),
                        receive_count: attribute(&count).and_then(|c| c.parse().ok()).unwrap_or(0),
                        message_id: id,
                    }
                })
                .collect(),
            retry_reason: match verdict {
                Verdict::DeleteNone(reason) => Some(reason),
                _ => None,
            },
        };
        self.journal.record(&invocation, Trigger::Sqs(record));
    }

    /// Deletes `messages`; returns the ids that could not be deleted.
    async fn delete(&self, messages: &[&Message]) -> HashSet<String> {
        let mut failed = HashSet::new();
        for chunk in messages.chunks(MAX_BATCH as usize) {
            let by_entry: HashMap<String, String> = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| (i.to_string(), m.message_id().unwrap_or_default().to_owned()))
                .collect();
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                        .ok()
                })
                .collect();
            let result = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.mapping.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match result {
                Ok(output) => {
                    for entry in output.failed() {
                        eprintln!(
                            "local-runner: deleting from {}: {} {}",
                            self.mapping.queue,
                            entry.code(),
                            entry.message().unwrap_or_default()
                        );
                        if let Some(id) = by_entry.get(entry.id()) {
                            failed.insert(id.clone());
                        }
                    }
                }
                Err(e) => {
                    eprintln!(
                        "local-runner: deleting from {}: {}",
                        self.mapping.queue,
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    );
                    failed.extend(by_entry.into_values());
                }
            }
        }
        failed
    }
}

async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invocation::ErrorBody;

    fn ids() -> Vec<String> {
        vec!["m1".into(), "m2".into(), "m3".into()]
    }

    fn ok(body: &str) -> Outcome {
        Outcome::Response(body.as_bytes().to_vec())
    }

    #[test]
    fn empty_or_null_failures_delete_everything() {
        for body in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":[]}"#,
            r#"{"batchItemFailures":null}"#,
            // The trap: a proxy-shaped answer has no batchItemFailures, so Lambda deletes all.
            r#"{"statusCode":500,"body":"failed"}"#,
        ] {
            assert_eq!(judge(&ok(body), true, &ids()), Verdict::DeleteAll, "{body}");
        }
    }

    #[test]
    fn listed_failures_are_kept() {
        let verdict = judge(
            &ok(r#"{"batchItemFailures":[{"itemIdentifier":"m2"},{"itemIdentifier":"m3"}]}"#),
            true,
            &ids(),
        );
        assert_eq!(
            verdict,
            Verdict::DeleteAllBut(["m2".to_owned(), "m3".to_owned()].into())
        );
    }

    #[test]
    fn malformed_answers_fail_the_whole_batch() {
        for body in [
            "not json",
            "[]",
            r#""m1""#,
            r#"{"batchItemFailures":{}}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"id":"m1"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"m9"}]}"#,
        ] {
            assert!(
                matches!(judge(&ok(body), true, &ids()), Verdict::DeleteNone(_)),
                "{body}"
            );
        }
    }

    #[test]
    fn without_report_batch_item_failures_any_answer_deletes_everything() {
        let body = r#"{"batchItemFailures":[{"itemIdentifier":"m1"}]}"#;
        assert_eq!(judge(&ok(body), false, &ids()), Verdict::DeleteAll);
    }

    #[test]
    fn errors_delete_nothing() {
        let error = ErrorBody::new("X", "y");
        for outcome in [
            Outcome::FunctionError(error.clone()),
            Outcome::TimedOut(error.clone()),
            Outcome::Crashed(error.clone()),
            Outcome::InitFailed(error),
        ] {
            assert!(matches!(
                judge(&outcome, true, &ids()),
                Verdict::DeleteNone(_)
            ));
            assert!(matches!(
                judge(&outcome, false, &ids()),
                Verdict::DeleteNone(_)
            ));
        }
    }

    #[test]
    fn events_have_lambdas_shape() {
        let message = Message::builder()
            .message_id("m1")
            .receipt_handle("rh")
            .body("hello")
            .md5_of_body("5d41402abc4b2a76b9719d911017c592")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
            .attributes(MessageSystemAttributeName::MessageGroupId, "acct-1")
            .message_attributes(
                "kind",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("post")
                    .build()
                    .unwrap(),
            )
            .build();
        let event = sqs_event(
            &[message],
            "arn:aws:sqs:us-east-1:123456789012:q.fifo",
            "us-east-1",
        );
        let record = &event["Records"][0];
        assert_eq!(record["messageId"], "m1");
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(
            record["eventSourceARN"],
            "arn:aws:sqs:us-east-1:123456789012:q.fifo"
        );
        assert_eq!(record["attributes"]["MessageGroupId"], "acct-1");
        assert_eq!(record["messageAttributes"]["kind"]["stringValue"], "post");
        let typed: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(event).unwrap();
        assert_eq!(typed.records[0].body.as_deref(), Some("hello"));
    }
}
