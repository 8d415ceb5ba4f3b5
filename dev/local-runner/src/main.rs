//! `local-runner up`: builds the function binaries, starts moto (unless `AWS_ENDPOINT_URL`
//! answers) with template.yaml's resources, runs every function behind a local Runtime API, serves
//! the REST API under its stage, polls the queues and fires the schedules — until Ctrl-C.
//!
//! `local-runner invoke <Function> --event events/x.json`: the same stack with the Threads
//! emulator, seeded as `events/README.md` describes; invokes the function once with the event,
//! prints its answer and stops everything.
//!
//! `local-runner demo`: the same stack with the Threads emulator, then ThreadStorm's main job on
//! real input (see [`local_runner::demo`]); prints a report, writes it as JSON, exits non-zero if a
//! check failed, and stops everything it started.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use local_runner::{Binaries, FunctionLogs, FunctionState, Runner, RunnerOptions};

#[derive(Parser)]
#[command(
    about = "Runs ThreadStorm's functions locally, as Lambda, API Gateway, SQS and EventBridge would"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start everything and run until Ctrl-C.
    Up(Up),
    /// Start everything with the Threads emulator, invoke one function once with a sample event
    /// (`events/`), print the result, stop.
    Invoke(Invoke),
    /// Start everything with the Threads emulator, publish real input, report, stop.
    Demo(Demo),
}

#[derive(clap::Args)]
struct Invoke {
    /// The function's logical id (`ApiFunction`) or binary name (`api`).
    function: String,
    /// The event file; `{{placeholders}}` are filled from the seeded stack (events/README.md).
    #[arg(long)]
    event: PathBuf,
    /// Port of the API Gateway front on 127.0.0.1 (the OAuth flow that seeds the stack uses it;
    /// a fixed port, not 0: the redirect URI registered with the emulator names it).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Cargo profile to build the function binaries with.
    #[arg(long, default_value = "dev")]
    profile: String,
    /// Use binaries already built in this directory instead of building them.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Show the functions' own output.
    #[arg(long)]
    function_logs: bool,
}

#[derive(clap::Args)]
struct Demo {
    /// Port of the API Gateway front on 127.0.0.1.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Where to write the JSON report.
    #[arg(long, default_value = "threadstorm-report.json")]
    report: PathBuf,
    /// Cargo profile to build the function binaries with.
    #[arg(long, default_value = "dev")]
    profile: String,
    /// Use binaries already built in this directory instead of building them.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Show the functions' own output.
    #[arg(long)]
    function_logs: bool,
}

#[derive(clap::Args)]
struct Up {
    /// Port of the API Gateway front on 127.0.0.1.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Run schedules this many times faster (60: rate(1 minute) fires every second).
    #[arg(long, default_value_t = 1.0)]
    speedup: f64,
    /// Cargo profile to build the function binaries with.
    #[arg(long, default_value = "dev")]
    profile: String,
    /// Use binaries already built in this directory instead of building them.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Stack name (physical resource names start with it).
    #[arg(long, default_value = "threadstorm-local")]
    stack_name: String,
    /// The Threads emulator's base URL, passed to the functions.
    #[arg(long, env = "THREADS_EMULATOR_URL", conflicts_with = "emulator")]
    threads_url: Option<String>,
    /// Start the Threads emulator in this process and wire it in: its app id and secret, and the
    /// OAuth redirect URI registered with it, match the stack's.
    #[arg(long)]
    emulator: bool,
    /// The SAM template (default: the workspace's template.yaml).
    #[arg(long)]
    template: Option<PathBuf>,
    /// Only these functions (logical ids or binary names, comma-separated).
    #[arg(long, value_delimiter = ',')]
    functions: Option<Vec<String>>,
    /// Template parameter overrides, `Name=Value` (repeatable).
    #[arg(long = "parameter", value_parser = parse_pair)]
    parameters: Vec<(String, String)>,
    /// Keep the functions' own output off the terminal.
    #[arg(long)]
    quiet_functions: bool,
    /// Do not fire schedules by themselves.
    #[arg(long)]
    no_schedules: bool,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not Name=Value"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Up(up) => run(up).await.map(|()| true).map_err(Into::into),
        Command::Invoke(invoke) => run_invoke(invoke).await,
        Command::Demo(demo) => run_demo(demo).await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("local-runner: {err}");
            ExitCode::FAILURE
        }
    }
}

