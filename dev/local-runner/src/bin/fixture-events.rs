//! Test fixture: a function built exactly like the real ones (lambda_runtime), whose behaviour the
//! tests steer through its environment and its events.
//!
//! - `FIXTURE_INIT=error` posts `/runtime/init/error` and exits; `FIXTURE_INIT=exit` exits with
//!   status 1 before asking for work (what a configuration error does in a real function).
//! - An SQS batch: each message body is a command — `ok`, `fail` (reported in
//!   `batchItemFailures`), `fail-once`, `panic-once`, `exit-once`, `sleep-once:<ms>` (the `-once`
//!   ones only on the first receive), `malformed` (an empty itemIdentifier). Once a message fails,
//!   every later message of its group is reported too (FIFO order, skip-group-on-error).
//! - An API Gateway event: answers 200 with the raw event as the body (`/malformed` answers a
//!   response without a statusCode).
//! - A scheduled event: answers the event itself.
//! - Anything else: `{"action": "panic" | "exit" | "sleep", "ms": N}` or echoes the event.

use std::collections::HashSet;
use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

async fn report_init_error() {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let _ = reqwest::Client::new()
        .post(format!("http://{api}/2018-06-01/runtime/init/error"))
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .json(&json!({"errorType": "FixtureInitError", "errorMessage": "configured to fail init"}))
        .send()
        .await;
}

async fn sqs(records: &[Value]) -> Result<Value, Error> {
    let mut failures = Vec::new();
    let mut failed_groups: HashSet<String> = HashSet::new();
    for record in records {
        let id = record["messageId"].as_str().unwrap_or_default().to_owned();
        let group = record["attributes"]["MessageGroupId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let first = record["attributes"]["ApproximateReceiveCount"].as_str() == Some("1");
        if failed_groups.contains(&group) {
            failures.push(json!({"itemIdentifier": id}));
            continue;
        }
        let body = record["body"].as_str().unwrap_or_default();
        let failed = match body {
            "fail" => true,
            "fail-once" => first,
            "panic-once" if first => panic!("fixture asked to panic"),
            "exit-once" if first => std::process::exit(3),
            "malformed" => return Ok(json!({"batchItemFailures": [{"itemIdentifier": ""}]})),
            other => {
                if let (Some(ms), true) = (other.strip_prefix("sleep-once:"), first) {
                    let ms: u64 = ms.parse().unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                false
            }
        };
        if failed {
            failures.push(json!({"itemIdentifier": id}));
            failed_groups.insert(group);
        }
    }
    Ok(json!({ "batchItemFailures": failures }))
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let payload = event.payload;
    if let Some(records) = payload.get("Records").and_then(Value::as_array) {
        return sqs(records).await;
    }
    if payload.get("httpMethod").is_some() {
        if payload["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("/malformed"))
        {
            return Ok(json!({"body": "no status code"}));
        }
        return Ok(json!({
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": payload.to_string(),
        }));
    }
    if payload.get("detail-type").is_some() {
        return Ok(payload);
    }
    match payload.get("action").and_then(Value::as_str) {
        Some("panic") => panic!("fixture asked to panic"),
        Some("exit") => std::process::exit(3),
        Some("sleep") => {
            let ms = payload.get("ms").and_then(Value::as_u64).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json!({"slept_ms": ms}))
        }
        Some("env") => Ok(json!({
            "env": std::env::vars().collect::<std::collections::BTreeMap<_, _>>(),
            "deadline_ms": event.context.deadline,
            "request_id": event.context.request_id,
            "function_arn": event.context.invoked_function_arn,
            "trace_id": event.context.xray_trace_id,
        })),
        _ => Ok(payload),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    match std::env::var("FIXTURE_INIT").as_deref() {
        Ok("error") => {
            report_init_error().await;
            std::process::exit(1);
        }
        Ok("exit") => {
            eprintln!("fixture: configuration: FIXTURE_INIT says exit");
            std::process::exit(1);
        }
        _ => {}
    }
    run(service_fn(handle)).await
}
