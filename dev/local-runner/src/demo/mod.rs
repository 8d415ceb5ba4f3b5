//! The main command's scenario: the whole stack on this machine, two accounts connected through the
//! real OAuth flow against the Threads emulator, then real input published through the API — a
//! long text auto-split into a storm, a batch of posts across both accounts (one scheduled), a
//! resubmitted duplicate, an over-length post, a post with a prohibited term, an idempotent
//! retry and a signed webhook delivery — until everything settles. Then a report with checks.

pub mod client;
pub mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use threads_emulator::webhook::{Change, ValuesShape};
use threads_emulator::{Emulator, PublishedPost};
use threadstorm::clock::EpochMillis;
use threadstorm::pipeline::quota::{Governors, QuotaStore};
use threadstorm::threads::UserId;

use crate::binaries::Binaries;
use crate::process::FunctionLogs;
use crate::runner::{Runner, RunnerError, RunnerOptions};
use client::{ApiClient, ClientError, Session};
use report::{AccountUsage, ChainLink, Check, ColdStartRow, Costs, Report, Submission};

/// The storm's text, checked into the repository with its sources named (demo/README.md).
pub const STORM_TEXT: &str = include_str!("../../demo/storm.txt");

/// How long the scenario waits for everything to settle.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(240);
/// How far ahead the scheduled post is.
pub const SCHEDULED_AFTER: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Setup(String),
}

/// A submission the scenario made, and what it expects of it.
struct Sent {
    name: String,
    session: usize,
    http_status: u16,
    id: Option<String>,
    problem: Option<Value>,
    /// The storm as the API answered it.
    body: Value,
}

/// The Threads emulator in this process, and the template parameters and secrets that wire the
/// stack to it: its app id and secret, and the OAuth redirect URI registered with it.
pub struct EmulatorWiring {
    pub emulator: threads_emulator::Emulator,
    pub parameters: std::collections::BTreeMap<String, String>,
    pub secret_values: std::collections::BTreeMap<String, String>,
}

impl EmulatorWiring {
    pub async fn start(port: u16, stage: &str) -> std::io::Result<Self> {
        let base = format!("http://localhost:{port}/{stage}");
        let config = threads_emulator::EmulatorConfig {
            redirect_uris: vec![format!("{base}/oauth/callback")],
            ..threads_emulator::EmulatorConfig::default()
        };
        let emulator = threads_emulator::Emulator::start(config).await?;
        let parameters = std::collections::BTreeMap::from([
            ("ThreadsAppId".to_owned(), emulator.config().app_id.clone()),
            ("PublicBaseUrl".to_owned(), base),
        ]);
        let secret_values = std::collections::BTreeMap::from([(
            "ThreadsAppSecret".to_owned(),
            emulator.config().app_secret.clone(),
        )]);
        Ok(EmulatorWiring {
            emulator,
            parameters,
            secret_values,
        })
    }
}

/// Starts the Threads emulator and every function of template.yaml wired to it, with the API on
/// `port` and schedules sixty times faster (the scheduler's minute is a second).
pub async fn start(
    port: u16,
    binaries: Binaries,
    function_logs: FunctionLogs,
) -> Result<(Runner, Emulator), RunnerError> {
    let wiring = EmulatorWiring::start(port, "live").await?;
    let runner = Runner::start(RunnerOptions {
        binaries,
        threads_url: Some(wiring.emulator.base_url()),
        stack_name: Some(format!("threadstorm-demo-{}-{port}", std::process::id())),
        parameters: wiring.parameters,
        secret_values: wiring.secret_values,
        api_port: port,
        schedule_speedup: 60.0,
        run_schedules: true,
        function_logs,
        ..RunnerOptions::default()
    })
    .await?;
    Ok((runner, wiring.emulator))
}

