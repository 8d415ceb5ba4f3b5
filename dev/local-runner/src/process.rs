//! One function: its process, started from the deployed binary with Lambda's environment, and the
//! supervisor that feeds it invocations one at a time through its Runtime API.
//!
//! Like Lambda: an invocation past the Timeout is `Sandbox.Timedout` and the process is killed; a
//! process that exits without answering is `Runtime.ExitError`; either way a new process is
//! started (a cold start) for the next invocation. A process that fails to initialise (posts
//! `/runtime/init/error`, exits before asking for work, or takes longer than the init timeout)
//! marks the function failed: every invocation then returns that error and nothing is restarted.
//! Concurrency is one per function: invocations queue in order.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::functions::FunctionDef;
use crate::invocation::{ColdStart, ErrorBody, Invocation, Journal, Outcome, StartCause};
use crate::runtime_api::{PendingInvocation, RuntimeApi, RuntimeEvent};

/// Lines of each function's output kept for error reports and [`FunctionHandle::output`].
const OUTPUT_LINES_KEPT: usize = 200;

/// Where the function processes' stdout and stderr go (Lambda sends both to CloudWatch Logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FunctionLogs {
    /// Each line to the runner's stderr, prefixed with the function's logical id.
    #[default]
    Stderr,
    /// Only kept in memory (the last lines, see [`FunctionHandle::output`]).
    Quiet,
}

/// What a function process is started with.
#[derive(Debug, Clone)]
pub struct Launch {
    pub binary: PathBuf,
    /// The whole environment but `AWS_LAMBDA_RUNTIME_API` (which is per process).
    pub env: BTreeMap<String, String>,
    pub function_arn: String,
}

/// Where a function is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionState {
    /// A process is starting (first start or after a crash or timeout).
    Starting,
    /// Its runtime is waiting for work.
    Ready,
    /// It could not initialise; invocations return this error.
    Failed(ErrorBody),
    /// The runner stopped it.
    Stopped,
}

#[derive(Debug, thiserror::Error)]
#[error("{0} is not running (the runner is stopping)")]
pub struct NotRunning(pub String);

struct Job {
    event: Vec<u8>,
    reply: oneshot::Sender<Invocation>,
}

/// A handle to a running function: invoke it, watch its state, read its recent output.
#[derive(Clone)]
pub struct FunctionHandle {
    def: Arc<FunctionDef>,
    jobs: mpsc::Sender<Job>,
    state: watch::Receiver<FunctionState>,
    output: Arc<Mutex<VecDeque<String>>>,
}

impl FunctionHandle {
    pub fn def(&self) -> &FunctionDef {
        &self.def
    }

    pub fn state(&self) -> FunctionState {
        self.state.borrow().clone()
    }

