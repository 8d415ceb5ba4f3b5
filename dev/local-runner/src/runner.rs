//! The runner: local AWS (moto) with the template's resources, every function's process, the API
//! Gateway front, the SQS event source mappings and the schedules — started together, stopped
//! together (by [`Runner::shutdown`], or by dropping the runner).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use local_stack::moto::{MotoError, sdk_config_for};
use local_stack::stack::{ACCOUNT_ID, StackError};
use local_stack::template::TemplateError;
use local_stack::testing::unique_stack_name;
use local_stack::{Moto, Stack, StackOptions, Template};
use rand::Rng;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::apigw::{self, ApiContext, Front, Routes};
use crate::binaries::{self, Binaries, BuildError};
use crate::functions::{self, DefinitionError, FunctionDef, RestApiDef};
use crate::invocation::{ColdStart, Invocation, InvocationRecord, Journal, Trigger};
use crate::process::{self, FunctionHandle, FunctionLogs, FunctionState, Launch, NotRunning};
use crate::schedule::{self, Period, Ticker};
use crate::serve::{Server, serve};
use crate::sqs_mapping::Poller;

/// Where the local AWS is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AwsEndpoint {
    /// `AWS_ENDPOINT_URL` when something answers there; otherwise start moto (and stop it after).
    #[default]
    Auto,
    /// This endpoint (a moto server someone else runs).
    Endpoint(String),
    /// Always start moto on a free loopback port.
    StartMoto,
}

/// What to run and how. `RunnerOptions::default()` runs template.yaml's functions, built by cargo
/// in the dev profile, against moto.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// The SAM template; the workspace's template.yaml when `None`.
    pub template: Option<PathBuf>,
    pub binaries: Binaries,
    /// Binary paths by binary name, over [`RunnerOptions::binaries`] (for binaries cargo does not
    /// build as workspace packages, such as test fixtures).
    pub binary_paths: BTreeMap<String, PathBuf>,
    pub aws: AwsEndpoint,
    /// The Threads emulator's base URL, given to every function as `THREADS_GRAPH_URL` (and its
    /// authorization window as `THREADS_AUTH_URL`).
    pub threads_url: Option<String>,
    /// The stack's name (physical names are made from it); a fresh unique one when `None`.
    pub stack_name: Option<String>,
    /// Template parameter values over their defaults.
    pub parameters: BTreeMap<String, String>,
    /// Secret values by logical id, instead of generated ones.
    pub secret_values: BTreeMap<String, String>,
    /// The API front's port on 127.0.0.1 (0: any free port).
    pub api_port: u16,
    /// Schedules run this many times faster than real time (60: `rate(1 minute)` fires every
    /// second).
    pub schedule_speedup: f64,
    /// Fire the schedules by themselves (they can always be fired with [`Runner::fire_schedule`]).
    pub run_schedules: bool,
    /// Poll the queues (the SQS event source mappings). Off, messages stay on their queues and
    /// functions run only when invoked ([`Runner::invoke`]) — for replaying sample events.
    pub run_mappings: bool,
    /// Only these functions (logical ids or binary names); all when `None`.
    pub functions: Option<Vec<String>>,
    /// More environment, by function logical id or binary name, or `*` for every function.
    pub extra_env: BTreeMap<String, BTreeMap<String, String>>,
    pub function_logs: FunctionLogs,
    /// One line per invocation and cold start on stderr.
    pub log_invocations: bool,
    /// Lambda's limit on initialisation.
    pub init_timeout: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            template: None,
            binaries: Binaries::default(),
            binary_paths: BTreeMap::new(),
            aws: AwsEndpoint::Auto,
            threads_url: None,
            stack_name: None,
            parameters: BTreeMap::new(),
            secret_values: BTreeMap::new(),
            api_port: 0,
            schedule_speedup: 1.0,
            run_schedules: true,
            run_mappings: true,
            functions: None,
            extra_env: BTreeMap::new(),
            function_logs: FunctionLogs::Stderr,
            log_invocations: true,
            init_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    #[error(transparent)]
    Moto(#[from] MotoError),
    #[error("creating the local stack: {0}")]
    Stack(#[from] StackError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no function {0} in the runner (use a logical id or binary name)")]
    UnknownFunction(String),
    #[error("{function} has no schedule{}", event.as_deref().map(|e| format!(" {e}")).unwrap_or_default())]
    NoSchedule {
        function: String,
        event: Option<String>,
    },
    #[error(transparent)]
    NotRunning(#[from] NotRunning),
    #[error("options: {0}")]
    Options(String),
}

/// A schedule, as the runner runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleInfo {
    pub function: String,
    pub event: String,
    pub expression: String,
    /// The real-time period after the speed-up; `None` when not fired automatically.
    pub every: Option<Duration>,
}

/// An SQS event source mapping, as the runner runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingInfo {
    pub function: String,
    pub queue: String,
    pub batch_size: u32,
    pub report_batch_item_failures: bool,
    pub enabled: bool,
}