/// One invocation of one function with one event file: returns whether it succeeded.
async fn run_invoke(invoke: Invoke) -> Result<bool, Box<dyn std::error::Error>> {
    let stack = local_runner::events::EventStack::start(
        invoke.port,
        match invoke.bin_dir {
            Some(dir) => Binaries::Dir(dir),
            None => Binaries::Build {
                profile: invoke.profile,
            },
        },
        if invoke.function_logs {
            FunctionLogs::Stderr
        } else {
            FunctionLogs::Quiet
        },
    )
    .await?;
    let result = async {
        let event = local_runner::events::load(&invoke.event, &stack.values)?;
        Ok::<_, local_runner::events::EventsError>(
            stack.runner.invoke(&invoke.function, &event).await?,
        )
    }
    .await;
    stack.shutdown().await;
    let invocation = result?;
    let payload = invocation.outcome.payload();
    let printed = serde_json::from_slice::<serde_json::Value>(&payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&payload).into_owned());
    println!("{printed}");
    eprintln!(
        "local-runner: {} {:?} in {:.1} ms (request id {})",
        invocation.function,
        invocation.outcome.kind(),
        invocation.duration.as_secs_f64() * 1000.0,
        invocation.request_id
    );
    Ok(invocation.is_ok())
}

/// The main command: returns whether every check passed.
async fn run_demo(demo: Demo) -> Result<bool, Box<dyn std::error::Error>> {
    let started = std::time::Instant::now();
    let (runner, emulator) = local_runner::demo::start(
        demo.port,
        match demo.bin_dir {
            Some(dir) => Binaries::Dir(dir),
            None => Binaries::Build {
                profile: demo.profile,
            },
        },
        if demo.function_logs {
            FunctionLogs::Stderr
        } else {
            FunctionLogs::Quiet
        },
    )
    .await?;
    eprintln!(
        "local-runner: stack up in {:.1} s; publishing",
        started.elapsed().as_secs_f64()
    );
    let outcome = local_runner::demo::run(&runner, &emulator).await;
    runner.shutdown().await;
    emulator.shutdown();
    let mut report = outcome?;
    report.seconds = started.elapsed().as_secs_f64();
    print!("{}", report.text());
    std::fs::write(&demo.report, serde_json::to_vec_pretty(&report)?)?;
    println!("JSON report: {}", demo.report.display());
    Ok(report.ok)
}

/// The Threads App ID a stack without the emulator is given (`up` without `--emulator`): numeric,
/// as Meta's are, and no app's. Connecting accounts needs `--emulator`.
const LOCAL_THREADS_APP_ID: &str = "1000000000000001";

