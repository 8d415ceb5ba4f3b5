//! The sample events of `events/`, replayed against a local stack: the manifest that says which
//! function each file is for and what it must answer, the fixtures a stack is seeded with (a
//! connected super_admin, a second user, storms in the statuses the pipeline events need) and the
//! `{{placeholder}}` substitution that puts their ids into the events.
//!
//! `local-runner invoke` and the `events` test both use it, so what the README promises for one
//! file is what the test checks for all of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::binaries::Binaries;
use crate::demo::EmulatorWiring;
use crate::demo::client::{ApiClient, ClientError};
use crate::invocation::{Invocation, Outcome};
use crate::process::FunctionLogs;
use crate::runner::{Runner, RunnerError, RunnerOptions};

/// The Threads user the fixtures connect first; ADMIN_THREADS_USER_IDS makes them super_admin.
pub const ADMIN_THREADS_USER: &str = "17841405793187218";
/// The second Threads user: a plain `user`, the target of role changes, revocation and Meta's
/// deauthorize and data-deletion callbacks.
pub const OTHER_THREADS_USER: &str = "90071992547409931";

/// The webhook verify token the sample handshake sends (the stack's secret is set to it).
pub const SAMPLE_VERIFY_TOKEN: &str = "sampleVerifyToken0123456789abcdefghijklm";

/// The version id the sample rotation events rotate in.
pub const SAMPLE_ROTATION_TOKEN: &str = "6b1a6e7e-3c1f-4d1e-9a55-0c7f6f0e2b11";

/// `events/` at the workspace root.
pub fn events_dir() -> PathBuf {
    local_stack::Template::workspace_path()
        .parent()
        .map(|p| p.join("events"))
        .unwrap_or_else(|| PathBuf::from("events"))
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("seeding the stack: {0}")]
    Seed(String),
}

fn file_err(path: &Path, message: impl std::fmt::Display) -> EventsError {
    EventsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// One row of `events/manifest.json`, in the order the rows are replayed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub file: String,
    /// The function's logical id in template.yaml.
    pub function: String,
    pub expect: Expect,
    /// Captures from the answer's JSON body, as `placeholder` → field name, for later events.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
}

/// What an event must produce.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Expect {
    /// An HTTP function's answer with this status code.
    Status(u16),
    /// An SQS consumer's partial batch response with this many failed messages.
    BatchItemFailures(usize),
    /// A schedule or rotation function that returns without an error.
    Success,
}

/// `events/manifest.json`.
pub fn manifest(dir: &Path) -> Result<Vec<Entry>, EventsError> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| file_err(&path, e))?;
    serde_json::from_str(&text).map_err(|e| file_err(&path, e))
}

/// Reads `file` and puts `values` into its `{{placeholders}}`; an unknown one is an error.
pub fn load(path: &Path, values: &BTreeMap<String, String>) -> Result<Value, EventsError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
    let filled = substitute(&text, values).map_err(|e| file_err(path, e))?;
    serde_json::from_str(&filled).map_err(|e| file_err(path, e))
}

