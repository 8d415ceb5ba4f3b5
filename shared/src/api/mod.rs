//! The api function: ThreadStorm's HTTP API under `/v1`.
//!
//! Every request goes the same way: find the route in [`routes::ROUTES`] (404/405 otherwise),
//! authenticate the session (401), count it against the user's per-minute limit (429 with
//! `Retry-After`, see [`crate::rate_limit`]; an anonymous request is refused before anything is
//! counted), decide with [`rbac::authorize`] from the route's action and the owner of what it
//! touches (403, or 404 for ids of other users' resources), audit denials, grants of writes and
//! overrides, then run the handler. POSTs that create something honour an
//! `Idempotency-Key` header (see [`replay`]).

mod accounts;
mod admin;
mod analytics;
mod audit_log;
mod inbox;
mod posts;
mod replay;
pub mod routes;
mod unique_keys;

use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::{HeaderValue, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::accounts::AccountStore;
use crate::audit::{Audit, AuditRecord, Category, DynamoAuditSink, Outcome};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::edge::{self, Caller, Problem};
use crate::inbox::InboxStore;
use crate::insights::{InsightSettings, InsightsReader};
use crate::pipeline::idempotency::IdempotencyStore;
use crate::pipeline::intake::IntakeDeps;
use crate::pipeline::scheduler::SweepSettings;
use crate::policy::ContentPolicy;
use crate::posts::PostsStore;
use crate::product;
use crate::rate_limit::{RateLimiter, Scope};
use crate::rbac::{self, Decision, Denial, Principal, Target};
use crate::resources::Resource;
use crate::rotation::store::SecretStore;
use crate::runtime::StartError;
use crate::secrets::SecretReader;
use crate::sessions::{self, SessionError, Sessions};
use crate::users::Users;
use routes::{Found, Params, Route};

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_KEYS_KEPT: Duration = Duration::from_secs(24 * 60 * 60);

/// The query parameter that asks to act on another user's resource (admins only, audited).
pub const OVERRIDE_PARAM: &str = "override";

/// Everything the routes need, built once per process.
pub struct Api {
    pub config: Config,
    pub sessions: Sessions,
    pub users: Users,
    pub accounts: AccountStore,
    pub posts: PostsStore,
    pub inbox: InboxStore,
    pub intake: IntakeDeps,
    pub idempotency: IdempotencyStore,
    pub audit: Audit,
    /// The audit log itself, for reading and verifying it.
    pub audit_sink: DynamoAuditSink,
    pub audit_table: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Where the kill switch lives.
    pub rate_limits_table: String,
    pub secret_store: SecretStore,
    /// Requests per signed-in user per minute.
    pub rate_limiter: RateLimiter,
    /// Threads insights for `GET /v1/analytics`, read with each account's own token.
    pub insights: InsightsReader,
    pub clock: Arc<dyn Clock>,
}

/// Each Threads call of a request waits at most this long, so a slow Threads cannot hold the
/// api function (10 s) to its timeout.
const THREADS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const THREADS_CALL_TIMEOUT: Duration = Duration::from_secs(4);

/// Who is asking, and from where.
pub(crate) struct Ctx<'a> {
    pub principal: Principal,
    pub caller: &'a Caller,
    pub route: &'static Route,
    pub params: Params,
    /// The caller asked to act on another user's resource.
    pub override_requested: bool,
}

