//! What an invocation ends in, and the journal of every invocation and cold start.
//!
//! The journal prints one line per invocation to stderr (function, duration, outcome, trigger) and
//! keeps every record for the lib API and the tests.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Lambda's error payload: `{"errorType": …, "errorMessage": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "errorType")]
    pub error_type: String,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
}

impl ErrorBody {
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Self {
        ErrorBody {
            error_type: error_type.into(),
            error_message: error_message.into(),
        }
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The function posted a response (the payload, as posted).
    Response(Vec<u8>),
    /// The function posted an error: a handler error, or a panic the runtime caught.
    FunctionError(ErrorBody),
    /// It ran past its Timeout; the process was killed (`Sandbox.Timedout`).
    TimedOut(ErrorBody),
    /// The process exited without answering (`Runtime.ExitError`); it is started again.
    Crashed(ErrorBody),
    /// The function could not initialise and is marked failed; nothing was run.
    InitFailed(ErrorBody),
}

/// The kind of an [`Outcome`], without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    Ok,
    FunctionError,
    TimedOut,
    Crashed,
    InitFailed,
}

impl Outcome {
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Response(_) => OutcomeKind::Ok,
            Outcome::FunctionError(_) => OutcomeKind::FunctionError,
            Outcome::TimedOut(_) => OutcomeKind::TimedOut,
            Outcome::Crashed(_) => OutcomeKind::Crashed,
            Outcome::InitFailed(_) => OutcomeKind::InitFailed,
        }
    }

    pub fn error(&self) -> Option<&ErrorBody> {
        match self {
            Outcome::Response(_) => None,
            Outcome::FunctionError(e)
            | Outcome::TimedOut(e)
            | Outcome::Crashed(e)
            | Outcome::InitFailed(e) => Some(e),
        }
    }

    /// What Lambda's Invoke API would return as the payload: the response, or the error body.
    pub fn payload(&self) -> Vec<u8> {
        match self {
            Outcome::Response(bytes) => bytes.clone(),
            other => other
                .error()
                .and_then(|e| serde_json::to_vec(e).ok())
                .unwrap_or_default(),
        }
    }
}

/// The result of one invocation, as [`crate::Runner::invoke`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The function's logical id.
    pub function: String,
    pub request_id: String,
    pub duration: Duration,
    pub outcome: Outcome,
}

impl Invocation {
    /// The response payload parsed as JSON (`None` for an error or a payload that is not JSON).
    pub fn json(&self) -> Option<Value> {
        match &self.outcome {
            Outcome::Response(bytes) => serde_json::from_slice(bytes).ok(),
            _ => None,
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Response(_))
    }
}

/// What caused an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// [`crate::Runner::invoke`].
    Direct,
    /// An HTTP request through the API Gateway front, and the status it was answered with.
    Api {
        method: String,
        path: String,
        status: u16,
    },
    /// A batch from an SQS event source mapping, and what became of each message.
    Sqs(BatchRecord),
    /// A schedule firing (or fired by hand).
    Schedule { event: String },
}

/// One batch an SQS event source mapping handed to a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    /// The queue's logical id.
    pub queue: String,
    pub messages: Vec<BatchMessage>,
    /// Why nothing was deleted, when the whole batch is left for retry.
    pub retry_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMessage {
    pub message_id: String,
    pub group_id: Option<String>,
    pub receive_count: u32,
    /// Deleted from the queue after the invocation (otherwise it is left to become visible again).
    pub deleted: bool,
}

/// One line of the invocation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationRecord {
    pub function: String,
    pub request_id: String,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub kind: OutcomeKind,
    pub error: Option<ErrorBody>,
    pub trigger: Trigger,
}

/// Why a function process was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartCause {
    /// The runner started.
    First,
    /// The previous process exited during an invocation.
    AfterCrash,
    /// The previous process was killed at its Timeout.
    AfterTimeout,
    /// The previous process exited between invocations.
    AfterExit,
}

