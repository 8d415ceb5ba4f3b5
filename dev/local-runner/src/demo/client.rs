//! ThreadStorm's API as a person's client uses it: connect an account through the real OAuth flow
//! (ThreadStorm → the emulator's authorization window → ThreadStorm's callback), then call `/v1`
//! with the session it returned.

use reqwest::header::{ACCEPT, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

/// Why a step of the scenario could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{step}: {detail}")]
    Step { step: &'static str, detail: String },
    #[error("{0}")]
    Http(#[from] reqwest::Error),
}

fn step(step: &'static str, detail: impl Into<String>) -> ClientError {
    ClientError::Step {
        step,
        detail: detail.into(),
    }
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    /// The ThreadStorm user the login created.
    pub user_id: String,
    pub account_id: String,
    pub username: String,
    token: String,
}

impl Session {
    /// The bearer token (`Authorization: Bearer <token>`).
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// An answer from the API.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub replayed: bool,
}

pub struct ApiClient {
    http: Client,
    /// `http://localhost:<port>/<stage>`: the host the OAuth redirect URI names.
    base: String,
}

impl ApiClient {
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Connects the emulator's test user `threads_user` as a browser would, and returns the session
    /// ThreadStorm issued (asked for as JSON, as an API client does).
    pub async fn connect(&self, threads_user: &str) -> Result<Session, ClientError> {
        let start = self
            .http
            .get(format!("{}/oauth/start", self.base))
            .send()
            .await?;
        if start.status() != StatusCode::FOUND {
            return Err(step("oauth start", format!("answered {}", start.status())));
        }
        let cookies: Vec<String> = start
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(str::to_owned)
            .collect();
        let authorize = location(&start, "oauth start")?;
        // The emulator's window approves at once, as the test user the request names.
        let window = self
            .http
            .get(format!("{authorize}&test_user={threads_user}"))
            .send()
            .await?;
        if window.status() != StatusCode::FOUND {
            return Err(step(
                "authorization window",
                format!("answered {}", window.status()),
            ));
        }
        let callback = location(&window, "authorization window")?;
        let answer = self
            .http
            .get(callback)
            .header(COOKIE, cookies.join("; "))
            .header(ACCEPT, "application/json")
            .send()
            .await?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if status != StatusCode::OK {
            return Err(step("oauth callback", format!("answered {status}: {body}")));
        }
        let text = |v: &Value| v.as_str().map(str::to_owned);
        match (
            text(&body["session_token"]),
            text(&body["user_id"]),
            text(&body["account"]["id"]),
        ) {
            (Some(token), Some(user_id), Some(account_id)) => Ok(Session {
                token,
                user_id,
                account_id,
                username: text(&body["account"]["username"]).unwrap_or_default(),
            }),
            _ => Err(step("oauth callback", format!("unexpected answer {body}"))),
        }
    }

    /// One API call as `who`; `key` is sent as `Idempotency-Key`.
    /// One request as `who`. Over the user's per-minute limit (429) it waits the `Retry-After`
    /// the API names and asks again, as a client should: a refused request did nothing.
    pub async fn call(
        &self,
        who: &Session,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Answer, ClientError> {
        let mut attempts = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&who.token);
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            let response = request.send().await?;
            let status = response.status();
            attempts += 1;
            if status == StatusCode::TOO_MANY_REQUESTS && attempts < MAX_ATTEMPTS {
                let wait = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1)
                    .clamp(1, 60);
                tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                continue;
            }
            let replayed = response.headers().contains_key("idempotent-replayed");
            let body = response.json().await.unwrap_or(Value::Null);
            return Ok(Answer {
                status,
                body,
                replayed,
            });
        }
    }
}

/// How many times [`ApiClient::call`] asks when it is told to wait.
const MAX_ATTEMPTS: u32 = 3;

fn location(response: &reqwest::Response, at: &'static str) -> Result<String, ClientError> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| step(at, "a redirect without Location"))
}