/// Runs the scenario against a started runner and emulator.
pub async fn run(runner: &Runner, emulator: &Emulator) -> Result<Report, DemoError> {
    let started = Instant::now();
    let api_url = runner
        .api_url()
        .ok_or_else(|| DemoError::Setup("the runner serves no API".into()))?
        // The OAuth redirect URI registered with the emulator names localhost.
        .replacen("127.0.0.1", "localhost", 1);
    let api = ApiClient::new(&api_url)?;
    let mut checks = Vec::new();

    // Two people connect their Threads accounts.
    let users: Vec<String> = emulator
        .config()
        .users
        .iter()
        .filter(|u| !u.denies)
        .take(2)
        .map(|u| u.id.clone())
        .collect();
    let mut sessions = Vec::new();
    for user in &users {
        sessions.push(api.connect(user).await?);
    }
    checks.push(check(
        "two accounts connected through OAuth",
        sessions.len() == 2,
        sessions
            .iter()
            .map(|s| format!("@{} ({})", s.username, s.account_id))
            .collect::<Vec<_>>()
            .join(", "),
    ));

    // Only what the posts cost is counted from here on.
    reset_aws_counts(runner.endpoint()).await;
    let calls_before = emulator.calls();
    let published_before = emulator.published().len();

    let mut sent = Vec::new();
    let storm_body = json!({
        "account_id": sessions[0].account_id,
        "text": STORM_TEXT,
        "auto_split": true,
        "numbering": true,
    });
    sent.push(
        submit(
            &api,
            &sessions,
            0,
            "storm: Self-Reliance and Die Lorelei",
            "/v1/storms",
            &storm_body,
            Some("storm-1"),
        )
        .await?,
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let scheduled_at = now + SCHEDULED_AFTER.as_secs() as i64;
    let batch = [
        (
            0,
            "post: plain text",
            json!({"text": "Good morning from ThreadStorm ☀️ — one post, published exactly once."}),
        ),
        (
            1,
            "post: link attachment and topic",
            json!({"text": "Reading list for the weekend 📚", "link_attachment": "https://en.wikisource.org/wiki/Essays:_First_Series", "topic_tag": "books"}),
        ),
        (
            0,
            "post: replies from followers only",
            json!({"text": "Ça va? Grüße aus Köln, saludos desde Málaga 🌍", "reply_control": "accounts_you_follow"}),
        ),
        (
            1,
            "post: image with alt text",
            json!({"image_url": "https://images.example.org/lorelei.jpg", "alt_text": "The Lorelei rock above the Rhine", "text": "Die Lorelei 🌊"}),
        ),
        (
            1,
            "post: scheduled 20 s ahead",
            json!({"text": "This one waited for its time ⏰", "publish_at": scheduled_at}),
        ),
    ];
    for (who, name, mut body) in batch {
        body["account_id"] = json!(sessions[who].account_id);
        sent.push(submit(&api, &sessions, who, name, "/v1/posts", &body, None).await?);
    }
    // The first post again with its Idempotency-Key: the same answer, nothing new.
    let mut first_post = batch_body(&sent[1]);
    first_post["account_id"] = json!(sessions[0].account_id);
    let retry_key = "post-retry-1";
    let original = api
        .call(
            &sessions[0],
            Method::POST,
            "/v1/posts",
            Some(&json!({"account_id": sessions[0].account_id, "text": "An idempotent retry 🔁"})),
            Some(retry_key),
        )
        .await?;
    let retried = api
        .call(
            &sessions[0],
            Method::POST,
            "/v1/posts",
            Some(&json!({"account_id": sessions[0].account_id, "text": "An idempotent retry 🔁"})),
            Some(retry_key),
        )
        .await?;
    sent.push(Sent {
        name: "post: sent twice with one Idempotency-Key".into(),
        session: 0,
        http_status: original.status.as_u16(),
        id: original.body["id"].as_str().map(str::to_owned),
        problem: None,
        body: original.body.clone(),
    });
    checks.push(check(
        "an Idempotency-Key retry is answered from the first request",
        retried.replayed
            && retried.status == original.status
            && retried.body["id"] == original.body["id"],
        format!(
            "first {} {}, retry {} replayed={}",
            original.status, original.body["id"], retried.status, retried.replayed
        ),
    ));
    // The same content again for the same account, without a key: the pipeline refuses it.
    sent.push(
        submit(
            &api,
            &sessions,
            0,
            "post: resubmitted duplicate",
            "/v1/posts",
            &first_post,
            None,
        )
        .await?,
    );
    let over_length =
        json!({"account_id": sessions[1].account_id, "text": "Too long for one post. ".repeat(23)});
    sent.push(
        submit(
            &api,
            &sessions,
            1,
            "post: over 500 bytes",
            "/v1/posts",
            &over_length,
            None,
        )
        .await?,
    );
    let prohibited = json!({"account_id": sessions[0].account_id, "text": "We are an Official Threads Partner now!"});
    sent.push(
        submit(
            &api,
            &sessions,
            0,
            "post: prohibited brand term",
            "/v1/posts",
            &prohibited,
            None,
        )
        .await?,
    );

    // What the api function spent on the submissions; its reads while settling are the client's.
    let submitting = aws_counts(runner.endpoint()).await;
    // Wait until every accepted submission has reached a final status.
    let finals = settle(&api, &sessions, &sent).await?;

    // A reply arrives on the storm's first part, signed by the emulator as Meta signs it.
    let storm_root = finals
        .get(&0)
        .and_then(|s| s["parts"][0]["media_id"].as_str())
        .map(str::to_owned);
    let webhook = match &storm_root {
        Some(root) => Some(
            emulator
                .send_webhook(
                    &format!("{api_url}/webhooks/threads"),
                    &[Change {
                        field: "replies".into(),
                        value: json!({
                            "id": "17999000000000001",
                            "username": "a_reader",
                            "text": "Trust thyself — thank you for posting this 🙏",
                            "media_type": "TEXT_POST",
                            "replied_to": { "id": root },
                            "root_post": { "id": root, "owner_id": sessions[0].account_id, "username": sessions[0].username },
                            "timestamp": "2026-12-03T12:00:00+0000",
                        }),
                    }],
                    ValuesShape::Object,
                    true,
                )
                .await,
        ),
        None => None,
    };
    // The storm's author reads it in their inbox.
    let inbox = api
        .call(&sessions[0], Method::GET, "/v1/inbox", None, None)
        .await?;
    let items = inbox.body["items"].as_array().cloned().unwrap_or_default();
    checks.push(check(
        "a signed webhook reply is verified, stored once and read in the author's inbox",
        webhook.as_ref().is_some_and(|w| w.delivered == 2)
            && items.len() == 1
            && items[0]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Trust thyself")),
        format!(
            "{} deliveries answered 200 (the second a duplicate); GET /v1/inbox {} with {} item(s)",
            webhook.as_ref().map_or(0, |w| w.delivered),
            inbox.status,
            items.len()
        ),
    ));

    // What Threads recorded.
    let published: Vec<PublishedPost> = emulator.published()[published_before..].to_vec();
    let calls = emulator.calls();
    let mut aws = aws_counts(runner.endpoint()).await;
    aws.insert(
        "api".to_owned(),
        submitting.get("api").cloned().unwrap_or_default(),
    );
    // The posts' cost: the api's submissions and every pipeline stage. Not the webhook, not the
    // client's polling, not the local tooling.
    let pipeline: BTreeMap<String, u64> = aws
        .iter()
        .filter(|(function, _)| PIPELINE.contains(&function.as_str()))
        .flat_map(|(_, ops)| ops.iter())
        .fold(BTreeMap::new(), |mut all, (op, n)| {
            *all.entry(op.clone()).or_default() += n;
            all
        });
    let by_function: BTreeMap<String, u64> = aws
        .iter()
        .filter(|(function, _)| PIPELINE.contains(&function.as_str()))
        .map(|(function, ops)| (function.clone(), ops.values().sum()))
        .collect();
    let mut submissions = Vec::new();
    for (i, s) in sent.iter().enumerate() {
        let storm = finals.get(&i);
        let problem_reason = s.problem.as_ref().map(|p| {
            format!(
                "{}: {}",
                p["code"].as_str().unwrap_or("?"),
                p["detail"].as_str().unwrap_or("")
            )
        });
        submissions.push(Submission {
            name: s.name.clone(),
            account: sessions[s.session].account_id.clone(),
            http_status: s.http_status,
            id: s.id.clone(),
            status: storm
                .and_then(|st| st["status"].as_str())
                .unwrap_or(if s.id.is_some() {
                    "unsettled"
                } else {
                    "refused"
                })
                .to_owned(),
            reason: storm
                .and_then(|st| {
                    st["reason"]["text"]
                        .as_str()
                        .map(|t| format!("{}: {t}", st["reason"]["code"].as_str().unwrap_or("?")))
                })
                .or(problem_reason),
            parts: s.body["parts"].as_array().map_or(1, Vec::len),
        });
    }

    // The storm: in order, each part replying to the previous, its text as split.
    let storm = finals.get(&0);
    let storm_parts: Vec<String> = storm
        .and_then(|s| s["parts"].as_array())
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p["content"]["text"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let chain: Vec<&PublishedPost> = storm_parts
        .iter()
        .filter_map(|text| published.iter().find(|p| p.text.as_deref() == Some(text)))
        .collect();
    let storm_chain: Vec<ChainLink> = chain
        .iter()
        .enumerate()
        .map(|(i, p)| ChainLink {
            part: i + 1,
            media_id: p.media_id.clone(),
            reply_to: p.reply_to_id.clone(),
            bytes: p.text.as_deref().map_or(0, str::len),
        })
        .collect();
    let in_order = chain.len() == storm_parts.len()
        && chain.len() > 1
        && chain[0].reply_to_id.is_none()
        && chain.windows(2).all(|w| {
            w[1].reply_to_id.as_deref() == Some(w[0].media_id.as_str())
                && w[0].sequence < w[1].sequence
        });
    checks.push(check(
        "the storm is published in order, each part replying to the previous",
        storm.is_some_and(|s| s["status"] == "published") && in_order,
        format!(
            "{} of {} parts in the chain",
            chain.len(),
            storm_parts.len()
        ),
    ));
    let within = storm_parts.iter().all(|p| p.len() <= 500);
    let numbered = storm_parts
        .iter()
        .enumerate()
        .all(|(i, p)| p.ends_with(&format!("{}/{}", i + 1, storm_parts.len())));
    checks.push(check(
        "the long text is split into numbered parts of at most 500 bytes",
        within && numbered && storm_parts.len() > 5,
        format!(
            "{} parts from {} bytes, the longest {} bytes",
            storm_parts.len(),
            STORM_TEXT.len(),
            storm_parts.iter().map(String::len).max().unwrap_or(0)
        ),
    ));
    let mut seen = BTreeSet::new();
    let twice: Vec<_> = published
        .iter()
        .filter(|p| {
            !seen.insert((
                p.owner_user_id.clone(),
                p.text.clone(),
                p.reply_to_id.clone(),
            ))
        })
        .collect();
    checks.push(check(
        "nothing is published twice",
        twice.is_empty(),
        format!(
            "{} posts published, {} repeated",
            published.len(),
            twice.len()
        ),
    ));
    let expect = |name: &str, status: &str, code: Option<&str>| {
        let s = submissions.iter().find(|s| s.name == name);
        let passed = s.is_some_and(|s| {
            s.status == status
                && code.is_none_or(|c| s.reason.as_deref().is_some_and(|r| r.starts_with(c)))
        });
        check(
            &format!("{name}: {status}"),
            passed,
            s.map(|s| {
                format!(
                    "{} {}",
                    s.http_status,
                    s.reason.clone().unwrap_or_else(|| s.status.clone())
                )
            })
            .unwrap_or_default(),
        )
    };
    for name in [
        "post: plain text",
        "post: link attachment and topic",
        "post: replies from followers only",
        "post: image with alt text",
        "post: scheduled 20 s ahead",
        "post: sent twice with one Idempotency-Key",
    ] {
        checks.push(expect(name, "published", None));
    }
    checks.push(expect(
        "post: resubmitted duplicate",
        "rejected",
        Some("duplicate"),
    ));
    checks.push(expect(
        "post: over 500 bytes",
        "refused",
        Some("content_refused"),
    ));
    checks.push(expect(
        "post: prohibited brand term",
        "refused",
        Some("content_refused"),
    ));
    let scheduled_text = "This one waited for its time ⏰";
    let waited = published
        .iter()
        .find(|p| p.text.as_deref() == Some(scheduled_text))
        .is_some_and(|p| p.published_at >= scheduled_at);
    checks.push(check(
        "the scheduled post is not published before its time",
        waited,
        format!("publish_at {scheduled_at}"),
    ));

    // Quota usage as ThreadStorm reserved it.
    let quota = QuotaStore::new(
        aws_sdk_dynamodb::Client::new(&runner.sdk_config()),
        runner
            .stack()
            .reference("RateLimitsTable")
            .map_err(|e| DemoError::Setup(e.to_string()))?,
        Governors::SEED,
    );
    let mut accounts = Vec::new();
    let now_ms = EpochMillis::at(time::OffsetDateTime::now_utc());
    for s in &sessions {
        let usage = match UserId::parse(&s.account_id) {
            Ok(id) => quota.usage(&id, now_ms).await.ok(),
            Err(_) => None,
        }
        .unwrap_or_default();
        accounts.push(AccountUsage {
            user_id: s.user_id.clone(),
            account_id: s.account_id.clone(),
            username: s.username.clone(),
            posts_24h: usage.posts,
            replies_24h: usage.replies,
            requests_1h: usage.requests,
        });
    }
    let reserved_posts: u32 = accounts.iter().map(|a| a.posts_24h + a.replies_24h).sum();
    checks.push(check(
        "quota reservations match what was published",
        reserved_posts as usize == published.len(),
        format!(
            "{reserved_posts} posts and replies reserved, {} published",
            published.len()
        ),
    ));

    let publishing_calls = (calls.create - calls_before.create)
        + (calls.publish - calls_before.publish)
        + (calls.status - calls_before.status)
        + (calls.read - calls_before.read)
        + (calls.publishing_limit - calls_before.publishing_limit);
    let aws_total: u64 = pipeline.values().sum();
    let per = |n: u64| {
        if published.is_empty() {
            0.0
        } else {
            n as f64 / published.len() as f64
        }
    };
    let costs = Costs {
        published_posts: published.len(),
        aws_requests: aws_total,
        aws_requests_per_post: per(aws_total),
        aws_by_operation: pipeline,
        aws_by_function: by_function,
        threads_calls: publishing_calls,
        threads_calls_per_post: per(publishing_calls),
    };
    let cold_starts: Vec<ColdStartRow> = runner
        .cold_starts()
        .into_iter()
        .map(|c| ColdStartRow {
            function: c.function,
            millis: c.duration.as_secs_f64() * 1000.0,
            rss_mb: c.rss_kib.map(|k| k as f64 / 1024.0),
        })
        .collect();
    checks.push(check(
        "every function started",
        cold_starts.len() == runner.function_names().len(),
        format!(
            "{} of {} cold starts measured",
            cold_starts.len(),
            runner.function_names().len()
        ),
    ));
    Ok(Report {
        ok: checks.iter().all(|c| c.passed),
        seconds: started.elapsed().as_secs_f64(),
        accounts,
        submissions,
        storm_chain,
        costs,
        cold_starts,
        checks,
    })
}

fn check(name: &str, passed: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.to_owned(),
        passed,
        detail: detail.into(),
    }
}

fn batch_body(sent: &Sent) -> Value {
    json!({ "text": sent.body["parts"][0]["content"]["text"] })
}

async fn submit(
    api: &ApiClient,
    sessions: &[Session],
    who: usize,
    name: &str,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> Result<Sent, DemoError> {
    let answer = api
        .call(&sessions[who], Method::POST, path, Some(body), key)
        .await?;
    let accepted = answer.status == StatusCode::ACCEPTED;
    Ok(Sent {
        name: name.to_owned(),
        session: who,
        http_status: answer.status.as_u16(),
        id: accepted
            .then(|| answer.body["id"].as_str().map(str::to_owned))
            .flatten(),
        problem: (!accepted).then(|| answer.body.clone()),
        body: if accepted { answer.body } else { body.clone() },
    })
}

const FINAL: [&str; 4] = ["published", "rejected", "failed", "cancelled"];

/// Polls every accepted submission until all are final (or the time runs out), with a progress
/// line. Returns the final storms by submission index.
///
/// Each round reads each user's list of posts once (one request, whatever the number of
/// submissions) and a storm's full view only once it is final, once a second: a client that
/// polled every submission twice a second would spend the user's per-minute request budget
/// (`API_RATE_LIMIT_PER_MINUTE`) on polling alone.
async fn settle(
    api: &ApiClient,
    sessions: &[Session],
    sent: &[Sent],
) -> Result<BTreeMap<usize, Value>, DemoError> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let is_final = |st: &Value| FINAL.contains(&st["status"].as_str().unwrap_or(""));
    let mut latest: BTreeMap<usize, Value> = BTreeMap::new();
    loop {
        for (who, session) in sessions.iter().enumerate() {
            let pending: Vec<(usize, &str)> = sent
                .iter()
                .enumerate()
                .filter(|(i, s)| s.session == who && !latest.get(i).is_some_and(is_final))
                .filter_map(|(i, s)| Some((i, s.id.as_deref()?)))
                .collect();
            if pending.is_empty() {
                continue;
            }
            let list = api
                .call(session, Method::GET, "/v1/posts?limit=100", None, None)
                .await?;
            if list.status != StatusCode::OK {
                continue;
            }
            let listed = list.body["items"].as_array().cloned().unwrap_or_default();
            for (i, id) in pending {
                let Some(summary) = listed.iter().find(|st| st["id"] == id) else {
                    continue;
                };
                if is_final(summary) {
                    let view = api
                        .call(session, Method::GET, &format!("/v1/posts/{id}"), None, None)
                        .await?;
                    if view.status == StatusCode::OK {
                        latest.insert(i, view.body);
                        continue;
                    }
                }
                latest.insert(i, summary.clone());
            }
        }
        let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
        for st in latest.values() {
            *by_status
                .entry(st["status"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        let accepted = sent.iter().filter(|s| s.id.is_some()).count();
        let done = latest.values().filter(|st| is_final(st)).count();
        let summary: Vec<String> = by_status.iter().map(|(k, v)| format!("{k} {v}")).collect();
        eprint!(
            "\rsettling: {done}/{accepted} final ({})        ",
            summary.join(", ")
        );
        if done == accepted {
            eprintln!();
            return Ok(latest);
        }
        if Instant::now() > deadline {
            eprintln!();
            // What never finished is reported as it last stood, in full.
            for (i, s) in sent.iter().enumerate() {
                let Some(id) = &s.id else { continue };
                if latest.get(&i).is_some_and(is_final) {
                    continue;
                }
                let view = api
                    .call(
                        &sessions[s.session],
                        Method::GET,
                        &format!("/v1/posts/{id}"),
                        None,
                        None,
                    )
                    .await?;
                if view.status == StatusCode::OK {
                    latest.insert(i, view.body);
                }
            }
            return Ok(latest);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The functions whose AWS requests a post costs: submission and every pipeline stage.
const PIPELINE: [&str; 6] = [
    "api",
    "dedupe",
    "gate",
    "poster",
    "result-sink",
    "scheduler",
];

/// The AWS requests moto served since the last reset, by function and `Service.Operation`.
async fn aws_counts(endpoint: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    let url = format!("{}/_threadstorm/requests", endpoint.trim_end_matches('/'));
    let counts: Value = match reqwest::get(url).await {
        Ok(res) => res.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let Some(by_app) = counts.as_object() else {
        return BTreeMap::new();
    };
    by_app
        .iter()
        .map(|(app, ops)| {
            let ops = ops
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default();
            (app.clone(), ops)
        })
        .collect()
}

async fn reset_aws_counts(endpoint: &str) {
    let url = format!("{}/_threadstorm/requests", endpoint.trim_end_matches('/'));
    let _ = reqwest::Client::new().delete(url).send().await;
}