impl Api {
    /// Builds the routes' dependencies from the function's configuration and clients.
    pub async fn from_deps(deps: &crate::runtime::Deps) -> Result<Self, StartError> {
        let config = deps.config.clone();
        let dynamodb = deps.aws.dynamodb.clone();
        let secrets = Arc::new(SecretReader::new(
            deps.aws.secrets.clone(),
            Duration::from_secs(300),
        ));
        let audit = Audit::from_config(dynamodb.clone(), &config)?;
        let vault = deps.vault(secrets.clone(), audit.clone()).await?;
        let threads = deps.threads_client(Some((THREADS_CONNECT_TIMEOUT, THREADS_CALL_TIMEOUT)))?;
        let posts = PostsStore::new(dynamodb.clone(), config.resource(Resource::PostsTable)?);
        let accounts =
            AccountStore::new(dynamodb.clone(), config.resource(Resource::AccountsTable)?);
        Ok(Api {
            sessions: Sessions::from_config(dynamodb.clone(), secrets, &config)?,
            users: Users::from_config(dynamodb.clone(), &config)?,
            intake: IntakeDeps {
                posts: posts.clone(),
                accounts: accounts.clone(),
                sqs: deps.aws.sqs.clone(),
                intake_queue: config.resource(Resource::IntakeQueue)?.to_owned(),
                rules: Some(Arc::new(ContentPolicy::new(
                    config.prohibited_terms.clone(),
                ))),
                grace_secs: SweepSettings::default().grace_secs,
            },
            idempotency: IdempotencyStore::new(
                dynamodb.clone(),
                config.resource(Resource::IdempotencyTable)?,
                IDEMPOTENCY_KEYS_KEPT,
            ),
            inbox: InboxStore::new(dynamodb.clone(), config.resource(Resource::InboxTable)?),
            audit,
            audit_sink: DynamoAuditSink::new(
                dynamodb.clone(),
                config.resource(Resource::AuditTable)?,
            ),
            audit_table: config.resource(Resource::AuditTable)?.to_owned(),
            rate_limits_table: config.resource(Resource::RateLimitsTable)?.to_owned(),
            secret_store: SecretStore::new(deps.aws.secrets.clone()),
            rate_limiter: RateLimiter::from_config(dynamodb.clone(), &config, Scope::ApiUser)?,
            insights: InsightsReader {
                threads,
                tokens: Arc::new(vault),
                settings: InsightSettings::default(),
            },
            dynamodb,
            accounts,
            posts,
            clock: Arc::new(SystemClock),
            config,
        })
    }

