//! The emulator's memory (codes, tokens, containers, media, quotas, faults, call counts) and the
//! one path every API call takes through it: count the call, draw a fault, run the operation
//! under the lock, then shape the answer the fault asks for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::calls::{Call, CallCounts};
use crate::clock::Clock;
use crate::config::EmulatorConfig;
use crate::error::GraphError;
use crate::faults::{Fault, FaultBook};
use crate::ids;
use crate::quotas::QuotaLedger;

/// Create-side media types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MediaKind {
    Text,
    Image,
    Video,
    Carousel,
}

impl MediaKind {
    pub fn parse(s: &str) -> Option<MediaKind> {
        Some(match s.to_ascii_uppercase().as_str() {
            "TEXT" => MediaKind::Text,
            "IMAGE" => MediaKind::Image,
            "VIDEO" => MediaKind::Video,
            "CAROUSEL" => MediaKind::Carousel,
            _ => return None,
        })
    }

    /// The name used when creating.
    pub fn create_name(self) -> &'static str {
        match self {
            MediaKind::Text => "TEXT",
            MediaKind::Image => "IMAGE",
            MediaKind::Video => "VIDEO",
            MediaKind::Carousel => "CAROUSEL",
        }
    }

    /// The name Threads reads back (`TEXT_POST`, `CAROUSEL_ALBUM`).
    pub fn read_name(self) -> &'static str {
        match self {
            MediaKind::Text => "TEXT_POST",
            MediaKind::Image => "IMAGE",
            MediaKind::Video => "VIDEO",
            MediaKind::Carousel => "CAROUSEL_ALBUM",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub issued_ms: i64,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub used: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    ShortLived,
    LongLived,
}

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub user_id: String,
    pub scopes: Vec<String>,
    pub kind: TokenKind,
    pub issued_ms: i64,
    pub expires_ms: i64,
    pub revoked: bool,
}

/// The caller behind a valid token.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub scopes: Vec<String>,
}

impl Session {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Code 10 unless every scope is granted.
    pub fn require(&self, scopes: &[&str]) -> Result<(), GraphError> {
        if scopes.iter().all(|s| self.has(s)) {
            Ok(())
        } else {
            Err(GraphError::permission_denied())
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Container {
    pub id: String,
    pub owner: String,
    pub kind: Option<MediaKind>,
    pub text: Option<String>,
    pub media_url: Option<String>,
    pub alt_text: Option<String>,
    pub is_carousel_item: bool,
    pub children: Vec<String>,
    pub reply_to_id: Option<String>,
    pub reply_control: Option<String>,
    pub quote_post_id: Option<String>,
    pub link_attachment: Option<String>,
    pub topic_tag: Option<String>,
    pub created_ms: i64,
    pub ready_ms: i64,
    /// Set by a `container_error` fault: the container reads ERROR with this message.
    pub error: Option<String>,
    pub media_id: Option<String>,
}

/// Where a container stands, as `GET /{container-id}?fields=status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerStatus {
    InProgress,
    Finished,
    Published,
    Error,
    Expired,
}

impl ContainerStatus {
    pub fn name(self) -> &'static str {
        match self {
            ContainerStatus::InProgress => "IN_PROGRESS",
            ContainerStatus::Finished => "FINISHED",
            ContainerStatus::Published => "PUBLISHED",
            ContainerStatus::Error => "ERROR",
            ContainerStatus::Expired => "EXPIRED",
        }
    }
}

impl Container {
    /// Status on the emulator clock: published wins, then an injected error, then expiry,
    /// then readiness.
    pub fn status(&self, now_ms: i64, ttl: Duration) -> ContainerStatus {
        if self.media_id.is_some() {
            ContainerStatus::Published
        } else if self.error.is_some() && now_ms >= self.ready_ms {
            ContainerStatus::Error
        } else if now_ms >= self.created_ms + millis(ttl) {
            ContainerStatus::Expired
        } else if now_ms < self.ready_ms {
            ContainerStatus::InProgress
        } else {
            ContainerStatus::Finished
        }
    }
}

/// Counters behind `/{media-id}/insights`; tests set them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MediaInsights {
    pub views: u64,
    pub likes: u64,
    pub replies: u64,
    pub reposts: u64,
    pub quotes: u64,
    pub shares: u64,
    pub clicks: u64,
}

#[derive(Debug, Clone)]
pub struct Media {
    pub id: String,
    pub owner: String,
    pub kind: MediaKind,
    pub text: Option<String>,
    pub media_url: Option<String>,
    pub alt_text: Option<String>,
    pub children: Vec<String>,
    pub is_carousel_child: bool,
    pub reply_to_id: Option<String>,
    pub root_id: String,
    pub quote_post_id: Option<String>,
    pub reply_control: Option<String>,
    pub link_attachment: Option<String>,
    pub topic_tag: Option<String>,
    pub shortcode: String,
    pub published_ms: i64,
    pub deleted: bool,
    pub insights: MediaInsights,
}

/// One successful publish, in the order they happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPost {
    /// 1 for the first publish since start or reset.
    pub sequence: u64,
    pub media_id: String,
    pub container_id: String,
    pub owner_user_id: String,
    /// Create-side type: TEXT, IMAGE, VIDEO or CAROUSEL.
    pub media_type: String,
    pub text: Option<String>,
    pub reply_to_id: Option<String>,
    pub quote_post_id: Option<String>,
    pub topic_tag: Option<String>,
    pub link_attachment: Option<String>,
    /// Unix seconds on the emulator clock.
    pub published_at: i64,
    pub published_at_ms: i64,
}

