//! Function processes as Lambda runs them: the environment, cold starts, init failures, timeouts,
//! crashes and restarts on direct invocations, schedules, and a real function binary from
//! functions/ answering through the API front.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use local_runner::{
    AwsEndpoint, Binaries, FunctionLogs, FunctionState, Outcome, OutcomeKind, Runner,
    RunnerOptions, StartCause, Trigger,
};
use serde_json::json;

fn lifecycle_template() -> String {
    let good = common::function(
        "GoodFunction",
        "fixture-events",
        r#"      MemorySize: 256
      Environment:
        Variables:
          GREETING: hello
          QUEUE_URL: !Ref SomeQueue"#,
    );
    let broken = common::function(
        "BrokenInitFunction",
        "fixture-events",
        r#"      Environment:
        Variables:
          FIXTURE_INIT: error"#,
    );
    let exits = common::function(
        "ExitingInitFunction",
        "fixture-events",
        r#"      Environment:
        Variables:
          FIXTURE_INIT: exit"#,
    );
    let tick = common::function(
        "TickFunction",
        "fixture-events",
        r#"      Events:
        Tick:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
        Nightly:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * ? *)"#,
    );
    common::template(
        1,
        &format!(
            r#"{good}{broken}{exits}{tick}
  SomeQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${{AWS::StackName}}-some"
"#
        ),
    )
}

async fn runner(tweak: impl FnOnce(&mut RunnerOptions)) -> (Runner, common::TemplateFile) {
    let (mut options, file) = common::options(&lifecycle_template());
    tweak(&mut options);
    (common::start(options).await, file)
}