    /// Answers one request. Never fails: every outcome is a response.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let caller = edge::caller(&req);
        let answer = self
            .route(&req, &caller)
            .await
            .unwrap_or_else(Problem::into_response);
        edge::finish(answer, req.headers(), &self.config)
    }

    async fn route(&self, req: &Request, caller: &Caller) -> Result<Response<Body>, Problem> {
        edge::refuse_repeated_parameters(req)?;
        let path = edge::path(req);
        if path == "/" && req.method() == lambda_http::http::Method::GET {
            return Ok(about(req));
        }
        let (route, params) = match routes::find(req.method(), path) {
            Found::Route(route, params) => (route, params),
            Found::WrongMethod(allowed) => {
                let mut res = Problem::method_not_allowed().into_response();
                if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
                    res.headers_mut().insert(header::ALLOW, value);
                }
                return Ok(res);
            }
            Found::NotFound => return Err(Problem::not_found()),
        };
        let (principal, renewed_cookie) = self.authenticate(req).await?;
        self.refuse_cross_site(req)?;
        // Counted once the request is known to be the user's own (another site's page cannot
        // spend their budget with forged writes), and before anything is done for it.
        let user = principal.user_id.as_str();
        self.rate_limiter
            .admit(user, self.now(), &self.audit, caller, Some(user))
            .await?;
        let override_requested = match edge::query(req, OVERRIDE_PARAM).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(
                    Problem::bad_request("invalid_parameter", "override is true or false")
                        .with_field(OVERRIDE_PARAM),
                );
            }
        };
        let ctx = Ctx {
            principal,
            caller,
            route,
            params,
            override_requested,
        };
        // Routes on the caller's own collection or the system are decided before anything runs;
        // routes on one resource once its owner is known (in the handler). An override is first
        // checked against other users' resources at large, before any is read: a role that may
        // not override is refused alike for an id that exists and one that does not.
        if route.scope != routes::Scope::Resource {
            self.authorize(&ctx, Target::Own).await?;
        } else if ctx.override_requested && !rbac::may_override(ctx.principal.role) {
            self.authorize(&ctx, Target::Others).await?;
        }
        let mut res = if route.idempotent_post {
            replay::idempotent(self, &ctx, req).await?
        } else {
            self.dispatch(&ctx, req).await?
        };
        if let Some(cookie) = renewed_cookie
            && let Ok(value) = HeaderValue::from_str(&cookie)
        {
            res.headers_mut().append(header::SET_COOKIE, value);
        }
        Ok(res)
    }

    async fn dispatch(&self, ctx: &Ctx<'_>, req: &Request) -> Result<Response<Body>, Problem> {
        use routes::RouteId::*;
        match ctx.route.id {
            Me => Ok(edge::json_response(
                200,
                &json!({
                    "user_id": ctx.principal.user_id.as_str(),
                    "role": ctx.principal.role.as_str(),
                    "permissions": rbac::permissions(ctx.principal.role)
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>(),
                }),
            )),
            ListAccounts => accounts::list(self, ctx).await,
            CreatePost => posts::create_post(self, ctx, req).await,
            CreateStorm => posts::create_storm(self, ctx, req).await,
            ListPosts => posts::list(self, ctx, req).await,
            GetPost | GetStorm => posts::get(self, ctx).await,
            CancelPost | CancelStorm => posts::cancel(self, ctx).await,
            BatchPosts => posts::create_batch(self, ctx, req).await,
            Analytics => analytics::summary(self, ctx, req).await,
            ListAudit => audit_log::list(self, ctx, req).await,
            SetRole => admin::set_role(self, ctx, req).await,
            Pause => admin::pause(self, ctx, req).await,
            Resume => admin::resume(self, ctx, req).await,
            RevokeAccount => admin::revoke(self, ctx, req).await,
            RotateSecret => admin::rotate(self, ctx, req).await,
            VerifyAudit => admin::verify(self, ctx, req).await,
            Inbox => inbox::list(self, ctx, req).await,
        }
    }

    /// A browser's session cookie rides along on requests other sites make. A write carried by
    /// the cookie must therefore be one no other site can send without CORS letting it: a JSON
    /// body (a cross-site form or a `text/plain` fetch cannot set that type), and, when the
    /// browser names the page's origin, an origin of this service or of CORS_ORIGINS. Bearer
    /// tokens are never sent by a browser on its own and need neither.
    fn refuse_cross_site(&self, req: &Request) -> Result<(), Problem> {
        let method = req.method();
        if method == lambda_http::http::Method::GET
            || method == lambda_http::http::Method::HEAD
            || edge::bearer(req.headers()).is_some()
        {
            return Ok(());
        }
        if edge::foreign_origin(
            req,
            self.config.public_base_url.as_deref(),
            &self.config.cors_origins,
        ) {
            return Err(edge::cross_site_problem());
        }
        let has_body = !matches!(req.body(), Body::Empty)
            && edge::body(req, edge::MAX_BODY_BYTES).is_ok_and(|b| !b.is_empty());
        // A cookie's body must say it is JSON: a form or a text/plain fetch from another page
        // needs no preflight, a JSON one does.
        if has_body && declared_json(req) != Some(true) {
            return Err(unsupported_media_type());
        }
        Ok(())
    }

    /// The caller's session and user, or 401. Also the renewed cookie to send back, when the
    /// session came in a cookie and was renewed.
    async fn authenticate(&self, req: &Request) -> Result<(Principal, Option<String>), Problem> {
        let token = sessions::token_from_headers(req.headers())
            .ok_or_else(|| Problem::unauthorized("sign in first: no usable session token was sent (Authorization: Bearer <token>, or the session cookie)"))?;
        let session = match self.sessions.verify(&token).await {
            Ok(session) => session,
            Err(SessionError::Refused(why)) => {
                return Err(Problem::unauthorized(format!("sign in again: {why}")));
            }
            Err(e) => {
                tracing::error!(error = %e, "sessions unavailable");
                return Err(Problem::unavailable());
            }
        };
        let user = match self.users.get(&session.user_id).await {
            Ok(Some(user)) => user,
            Ok(None) => return Err(Problem::unauthorized("sign in again: the user is gone")),
            Err(e) => {
                tracing::error!(error = %e, "users unavailable");
                return Err(Problem::unavailable());
            }
        };
        let from_cookie = edge::bearer(req.headers()).is_none();
        let renewed = (session.renewed && from_cookie)
            .then(|| sessions::set_cookie(&token, session.cookie_max_age(self.clock.now())));
        Ok((
            Principal {
                user_id: user.user_id,
                role: user.role,
            },
            renewed,
        ))
    }

    /// Decides the route's action on `target`; audits every denial, grants of writes, deletions
    /// and administration, and every override. A refusal on another user's resource is a 404, so
    /// an id reveals nothing about whether it exists.
    pub(crate) async fn authorize(
        &self,
        ctx: &Ctx<'_>,
        target: Target<'_>,
    ) -> Result<Decision, Problem> {
        let action = ctx.route.action;
        let decision = rbac::authorize(&ctx.principal, action, target, ctx.override_requested);
        let owner = match target {
            Target::Own | Target::Others => None,
            Target::OwnedBy(owner) => Some(owner),
        };
        let metadata = json!({
            "route": format!("{} {}", ctx.route.method, ctx.route.pattern),
            "action": action.as_str(),
            "role": ctx.principal.role.as_str(),
            "resource_owner": owner,
        });
        let record = |category, name: &str, outcome, text: String| {
            AuditRecord::new(category, name, outcome)
                .user(ctx.principal.user_id.as_str())
                .description(text)
                .metadata(metadata.clone())
                .caller(ctx.caller)
        };
        match decision {
            Decision::Allow => {
                if action.audited_when_granted() {
                    self.audit
                        .record_best_effort(record(
                            Category::Authorization,
                            "grant",
                            Outcome::Success,
                            format!("{} allowed", action.as_str()),
                        ))
                        .await;
                }
                Ok(decision)
            }
            Decision::AllowOverride => {
                self.audit
                    .record_best_effort(record(
                        Category::Security,
                        "override",
                        Outcome::Success,
                        format!("{} on another user's resource by override", action.as_str()),
                    ))
                    .await;
                Ok(decision)
            }
            Decision::Deny(denial) => {
                let why = match denial {
                    Denial::MissingPermission(p) => format!("the {p} permission is needed"),
                    Denial::NotOwner => "the resource belongs to another user".into(),
                    Denial::OverrideNotAllowed => "this role may not override".into(),
                };
                self.audit
                    .record_best_effort(record(
                        Category::Authorization,
                        "deny",
                        Outcome::Denied,
                        format!("{} refused: {why}", action.as_str()),
                    ))
                    .await;
                Err(match denial {
                    Denial::NotOwner => Problem::not_found(),
                    Denial::MissingPermission(p) => Problem::forbidden(
                        "forbidden",
                        format!(
                            "your role ({}) lacks the {p} permission",
                            ctx.principal.role
                        ),
                    ),
                    Denial::OverrideNotAllowed => Problem::forbidden(
                        "forbidden",
                        "only administrators may act on other users' resources",
                    ),
                })
            }
        }
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }
}