/// A running local deployment. Dropping it stops everything it started.
pub struct Runner {
    stack: Stack,
    endpoint: String,
    functions: BTreeMap<String, FunctionHandle>,
    routes: Routes,
    rest_api: Option<RestApiDef>,
    front: Option<Server>,
    schedules: Vec<ScheduleInfo>,
    mappings: Vec<MappingInfo>,
    journal: Journal,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    build_time: Option<Duration>,
    // Last: dropped after the functions are told to stop.
    moto: Option<Moto>,
}

impl Runner {
    /// Starts everything and returns once every function is ready (or has failed to initialise).
    pub async fn start(options: RunnerOptions) -> Result<Runner, RunnerError> {
        if !(options.schedule_speedup.is_finite() && options.schedule_speedup > 0.0) {
            return Err(RunnerError::Options(
                "schedule_speedup must be a positive number".into(),
            ));
        }
        let template_path = options
            .template
            .clone()
            .unwrap_or_else(Template::workspace_path);
        let template = Template::load(&template_path)?;
        let (endpoint, moto) = aws_endpoint(&options.aws).await?;
        let sdk = sdk_config_for(&endpoint);
        let stack_name = options.stack_name.clone().unwrap_or_else(unique_stack_name);
        let stack = Stack::create(&sdk, &template, &stack_name, {
            // Local parameters first (not production mode, a loopback public URL), then the
            // caller's overrides.
            let mut stack_options =
                StackOptions::local(&format!("http://localhost:{}/live", options.api_port));
            stack_options.parameters.extend(options.parameters.clone());
            stack_options
                .secret_values
                .extend(options.secret_values.clone());
            stack_options
        })
        .await?;

        let mut defs = functions::read(&stack)?;
        if let Some(only) = &options.functions {
            for name in only {
                if !defs
                    .iter()
                    .any(|d| &d.logical_id == name || &d.binary == name)
                {
                    return Err(RunnerError::UnknownFunction(name.clone()));
                }
            }
            defs.retain(|d| only.iter().any(|n| n == &d.logical_id || n == &d.binary));
        }
        let rest_api = functions::rest_api(&stack, &defs)?;
        let needed: BTreeSet<String> = defs.iter().map(|d| d.binary.clone()).collect();
        let (paths, build_time) =
            binaries::resolve(&options.binaries, &needed, &options.binary_paths).await?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut runner = Runner {
            stack,
            endpoint,
            functions: BTreeMap::new(),
            routes: Routes::new(&defs),
            rest_api,
            front: None,
            schedules: Vec::new(),
            mappings: Vec::new(),
            journal: Journal::new(options.log_invocations),
            shutdown,
            tasks: Vec::new(),
            build_time,
            moto,
        };

        for def in defs {
            let binary = paths
                .get(&def.binary)
                .cloned()
                .ok_or_else(|| RunnerError::UnknownFunction(def.binary.clone()))?;
            let launch = runner.launch(&def, binary, &options)?;
            let (handle, task) = process::spawn(
                def.clone(),
                launch,
                options.function_logs,
                runner.journal.clone(),
                shutdown_rx.clone(),
                options.init_timeout,
            );
            runner.tasks.push(task);
            runner.functions.insert(def.logical_id.clone(), handle);
        }
        for handle in runner.functions.values() {
            handle.settled().await;
        }

        runner.start_front(options.api_port).await?;
        if options.run_mappings {
            runner.start_mappings(&sdk, &shutdown_rx);
        }
        runner.start_schedules(&options, &shutdown_rx);
        Ok(runner)
    }

    /// Lambda's environment for `def`: the template's variables resolved against the stack, what
    /// Lambda itself sets, the Threads emulator's URLs and any extra variables.
    fn launch(
        &self,
        def: &FunctionDef,
        binary: PathBuf,
        options: &RunnerOptions,
    ) -> Result<Launch, RunnerError> {
        let mut env = self.stack.function_env(&def.logical_id, &self.endpoint)?;
        let name = env
            .get("AWS_LAMBDA_FUNCTION_NAME")
            .cloned()
            .unwrap_or_else(|| format!("{}-{}", self.stack.name, def.logical_id));
        let today = OffsetDateTime::now_utc()
            .format(time::macros::format_description!("[year]/[month]/[day]"))
            .unwrap_or_default();
        let stream = format!("{today}/[$LATEST]{:032x}", rand::rng().random::<u128>());
        let task_root = binary
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let lambda = [
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", def.memory_mb.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            ("_HANDLER", def.handler.clone()),
            ("LAMBDA_TASK_ROOT", task_root),
            ("TZ", ":UTC".to_owned()),
            ("LANG", "en_US.UTF-8".to_owned()),
            (
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            ),
        ];
        for (key, value) in lambda {
            env.insert(key.to_owned(), value);
        }
        if let Some(url) = &options.threads_url {
            let base = url.trim_end_matches('/');
            env.insert("THREADS_GRAPH_URL".into(), base.to_owned());
            env.insert("THREADS_AUTH_URL".into(), format!("{base}/oauth/authorize"));
        }
        for key in ["*", def.binary.as_str(), def.logical_id.as_str()] {
            if let Some(extra) = options.extra_env.get(key) {
                env.extend(extra.clone());
            }
        }
        let region = env
            .get("AWS_REGION")
            .cloned()
            .unwrap_or_else(|| local_stack::REGION.to_owned());
        Ok(Launch {
            binary,
            env,
            function_arn: format!("arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"),
        })
    }