#[tokio::test]
async fn functions_get_lambdas_environment_and_invocation_headers() {
    let (runner, _file) = runner(|o| {
        o.threads_url = Some("http://127.0.0.1:9/".into());
        o.extra_env = BTreeMap::from([(
            "GoodFunction".to_owned(),
            BTreeMap::from([("EXTRA".to_owned(), "yes".to_owned())]),
        )]);
    })
    .await;
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let result = runner
        .invoke("GoodFunction", &json!({"action": "env"}))
        .await
        .unwrap();
    let seen = result.json().expect("a JSON response");
    let env = &seen["env"];
    let name = format!("{}-GoodFunction", runner.stack().name);
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], name.as_str());
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(
        env["AWS_LAMBDA_LOG_GROUP_NAME"],
        format!("/aws/lambda/{name}").as_str()
    );
    assert!(
        env["AWS_LAMBDA_LOG_STREAM_NAME"]
            .as_str()
            .unwrap()
            .contains("/[$LATEST]")
    );
    assert_eq!(env["_HANDLER"], "bootstrap");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_ENDPOINT_URL"], runner.endpoint());
    assert!(
        env["AWS_LAMBDA_RUNTIME_API"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(env["GREETING"], "hello");
    assert_eq!(
        env["QUEUE_URL"],
        runner.stack().reference("SomeQueue").unwrap()
    );
    assert_eq!(env["THREADS_GRAPH_URL"], "http://127.0.0.1:9");
    assert_eq!(
        env["THREADS_AUTH_URL"],
        "http://127.0.0.1:9/oauth/authorize"
    );
    assert_eq!(env["EXTRA"], "yes");
    // A clean environment, as in Lambda: nothing of the runner's own leaks in.
    assert!(env.get("CARGO_MANIFEST_DIR").is_none());
    assert!(env.get("HOME").is_none());

    assert_eq!(seen["request_id"], result.request_id.as_str());
    assert_eq!(
        seen["function_arn"],
        format!("arn:aws:lambda:us-east-1:123456789012:function:{name}").as_str()
    );
    assert!(seen["trace_id"].as_str().unwrap().starts_with("Root=1-"));
    let deadline = seen["deadline_ms"].as_u64().unwrap();
    assert!(
        deadline >= before + 900 && deadline <= before + 3000,
        "{deadline} vs {before}"
    );
    runner.shutdown().await;
}

#[tokio::test]
async fn cold_starts_are_measured() {
    let (runner, _file) = runner(|_| {}).await;
    let cold = runner.cold_starts();
    for name in ["GoodFunction", "TickFunction"] {
        let start = cold.iter().find(|c| c.function == name).unwrap();
        assert_eq!(start.cause, StartCause::First);
        assert!(start.duration > Duration::ZERO, "{start:?}");
        assert!(start.duration < Duration::from_secs(5), "{start:?}");
    }
    runner.shutdown().await;
}

#[tokio::test]
async fn init_failures_are_reported_and_the_function_is_marked_failed() {
    let (runner, _file) = runner(|_| {}).await;

    let FunctionState::Failed(error) = runner.function_state("BrokenInitFunction").unwrap() else {
        panic!("BrokenInitFunction should have failed");
    };
    assert_eq!(error.error_type, "FixtureInitError");
    assert_eq!(error.error_message, "configured to fail init");

    let FunctionState::Failed(error) = runner.function_state("ExitingInitFunction").unwrap() else {
        panic!("ExitingInitFunction should have failed");
    };
    assert_eq!(error.error_type, "Runtime.ExitError");
    assert_eq!(
        error.error_message,
        "Runtime exited with error: exit status 1"
    );
    let output = runner.function_output("ExitingInitFunction").unwrap();
    assert!(
        output.iter().any(|l| l.contains("configuration")),
        "{output:?}"
    );

    // Every invocation of a failed function returns its init error; nothing is run.
    let result = runner
        .invoke("BrokenInitFunction", &json!({}))
        .await
        .unwrap();
    assert!(
        matches!(&result.outcome, Outcome::InitFailed(e) if e.error_type == "FixtureInitError")
    );
    assert!(
        runner
            .cold_starts()
            .iter()
            .all(|c| !c.function.contains("Init"))
    );
    // The others run.
    assert_eq!(
        runner.function_state("GoodFunction").unwrap(),
        FunctionState::Ready
    );
    runner.shutdown().await;
}

#[tokio::test]
async fn direct_invocations_time_out_crash_and_restart_like_lambda() {
    let (runner, _file) = runner(|_| {}).await;

    let ok = runner
        .invoke("GoodFunction", &json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!(ok.json(), Some(json!({"n": 1})));

    let slow = runner
        .invoke("GoodFunction", &json!({"action": "sleep", "ms": 3000}))
        .await
        .unwrap();
    let Outcome::TimedOut(error) = &slow.outcome else {
        panic!("{slow:?}")
    };
    assert_eq!(
        error.error_message,
        format!(
            "RequestId: {} Error: Task timed out after 1.00 seconds",
            slow.request_id
        )
    );

    let crash = runner
        .invoke("GoodFunction", &json!({"action": "exit"}))
        .await
        .unwrap();
    assert!(
        matches!(&crash.outcome, Outcome::Crashed(e) if e.error_type == "Runtime.ExitError"),
        "{crash:?}"
    );

    let panic = runner
        .invoke("GoodFunction", &json!({"action": "panic"}))
        .await
        .unwrap();
    assert!(
        matches!(panic.outcome, Outcome::FunctionError(_)),
        "{panic:?}"
    );

    let after = runner
        .invoke("GoodFunction", &json!({"n": 2}))
        .await
        .unwrap();
    assert_eq!(after.json(), Some(json!({"n": 2})));

    let causes: Vec<StartCause> = runner
        .cold_starts()
        .iter()
        .filter(|c| c.function == "GoodFunction")
        .map(|c| c.cause)
        .collect();
    assert_eq!(
        causes,
        vec![
            StartCause::First,
            StartCause::AfterTimeout,
            StartCause::AfterCrash
        ]
    );
    let kinds: Vec<OutcomeKind> = runner
        .invocations()
        .iter()
        .filter(|r| r.function == "GoodFunction")
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            OutcomeKind::Ok,
            OutcomeKind::TimedOut,
            OutcomeKind::Crashed,
            OutcomeKind::FunctionError,
            OutcomeKind::Ok
        ]
    );
    runner.shutdown().await;
}

