//! The HTTP face of the emulator: Threads' routes as Meta lays them out, the control routes
//! under `/_emulator`, one log line per request, and the `Emulator` handle that owns the
//! running server.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::calls::{Call, CallCounts};
use crate::clock::Clock;
use crate::config::EmulatorConfig;
use crate::error::GraphError;
use crate::faults::FaultPlan;
use crate::state::{App, ContainerStatus, MediaInsights, PublishedPost, TokenKind};
use crate::webhook::{self, Change, Delivery, DeliveryReport, ValuesShape};
use crate::{containers, control, media, oauth, profile_insights, publishing, quotas, tokens};

/// Every route, Threads' and the control ones.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/oauth/authorize", get(oauth::authorize))
        .route(
            "/oauth/access_token",
            get(oauth::exchange_code).post(oauth::exchange_code),
        )
        .route("/access_token", get(tokens::exchange))
        .route("/refresh_access_token", get(tokens::refresh))
        .route("/debug_token", get(tokens::debug))
        .route("/v1.0/debug_token", get(tokens::debug))
        .route("/v1.0/{id}", get(media::get_object).delete(media::delete))
        .route(
            "/v1.0/{id}/threads",
            get(media::list_threads).post(containers::create),
        )
        .route("/v1.0/{id}/threads_publish", post(publishing::publish))
        .route(
            "/v1.0/{id}/threads_publishing_limit",
            get(quotas::publishing_limit),
        )
        .route("/v1.0/{id}/insights", get(media::insights))
        .route(
            "/v1.0/{id}/threads_insights",
            get(profile_insights::user_insights),
        )
        .route("/v1.0/{id}/replies", get(media::list_replies))
        .route("/v1.0/{id}/conversation", get(media::conversation))
        .nest("/_emulator", control::router())
        .fallback(unknown_path)
        .method_not_allowed_fallback(unsupported_method)
        .layer(middleware::from_fn(log_request))
        .with_state(app)
}

async fn unknown_path(State(app): State<App>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    app.graph(Call::Other, |_, _| Err(GraphError::unknown_path(&path)))
        .await
}

async fn unsupported_method(State(app): State<App>, request: Request) -> Response {
    let method = request.method().as_str().to_ascii_lowercase();
    let path = request.uri().path().to_string();
    let id = path.rsplit('/').next().unwrap_or_default().to_string();
    app.graph(Call::Other, |_, _| {
        Err(GraphError::unknown_object(&method, &id))
    })
    .await
}

/// One line per request: method, path (never the query, which may hold a token), status,
/// milliseconds.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        target: "threads_emulator",
        "{method} {path} -> {} ({} ms)",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

/// A running emulator. It serves until dropped.
pub struct Emulator {
    app: App,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Emulator {
    /// Starts on `127.0.0.1` and a free port.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Emulator> {
        Emulator::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts on `addr`.
    pub async fn start_on(config: EmulatorConfig, addr: SocketAddr) -> std::io::Result<Emulator> {
        config
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let base_url = config
            .public_base_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{addr}"));
        let (shutdown, stop) = watch::channel(false);
        let app = App::new(config, base_url, stop.clone());
        let service = router(app.clone());
        let task = tokio::spawn(async move {
            let mut stop = stop;
            let serving = axum::serve(listener, service).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serving.await {
                tracing::error!(target: "threads_emulator", "server stopped: {e}");
            }
        });
        Ok(Emulator {
            app,
            addr,
            shutdown,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Graph API base, e.g. `http://127.0.0.1:PORT`; clients append `/v1.0/…`,
    /// `/oauth/access_token`, `/access_token`, `/refresh_access_token`.
    pub fn base_url(&self) -> String {
        self.app.0.base_url.clone()
    }

    /// The authorization window, `http://127.0.0.1:PORT/oauth/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}/oauth/authorize", self.base_url())
    }

    pub fn config(&self) -> &EmulatorConfig {
        self.app.config()
    }

    /// The clock every lifetime is measured on.
    pub fn clock(&self) -> &Clock {
        self.app.clock()
    }

    /// A long-lived token (all scopes) for `user_id`, issued now on the emulator clock.
    pub fn issue_long_lived_token(&self, user_id: &str) -> String {
        tokens::issue_direct(&self.app, user_id, TokenKind::LongLived, None)
    }

    /// A short-lived token (one hour) for `user_id`, issued now.
    pub fn issue_short_lived_token(&self, user_id: &str) -> String {
        tokens::issue_direct(&self.app, user_id, TokenKind::ShortLived, None)
    }

    /// A long-lived token with exactly these scopes.
    pub fn issue_token_with_scopes(&self, user_id: &str, scopes: &[&str]) -> String {
        let scopes = scopes.iter().map(|s| s.to_string()).collect();
        tokens::issue_direct(&self.app, user_id, TokenKind::LongLived, Some(scopes))
    }

    /// Invalidates a token: calls with it get code 190 / subcode 460.
    pub fn revoke_token(&self, token: &str) {
        tokens::revoke(&mut self.app.lock(), token);
    }

    /// Adds a fault plan.
    pub fn inject(&self, fault: FaultPlan) {
        self.app.lock().faults.add(fault);
    }

    /// Drops every pending fault plan.
    pub fn clear_faults(&self) {
        self.app.lock().faults.clear();
    }

    /// Every successful publish, in order.
    pub fn published(&self) -> Vec<PublishedPost> {
        self.app.lock().published.clone()
    }

    /// Calls served, by kind.
    pub fn calls(&self) -> CallCounts {
        self.app.lock().calls.clone()
    }

    /// A container's status now, if it exists.
    pub fn container_status(&self, container_id: &str) -> Option<ContainerStatus> {
        let now = self.clock().now_millis();
        let ttl = self.config().container_ttl;
        self.app
            .lock()
            .containers
            .get(container_id)
            .map(|c| c.status(now, ttl))
    }

    /// Sets a media object's insight counters; false when there is no such media.
    pub fn set_media_insights(&self, media_id: &str, insights: MediaInsights) -> bool {
        media::set_insights(&mut self.app.lock(), media_id, insights)
    }

    /// Sets a user's `followers_count`, as `threads_insights` reports it.
    pub fn set_followers_count(&self, user_id: &str, followers_count: u64) {
        profile_insights::set_followers(&mut self.app.lock(), user_id, followers_count);
    }

    /// Forgets all codes, tokens, containers, media, quotas, faults and counts.
    pub fn reset(&self) {
        self.app.reset();
    }

    /// Sends a signed Threads webhook with these changes to `url`, with the configured
    /// retries, and a duplicate delivery when asked.
    pub async fn send_webhook(
        &self,
        url: &str,
        changes: &[Change],
        shape: ValuesShape,
        duplicate: bool,
    ) -> DeliveryReport {
        let config = self.config();
        let target = config
            .users
            .first()
            .map(|u| u.id.clone())
            .unwrap_or_default();
        let body = webhook::envelope(&config.app_id, &target, self.clock().now(), changes, shape);
        let mut delivery = Delivery::new(url, &config.app_secret, body);
        delivery.max_attempts = config.webhook_max_attempts;
        delivery.retry_delay = config.webhook_retry_delay;
        delivery.duplicate = duplicate;
        webhook::deliver(&delivery).await
    }

    /// Stops serving now (dropping does the same).
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Serves until the process is interrupted.
    pub async fn run_until_ctrl_c(self) {
        let _ = tokio::signal::ctrl_c().await;
        self.shutdown();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}
