//! The Lambda Runtime API (2018-06-01) for one function process, on a loopback port that the
//! process finds in `AWS_LAMBDA_RUNTIME_API`.
//!
//! The runtime long-polls `GET /runtime/invocation/next` for an event and answers with
//! `POST …/{id}/response` or `POST …/{id}/error`; an initialisation failure is posted to
//! `/runtime/init/error`. Everything the process says is passed to its supervisor
//! ([`crate::process`]) as a [`RuntimeEvent`]; the supervisor decides what it means.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::invocation::ErrorBody;
use crate::serve::{Server, serve};

/// Lambda refuses responses over 6 MB (synchronous invocations).
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// An invocation waiting for the runtime's next `GET next`.
#[derive(Debug, Clone)]
pub(crate) struct PendingInvocation {
    pub request_id: String,
    pub deadline_ms: u64,
    pub function_arn: String,
    pub trace_id: String,
    pub event: Vec<u8>,
}

/// What the runtime told us.
#[derive(Debug)]
pub(crate) enum RuntimeEvent {
    /// Its first `GET next`: initialisation is over.
    Ready(Instant),
    InitError(ErrorBody),
    Response {
        request_id: String,
        body: Vec<u8>,
    },
    Error {
        request_id: String,
        error: ErrorBody,
    },
}

/// One process's Runtime API. Dropping it closes the port and every connection.
pub(crate) struct RuntimeApi {
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<RuntimeEvent>,
    pub invocations: mpsc::Sender<PendingInvocation>,
    _server: Server,
}

struct ApiState {
    events: mpsc::UnboundedSender<RuntimeEvent>,
    invocations: tokio::sync::Mutex<mpsc::Receiver<PendingInvocation>>,
    lifecycle: Mutex<Lifecycle>,
}

#[derive(Default)]
struct Lifecycle {
    ready: bool,
    /// The request id handed out by `next` and not yet answered.
    in_flight: Option<String>,
}

impl ApiState {
    fn lifecycle(&self) -> std::sync::MutexGuard<'_, Lifecycle> {
        self.lifecycle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let (events_tx, events) = mpsc::unbounded_channel();
        let (invocations, invocations_rx) = mpsc::channel(1);
        let state = Arc::new(ApiState {
            events: events_tx,
            invocations: tokio::sync::Mutex::new(invocations_rx),
            lifecycle: Mutex::default(),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{request_id}/response",
                post(response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{request_id}/error",
                post(error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state);
        let server = serve(listener, router)?;
        Ok(RuntimeApi {
            addr: server.addr,
            events,
            invocations,
            _server: server,
        })
    }
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn refused(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"errorType": error_type, "errorMessage": message})),
    )
        .into_response()
}

async fn next(State(state): State<Arc<ApiState>>) -> Response {
    let first = {
        let mut lifecycle = state.lifecycle();
        !std::mem::replace(&mut lifecycle.ready, true)
    };
    if first {
        let _ = state.events.send(RuntimeEvent::Ready(Instant::now()));
    }
    let pending = {
        let mut queue = state.invocations.lock().await;
        queue.recv().await
    };
    let Some(pending) = pending else {
        // The supervisor is gone: the process is about to be stopped.
        return refused(
            StatusCode::GONE,
            "Runtime.Stopped",
            "the local runner is shutting down",
        );
    };
    state.lifecycle().in_flight = Some(pending.request_id.clone());

    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put("lambda-runtime-aws-request-id", &pending.request_id);
    put(
        "lambda-runtime-deadline-ms",
        &pending.deadline_ms.to_string(),
    );
    put("lambda-runtime-invoked-function-arn", &pending.function_arn);
    put("lambda-runtime-trace-id", &pending.trace_id);
    put("content-type", "application/json");
    (StatusCode::OK, headers, Body::from(pending.event)).into_response()
}

/// Takes `request_id` off the in-flight slot; false when it is not the invocation in progress.
fn settle(state: &ApiState, request_id: &str) -> bool {
    let mut lifecycle = state.lifecycle();
    let in_flight = lifecycle.in_flight.as_deref() == Some(request_id);
    if in_flight {
        lifecycle.in_flight = None;
    }
    in_flight
}

fn unknown_request(request_id: &str) -> Response {
    refused(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &format!("{request_id} is not the invocation in progress"),
    )
}

async fn response(
    State(state): State<Arc<ApiState>>,
    Path(request_id): Path<String>,
    request: Request,
) -> Response {
    if !settle(&state, &request_id) {
        return unknown_request(&request_id);
    }
    match axum::body::to_bytes(request.into_body(), MAX_RESPONSE_BYTES).await {
        Ok(body) => {
            let _ = state.events.send(RuntimeEvent::Response {
                request_id,
                body: body.to_vec(),
            });
            accepted()
        }
        Err(_) => {
            let message = format!(
                "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            );
            let _ = state.events.send(RuntimeEvent::Error {
                request_id,
                error: ErrorBody::new("Function.ResponseSizeTooLarge", &message),
            });
            refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &message,
            )
        }
    }
}

async fn error(
    State(state): State<Arc<ApiState>>,
    Path(request_id): Path<String>,
    request: Request,
) -> Response {
    if !settle(&state, &request_id) {
        return unknown_request(&request_id);
    }
    let error = read_error(request).await;
    let _ = state.events.send(RuntimeEvent::Error { request_id, error });
    accepted()
}

async fn init_error(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    if state.lifecycle().ready {
        return refused(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "init/error after the runtime asked for an invocation",
        );
    }
    let error = read_error(request).await;
    let _ = state.events.send(RuntimeEvent::InitError(error));
    accepted()
}

/// An error report: the body's `errorType` and `errorMessage`, falling back to the
/// `Lambda-Runtime-Function-Error-Type` header and the raw body.
async fn read_error(request: Request) -> ErrorBody {
    let header_type = request
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(request.into_body(), MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    ErrorBody {
        error_type: field("errorType")
            .or(header_type)
            .unwrap_or_else(|| "Unhandled".to_owned()),
        error_message: field("errorMessage")
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()),
    }
}