#[tokio::test]
async fn schedules_fire_on_a_sped_up_clock_and_on_demand() {
    let (runner, _file) = runner(|o| {
        o.run_schedules = true;
        o.schedule_speedup = 120.0; // rate(1 minute) every half second
        o.functions = Some(vec!["TickFunction".into()]);
    })
    .await;
    let listed = runner.schedules();
    let tick = listed.iter().find(|s| s.event == "Tick").unwrap();
    assert_eq!(tick.every, Some(Duration::from_millis(500)));
    let nightly = listed.iter().find(|s| s.event == "Nightly").unwrap();
    assert_eq!(nightly.every, None, "cron is listed, not fired");

    let fired = runner
        .wait_for_invocations(Duration::from_secs(10), |log| {
            log.iter()
                .filter(|r| matches!(&r.trigger, Trigger::Schedule { event } if event == "Tick"))
                .count()
                >= 2
        })
        .await;
    assert!(fired, "{:#?}", runner.invocations());

    // The fixture answers with the event it was given.
    let now = runner
        .fire_schedule("TickFunction", Some("Nightly"))
        .await
        .unwrap();
    let event = now.json().unwrap();
    assert_eq!(event["detail-type"], "Scheduled Event");
    assert_eq!(event["source"], "aws.events");
    assert_eq!(event["account"], "123456789012");
    assert_eq!(event["region"], "us-east-1");
    assert_eq!(event["detail"], json!({}));
    assert!(
        event["resources"][0]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:events:us-east-1:123456789012:rule/")
    );
    assert!(event["time"].as_str().unwrap().ends_with('Z'));
    assert!(
        runner
            .fire_schedule("TickFunction", Some("Nope"))
            .await
            .is_err()
    );
    runner.shutdown().await;
}

/// The deployed `api` binary, built by the runner with cargo, starts against the local stack —
/// its configuration reads, so the environment is complete — and answers through the API front.
#[tokio::test]
async fn the_real_api_function_starts_and_answers_through_the_front() {
    // The workspace build (./scripts/test builds every target first) already made the api binary
    // next to this test's directory; build it only when it is missing.
    let built = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(std::path::Path::to_path_buf))
        .filter(|dir| dir.join("api").exists());
    let runner = common::start(RunnerOptions {
        binaries: match built {
            Some(dir) => Binaries::Dir(dir),
            None => Binaries::Build {
                profile: "dev".into(),
            },
        },
        aws: AwsEndpoint::Endpoint(local_stack::Moto::shared().endpoint().to_owned()),
        functions: Some(vec!["api".into()]),
        run_schedules: false,
        function_logs: FunctionLogs::Quiet,
        ..RunnerOptions::default()
    })
    .await;
    assert_eq!(
        runner.function_state("ApiFunction").unwrap(),
        FunctionState::Ready,
        "{:?}",
        runner.function_output("ApiFunction")
    );
    let cold = runner.cold_starts();
    assert_eq!(cold.len(), 1);
    assert!(cold[0].duration > Duration::ZERO);

    let url = runner.api_url().unwrap();
    assert!(url.ends_with("/live"), "the template's StageName: {url}");
    let client = reqwest::Client::new();
    let home = client.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let about: serde_json::Value = home.json().await.unwrap();
    assert_eq!(about["name"], "ThreadStorm");
    assert_eq!(about["disclaimers"].as_array().unwrap().len(), 3);
    // Without a session every /v1 route is a 401 problem.
    let response = client
        .get(format!("{url}/v1/posts?limit=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], 401);
    // Routes of functions not started are not deployed.
    let oauth = client
        .get(format!("{url}/oauth/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(oauth.status(), 403);
    runner.shutdown().await;
}