    async fn start_front(&mut self, port: u16) -> Result<(), RunnerError> {
        let Some(api) = self.rest_api.clone() else {
            return Ok(());
        };
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let local_port = listener.local_addr()?.port();
        let api_id: String = {
            const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
            let mut rng = rand::rng();
            (0..10)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect()
        };
        let front = Front {
            routes: self.routes.clone(),
            context: ApiContext {
                api_id,
                stage: api.stage.clone(),
                stage_variables: api.stage_variables.clone(),
                account_id: ACCOUNT_ID.to_owned(),
                local_port,
            },
            api,
            functions: self
                .functions
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
            journal: self.journal.clone(),
        };
        self.front = Some(serve(listener, apigw::router(Arc::new(front)))?);
        Ok(())
    }

    fn start_mappings(&mut self, sdk: &SdkConfig, shutdown: &watch::Receiver<bool>) {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        for handle in self.functions.values() {
            for mapping in &handle.def().sqs_events {
                self.mappings.push(MappingInfo {
                    function: handle.def().logical_id.clone(),
                    queue: mapping.queue.clone(),
                    batch_size: mapping.batch_size,
                    report_batch_item_failures: mapping.report_batch_item_failures,
                    enabled: mapping.enabled,
                });
                if !mapping.enabled {
                    continue;
                }
                if mapping.visibility_timeout < handle.def().timeout.as_secs() {
                    eprintln!(
                        "local-runner: warning: {}'s visibility timeout ({} s) is shorter than {}'s \
                         Timeout ({} s); AWS refuses to create this event source mapping",
                        mapping.queue,
                        mapping.visibility_timeout,
                        handle.def().logical_id,
                        handle.def().timeout.as_secs()
                    );
                }
                let poller = Poller {
                    mapping: mapping.clone(),
                    function: handle.clone(),
                    sqs: sqs.clone(),
                    region: local_stack::REGION.to_owned(),
                    journal: self.journal.clone(),
                    shutdown: shutdown.clone(),
                };
                self.tasks.push(tokio::spawn(poller.run()));
            }
        }
    }

    fn start_schedules(&mut self, options: &RunnerOptions, shutdown: &watch::Receiver<bool>) {
        for handle in self.functions.values() {
            let def = handle.def();
            for schedule in &def.schedules {
                let every = match schedule::period(&schedule.expression) {
                    Period::Every(period) if schedule.enabled => Some(
                        Duration::from_secs_f64(period.as_secs_f64() / options.schedule_speedup)
                            .max(Duration::from_millis(10)),
                    ),
                    _ => None,
                };
                self.schedules.push(ScheduleInfo {
                    function: def.logical_id.clone(),
                    event: schedule.name.clone(),
                    expression: schedule.expression.clone(),
                    every: every.filter(|_| options.run_schedules),
                });
                let (Some(every), true) = (every, options.run_schedules) else {
                    continue;
                };
                let ticker = Ticker {
                    schedule: schedule.clone(),
                    every,
                    rule_arn: self.rule_arn(def, &schedule.name),
                    region: local_stack::REGION.to_owned(),
                    account: ACCOUNT_ID.to_owned(),
                    function: handle.clone(),
                    journal: self.journal.clone(),
                    shutdown: shutdown.clone(),
                };
                self.tasks.push(tokio::spawn(ticker.run()));
            }
        }
    }

    fn rule_arn(&self, def: &FunctionDef, event: &str) -> String {
        schedule::rule_arn(
            local_stack::REGION,
            ACCOUNT_ID,
            &self.stack.name,
            &def.logical_id,
            event,
        )
    }

    fn function(&self, name: &str) -> Result<&FunctionHandle, RunnerError> {
        self.functions
            .get(name)
            .or_else(|| {
                self.functions.values().find(|h| {
                    let def = h.def();
                    def.binary == name || format!("{}-{}", self.stack.name, def.logical_id) == name
                })
            })
            .ok_or_else(|| RunnerError::UnknownFunction(name.to_owned()))
    }