/// Reads a `T` from JSON, or a 400 `malformed_body` that names the field at fault
/// (`parts[1].text`) and says what was wrong with it, without the parser's line and column.
pub(crate) fn from_json<'de, D, T>(json: D) -> Result<T, Problem>
where
    D: serde::Deserializer<'de, Error = serde_json::Error>,
    T: serde::Deserialize<'de>,
{
    serde_path_to_error::deserialize(json).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let why = plain_json_error(&inner.to_string());
        // A syntax error has no field ("?"), nor the body as a whole ("."); a place nested too
        // deep to read is not worth naming.
        let unnamed = field == "." || field == "?" || field.len() > 100;
        if inner.is_syntax() || inner.is_eof() || unnamed {
            return Problem::bad_request("malformed_body", format!("the body is not valid: {why}"));
        }
        Problem::bad_request("malformed_body", format!("{field}: {why}")).with_field(field)
    })
}

/// serde's message without the parser's position and without the names of Rust types, which
/// mean nothing to a caller (`expected struct ContentInput` → `expected an object`).
fn plain_json_error(message: &str) -> String {
    let mut why = message.to_owned();
    if let Some(at) = why.rfind(" at line ") {
        why.truncate(at);
    }
    if why.starts_with("data did not match any variant of untagged enum") {
        return "not a value this field takes".to_owned();
    }
    if let Some(at) = why.find("expected struct ") {
        why.truncate(at);
        why.push_str("expected an object");
    }
    why
}