/// Process spawn → the runtime's first `GET /runtime/invocation/next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdStart {
    pub function: String,
    pub duration: Duration,
    pub cause: StartCause,
    /// Resident memory when the runtime first asked for work (Linux only).
    pub rss_kib: Option<u64>,
}

/// Every invocation and cold start of a runner.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    inner: Arc<Mutex<JournalInner>>,
    echo: bool,
}

#[derive(Debug, Default)]
struct JournalInner {
    invocations: Vec<InvocationRecord>,
    cold_starts: Vec<ColdStart>,
}

impl Journal {
    /// `echo`: print one line per invocation and cold start to stderr.
    pub fn new(echo: bool) -> Self {
        Journal {
            inner: Arc::default(),
            echo,
        }
    }

    fn lock(&self) -> MutexGuard<'_, JournalInner> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn record(&self, invocation: &Invocation, trigger: Trigger) {
        let record = InvocationRecord {
            function: invocation.function.clone(),
            request_id: invocation.request_id.clone(),
            started_at: SystemTime::now() - invocation.duration,
            duration: invocation.duration,
            kind: invocation.outcome.kind(),
            error: invocation.outcome.error().cloned(),
            trigger,
        };
        if self.echo {
            eprintln!("{}", line(&record));
        }
        self.lock().invocations.push(record);
    }

    pub fn cold_start(&self, cold_start: ColdStart) {
        if self.echo {
            let memory = cold_start
                .rss_kib
                .map(|kib| format!(", {:.1} MB resident", kib as f64 / 1024.0))
                .unwrap_or_default();
            let cause = match cold_start.cause {
                StartCause::First => "",
                StartCause::AfterCrash => " (restarted after a crash)",
                StartCause::AfterTimeout => " (restarted after a timeout)",
                StartCause::AfterExit => " (restarted after it exited)",
            };
            eprintln!(
                "local-runner: {} cold start {:.1} ms{memory}{cause}",
                cold_start.function,
                millis(cold_start.duration)
            );
        }
        self.lock().cold_starts.push(cold_start);
    }

    pub fn invocations(&self) -> Vec<InvocationRecord> {
        self.lock().invocations.clone()
    }

    pub fn cold_starts(&self) -> Vec<ColdStart> {
        self.lock().cold_starts.clone()
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `local-runner: DedupeFunction 3.2 ms error Unhandled · SQS IntakeQueue: 3 messages, …`
fn line(record: &InvocationRecord) -> String {
    let outcome = match (&record.kind, &record.error) {
        (OutcomeKind::Ok, _) => "ok".to_owned(),
        (OutcomeKind::FunctionError, Some(e)) => format!("error {}", e.error_type),
        (OutcomeKind::TimedOut, _) => "timed out".to_owned(),
        (OutcomeKind::Crashed, _) => "crashed".to_owned(),
        (OutcomeKind::InitFailed, _) => "init failed".to_owned(),
        (OutcomeKind::FunctionError, None) => "error".to_owned(),
    };
    let trigger = match &record.trigger {
        Trigger::Direct => "invoke".to_owned(),
        Trigger::Api {
            method,
            path,
            status,
        } => format!("API {method} {path} -> {status}"),
        Trigger::Sqs(batch) => {
            let deleted = batch.messages.iter().filter(|m| m.deleted).count();
            let left = batch.messages.len() - deleted;
            let reason = match (&batch.retry_reason, left) {
                (Some(r), _) => format!(" ({r})"),
                (None, 0) => String::new(),
                (None, _) => " (reported in batchItemFailures)".to_owned(),
            };
            format!(
                "SQS {}: {} message(s), {deleted} deleted, {left} left for retry{reason}",
                batch.queue,
                batch.messages.len()
            )
        }
        Trigger::Schedule { event } => format!("schedule {event}"),
    };
    format!(
        "local-runner: {} {:.1} ms {outcome} · {trigger} · {}",
        record.function,
        millis(record.duration),
        record.request_id
    )
}