    /// Invokes the function with `event` (JSON bytes), after the invocations queued before it.
    pub async fn invoke(&self, event: Vec<u8>) -> Result<Invocation, NotRunning> {
        let (reply, answer) = oneshot::channel();
        let stopped = || NotRunning(self.def.logical_id.clone());
        self.jobs
            .send(Job { event, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }

    /// Waits until the function is no longer starting, and returns its state.
    pub async fn settled(&self) -> FunctionState {
        let mut state = self.state.clone();
        match state
            .wait_for(|s| !matches!(s, FunctionState::Starting))
            .await
        {
            Ok(s) => s.clone(),
            Err(_) => FunctionState::Stopped,
        }
    }

    /// The last lines the function's processes wrote to stdout and stderr.
    pub fn output(&self) -> Vec<String> {
        lock(&self.output).iter().cloned().collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts supervising `def`: its first process is spawned at once.
pub(crate) fn spawn(
    def: FunctionDef,
    launch: Launch,
    logs: FunctionLogs,
    journal: Journal,
    shutdown: watch::Receiver<bool>,
    init_timeout: Duration,
) -> (FunctionHandle, JoinHandle<()>) {
    let def = Arc::new(def);
    let (jobs_tx, jobs) = mpsc::channel(256);
    let (state_tx, state) = watch::channel(FunctionState::Starting);
    let output = Arc::new(Mutex::new(VecDeque::new()));
    let supervisor = Supervisor {
        def: def.clone(),
        launch,
        logs,
        journal,
        shutdown,
        init_timeout,
        jobs,
        state: state_tx,
        output: output.clone(),
    };
    let task = tokio::spawn(supervisor.run());
    (
        FunctionHandle {
            def,
            jobs: jobs_tx,
            state,
            output,
        },
        task,
    )
}

struct Supervisor {
    def: Arc<FunctionDef>,
    launch: Launch,
    logs: FunctionLogs,
    journal: Journal,
    shutdown: watch::Receiver<bool>,
    init_timeout: Duration,
    jobs: mpsc::Receiver<Job>,
    state: watch::Sender<FunctionState>,
    output: Arc<Mutex<VecDeque<String>>>,
}

/// A running process and its Runtime API.
struct Sandbox {
    child: Child,
    api: RuntimeApi,
}

enum StartFailure {
    Stopping,
    Failed(ErrorBody),
}

enum AfterServing {
    Stop,
    Restart(StartCause),
}

impl Supervisor {
    async fn run(mut self) {
        let mut cause = StartCause::First;
        loop {
            let _ = self.state.send(FunctionState::Starting);
            let mut sandbox = match self.start(cause).await {
                Ok(sandbox) => sandbox,
                Err(StartFailure::Stopping) => break,
                Err(StartFailure::Failed(error)) => {
                    self.report_init_failure(&error);
                    let _ = self.state.send(FunctionState::Failed(error.clone()));
                    self.fail_every_invocation(error).await;
                    break;
                }
            };
            let _ = self.state.send(FunctionState::Ready);
            let next = self.serve(&mut sandbox).await;
            let _ = sandbox.child.kill().await;
            match next {
                AfterServing::Stop => break,
                AfterServing::Restart(why) => cause = why,
            }
        }
        let _ = self.state.send(FunctionState::Stopped);
    }

    /// Spawns a process and waits for its first `GET next`.
    async fn start(&mut self, cause: StartCause) -> Result<Sandbox, StartFailure> {
        let failed = |error_type: &str, message: String| {
            StartFailure::Failed(ErrorBody::new(error_type, message))
        };
        let mut api = RuntimeApi::start()
            .await
            .map_err(|e| failed("Runtime.Unknown", format!("Runtime API: {e}")))?;
        let spawned_at = Instant::now();
        let mut child = Command::new(&self.launch.binary)
            .env_clear()
            .envs(&self.launch.env)
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .current_dir(
                self.launch
                    .binary
                    .parent()
                    .unwrap_or_else(|| std::path::Path::new(".")),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                failed(
                    "Runtime.InvalidEntrypoint",
                    format!("{}: {e}", self.launch.binary.display()),
                )
            })?;
        if let Some(stdout) = child.stdout.take() {
            self.pipe_output(stdout);
        }
        if let Some(stderr) = child.stderr.take() {
            self.pipe_output(stderr);
        }

        let deadline = tokio::time::sleep(self.init_timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                event = api.events.recv() => match event {
                    Some(RuntimeEvent::Ready(at)) => {
                        self.journal.cold_start(ColdStart {
                            function: self.def.logical_id.clone(),
                            duration: at.saturating_duration_since(spawned_at),
                            cause,
                            rss_kib: child.id().and_then(resident_kib),
                        });
                        return Ok(Sandbox { child, api });
                    }
                    Some(RuntimeEvent::InitError(error)) => {
                        let _ = child.kill().await;
                        return Err(StartFailure::Failed(error));
                    }
                    // Answers to invocations it was never given: ignore.
                    Some(_) => continue,
                    None => return Err(failed("Runtime.Unknown", "Runtime API stopped".into())),
                },
                status = child.wait() => {
                    let error = match status {
                        Ok(status) => exit_error(None, status),
                        Err(e) => ErrorBody::new("Runtime.ExitError", e.to_string()),
                    };
                    return Err(StartFailure::Failed(error));
                }
                () = &mut deadline => {
                    let _ = child.kill().await;
                    return Err(failed(
                        "Sandbox.Timedout",
                        format!(
                            "INIT phase timed out after {:.2} seconds",
                            self.init_timeout.as_secs_f64()
                        ),
                    ));
                }
                () = stopping(&mut self.shutdown) => {
                    let _ = child.kill().await;
                    return Err(StartFailure::Stopping);
                }
            }
        }
    }

    /// Hands invocations to the process until it must be replaced or the runner stops.
    async fn serve(&mut self, sandbox: &mut Sandbox) -> AfterServing {
        loop {
            let job = tokio::select! {
                biased;
                () = stopping(&mut self.shutdown) => return AfterServing::Stop,
                job = self.jobs.recv() => match job {
                    Some(job) => job,
                    None => return AfterServing::Stop,
                },
                status = sandbox.child.wait() => {
                    if let Ok(status) = status {
                        self.note(&format!("exited between invocations ({})", describe(status)));
                    }
                    return AfterServing::Restart(StartCause::AfterExit);
                }
            };
            let (invocation, restart) = self.invoke(sandbox, job.event).await;
            let _ = job.reply.send(invocation);
            if let Some(next) = restart {
                return next;
            }
        }
    }

    /// One invocation. Returns what to do next when the process cannot go on.
    async fn invoke(
        &mut self,
        sandbox: &mut Sandbox,
        event: Vec<u8>,
    ) -> (Invocation, Option<AfterServing>) {
        let request_id = uuid::Uuid::new_v4().to_string();
        let timeout = self.def.timeout;
        let started = Instant::now();
        let deadline_ms = epoch_millis(SystemTime::now() + timeout);
        let finish = |outcome: Outcome| Invocation {
            function: self.def.logical_id.clone(),
            request_id: request_id.clone(),
            duration: started.elapsed(),
            outcome,
        };
        let pending = PendingInvocation {
            request_id: request_id.clone(),
            deadline_ms,
            function_arn: self.launch.function_arn.clone(),
            trace_id: trace_id(),
            event,
        };
        if sandbox.api.invocations.send(pending).await.is_err() {
            let error = ErrorBody::new("Runtime.Unknown", "Runtime API stopped");
            return (
                finish(Outcome::Crashed(error)),
                Some(AfterServing::Restart(StartCause::AfterCrash)),
            );
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                biased;
                event = sandbox.api.events.recv() => match event {
                    Some(RuntimeEvent::Response { request_id: id, body }) if id == request_id => {
                        return (finish(Outcome::Response(body)), None);
                    }
                    Some(RuntimeEvent::Error { request_id: id, error }) if id == request_id => {
                        return (finish(Outcome::FunctionError(error)), None);
                    }
                    Some(_) => continue,
                    None => {
                        let error = ErrorBody::new("Runtime.Unknown", "Runtime API stopped");
                        return (finish(Outcome::Crashed(error)), Some(AfterServing::Restart(StartCause::AfterCrash)));
                    }
                },
                status = sandbox.child.wait() => {
                    let error = match status {
                        Ok(status) => exit_error(Some(&request_id), status),
                        Err(e) => ErrorBody::new("Runtime.ExitError", e.to_string()),
                    };
                    return (finish(Outcome::Crashed(error)), Some(AfterServing::Restart(StartCause::AfterCrash)));
                }
                () = &mut deadline => {
                    let error = ErrorBody::new(
                        "Sandbox.Timedout",
                        format!(
                            "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                            timeout.as_secs_f64()
                        ),
                    );
                    return (finish(Outcome::TimedOut(error)), Some(AfterServing::Restart(StartCause::AfterTimeout)));
                }
                () = stopping(&mut self.shutdown) => {
                    let error = ErrorBody::new("Runtime.Stopped", "the local runner stopped during the invocation");
                    return (finish(Outcome::Crashed(error)), Some(AfterServing::Stop));
                }
            }
        }
    }

    /// After a failed init: every invocation gets the init error, until the runner stops.
    async fn fail_every_invocation(&mut self, error: ErrorBody) {
        loop {
            let job = tokio::select! {
                () = stopping(&mut self.shutdown) => return,
                job = self.jobs.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            let _ = job.reply.send(Invocation {
                function: self.def.logical_id.clone(),
                request_id: uuid::Uuid::new_v4().to_string(),
                duration: Duration::ZERO,
                outcome: Outcome::InitFailed(error.clone()),
            });
        }
    }

    fn report_init_failure(&self, error: &ErrorBody) {
        let tail: Vec<String> = lock(&self.output).iter().rev().take(5).cloned().collect();
        let mut message = format!(
            "local-runner: {} failed to initialise: {} {}",
            self.def.logical_id, error.error_type, error.error_message
        );
        if !tail.is_empty() {
            message.push_str("; its last output:");
            for line in tail.iter().rev() {
                message.push_str("\n    ");
                message.push_str(line);
            }
        }
        eprintln!("{message}");
    }

    fn note(&self, what: &str) {
        eprintln!("local-runner: {} {what}", self.def.logical_id);
    }

    fn pipe_output(&self, stream: impl AsyncRead + Unpin + Send + 'static) {
        let output = self.output.clone();
        let echo = (self.logs == FunctionLogs::Stderr).then(|| self.def.logical_id.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(name) = &echo {
                    eprintln!("[{name}] {line}");
                }
                let mut kept = lock(&output);
                if kept.len() == OUTPUT_LINES_KEPT {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
    }
}

/// Resolves once the runner is stopping (or gone).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Lambda's message for a runtime that exited: `Runtime exited with error: exit status 3`.
fn exit_error(request_id: Option<&str>, status: ExitStatus) -> ErrorBody {
    let what = format!("Runtime exited with error: {}", describe(status));
    let message = match request_id {
        Some(id) => format!("RequestId: {id} Error: {what}"),
        None => what,
    };
    ErrorBody::new("Runtime.ExitError", message)
}

/// `exit status 3`, `signal: killed` — the wording Lambda's logs use.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(6) => "signal: aborted".into(),
        Some(9) => "signal: killed".into(),
        Some(11) => "signal: segmentation fault".into(),
        Some(15) => "signal: terminated".into(),
        Some(n) => format!("signal: {n}"),
        None => status.to_string(),
    }
}

fn epoch_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// An X-Ray trace header: `Root=1-<epoch hex>-<24 hex>;Parent=<16 hex>;Sampled=0`.
fn trace_id() -> String {
    let mut rng = rand::rng();
    let seconds = epoch_millis(SystemTime::now()) / 1000;
    format!(
        "Root=1-{seconds:08x}-{:024x};Parent={:016x};Sampled=0",
        rng.random::<u128>() & ((1u128 << 96) - 1),
        rng.random::<u64>()
    )
}

/// VmRSS of a process, in KiB (Linux).
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_have_xray_shape() {
        let id = trace_id();
        let root = id
            .strip_prefix("Root=1-")
            .and_then(|r| r.split(';').next())
            .unwrap();
        let parts: Vec<&str> = root.split('-').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].len(), 8);
        assert_eq!(parts[1].len(), 24);
        assert!(id.ends_with(";Sampled=0"));
    }

    #[test]
    fn exit_errors_read_like_lambda() {
        use std::os::unix::process::ExitStatusExt;
        let error = exit_error(Some("abc"), ExitStatus::from_raw(3 << 8));
        assert_eq!(error.error_type, "Runtime.ExitError");
        assert_eq!(
            error.error_message,
            "RequestId: abc Error: Runtime exited with error: exit status 3"
        );
        assert_eq!(describe(ExitStatus::from_raw(9)), "signal: killed");
    }
}