async fn run(up: Up) -> Result<(), local_runner::RunnerError> {
    let mut parameters: std::collections::BTreeMap<String, String> =
        up.parameters.into_iter().collect();
    let mut secret_values = std::collections::BTreeMap::new();
    let mut threads_url = up.threads_url;
    let stage = parameters
        .get("StageName")
        .cloned()
        .unwrap_or_else(|| "live".to_owned());
    let emulator = if up.emulator {
        let wiring = local_runner::demo::EmulatorWiring::start(up.port, &stage)
            .await
            .map_err(local_runner::RunnerError::Io)?;
        parameters.extend(wiring.parameters);
        secret_values.extend(wiring.secret_values);
        // The sample handshake's verify token (events/README.md), so a test subscription works.
        secret_values.insert(
            "WebhookVerifyTokenSecret".to_owned(),
            local_runner::events::SAMPLE_VERIFY_TOKEN.to_owned(),
        );
        threads_url = Some(wiring.emulator.base_url());
        Some(wiring.emulator)
    } else {
        // No Threads app of the emulator's: OAuth and the webhooks still need an app id and a
        // redirect URI to start, as on AWS; a stand-in app id no one signs for, unless given.
        parameters
            .entry("ThreadsAppId".to_owned())
            .or_insert_with(|| LOCAL_THREADS_APP_ID.to_owned());
        parameters
            .entry("PublicBaseUrl".to_owned())
            .or_insert_with(|| format!("http://localhost:{}/{stage}", up.port));
        None
    };
    let options = RunnerOptions {
        template: up.template,
        binaries: match up.bin_dir {
            Some(dir) => Binaries::Dir(dir),
            None => Binaries::Build {
                profile: up.profile,
            },
        },
        threads_url,
        stack_name: Some(up.stack_name),
        parameters,
        secret_values,
        api_port: up.port,
        schedule_speedup: up.speedup,
        run_schedules: !up.no_schedules,
        functions: up.functions,
        function_logs: if up.quiet_functions {
            FunctionLogs::Quiet
        } else {
            FunctionLogs::Stderr
        },
        ..RunnerOptions::default()
    };
    let started = std::time::Instant::now();
    let runner = Runner::start(options).await?;
    report(&runner, started.elapsed());
    if let (Some(emulator), Some(api)) = (&emulator, runner.api_url()) {
        let users: Vec<&str> = emulator
            .config()
            .users
            .iter()
            .map(|u| u.id.as_str())
            .collect();
        println!(
            "\nThreads emulator at {} (test users {})",
            emulator.base_url(),
            users.join(", ")
        );
        println!("connect an account (the emulator approves at once):");
        // `localhost`, not 127.0.0.1: the redirect URI registered with the emulator names
        // localhost, and the state cookie must come back to the host that set it.
        let api = api.replacen("127.0.0.1", "localhost", 1);
        println!("  curl -s -c jar -b jar -L -H 'Accept: application/json' {api}/oauth/start");
    }

    wait_for_stop().await;
    eprintln!("local-runner: stopping");
    runner.shutdown().await;
    Ok(())
}

fn report(runner: &Runner, took: std::time::Duration) {
    let moto = if runner.started_moto() {
        "moto started by the runner"
    } else {
        "AWS_ENDPOINT_URL"
    };
    println!(
        "\nThreadStorm running locally (AWS at {}, {moto}; stack {})",
        runner.endpoint(),
        runner.stack().name
    );
    if let Some(build) = runner.build_time() {
        println!("  function binaries built in {:.1} s", build.as_secs_f64());
    }
    println!("\nfunctions (cold start = process start to its first request for work):");
    let cold = runner.cold_starts();
    for name in runner.function_names() {
        let state = match runner.function_state(&name) {
            Ok(FunctionState::Ready) => "ready".to_owned(),
            Ok(FunctionState::Failed(e)) => format!("FAILED: {} {}", e.error_type, e.error_message),
            Ok(other) => format!("{other:?}"),
            Err(e) => e.to_string(),
        };
        let start = cold
            .iter()
            .find(|c| c.function == name)
            .map(|c| {
                let memory = c
                    .rss_kib
                    .map(|k| format!(", {:.1} MB", k as f64 / 1024.0))
                    .unwrap_or_default();
                format!("{:.1} ms{memory}", c.duration.as_secs_f64() * 1000.0)
            })
            .unwrap_or_else(|| "-".to_owned());
        println!("  {name:<26} {start:<20} {state}");
    }
    if let Some(url) = runner.api_url() {
        println!("\nAPI at {url}");
        for (method, path, function) in runner.routes() {
            println!("  {method:<6} {path:<36} {function}");
        }
    }
    if !runner.mappings().is_empty() {
        println!("\nqueues polled:");
        for m in runner.mappings() {
            let partial = if m.report_batch_item_failures {
                ", partial batch responses"
            } else {
                ""
            };
            let off = if m.enabled { "" } else { " (disabled)" };
            println!(
                "  {:<24} -> {} (batches of {}{partial}){off}",
                m.queue, m.function, m.batch_size
            );
        }
    }
    if !runner.schedules().is_empty() {
        println!("\nschedules:");
        for s in runner.schedules() {
            let every = s
                .every
                .map(|d| format!("every {:.2} s", d.as_secs_f64()))
                .unwrap_or_else(|| "not fired automatically".to_owned());
            println!("  {:<24} {:<18} {every}", s.function, s.expression);
        }
    }
    println!(
        "\nup in {:.1} s; one line per invocation follows on stderr. Ctrl-C stops everything.",
        took.as_secs_f64()
    );
}

/// Ctrl-C or SIGTERM.
async fn wait_for_stop() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