    /// Invokes `function` (logical id, binary name or deployed name) with `event`, as
    /// `aws lambda invoke` would, after any invocations queued before it.
    pub async fn invoke(&self, function: &str, event: &Value) -> Result<Invocation, RunnerError> {
        let handle = self.function(function)?;
        let invocation = handle
            .invoke(serde_json::to_vec(event).unwrap_or_default())
            .await?;
        self.journal.record(&invocation, Trigger::Direct);
        Ok(invocation)
    }

    /// Fires one of `function`'s schedules now (`event`: its event name; the first when `None`).
    pub async fn fire_schedule(
        &self,
        function: &str,
        event: Option<&str>,
    ) -> Result<Invocation, RunnerError> {
        let handle = self.function(function)?;
        let def = handle.def();
        let no_schedule = || RunnerError::NoSchedule {
            function: def.logical_id.clone(),
            event: event.map(str::to_owned),
        };
        let schedule = def
            .schedules
            .iter()
            .find(|s| event.is_none_or(|e| s.name == e))
            .ok_or_else(no_schedule)?;
        schedule::fire(
            handle,
            schedule,
            &self.rule_arn(def, &schedule.name),
            local_stack::REGION,
            ACCOUNT_ID,
            &self.journal,
        )
        .await
        .ok_or_else(|| NotRunning(def.logical_id.clone()).into())
    }

    /// The API's base URL, stage included (`http://127.0.0.1:3000/live`); `None` without Api events.
    pub fn api_url(&self) -> Option<String> {
        let (front, api) = (self.front.as_ref()?, self.rest_api.as_ref()?);
        Some(format!("http://{}/{}", front.addr, api.stage))
    }

    /// `(method, path, function)` of every API route.
    pub fn routes(&self) -> Vec<(String, String, String)> {
        self.routes.list()
    }

    pub fn mappings(&self) -> &[MappingInfo] {
        &self.mappings
    }

    pub fn schedules(&self) -> &[ScheduleInfo] {
        &self.schedules
    }

    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The local AWS endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK configuration that reaches the local AWS.
    pub fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint)
    }

    /// Whether the runner started moto itself (and stops it at shutdown).
    pub fn started_moto(&self) -> bool {
        self.moto.is_some()
    }

    /// How long `cargo build` of the function binaries took, when the runner built them.
    pub fn build_time(&self) -> Option<Duration> {
        self.build_time
    }

    /// The logical ids of the functions being run.
    pub fn function_names(&self) -> Vec<String> {
        self.functions.keys().cloned().collect()
    }

    pub fn function_state(&self, function: &str) -> Result<FunctionState, RunnerError> {
        Ok(self.function(function)?.state())
    }

    /// The last lines `function`'s processes wrote.
    pub fn function_output(&self, function: &str) -> Result<Vec<String>, RunnerError> {
        Ok(self.function(function)?.output())
    }

    /// Every cold start so far (first starts and restarts).
    pub fn cold_starts(&self) -> Vec<ColdStart> {
        self.journal.cold_starts()
    }

    /// Every invocation so far, in the order they finished.
    pub fn invocations(&self) -> Vec<InvocationRecord> {
        self.journal.invocations()
    }

    /// Waits until `done` holds for the invocation log, or `timeout` passes; says which.
    pub async fn wait_for_invocations(
        &self,
        timeout: Duration,
        done: impl Fn(&[InvocationRecord]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(&self.journal.invocations()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops pollers, schedules and the API front, kills the function processes and stops moto
    /// if the runner started it.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.front = None;
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        // Aborting drops the supervisors, whose processes are killed on drop.
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn aws_endpoint(choice: &AwsEndpoint) -> Result<(String, Option<Moto>), RunnerError> {
    let start = || async {
        let moto = tokio::task::spawn_blocking(|| Moto::start(None))
            .await
            .map_err(|e| MotoError::Start(e.to_string()))??;
        Ok::<_, RunnerError>((moto.endpoint().to_owned(), Some(moto)))
    };
    match choice {
        AwsEndpoint::Endpoint(endpoint) => Ok((endpoint.clone(), None)),
        AwsEndpoint::StartMoto => start().await,
        AwsEndpoint::Auto => match std::env::var("AWS_ENDPOINT_URL") {
            Ok(endpoint) if !endpoint.is_empty() && answers(&endpoint).await => {
                Ok((endpoint, None))
            }
            _ => start().await,
        },
    }
}

/// Something answers HTTP at `endpoint`.
async fn answers(endpoint: &str) -> bool {
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return false;
    };
    client
        .get(format!("{}/moto-api/", endpoint.trim_end_matches('/')))
        .send()
        .await
        .is_ok()
}
