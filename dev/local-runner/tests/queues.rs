//! SQS event source mappings against real FIFO queues in moto: partial batch responses delete
//! exactly the messages not reported, failures come back after the visibility timeout, a poison
//! message reaches the dead-letter queue, and errors, panics, timeouts and crashes retry the batch.

mod common;

use std::time::Duration;

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use common::{PATIENCE, deliveries};
use local_runner::{OutcomeKind, Runner, StartCause, Trigger};

/// A consumer of a FIFO queue (visibility 1 s, two receives before the DLQ), Timeout 1 s.
fn queue_template() -> String {
    let consumer = common::function(
        "ConsumerFunction",
        "fixture-events",
        r#"      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: 10
            FunctionResponseTypes:
              - ReportBatchItemFailures"#,
    );
    common::template(
        1,
        &format!(
            r#"{consumer}
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${{AWS::StackName}}-work.fifo"
      FifoQueue: true
      VisibilityTimeout: 1
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDeadLetterQueue.Arn
        maxReceiveCount: 2

  WorkDeadLetterQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${{AWS::StackName}}-work-dlq.fifo"
      FifoQueue: true
"#
        ),
    )
}

struct Fixture {
    runner: Runner,
    _file: common::TemplateFile,
    sqs: aws_sdk_sqs::Client,
    queue: String,
    dlq: String,
}

async fn fixture() -> Fixture {
    let (options, file) = common::options(&queue_template());
    let runner = common::start(options).await;
    let sqs = aws_sdk_sqs::Client::new(&runner.sdk_config());
    let queue = runner.stack().reference("WorkQueue").unwrap().to_owned();
    let dlq = runner
        .stack()
        .reference("WorkDeadLetterQueue")
        .unwrap()
        .to_owned();
    Fixture {
        runner,
        _file: file,
        sqs,
        queue,
        dlq,
    }
}

impl Fixture {
    /// Sends `(group, body)` messages in one batch; returns their message ids in order.
    async fn send(&self, messages: &[(&str, &str)]) -> Vec<String> {
        let entries: Vec<SendMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .map(|(i, (group, body))| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(*body)
                    .message_group_id(*group)
                    .message_deduplication_id(format!("{group}-{i}-{body}"))
                    .build()
                    .unwrap()
            })
            .collect();
        let sent = self
            .sqs
            .send_message_batch()
            .queue_url(&self.queue)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert!(sent.failed().is_empty(), "{:?}", sent.failed());
        let mut ids: Vec<(usize, String)> = sent
            .successful()
            .iter()
            .map(|s| (s.id().parse().unwrap(), s.message_id().to_owned()))
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Waits until every one of `ids` has been deleted.
    async fn wait_deleted(&self, ids: &[String]) {
        let done = self
            .runner
            .wait_for_invocations(PATIENCE, |log| {
                ids.iter().all(|id| deliveries(log, id).iter().any(|d| d.1))
            })
            .await;
        assert!(done, "not all deleted: {:#?}", self.runner.invocations());
    }

    async fn queue_is_empty(&self) -> bool {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let count = |name: QueueAttributeName| {
            attributes
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        };
        count(QueueAttributeName::ApproximateNumberOfMessages) == 0
            && count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible) == 0
    }
}

#[tokio::test]
async fn partial_failures_redeliver_exactly_the_reported_messages() {
    let f = fixture().await;
    let ids = f
        .send(&[
            ("g1", "ok"),
            ("g2", "fail-once"),
            ("g3", "ok"),
            ("g4", "fail-once"),
        ])
        .await;
    f.wait_deleted(&ids).await;
    // Longer than the visibility timeout: anything left behind would have come back by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = f.runner.invocations();

    for ok in [&ids[0], &ids[2]] {
        let seen = deliveries(&log, ok);
        assert_eq!(seen.len(), 1, "delivered once and deleted: {seen:?}");
        assert_eq!((seen[0].0, seen[0].1), (1, true));
    }
    for failed in [&ids[1], &ids[3]] {
        let seen = deliveries(&log, failed);
        assert_eq!(seen.len(), 2, "redelivered once: {seen:?}");
        assert_eq!((seen[0].0, seen[0].1), (1, false));
        assert_eq!((seen[1].0, seen[1].1), (2, true));
    }
    // The batch event had Lambda's shape (the fixture read the FIFO attributes from it).
    assert!(log.iter().all(|r| r.kind == OutcomeKind::Ok));
    assert!(f.queue_is_empty().await);
    f.runner.shutdown().await;
}