/// `text` with every `{{name}}` replaced by `values[name]`.
pub fn substitute(text: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "an unclosed {{ placeholder".to_owned())?;
        let name = &after[..end];
        let value = values
            .get(name)
            .ok_or_else(|| format!("no value for the placeholder {{{{{name}}}}}"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `invocation` is what `expect` asks for; otherwise what it was instead.
pub fn check(invocation: &Invocation, expect: &Expect) -> Result<(), String> {
    let answer = match &invocation.outcome {
        Outcome::Response(_) => invocation.json().unwrap_or(Value::Null),
        other => return Err(format!("the function failed: {other:?}")),
    };
    let ok = match expect {
        Expect::Status(status) => answer["statusCode"].as_u64() == Some(u64::from(*status)),
        Expect::BatchItemFailures(n) => answer["batchItemFailures"]
            .as_array()
            .is_some_and(|f| f.len() == *n),
        Expect::Success => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {expect:?}, got {answer}"))
    }
}

/// The body of an HTTP function's answer as JSON (Null when it is not JSON).
pub fn body_json(invocation: &Invocation) -> Value {
    let answer = invocation.json().unwrap_or(Value::Null);
    answer["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null)
}

/// A local stack with the Threads emulator, seeded for the sample events.
pub struct EventStack {
    pub runner: Runner,
    pub emulator: threads_emulator::Emulator,
    /// Placeholder values: ids of what was seeded, sessions, physical resource names.
    pub values: BTreeMap<String, String>,
}

impl EventStack {
    /// Starts every function (queues not polled, schedules not fired: each runs only when an
    /// event is invoked) with the emulator wired in, on API port `port`, and seeds it.
    pub async fn start(
        port: u16,
        binaries: Binaries,
        function_logs: FunctionLogs,
    ) -> Result<EventStack, EventsError> {
        let wiring = EmulatorWiring::start(port, "live")
            .await
            .map_err(RunnerError::Io)?;
        let mut parameters = wiring.parameters;
        parameters.insert("AdminThreadsUserIds".into(), ADMIN_THREADS_USER.into());
        let mut secret_values = wiring.secret_values;
        secret_values.insert(
            "WebhookVerifyTokenSecret".into(),
            SAMPLE_VERIFY_TOKEN.into(),
        );
        let runner = Runner::start(RunnerOptions {
            binaries,
            threads_url: Some(wiring.emulator.base_url()),
            stack_name: Some(format!("threadstorm-events-{}-{port}", std::process::id())),
            parameters,
            secret_values,
            api_port: port,
            run_schedules: false,
            run_mappings: false,
            function_logs,
            log_invocations: false,
            ..RunnerOptions::default()
        })
        .await?;
        let mut stack = EventStack {
            runner,
            emulator: wiring.emulator,
            values: BTreeMap::new(),
        };
        stack.seed().await?;
        Ok(stack)
    }

    /// Connects both users through OAuth and creates the storms the events name.
    async fn seed(&mut self) -> Result<(), EventsError> {
        let api_url = self
            .runner
            .api_url()
            .ok_or_else(|| EventsError::Seed("the runner serves no API".into()))?
            .replacen("127.0.0.1", "localhost", 1);
        let api = ApiClient::new(&api_url)?;
        let admin = api.connect(ADMIN_THREADS_USER).await?;
        let other = api.connect(OTHER_THREADS_USER).await?;

        let later = time::OffsetDateTime::now_utc().unix_timestamp() + 7 * 24 * 3600;
        let account = admin.account_id.clone();
        let create = |path: &'static str, body: Value| {
            let api = &api;
            let admin = &admin;
            async move {
                let answer = api
                    .call(admin, Method::POST, path, Some(&body), None)
                    .await?;
                answer.body["id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        EventsError::Seed(format!(
                            "POST {path} answered {}: {}",
                            answer.status, answer.body
                        ))
                    })
            }
        };
        let post_id = create(
            "/v1/posts",
            json!({"account_id": account, "text": "A scheduled sample post", "publish_at": later}),
        )
        .await?;
        let storm_id = create(
            "/v1/storms",
            json!({"account_id": account, "parts": [{"text": "A scheduled sample storm, part one"}, {"text": "and part two"}], "publish_at": later}),
        )
        .await?;
        let pipeline_storm_id = create(
            "/v1/posts",
            json!({"account_id": account, "text": "A sample post that goes through every stage"}),
        )
        .await?;
        let result_storm_id = create(
            "/v1/posts",
            json!({"account_id": account, "text": "A sample post whose result the sink records"}),
        )
        .await?;

        let stack = self.runner.stack();
        let reference = |id: &str| {
            stack
                .reference(id)
                .map(str::to_owned)
                .map_err(|e| EventsError::Seed(e.to_string()))
        };
        let session_key = reference("SessionKeySecret")?;
        self.start_rotation(&session_key).await?;
        // Meta signs each callback when it sends it, and ThreadStorm refuses an old one: the
        // sample callbacks get one signed now, for the second user.
        let signed_request = threads_emulator::webhook::signed_request(
            &self.emulator.config().app_secret,
            &threads_emulator::webhook::callback_payload(
                &other.account_id,
                time::OffsetDateTime::now_utc().unix_timestamp(),
            ),
            false,
        );
        let values = BTreeMap::from([
            ("session".to_owned(), admin.token().to_owned()),
            ("other_session".to_owned(), other.token().to_owned()),
            ("user_id".to_owned(), admin.user_id.clone()),
            ("account_id".to_owned(), admin.account_id.clone()),
            ("other_user_id".to_owned(), other.user_id.clone()),
            ("other_account_id".to_owned(), other.account_id.clone()),
            ("post_id".to_owned(), post_id),
            ("storm_id".to_owned(), storm_id),
            ("pipeline_storm_id".to_owned(), pipeline_storm_id),
            ("result_storm_id".to_owned(), result_storm_id),
            ("session_key_secret_arn".to_owned(), session_key),
            ("signed_request".to_owned(), signed_request),
        ]);
        self.values.extend(values);
        Ok(())
    }

    /// Enables rotation of `secret` and lists the sample token as its valueless `AWSPENDING`
    /// version, as Secrets Manager does when a rotation comes due (the runner creates no
    /// rotation schedules, and moto runs no rotation function).
    async fn start_rotation(&self, secret: &str) -> Result<(), EventsError> {
        let client = aws_sdk_secretsmanager::Client::new(&self.runner.sdk_config());
        let rules = aws_sdk_secretsmanager::types::RotationRulesType::builder()
            .automatically_after_days(30)
            .build();
        let result = client
            .rotate_secret()
            .secret_id(secret)
            .client_request_token(SAMPLE_ROTATION_TOKEN)
            .rotation_lambda_arn(format!(
                "arn:aws:lambda:{}:123456789012:function:secret-rotation",
                local_stack::REGION
            ))
            .rotation_rules(rules)
            .send()
            .await;
        // moto stages the version, then stops because it cannot find the function.
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(EventsError::Seed(format!(
                "RotateSecret: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            ))),
        }
    }

    /// Runs one event file through its function; fills captures for later events.
    pub async fn run(&mut self, dir: &Path, entry: &Entry) -> Result<Invocation, EventsError> {
        let event = load(&dir.join(&entry.file), &self.values)?;
        let invocation = self.runner.invoke(&entry.function, &event).await?;
        let body = body_json(&invocation);
        for (placeholder, field) in &entry.capture {
            if let Some(value) = body[field.as_str()].as_str() {
                self.values.insert(placeholder.clone(), value.to_owned());
            }
        }
        Ok(invocation)
    }

    pub async fn shutdown(self) {
        self.runner.shutdown().await;
        self.emulator.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_an_unknown_one_is_refused() {
        let values = BTreeMap::from([("session".to_owned(), "abc".to_owned())]);
        assert_eq!(
            substitute("Bearer {{session}}!", &values).unwrap(),
            "Bearer abc!"
        );
        assert!(substitute("{{nope}}", &values).is_err());
        assert!(substitute("{{session", &values).is_err());
        assert_eq!(substitute("no braces", &values).unwrap(), "no braces");
    }
}
