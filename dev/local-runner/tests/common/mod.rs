//! Shared by the runner's tests: fixture templates written to a temporary file, runner options that
//! use the fixture binaries cargo built for this test run, and the shared moto server.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use local_runner::{
    AwsEndpoint, Binaries, FunctionLogs, InvocationRecord, Runner, RunnerOptions, Trigger,
};
use local_stack::Moto;

/// A template file that is removed when dropped.
pub struct TemplateFile(pub PathBuf);

impl Drop for TemplateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The header every fixture template starts with; `resources` is the `Resources:` body.
pub fn template(globals_timeout: u64, resources: &str) -> String {
    format!(
        r#"AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  StageName:
    Type: String
    Default: live
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    MemorySize: 128
    Timeout: {globals_timeout}
Resources:
{resources}"#
    )
}

/// A function of `binary` with extra `Properties` lines (indented six spaces).
pub fn function(logical_id: &str, binary: &str, properties: &str) -> String {
    format!(
        r#"  {logical_id}:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: {binary}
    Properties:
      CodeUri: .
{properties}
"#
    )
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_fixture-events"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Options that run `template_text` with the fixture binaries against the shared moto server,
/// schedules off, function output kept quiet.
pub fn options(template_text: &str) -> (RunnerOptions, TemplateFile) {
    let path = std::env::temp_dir().join(format!("local-runner-test-{}.yaml", uuid_like()));
    if let Err(e) = std::fs::write(&path, template_text) {
        panic!("writing {}: {e}", path.display());
    }
    let moto = Moto::shared();
    let options = RunnerOptions {
        template: Some(path.clone()),
        binaries: Binaries::Dir(fixture_dir()),
        binary_paths: BTreeMap::from([
            (
                "fixture-http".to_owned(),
                PathBuf::from(env!("CARGO_BIN_EXE_fixture-http")),
            ),
            (
                "fixture-events".to_owned(),
                PathBuf::from(env!("CARGO_BIN_EXE_fixture-events")),
            ),
        ]),
        aws: AwsEndpoint::Endpoint(moto.endpoint().to_owned()),
        run_schedules: false,
        function_logs: FunctionLogs::Quiet,
        ..RunnerOptions::default()
    };
    (options, TemplateFile(path))
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{}", std::process::id())
}

pub async fn start(options: RunnerOptions) -> Runner {
    match Runner::start(options).await {
        Ok(runner) => runner,
        Err(err) => panic!("starting the runner: {err}"),
    }
}

/// Every SQS delivery of `message_id`: (receive count, deleted, batch's retry reason).
pub fn deliveries(log: &[InvocationRecord], message_id: &str) -> Vec<(u32, bool, Option<String>)> {
    log.iter()
        .filter_map(|r| match &r.trigger {
            Trigger::Sqs(batch) => batch
                .messages
                .iter()
                .find(|m| m.message_id == message_id)
                .map(|m| (m.receive_count, m.deleted, batch.retry_reason.clone())),
            _ => None,
        })
        .collect()
}

/// Every SQS invocation record whose batch held `message_id`.
pub fn batches_with<'a>(
    log: &'a [InvocationRecord],
    message_id: &str,
) -> Vec<&'a InvocationRecord> {
    log.iter()
        .filter(|r| match &r.trigger {
            Trigger::Sqs(batch) => batch.messages.iter().any(|m| m.message_id == message_id),
            _ => false,
        })
        .collect()
}

pub const PATIENCE: Duration = Duration::from_secs(20);
