//! The oauth function's routes: `GET /oauth/start`, `GET /oauth/callback`, `POST /oauth/logout`.
//!
//! The callback consumes the state (single use, this browser, ten minutes) before it calls Threads
//! at all; then code → short-lived token → long-lived token → profile; only when all of that
//! worked is anything stored: the user, the sealed token, the session. Browsers get a redirect and
//! a cookie; API clients (`Accept: application/json`) get the same session as JSON, usable as
//! `Authorization: Bearer`. Start and callback are limited per source address (see
//! [`crate::rate_limit`]): over the limit is 429 before anything is stored or sent to Threads.

use std::sync::Arc;

use lambda_http::http::{HeaderValue, Method, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::return_to;
use super::state::{
    BROWSER_COOKIE, STATE_LIFETIME_SECONDS, StateError, StateRejection, StateStore,
};
use crate::accounts::{Account, AccountError, AccountStatus, AccountStore};
use crate::audit::{Audit, AuditRecord, Category, Outcome};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::edge::{self, Caller, Problem};
use crate::product;
use crate::rate_limit::{self, RateLimiter};
use crate::resources::Resource;
use crate::secrets::SecretReader;
use crate::sessions::{self, Sessions};
use crate::threads::{AppCredentials, AuthorizeRequest, Scope, ThreadsClient, ThreadsError};
use crate::users::Users;
use crate::vault::{Purpose, TokenOwner, Vault};

/// The scopes ThreadStorm asks for: publish, read and manage replies and mentions, insights and
/// deletion. `threads_basic` is always included.
pub const SCOPES: [Scope; 7] = [
    Scope::Basic,
    Scope::ContentPublish,
    Scope::ReadReplies,
    Scope::ManageReplies,
    Scope::ManageInsights,
    Scope::ManageMentions,
    Scope::Delete,
];

/// Everything the routes need, built once per process.
pub struct OAuth {
    pub config: Config,
    pub threads: ThreadsClient,
    pub states: StateStore,
    pub accounts: AccountStore,
    pub users: Users,
    pub sessions: Sessions,
    pub vault: Vault,
    pub audit: Audit,
    pub secrets: Arc<SecretReader>,
    /// Starts and callbacks per source address per minute.
    pub rate_limiter: RateLimiter,
    pub clock: Arc<dyn Clock>,
    app_id: String,
    app_secret_id: String,
    redirect_uri: String,
}

pub use crate::runtime::StartError;

impl OAuth {
    /// Builds the routes' dependencies from the function's configuration and clients.
    pub async fn from_deps(deps: &crate::runtime::Deps) -> Result<Self, StartError> {
        let config = deps.config.clone();
        let app_id = config.threads.app_id.clone().ok_or(ConfigError::Missing {
            var: "THREADS_APP_ID",
            why: "the Threads App ID from Meta's dashboard (template parameter ThreadsAppId)",
        })?;
        let redirect_uri = config.threads.redirect_uri.clone().ok_or(ConfigError::Missing {
            var: "OAUTH_REDIRECT_URI",
            why: "the exact redirect URI registered with Meta (template parameter PublicBaseUrl)",
        })?;
        let threads = deps.threads_client(None)?;
        let secrets = Arc::new(SecretReader::new(
            deps.aws.secrets.clone(),
            std::time::Duration::from_secs(300),
        ));
        let audit = Audit::dynamodb(
            deps.aws.dynamodb.clone(),
            config.resource(Resource::AuditTable)?,
            &config.logs,
        );
        let vault = deps.vault(secrets.clone(), audit.clone()).await?;
        Ok(OAuth {
            threads,
            states: StateStore::new(
                deps.aws.dynamodb.clone(),
                config.resource(Resource::SessionsTable)?,
            ),
            accounts: AccountStore::new(
                deps.aws.dynamodb.clone(),
                config.resource(Resource::AccountsTable)?,
            ),
            users: Users::from_config(deps.aws.dynamodb.clone(), &config)?,
            sessions: Sessions::from_config(deps.aws.dynamodb.clone(), secrets.clone(), &config)?,
            vault,
            audit,
            secrets,
            rate_limiter: RateLimiter::from_config(
                deps.aws.dynamodb.clone(),
                &config,
                rate_limit::Scope::OAuthIp,
            )?,
            clock: Arc::new(SystemClock),
            app_secret_id: config.resource(Resource::ThreadsAppSecret)?.to_owned(),
            app_id,
            redirect_uri,
            config,
        })
    }

    /// Answers one request. Never fails: every outcome is a response.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let caller = edge::caller(&req);
        let answer = self.route(&req, &caller).await;
        let res = answer.unwrap_or_else(|problem| self.problem_response(&req, problem));
        edge::finish(res, req.headers(), &self.config)
    }

    async fn route(&self, req: &Request, caller: &Caller) -> Result<Response<Body>, Problem> {
        // Before anything is read: a repeated parameter consumes no state and no session.
        edge::refuse_repeated_parameters(req)?;
        match (req.method(), edge::path(req)) {
            (&Method::GET, "/oauth/start") => {
                self.rate_limit(caller).await?;
                self.start(req).await
            }
            (&Method::GET, "/oauth/callback") => {
                self.rate_limit(caller).await?;
                self.callback(req, caller).await
            }
            (&Method::POST, "/oauth/logout") => self.logout(req, caller).await,
            (_, "/oauth/start" | "/oauth/callback" | "/oauth/logout") => {
                Err(Problem::method_not_allowed())
            }
            _ => Err(Problem::not_found()),
        }
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// Counts a start or callback against its source address's minute. An unreachable counter
    /// is a 503 here, as any other store outage on these routes is (see
    /// [`rate_limit::Scope`]).
    async fn rate_limit(&self, caller: &Caller) -> Result<(), Problem> {
        self.rate_limiter
            .admit_address(self.now(), &self.audit, caller)
            .await
    }

    /// `GET /oauth/start[?return_to=/path]`: a new state bound to this browser, then to Threads.
    async fn start(&self, req: &Request) -> Result<Response<Body>, Problem> {
        let return_to = match edge::query(req, "return_to") {
            None => return_to::DEFAULT.to_owned(),
            Some(candidate) => return_to::validate(&candidate).ok_or_else(|| {
                Problem::bad_request(
                    "invalid_return_to",
                    "return_to must be a relative path of this site, such as /app",
                )
                .with_field("return_to")
            })?,
        };
        let issued = self
            .states
            .issue(&return_to, self.now())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "storing an OAuth state failed");
                Problem::unavailable()
            })?;
        let window = url::Url::parse(&self.config.threads.authorize_url)
            .map_err(|_| Problem::unavailable())?;
        let location = AuthorizeRequest {
            client_id: self.app_id.clone(),
            redirect_uri: self.redirect_uri.clone(),
            scopes: SCOPES.to_vec(),
            state: issued.state.clone(),
            code_challenge: issued.verifier.challenge(),
        }
        .url(&window);
        let mut res = edge::redirect(location.as_str());
        let cookie = edge::set_cookie(
            BROWSER_COOKIE,
            &issued.browser_nonce,
            STATE_LIFETIME_SECONDS,
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            res.headers_mut().append(header::SET_COOKIE, value);
        }
        Ok(res)
    }

    /// `GET /oauth/callback?code=..&state=..` (or `?error=access_denied&...`).
    async fn callback(&self, req: &Request, caller: &Caller) -> Result<Response<Body>, Problem> {
        let now = self.now();
        let state = edge::query(req, "state");
        let browser = edge::cookie(req.headers(), BROWSER_COOKIE);

        // The state is consumed first, whatever else the callback says, so it can never be used
        // again — and nothing reaches Threads unless it was ours, unexpired and this browser's.
        let consumed = match self
            .states
            .consume(state.as_deref(), browser.as_deref(), now)
            .await
        {
            Ok(consumed) => consumed,
            Err(StateError::Rejected(why)) => {
                self.audit_state_refused(why, caller).await;
                return Err(Problem::bad_request(
                    "invalid_state",
                    "this sign-in link is not valid any more (used, expired, or started in another browser); start again",
                ));
            }
            Err(StateError::Store(e)) => {
                tracing::error!(error = %e, "consuming an OAuth state failed");
                return Err(Problem::unavailable());
            }
        };

        if let Some(error) = edge::query(req, "error") {
            let reason = edge::query(req, "error_reason").unwrap_or_default();
            self.record(
                AuditRecord::new(Category::Authentication, "oauth.denied", Outcome::Failure)
                    .description("the user did not authorise ThreadStorm on Threads")
                    .metadata(
                        json!({ "error": truncate(&error), "error_reason": truncate(&reason) }),
                    ),
                caller,
            )
            .await;
            let code = if error == "access_denied" {
                "access_denied"
            } else {
                "authorization_failed"
            };
            return Err(Problem::bad_request(
                code,
                "Threads did not authorise ThreadStorm; nothing was connected",
            ));
        }

        let code = edge::query(req, "code")
            .map(|c| crate::threads::clean_code(&c).to_owned())
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or_else(|| {
                Problem::bad_request("missing_code", "the callback carries no authorization code")
                    .with_field("code")
            })?;

        let app = self.app_credentials().await?;
        let short = self
            .threads
            .exchange_code(
                &app,
                &code,
                &self.redirect_uri,
                Some(consumed.verifier.expose()),
            )
            .await
            .map_err(|e| self.threads_problem("code exchange", e))?;
        let long = self
            .threads
            .exchange_long_lived(&app, &short.access_token)
            .await
            .map_err(|e| self.threads_problem("long-lived exchange", e))?;
        let profile = self
            .threads
            .me(&long.access_token)
            .await
            .map_err(|e| self.threads_problem("profile", e))?;
        if profile.id != short.user_id {
            tracing::error!("the profile's id differs from the code exchange's user id");
            return Err(Problem::new(
                502,
                "threads_mismatch",
                "Threads answered inconsistently; start again",
            ));
        }

        // From here on, everything Threads said checked out: store the user, the sealed token and
        // the session.
        let account_id = short.user_id;
        let session_user = match sessions::token_from_headers(req.headers()) {
            Some(token) => self.sessions.verify(&token).await.ok().map(|s| s.user_id),
            None => None,
        };
        let user_id = match session_user {
            // Signed in already: the account joins this user.
            Some(user_id) => user_id,
            None => {
                self.users
                    .upsert_on_login(&account_id)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "user upsert failed");
                        Problem::unavailable()
                    })?
                    .user
                    .user_id
            }
        };
        let owner = TokenOwner::new(user_id.clone(), account_id.as_str());
        let sealed = self
            .vault
            .seal(
                long.access_token.expose(),
                &owner,
                Purpose::ThreadsAccessToken,
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "sealing the token failed; nothing stored");
                Problem::unavailable()
            })?;
        let account = Account {
            account_id: account_id.clone(),
            owner_user_id: user_id.as_str().to_owned(),
            username: profile.username.clone().unwrap_or_default(),
            status: AccountStatus::Connected,
            sealed_token: Some(sealed.into_string()),
            token_issued_at: now,
            token_expires_at: now
                .saturating_add(i64::try_from(long.expires_in).unwrap_or(i64::MAX)),
            connected_at: now,
        };
        match self.accounts.connect(&account).await {
            Ok(()) => {}
            Err(AccountError::OwnedByAnother(_)) => {
                self.record(
                    AuditRecord::new(Category::Security, "account.connect", Outcome::Denied)
                        .user(user_id.as_str())
                        .description("the Threads account is held by another ThreadStorm user")
                        .metadata(json!({ "account_id": account_id.as_str() })),
                    caller,
                )
                .await;
                return Err(Problem::new(
                    409,
                    "account_taken",
                    "this Threads account is connected by another ThreadStorm user; they must disconnect it first",
                ));
            }
            Err(e) => {
                tracing::error!(error = %e, "storing the account failed");
                return Err(Problem::unavailable());
            }
        }
        let issued = self.sessions.issue(&user_id).await.map_err(|e| {
            tracing::error!(error = %e, "issuing a session failed");
            Problem::unavailable()
        })?;
        self.record(
            AuditRecord::new(Category::Authentication, "login", Outcome::Success)
                .user(user_id.as_str())
                .description("connected a Threads account and signed in")
                .metadata(
                    json!({ "account_id": account_id.as_str(), "username": account.username }),
                ),
            caller,
        )
        .await;

        let mut res = if wants_json(req) {
            edge::json_response(
                200,
                &json!({
                    "session_token": issued.token.expose(),
                    "token_type": "Bearer",
                    "user_id": user_id.as_str(),
                    "account": { "id": account_id.as_str(), "username": account.username, "status": "connected" },
                    "return_to": consumed.return_to,
                }),
            )
        } else {
            edge::redirect(&self.site_url(&consumed.return_to))
        };
        for cookie in [issued.set_cookie(), edge::clear_cookie(BROWSER_COOKIE)] {
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                res.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        Ok(res)
    }

    /// `POST /oauth/logout`: revokes the session (cookie or bearer) and clears the cookie.
    async fn logout(&self, req: &Request, caller: &Caller) -> Result<Response<Body>, Problem> {
        let Some(token) = sessions::token_from_headers(req.headers()) else {
            return Err(Problem::unauthorized("no session to sign out of"));
        };
        // Another site's page must not sign the user out through their cookie.
        if edge::bearer(req.headers()).is_none()
            && edge::foreign_origin(req, Some(&self.redirect_uri), &self.config.cors_origins)
        {
            return Err(edge::cross_site_problem());
        }
        let user = self.sessions.verify(&token).await.ok().map(|s| s.user_id);
        let revoked = self.sessions.revoke(&token).await.map_err(|e| match e {
            // Not a session of ours: the caller's mistake, not an outage.
            sessions::SessionError::Refused(_) => {
                Problem::unauthorized("that is not a live session")
            }
            e => {
                tracing::error!(error = %e, "revoking a session failed");
                Problem::unavailable()
            }
        })?;
        let mut record = AuditRecord::new(Category::Authentication, "logout", Outcome::Success)
            .description(if revoked {
                "signed out"
            } else {
                "signed out of a session that had already ended"
            });
        if let Some(user) = &user {
            record = record.user(user.as_str());
        }
        self.record(record, caller).await;
        let mut res = edge::json_response(200, &json!({ "signed_out": true }));
        if let Ok(value) = HeaderValue::from_str(&sessions::clear_cookie()) {
            res.headers_mut().append(header::SET_COOKIE, value);
        }
        Ok(res)
    }

    /// `path` on this site: under the public base URL (which may carry a stage or base path).
    fn site_url(&self, path: &str) -> String {
        let base = self
            .redirect_uri
            .strip_suffix("/oauth/callback")
            .unwrap_or("");
        format!("{base}{path}")
    }

    async fn app_credentials(&self) -> Result<AppCredentials, Problem> {
        let client_secret = self
            .secrets
            .current(&self.app_secret_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "reading the Threads app secret failed");
                Problem::unavailable()
            })?;
        Ok(AppCredentials {
            client_id: self.app_id.clone(),
            client_secret,
        })
    }

    /// Maps a Threads failure during the callback to an answer the user can act on.
    fn threads_problem(&self, step: &'static str, err: ThreadsError) -> Problem {
        tracing::warn!(step, class = ?err.class(), reason = %err.reason(), "Threads refused the connection");
        match err {
            ThreadsError::NeedsReauth { .. } | ThreadsError::Validation { .. } => {
                Problem::bad_request(
                    "authorization_failed",
                    "Threads did not accept this authorization (it may have been used already or expired); start again",
                )
            }
            ThreadsError::Transient { .. } | ThreadsError::RateLimited { .. } => {
                Problem::unavailable()
            }
            _ => Problem::new(
                502,
                "threads_refused",
                "Threads refused to connect the account; if this persists, the operator should check the Threads app settings",
            ),
        }
    }

    async fn audit_state_refused(&self, why: StateRejection, caller: &Caller) {
        self.record(
            AuditRecord::new(Category::Security, "oauth.invalid_state", Outcome::Denied)
                .description(format!("OAuth callback refused: {why}")),
            caller,
        )
        .await;
    }

    async fn record(&self, record: AuditRecord, caller: &Caller) {
        self.audit.record_best_effort(record.caller(caller)).await;
    }

    /// Problems go to browsers as a small page and to API clients as problem+json.
    fn problem_response(&self, req: &Request, problem: Problem) -> Response<Body> {
        if wants_json(req) || req.method() != Method::GET {
            return problem.into_response();
        }
        let title = match problem.code {
            "access_denied" => "Not connected",
            "invalid_state" | "authorization_failed" | "missing_code" => "Sign-in did not complete",
            "rate_limited" => "Too many sign-in attempts",
            _ => "Something went wrong",
        };
        let mut res = edge::response(
            problem.status,
            "text/html; charset=utf-8",
            product::page(title, &problem.detail),
        );
        // A refused rate-limited request did nothing: its state stays usable after the wait.
        if problem.code != "rate_limited"
            && let Ok(value) = HeaderValue::from_str(&edge::clear_cookie(BROWSER_COOKIE))
        {
            res.headers_mut().append(header::SET_COOKIE, value);
        }
        problem.add_headers(&mut res);
        res
    }
}

fn wants_json(req: &Request) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json") && !v.contains("text/html"))
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_include_basic_and_publishing() {
        assert!(SCOPES.contains(&Scope::Basic));
        assert!(SCOPES.contains(&Scope::ContentPublish));
    }
}