/// Everything that changes while the emulator runs.
#[derive(Debug)]
pub struct Inner {
    pub codes: HashMap<String, AuthCode>,
    pub tokens: HashMap<String, TokenRecord>,
    pub containers: HashMap<String, Container>,
    pub media: HashMap<String, Media>,
    pub published: Vec<PublishedPost>,
    pub quotas: QuotaLedger,
    pub faults: FaultBook,
    pub calls: CallCounts,
    /// Followers per user (`followers_count` of `threads_insights`); tests set them, 0 otherwise.
    pub followers: HashMap<String, u64>,
    next_container: u64,
    next_media: u64,
}

impl Inner {
    pub fn new(config: &EmulatorConfig) -> Inner {
        Inner {
            codes: HashMap::new(),
            tokens: HashMap::new(),
            containers: HashMap::new(),
            media: HashMap::new(),
            published: Vec::new(),
            quotas: QuotaLedger::default(),
            faults: FaultBook::new(config.fault_seed),
            calls: CallCounts::default(),
            followers: HashMap::new(),
            next_container: ids::FIRST_CONTAINER_ID,
            next_media: ids::FIRST_MEDIA_ID,
        }
    }

    pub fn next_container_id(&mut self) -> String {
        let id = self.next_container;
        self.next_container += 1;
        id.to_string()
    }

    pub fn next_media_id(&mut self) -> (u64, String) {
        let id = self.next_media;
        self.next_media += 1;
        (id, id.to_string())
    }

    /// A media object that exists and was not deleted.
    pub fn live_media(&self, id: &str) -> Option<&Media> {
        self.media.get(id).filter(|m| !m.deleted)
    }
}

/// What an operation sees besides the state.
pub struct Ctx<'a> {
    pub config: &'a EmulatorConfig,
    pub now_ms: i64,
    pub base_url: &'a str,
    pub fault: Option<&'a Fault>,
}

impl Ctx<'_> {
    pub fn now_s(&self) -> i64 {
        self.now_ms.div_euclid(1000)
    }
}

pub struct Shared {
    pub config: EmulatorConfig,
    pub clock: Clock,
    pub base_url: String,
    state: Mutex<Inner>,
    shutdown: watch::Receiver<bool>,
}

/// The emulator as the HTTP handlers and the library handle see it.
#[derive(Clone)]
pub struct App(pub Arc<Shared>);

impl App {
    pub fn new(config: EmulatorConfig, base_url: String, shutdown: watch::Receiver<bool>) -> App {
        let inner = Inner::new(&config);
        App(Arc::new(Shared {
            config,
            clock: Clock::new(),
            base_url,
            state: Mutex::new(inner),
            shutdown,
        }))
    }

    pub fn config(&self) -> &EmulatorConfig {
        &self.0.config
    }

    pub fn clock(&self) -> &Clock {
        &self.0.clock
    }

    /// The state, even if a thread panicked while holding it (nothing here leaves it half-done
    /// in a way that matters more than refusing every later request would).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Clears everything but the configuration and the clock.
    pub fn reset(&self) {
        *self.lock() = Inner::new(&self.0.config);
    }

    /// Runs one API call: counts it, draws its fault, applies the fault around `op`.
    /// `E` is the error shape of the endpoint (the Graph envelope, or the code exchange's own).
    pub async fn serve<E>(
        &self,
        call: Call,
        op: impl FnOnce(&mut Inner, &Ctx<'_>) -> Result<Response, E>,
    ) -> Response
    where
        E: IntoResponse + From<GraphError>,
    {
        let drawn = {
            let mut inner = self.lock();
            inner.calls.record(call);
            call.endpoint().and_then(|e| inner.faults.draw(e))
        };
        let fault = drawn.as_ref().map(|d| d.fault.clone());
        if let Some(delay) = fault.as_ref().and_then(Fault::delay_before) {
            self.sleep(delay).await;
        }
        let now_s = self.0.clock.now();
        if let Some(error) = fault.as_ref().and_then(|f| f.refusal(now_s)) {
            return E::from(error).into_response();
        }
        let outcome = {
            let mut inner = self.lock();
            let ctx = Ctx {
                config: &self.0.config,
                now_ms: self.0.clock.now_millis(),
                base_url: &self.0.base_url,
                fault: fault.as_ref(),
            };
            let outcome = op(&mut inner, &ctx);
            if let (Some(drawn), Err(_)) = (drawn, &outcome)
                && drawn.fault == Fault::FalseFailure
            {
                // The false failure waits for a call that goes through.
                inner.faults.give_back(drawn);
            }
            outcome
        };
        match (fault, outcome) {
            (Some(Fault::FalseFailure), Ok(_)) => {
                E::from(GraphError::permission_denied()).into_response()
            }
            (Some(Fault::Timeout), outcome) => {
                self.sleep(self.0.config.timeout_hang).await;
                outcome.unwrap_or_else(IntoResponse::into_response)
            }
            (_, outcome) => outcome.unwrap_or_else(IntoResponse::into_response),
        }
    }

    /// `serve` for the endpoints that answer in the Graph envelope.
    pub async fn graph(
        &self,
        call: Call,
        op: impl FnOnce(&mut Inner, &Ctx<'_>) -> Result<Response, GraphError>,
    ) -> Response {
        self.serve(call, op).await
    }

    /// Sleeps, cut short when the emulator shuts down so no request outlives it.
    pub async fn sleep(&self, duration: Duration) {
        let mut shutdown = self.0.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    }
}

/// A duration in whole milliseconds, saturating.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}
