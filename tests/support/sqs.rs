//! The part of Lambda's SQS event source mapping the stage tests need: receive a real batch from
//! a real queue, hand it to a handler as Lambda would, then delete what succeeded and make what
//! failed visible again (at once, instead of after the visibility timeout, to keep tests fast).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsMessage};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use threadstorm::pipeline::fifo::WholeBatchFailed;

/// Receives up to ten messages (FIFO: in group order), as Lambda's poller does.
pub async fn receive(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<SqsMessage> {
    let output = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .visibility_timeout(60)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .expect("ReceiveMessage");
    output
        .messages()
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id().map(str::to_owned);
            record.receipt_handle = m.receipt_handle().map(str::to_owned);
            record.body = m.body().map(str::to_owned);
            record.event_source = Some("aws:sqs".into());
            if let Some(attributes) = m.attributes() {
                for (k, v) in attributes {
                    record.attributes.insert(k.as_str().to_owned(), v.clone());
                }
            }
            record
        })
        .collect()
}

/// Applies a handler's answer: an error redelivers the whole batch; otherwise the listed
/// failures are redelivered and everything else is deleted.
pub async fn settle(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    records: &[SqsMessage],
    answer: &Result<SqsBatchResponse, WholeBatchFailed>,
) {
    let failed: Vec<String> = match answer {
        Err(_) => records
            .iter()
            .filter_map(|r| r.message_id.clone())
            .collect(),
        Ok(response) => response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect(),
    };
    for record in records {
        let (Some(id), Some(handle)) = (&record.message_id, &record.receipt_handle) else {
            continue;
        };
        if failed.contains(id) {
            sqs.change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await
                .expect("ChangeMessageVisibility");
        } else {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .expect("DeleteMessage");
        }
    }
}

/// Messages waiting in `queue_url` (visible and in flight).
pub async fn depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName;
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let attrs = out.attributes().cloned().unwrap_or_default();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|k| attrs.get(k).and_then(|v| v.parse::<u64>().ok()))
    .sum()
}
