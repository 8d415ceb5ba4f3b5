//! Partial batch responses for SQS FIFO consumers, with the FIFO rule: process the batch in order,
//! stop at the first failure, and report that message and every later one as failed, so nothing
//! after a failure runs ahead of it.
//!
//! Returned as `{"batchItemFailures":[{"itemIdentifier":"<messageId>"}]}` at the top level of the
//! response; the event source mapping then deletes only the messages that are not listed.

use std::future::Future;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsMessage};

/// A message could not be processed now; it will be redelivered. The reason is logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Retry(pub String);

/// The batch cannot be answered message by message (a failed message carries no id): the whole
/// batch is failed by returning an error from the handler, which redelivers all of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a failed message has no messageId; the whole batch is retried")]
pub struct WholeBatchFailed;

/// Runs `handle` on each record in order and builds the partial batch response.
pub async fn process_in_order<'a, F, Fut>(
    records: &'a [SqsMessage],
    mut handle: F,
) -> Result<SqsBatchResponse, WholeBatchFailed>
where
    F: FnMut(&'a SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), Retry>>,
{
    let mut response = SqsBatchResponse::default();
    let mut failed_at = None;
    for (index, record) in records.iter().enumerate() {
        if let Err(Retry(reason)) = handle(record).await {
            tracing::warn!(message_id = record.message_id.as_deref().unwrap_or(""), %reason, "message failed; it and the rest of the batch will be retried");
            failed_at = Some(index);
            break;
        }
    }
    if let Some(first) = failed_at {
        response = failures_from(records, first)?;
    }
    Ok(response)
}

/// The response that fails `records[first..]` and nothing before: used when a step after the
/// handlers (a batched send) fails for the message at `first`.
pub fn failures_from(
    records: &[SqsMessage],
    first: usize,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    let mut response = SqsBatchResponse::default();
    for record in records.iter().skip(first) {
        match record.message_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => response.add_failure(id),
            None => return Err(WholeBatchFailed),
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn message(id: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.to_owned());
        m.body = Some(id.to_owned());
        m
    }

    #[tokio::test]
    async fn case_q2_a_failure_fails_itself_and_everything_after_it() {
        let batch = [message("m1"), message("m2"), message("m3")];
        let touched = RefCell::new(Vec::new());
        let response = process_in_order(&batch, |m| {
            let id = m.message_id.clone().unwrap_or_default();
            touched.borrow_mut().push(id.clone());
            async move {
                if id == "m2" {
                    Err(Retry("publish answered 500".into()))
                } else {
                    Ok(())
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(*touched.borrow(), ["m1", "m2"], "m3 is never touched");
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({"batchItemFailures":[{"itemIdentifier":"m2"},{"itemIdentifier":"m3"}]})
        );
    }

    #[tokio::test]
    async fn a_clean_batch_reports_no_failures() {
        let batch = [message("m1"), message("m2")];
        let response = process_in_order(&batch, |_| async { Ok(()) })
            .await
            .unwrap();
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({"batchItemFailures": []})
        );
    }

    #[tokio::test]
    async fn a_failed_message_without_an_id_fails_the_whole_batch() {
        let mut nameless = message("x");
        nameless.message_id = None;
        let batch = [message("m1"), nameless];
        let result = process_in_order(&batch, |m| {
            let fail = m.message_id.is_none();
            async move {
                if fail {
                    Err(Retry("bad".into()))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(result, Err(WholeBatchFailed));
    }
}