/// Whether the request's Content-Type is JSON (`application/json` or `application/…+json`, with
/// or without parameters); `None` when it names none.
fn declared_json(req: &Request) -> Option<bool> {
    let declared = req.headers().get(header::CONTENT_TYPE)?;
    let essence = declared
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Some(
        essence == "application/json"
            || essence
                .strip_prefix("application/")
                .is_some_and(|sub| sub.ends_with("+json")),
    )
}

fn unsupported_media_type() -> Problem {
    Problem::new(
        415,
        "unsupported_media_type",
        "send the body as JSON with Content-Type: application/json",
    )
}

/// The request's JSON body, which the route requires.
pub(crate) fn parse_required_body<T: serde::de::DeserializeOwned>(
    req: &Request,
) -> Result<T, Problem> {
    parse_optional_body(req)?
        .ok_or_else(|| Problem::bad_request("missing_body", "send the content as a JSON body"))
}

/// The request's JSON body, or `None` when there is none (or only whitespace).
pub(crate) fn parse_optional_body<T: serde::de::DeserializeOwned>(
    req: &Request,
) -> Result<Option<T>, Problem> {
    let body = edge::body(req, edge::MAX_BODY_BYTES)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    // A body declared as something else is refused; one that declares nothing is read as JSON.
    if declared_json(req) == Some(false) {
        return Err(unsupported_media_type());
    }
    // Every body is one JSON object: serde would read a top-level array as a struct's fields in
    // order and answer with a baffling "[0]: invalid type".
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Problem::bad_request(
            "malformed_body",
            "the body is not valid: it must be one JSON object, {…}",
        ));
    }
    from_json::<_, unique_keys::UniqueKeys>(&mut serde_json::Deserializer::from_slice(body))?;
    let mut json = serde_json::Deserializer::from_slice(body);
    let value = from_json(&mut json)?;
    json.end().map_err(|_| {
        Problem::bad_request(
            "malformed_body",
            "the body is not valid: one JSON value, nothing after it",
        )
    })?;
    Ok(Some(value))
}

/// A time query parameter: RFC 3339 (`2026-12-24T09:00:00Z`) or Unix seconds.
pub(crate) fn time_param(req: &Request, name: &'static str) -> Result<Option<i64>, Problem> {
    edge::query(req, name)
        .map(|raw| parse_time(&raw).ok_or_else(|| invalid_time(name)))
        .transpose()
}

/// A time in a JSON body: RFC 3339 text or Unix seconds.
pub(crate) fn time_param_value(
    value: &serde_json::Value,
    name: &'static str,
) -> Result<i64, Problem> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => parse_time(s),
        _ => None,
    }
    .ok_or_else(|| invalid_time(name))
}

fn parse_time(raw: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = raw.parse::<i64>() {
        return (0..=253_402_300_799).contains(&at).then_some(at);
    }
    time::OffsetDateTime::parse(raw, &Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

fn invalid_time(name: &'static str) -> Problem {
    Problem::bad_request(
        "invalid_parameter",
        format!("{name} is an RFC 3339 time such as 2026-12-24T09:00:00Z, or Unix seconds"),
    )
    .with_field(name)
}

/// `GET /`: the product's name, version and disclaimers — JSON, or a page for a browser.
fn about(req: &Request) -> Response<Body> {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        edge::response(
            200,
            "text/html; charset=utf-8",
            product::page(
                &format!("{} {}", product::NAME, product::VERSION),
                "Publish posts and storms to Threads. The API lives under /v1 (see openapi.yaml).",
            ),
        )
    } else {
        edge::json_response(200, &product::about())
    }
}