#[tokio::test]
async fn a_poison_message_reaches_the_dead_letter_queue() {
    let f = fixture().await;
    let ids = f.send(&[("p", "fail")]).await;
    let mut in_dlq = None;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while in_dlq.is_none() && tokio::time::Instant::now() < deadline {
        let received = f
            .sqs
            .receive_message()
            .queue_url(&f.dlq)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        in_dlq = received.messages().first().cloned();
    }
    let message = in_dlq.expect("the poison message reached the DLQ");
    assert_eq!(message.body(), Some("fail"));
    let seen = deliveries(&f.runner.invocations(), &ids[0]);
    assert_eq!(
        seen.iter().map(|d| (d.0, d.1)).collect::<Vec<_>>(),
        vec![(1, false), (2, false)],
        "received maxReceiveCount times, never deleted"
    );
    f.runner.shutdown().await;
}

#[tokio::test]
async fn a_panic_is_a_function_error_and_the_batch_is_retried() {
    let f = fixture().await;
    let ids = f.send(&[("g", "panic-once")]).await;
    f.wait_deleted(&ids).await;
    let log = f.runner.invocations();
    let first = common::batches_with(&log, &ids[0])[0];
    assert_eq!(first.kind, OutcomeKind::FunctionError);
    let error = first.error.as_ref().unwrap();
    assert!(
        error.error_message.contains("fixture asked to panic"),
        "{error:?}"
    );
    let seen = deliveries(&log, &ids[0]);
    assert_eq!(
        seen.iter().map(|d| (d.0, d.1)).collect::<Vec<_>>(),
        vec![(1, false), (2, true)]
    );
    assert!(
        seen[0]
            .2
            .as_deref()
            .unwrap_or("")
            .contains("function error")
    );
    // The runtime caught the panic: the same process went on.
    assert_eq!(f.runner.cold_starts().len(), 1);
    f.runner.shutdown().await;
}

#[tokio::test]
async fn a_timeout_kills_the_process_and_the_batch_is_retried() {
    let f = fixture().await;
    let ids = f.send(&[("g", "sleep-once:3000")]).await;
    f.wait_deleted(&ids).await;
    let log = f.runner.invocations();
    let first = common::batches_with(&log, &ids[0])[0];
    assert_eq!(first.kind, OutcomeKind::TimedOut);
    let error = first.error.as_ref().unwrap();
    assert_eq!(error.error_type, "Sandbox.Timedout");
    assert!(
        error
            .error_message
            .ends_with("Task timed out after 1.00 seconds"),
        "{error:?}"
    );
    assert!(first.duration >= Duration::from_secs(1) && first.duration < Duration::from_secs(3));
    let causes: Vec<StartCause> = f.runner.cold_starts().iter().map(|c| c.cause).collect();
    assert_eq!(causes, vec![StartCause::First, StartCause::AfterTimeout]);
    assert_eq!(
        deliveries(&log, &ids[0])
            .iter()
            .map(|d| (d.0, d.1))
            .collect::<Vec<_>>(),
        vec![(1, false), (2, true)]
    );
    f.runner.shutdown().await;
}

#[tokio::test]
async fn a_crash_is_an_exit_error_the_process_restarts_and_the_batch_is_retried() {
    let f = fixture().await;
    let ids = f.send(&[("g", "exit-once")]).await;
    f.wait_deleted(&ids).await;
    let log = f.runner.invocations();
    let first = common::batches_with(&log, &ids[0])[0];
    assert_eq!(first.kind, OutcomeKind::Crashed);
    let error = first.error.as_ref().unwrap();
    assert_eq!(error.error_type, "Runtime.ExitError");
    assert!(
        error
            .error_message
            .ends_with("Error: Runtime exited with error: exit status 3"),
        "{error:?}"
    );
    let causes: Vec<StartCause> = f.runner.cold_starts().iter().map(|c| c.cause).collect();
    assert_eq!(causes, vec![StartCause::First, StartCause::AfterCrash]);
    f.runner.shutdown().await;
}

#[tokio::test]
async fn a_malformed_batch_response_fails_the_whole_batch() {
    let f = fixture().await;
    let ids = f.send(&[("m", "malformed"), ("n", "ok")]).await;
    // Wait for the ok message to be deleted (in a batch of its own, or after the batch retried).
    let _ = f
        .runner
        .wait_for_invocations(PATIENCE, |log| deliveries(log, &ids[0]).len() >= 2)
        .await;
    let log = f.runner.invocations();
    let with_malformed = common::batches_with(&log, &ids[0]);
    assert!(with_malformed.len() >= 2, "{log:#?}");
    for record in with_malformed {
        let Trigger::Sqs(batch) = &record.trigger else {
            unreachable!()
        };
        assert!(
            batch.messages.iter().all(|m| !m.deleted),
            "nothing of a malformed batch is deleted: {batch:?}"
        );
        assert!(
            batch
                .retry_reason
                .as_deref()
                .is_some_and(|r| r.contains("itemIdentifier")),
            "{batch:?}"
        );
    }
    f.runner.shutdown().await;
}
