//! Every file of `events/` replayed through its function — the deployed binaries behind the local
//! Runtime API, against moto and the Threads emulator — and checked against the outcome
//! `events/manifest.json` names, so the sample events never rot. A file the manifest does not
//! name, or a manifest row without its file, fails the test.

use std::collections::BTreeSet;

use local_runner::events::{EventStack, check, events_dir, manifest};
use local_runner::{Binaries, FunctionLogs};

/// The function binaries next to this test's directory when the workspace was built; else build.
fn binaries() -> Binaries {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(std::path::Path::to_path_buf))
        .filter(|dir| {
            threadstorm::resources::FUNCTIONS
                .iter()
                .all(|f| dir.join(f.name).exists())
        })
        .map(Binaries::Dir)
        .unwrap_or(Binaries::Build {
            profile: "dev".into(),
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn every_event_file_is_in_the_manifest_and_every_row_has_its_file() {
    let dir = events_dir();
    let rows = manifest(&dir).expect("events/manifest.json");
    let named: BTreeSet<String> = rows.iter().map(|r| r.file.clone()).collect();
    assert_eq!(named.len(), rows.len(), "a file is named twice");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name != "manifest.json" && name != "README.md")
        .collect();
    let unknown: Vec<_> = on_disk.difference(&named).collect();
    let missing: Vec<_> = named.difference(&on_disk).collect();
    assert!(
        unknown.is_empty(),
        "not in events/manifest.json: {unknown:?}"
    );
    assert!(missing.is_empty(), "named but absent: {missing:?}");

    // Every route of the api, every HTTP event of template.yaml and every function has an event.
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("events/README.md");
    for row in &rows {
        assert!(
            readme.contains(&row.file),
            "events/README.md does not list {}",
            row.file
        );
    }
    let mut routes: BTreeSet<(String, String)> = threadstorm::api::routes::ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.pattern.to_owned()))
        .collect();
    for row in &rows {
        let text = std::fs::read_to_string(dir.join(&row.file)).expect("event file");
        let event: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            // Placeholders sit inside strings, so every file parses as it is.
            Err(e) => panic!("{}: {e}", row.file),
        };
        if row.function == "ApiFunction" {
            let method = event["httpMethod"].as_str().unwrap_or_default();
            let path = event["path"].as_str().unwrap_or_default();
            routes.retain(|(m, pattern)| !(m == method && matches(pattern, path)));
        }
    }
    assert!(routes.is_empty(), "api routes without an event: {routes:?}");
    let functions: BTreeSet<&str> = rows.iter().map(|r| r.function.as_str()).collect();
    assert_eq!(functions.len(), 10, "{functions:?}");
}

/// `/v1/posts/{id}` matches `/v1/posts/{{post_id}}` (a placeholder fills one segment).
fn matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let q: Vec<&str> = path.split('/').collect();
    p.len() == q.len()
        && p.iter()
            .zip(&q)
            .all(|(a, b)| a == b || (a.starts_with('{') && !b.is_empty()))
}

/// An EMF document in namespace ThreadStorm that counts one invocation of `service`.
fn counts_an_invocation(line: &str, service: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(line) else {
        return false;
    };
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    directive["Namespace"] == "ThreadStorm"
        && directive["Metrics"]
            .as_array()
            .is_some_and(|m| m.iter().any(|d| d["Name"] == "request_count"))
        && doc["service"] == service
        && doc["request_count"] == 1
        && doc["request_duration_ms"]
            .as_f64()
            .is_some_and(|ms| ms >= 0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_event_runs_through_its_function_with_the_expected_outcome() {
    let dir = events_dir();
    let rows = manifest(&dir).expect("events/manifest.json");
    let mut stack = EventStack::start(free_port(), binaries(), FunctionLogs::Quiet)
        .await
        .expect("the local stack starts and is seeded");
    let mut failures = Vec::new();
    for row in &rows {
        match stack.run(&dir, row).await {
            Ok(invocation) => {
                if let Err(why) = check(&invocation, &row.expect) {
                    failures.push(format!("{} ({}): {why}", row.file, row.function));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", row.file)),
        }
    }

    // The poster published the pipeline storm and timed it.
    let poster = stack
        .runner
        .function_output("PosterFunction")
        .unwrap_or_default();
    let latency = poster.iter().any(|l| l.contains("\"publish_latency_ms\""));
    // Every function counted its invocations in EMF, under its own service name.
    let silent: Vec<&str> = threadstorm::resources::FUNCTIONS
        .iter()
        .filter(|f| {
            let lines = stack
                .runner
                .function_output(f.logical_id)
                .unwrap_or_default();
            !lines.iter().any(|line| counts_an_invocation(line, f.name))
        })
        .map(|f| f.name)
        .collect();
    // Every log line written during an invocation names it first: spans[0] is ThreadStorm's
    // invocation span (request id, function, cold start), whatever spans sit inside it.
    let mut in_spans = 0;
    let mut misplaced = Vec::new();
    for f in threadstorm::resources::FUNCTIONS {
        for line in stack
            .runner
            .function_output(f.logical_id)
            .unwrap_or_default()
        {
            let Ok(doc) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let Some(first) = doc["spans"].as_array().and_then(|s| s.first()) else {
                continue;
            };
            in_spans += 1;
            let named = first["name"] == "invocation"
                && first["function"] == f.name
                && first["request_id"]
                    .as_str()
                    .is_some_and(|id| !id.is_empty())
                && first["cold_start"].is_boolean();
            if !named {
                misplaced.push(line);
            }
        }
    }
    let published = stack.emulator.published().len();
    stack.shutdown().await;

    assert!(in_spans > 0, "no log line carried its spans");
    assert!(
        misplaced.is_empty(),
        "spans[0] is not the invocation: {misplaced:#?}"
    );

    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        silent.is_empty(),
        "no request_count EMF document from {silent:?}"
    );
    assert!(
        latency,
        "no publish_latency_ms from the poster: {poster:#?}"
    );
    assert!(published >= 1, "the poster event published nothing");
}
