//! The webhooks function's routes: `GET|POST /webhooks/threads`, `POST /meta/deauthorize`,
//! `POST /meta/data-deletion` and `GET /meta/deletion-status/{code}`.
//!
//! Every call is Meta's or claims to be: nothing is read, stored or changed before its signature
//! holds (raw bytes, current or previous app secret). Deliveries are deduplicated per change for
//! 37 hours (Meta retries for 36) and stored in the inbox of the account they concern; `publish`
//! and `delete` changes also reconcile that account's posts ([`super::reconcile`]). An unknown
//! account is accepted and dropped so Meta does not retry. A per-source-IP limit caps abuse.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::{Method, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::delivery::{self, Change, Delivery, Reply};
use super::handshake::{self, HubQuery};
use super::reconcile;
use super::signature::{self, SignatureError};
use super::signed_request::{self, CONFIRMATION_CODE_LEN, SignedRequest, SignedRequestError};
use super::{MAX_BODY_BYTES, StatusCode};
use crate::accounts::AccountStore;
use crate::audit::{Audit, AuditRecord, Category, Outcome};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, Secret};
use crate::edge::{self, Caller, Problem};
use crate::posts::PostsStore;
use crate::rate_limit::{RateLimiter, Scope};
use crate::resources::Resource;
use crate::secrets::{SecretReader, SecretVersions};
use crate::store::{Condition, Conditional, Item, n, put_if, s};
use crate::threads::UserId;
use crate::users::Users;
use crate::{metrics, product};

/// The service dimension of this function's metrics.
const SERVICE: &str = "webhooks";
/// How long a change's dedup record lives: Meta retries for 36 hours, plus an hour of margin.
pub const DEDUP_SECONDS: i64 = 37 * 3600;
/// How long an inbox item is kept.
pub const INBOX_SECONDS: i64 = 90 * 24 * 3600;
/// How long a data-deletion status can be looked up.
pub const DELETION_STATUS_SECONDS: i64 = 400 * 24 * 3600;
/// A refused signature re-reads the secret at most this often (a rotation finished elsewhere).
const SECRET_REFRESH_AFTER: Duration = Duration::from_secs(60);

const STATUS_PREFIX: &str = "/meta/deletion-status/";

/// Everything the routes need, built once per process.
pub struct Webhooks {
    pub config: Config,
    pub accounts: AccountStore,
    pub users: Users,
    pub posts: PostsStore,
    pub audit: Audit,
    pub secrets: Arc<SecretReader>,
    pub clock: Arc<dyn Clock>,
    /// Requests per source address per minute, over all routes of this function.
    pub rate_limiter: RateLimiter,
    /// How old a callback's `signed_request` may be (`SIGNED_REQUEST_MAX_AGE_SECONDS`).
    pub signed_request_max_age_seconds: u64,
    dynamodb: Client,
    idempotency_table: String,
    inbox_table: String,
    app_id: String,
    app_secret_id: String,
    verify_token_id: String,
    public_base_url: String,
}

/// Counts of one delivery, as answered to Meta.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    stored: u64,
    /// Publish and delete changes that changed a post.
    reconciled: u64,
    duplicates: u64,
    unknown_accounts: u64,
    ignored: u64,
}

impl Webhooks {
    /// Builds the routes' dependencies from the function's configuration and clients.
    pub async fn from_deps(deps: &crate::runtime::Deps) -> Result<Self, ConfigError> {
        let config = deps.config.clone();
        let app_id = config.threads.app_id.clone().ok_or(ConfigError::Missing {
            var: "THREADS_APP_ID",
            why: "the Threads App ID from Meta's dashboard (template parameter ThreadsAppId)",
        })?;
        let public_base_url = config.public_base_url.clone().ok_or(ConfigError::Missing {
            var: "PUBLIC_BASE_URL",
            why: "the data-deletion answer links to a status page there (template parameter PublicBaseUrl)",
        })?;
        let dynamodb = deps.aws.dynamodb.clone();
        Ok(Webhooks {
            accounts: AccountStore::new(
                dynamodb.clone(),
                config.resource(Resource::AccountsTable)?,
            ),
            users: Users::from_config(dynamodb.clone(), &config)?,
            posts: PostsStore::new(dynamodb.clone(), config.resource(Resource::PostsTable)?),
            audit: Audit::from_config(dynamodb.clone(), &config)?,
            secrets: Arc::new(SecretReader::new(
                deps.aws.secrets.clone(),
                crate::secrets::DEFAULT_TTL,
            )),
            clock: Arc::new(SystemClock),
            rate_limiter: RateLimiter::from_config(dynamodb.clone(), &config, Scope::WebhooksIp)?,
            signed_request_max_age_seconds: config.signed_request_max_age_seconds,
            idempotency_table: config.resource(Resource::IdempotencyTable)?.to_owned(),
            inbox_table: config.resource(Resource::InboxTable)?.to_owned(),
            app_secret_id: config.resource(Resource::ThreadsAppSecret)?.to_owned(),
            verify_token_id: config
                .resource(Resource::WebhookVerifyTokenSecret)?
                .to_owned(),
            dynamodb,
            app_id,
            public_base_url,
            config,
        })
    }

    /// Answers one request. Never fails: every outcome is a response.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let caller = edge::caller(&req);
        let answer = match self.rate_limit(&caller).await {
            Err(problem) => Err(problem),
            Ok(()) => self.route(&req, &caller).await,
        };
        let res = answer.unwrap_or_else(Problem::into_response);
        edge::finish(res, req.headers(), &self.config)
    }

    async fn route(&self, req: &Request, caller: &Caller) -> Result<Response<Body>, Problem> {
        edge::refuse_repeated_parameters(req)?;
        let path = edge::path(req);
        match (req.method(), path) {
            (&Method::GET, "/webhooks/threads") => self.verify_subscription(req).await,
            (&Method::POST, "/webhooks/threads") => self.deliver(req, caller).await,
            (&Method::POST, "/meta/deauthorize") => self.deauthorize(req, caller).await,
            (&Method::POST, "/meta/data-deletion") => self.data_deletion(req, caller).await,
            (&Method::GET, p) if p.starts_with(STATUS_PREFIX) => {
                let code = edge::path_param(req, "code")
                    .unwrap_or_else(|| p[STATUS_PREFIX.len()..].to_owned());
                self.deletion_status(req, &code).await
            }
            (_, "/webhooks/threads" | "/meta/deauthorize" | "/meta/data-deletion") => {
                Err(Problem::method_not_allowed())
            }
            (_, p) if p.starts_with(STATUS_PREFIX) => Err(Problem::method_not_allowed()),
            _ => Err(Problem::not_found()),
        }
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// `GET /webhooks/threads?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` (case W2).
    async fn verify_subscription(&self, req: &Request) -> Result<Response<Body>, Problem> {
        let query = match req.uri().query() {
            Some(raw) if !raw.is_empty() => HubQuery::from_query_string(raw),
            _ => {
                let pairs = req.query_string_parameters_ref().map(|q| {
                    q.iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect::<Vec<_>>()
                });
                HubQuery::from_pairs(pairs.unwrap_or_default())
            }
        };
        let tokens = self.versions(&self.verify_token_id).await?;
        let challenge = handshake::answer(&query, &secrets(&tokens)).map_err(|e| e.problem())?;
        Ok(edge::response(
            200,
            handshake::CONTENT_TYPE,
            challenge.into_string(),
        ))
    }

    /// `POST /webhooks/threads`: verify over the raw bytes, then parse, dedupe and store.
    async fn deliver(&self, req: &Request, caller: &Caller) -> Result<Response<Body>, Problem> {
        let body = edge::body(req, MAX_BODY_BYTES)?;
        let versions = self.versions(&self.app_secret_id).await?;
        let mut checked = signature::verify_headers(req.headers(), body, &secrets(&versions));
        if checked == Err(SignatureError::Mismatch)
            && let Some(fresh) = self.refreshed(&self.app_secret_id).await
        {
            checked = signature::verify_headers(req.headers(), body, &secrets(&fresh));
        }
        if let Err(err) = checked {
            if err.status() == StatusCode::UNAUTHORIZED {
                metrics::count(SERVICE, metrics::Metric::WebhookSignatureFailures);
                self.record(
                    AuditRecord::new(
                        Category::Security,
                        "webhook.invalid_signature",
                        Outcome::Denied,
                    )
                    .description(format!("webhook delivery refused: {err}")),
                    caller,
                )
                .await;
            }
            return Err(err.problem());
        }
        // Signed by Meta from here on.
        let delivery = delivery::parse(body, &self.app_id).map_err(|err| {
            tracing::warn!(error = %err, "a signed delivery was refused");
            err.problem()
        })?;
        let tally = self.store_changes(&delivery).await?;
        tracing::info!(
            changes = delivery.changes.len(),
            stored = tally.stored,
            reconciled = tally.reconciled,
            duplicates = tally.duplicates,
            unknown_accounts = tally.unknown_accounts,
            ignored = tally.ignored,
            "webhook delivery"
        );
        Ok(edge::json_response(
            200,
            &json!({
                "received": delivery.changes.len(),
                "stored": tally.stored,
                "reconciled": tally.reconciled,
                "duplicates": tally.duplicates,
                "unknown_accounts": tally.unknown_accounts,
                "ignored": tally.ignored,
            }),
        ))
    }

    async fn store_changes(&self, delivery: &Delivery) -> Result<Tally, Problem> {
        let mut tally = Tally::default();
        let now = self.now();
        // A delivery of up to 1,000 changes usually concerns one or two accounts: read each once.
        let mut known: HashMap<UserId, bool> = HashMap::new();
        for change in &delivery.changes {
            let Some(key) = change.dedup_key() else {
                if let Change::Malformed { field, reason } = change {
                    tracing::warn!(field = %truncate(field), reason, "a change could not be read");
                }
                tally.ignored += 1;
                continue;
            };
            let Some(account_id) = concerned_account(change, delivery) else {
                tally.unknown_accounts += 1;
                continue;
            };
            let held = match known.get(&account_id) {
                Some(held) => *held,
                None => {
                    let held = self
                        .accounts
                        .get(&account_id)
                        .await
                        .map_err(|e| {
                            tracing::error!(error = %e, "reading the account of a change failed");
                            Problem::unavailable()
                        })?
                        .is_some();
                    known.insert(account_id.clone(), held);
                    held
                }
            };
            if !held {
                tally.unknown_accounts += 1;
                continue;
            }
            let dedup_id = format!("webhook#{key}");
            let claim = Item::from([
                ("id".to_owned(), s(&dedup_id)),
                (
                    "expires_at".to_owned(),
                    n(now.saturating_add(DEDUP_SECONDS)),
                ),
                ("created_at".to_owned(), n(now)),
            ]);
            let fresh = Condition::new("attribute_not_exists(id) OR expires_at < :now")
                .value(":now", n(now));
            match put_if(&self.dynamodb, &self.idempotency_table, claim, fresh).await {
                Ok(Conditional::Written) => {}
                Ok(Conditional::Lost { .. }) => {
                    tally.duplicates += 1;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming a webhook change failed");
                    return Err(Problem::unavailable());
                }
            }
            match self.reconcile(&account_id, change, now).await {
                Ok(changed) => tally.reconciled += u64::from(changed),
                Err(e) => {
                    tracing::error!(error = %e, change = %key, "reconciling a webhook change failed");
                    self.release(&dedup_id).await;
                    return Err(Problem::unavailable());
                }
            }
            let item = inbox_item(&account_id, change, now);
            let put = self
                .dynamodb
                .put_item()
                .table_name(&self.inbox_table)
                .set_item(Some(item))
                .send()
                .await;
            if let Err(e) = put {
                tracing::error!(error = %crate::aws::describe_error(&e), "storing a webhook change failed");
                self.release(&dedup_id).await;
                return Err(Problem::unavailable());
            }
            tally.stored += 1;
        }
        Ok(tally)
    }

    /// Releases a change's dedup claim so that Meta's retry stores it instead of dropping it.
    async fn release(&self, dedup_id: &str) {
        let _ = self
            .dynamodb
            .delete_item()
            .table_name(&self.idempotency_table)
            .key("id", s(dedup_id))
            .send()
            .await;
    }

    /// Applies a `publish` or `delete` change to the account's posts (see [`reconcile`]);
    /// whether a post changed.
    async fn reconcile(
        &self,
        account_id: &UserId,
        change: &Change,
        now: i64,
    ) -> Result<bool, crate::posts::PostsError> {
        match change {
            Change::Publish(publish) => {
                let outcome = reconcile::publish(&self.posts, account_id, publish, now).await?;
                match &outcome {
                    reconcile::Published::Settled {
                        storm_id,
                        index,
                        completed,
                    } => {
                        metrics::count(SERVICE, "webhook_publish_reconciled");
                        tracing::info!(storm = %storm_id, part = index, completed, media = %publish.id, "uncertain part settled by the publish webhook");
                        Ok(true)
                    }
                    reconcile::Published::Conflict { storm_id, index } => {
                        tracing::warn!(storm = %storm_id, part = index, media = %publish.id, "publish webhook names another media id than the part has; left alone");
                        Ok(false)
                    }
                    reconcile::Published::NoSingleMatch { candidates } => {
                        tracing::warn!(candidates, media = %publish.id, "publish webhook matches no single uncertain part; left alone");
                        Ok(false)
                    }
                    reconcile::Published::NothingUncertain | reconcile::Published::AlreadyKnown => {
                        Ok(false)
                    }
                }
            }
            Change::Delete(delete) => {
                let marked = reconcile::delete(&self.posts, account_id, delete, now).await?;
                if marked > 0 {
                    tracing::info!(parts = marked, media = %delete.id, "post marked deleted by the delete webhook");
                }
                Ok(marked > 0)
            }
            _ => Ok(false),
        }
    }

    /// Reads and verifies a callback's `signed_request`; a refusal is audited as a security event.
    async fn signed_request(
        &self,
        req: &Request,
        caller: &Caller,
        action: &'static str,
    ) -> Result<(SignedRequest, UserId), Problem> {
        let body = edge::body(req, signed_request::MAX_FORM_BYTES)?;
        let versions = self.versions(&self.app_secret_id).await?;
        let mut verified = signed_request::verify_form(body, &secrets(&versions));
        if verified == Err(SignedRequestError::Mismatch)
            && let Some(fresh) = self.refreshed(&self.app_secret_id).await
        {
            verified = signed_request::verify_form(body, &secrets(&fresh));
        }
        // A genuine but old (or future-dated) request is refused like a forged one: a captured
        // callback must not be replayable.
        let verified = verified.and_then(|request| {
            signed_request::check_fresh(&request, self.now(), self.signed_request_max_age_seconds)
                .map(|()| request)
        });
        let refused = |err: String, problem: Problem| async move {
            metrics::count(SERVICE, metrics::Metric::SignedRequestFailures);
            self.record(
                AuditRecord::new(Category::Security, action, Outcome::Denied)
                    .description(format!("Meta callback refused: {err}")),
                caller,
            )
            .await;
            problem
        };
        let request = match verified {
            Ok(request) => request,
            Err(err) if err.status().is_client_error() => {
                return Err(refused(err.to_string(), err.problem()).await);
            }
            Err(err) => return Err(err.problem()),
        };
        match UserId::parse(&request.user_id) {
            Ok(user) => Ok((request, user)),
            Err(_) => Err(refused(
                "user_id is not a Threads user id".to_owned(),
                Problem::bad_request(
                    "malformed_signed_request",
                    "the user_id of signed_request is not a Threads user id",
                ),
            )
            .await),
        }
    }

    /// `POST /meta/deauthorize`: the user removed ThreadStorm on Threads; the token is deleted.
    async fn deauthorize(&self, req: &Request, caller: &Caller) -> Result<Response<Body>, Problem> {
        let (_, account_id) = self
            .signed_request(req, caller, "meta.deauthorize_refused")
            .await?;
        let account = self.accounts.get(&account_id).await.map_err(|e| {
            tracing::error!(error = %e, "reading the deauthorized account failed");
            Problem::unavailable()
        })?;
        let disconnected = match &account {
            Some(_) => self.accounts.disconnect(&account_id).await.map_err(|e| {
                tracing::error!(error = %e, "disconnecting the deauthorized account failed");
                Problem::unavailable()
            })?,
            None => false,
        };
        let mut record = AuditRecord::new(
            Category::Authorization,
            "account.deauthorized",
            Outcome::Success,
        )
        .metadata(json!({
            "account_id": account_id.as_str(),
            "known_account": account.is_some(),
            "token_deleted": disconnected,
        }));
        record = match &account {
            Some(a) => record
                .user(&a.owner_user_id)
                .description("the user removed ThreadStorm on Threads; the token was deleted"),
            None => {
                record.description("deauthorize callback for an account ThreadStorm does not hold")
            }
        };
        self.record(record, caller).await;
        Ok(edge::json_response(200, &json!({ "deauthorized": true })))
    }

    /// `POST /meta/data-deletion`: erase what ThreadStorm holds about that Threads user.
    async fn data_deletion(
        &self,
        req: &Request,
        caller: &Caller,
    ) -> Result<Response<Body>, Problem> {
        let (_, account_id) = self
            .signed_request(req, caller, "meta.data_deletion_refused")
            .await?;
        let now = self.now();
        let code = signed_request::confirmation_code();
        let subject = pseudonym(&account_id);
        self.put_status(&code, &subject, "in_progress", now, None)
            .await?;
        let erased = self.erase(&account_id).await.map_err(|e| {
            tracing::error!(error = %e, "erasing a Threads user's data failed; Meta will retry");
            Problem::unavailable()
        })?;
        self.put_status(&code, &subject, "completed", now, Some(self.now()))
            .await?;
        // Only the pseudonym: the record must not bring back what was erased.
        self.record(
            AuditRecord::new(
                Category::DataAccess,
                "account.data_deleted",
                Outcome::Success,
            )
            .description("erased a Threads user's data at Meta's request")
            .metadata(json!({
                "subject": subject,
                "confirmation_code": code,
                "account_erased": erased.account,
                "user_erased": erased.user,
                "posts_erased": erased.posts,
                "inbox_items_erased": erased.inbox_items,
            })),
            caller,
        )
        .await;
        Ok(edge::json_response(
            200,
            &json!({
                "url": format!("{}{STATUS_PREFIX}{code}", self.public_base_url),
                "confirmation_code": code,
            }),
        ))
    }

    /// Erases the Threads user's account (token first), the ThreadStorm user who signs in as
    /// them, every storm either of them holds for that account or the user wrote, and the inbox.
    /// The posts go first: a failure part-way leaves the account and user to find on Meta's retry.
    async fn erase(&self, account_id: &UserId) -> Result<Erased, String> {
        let mut erased = Erased::default();
        let account = self
            .accounts
            .get(account_id)
            .await
            .map_err(|e| e.to_string())?;
        let user = self
            .users
            .signs_in_as(account_id)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(account) = &account {
            erased.posts += self
                .posts
                .erase_where(&account.owner_user_id, |storm| {
                    &storm.account_id == account_id
                })
                .await
                .map_err(|e| e.to_string())?;
        }
        if let Some(user) = &user {
            erased.posts += self
                .posts
                .erase_where(user.as_str(), |_| true)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.posts
            .erase_uncertain(account_id)
            .await
            .map_err(|e| e.to_string())?;
        if account.is_some() {
            // The token first, by the same path as deauthorize, then the record itself.
            self.accounts
                .disconnect(account_id)
                .await
                .map_err(|e| e.to_string())?;
            erased.account = self
                .accounts
                .delete(account_id)
                .await
                .map_err(|e| e.to_string())?;
        }
        erased.user = self
            .users
            .erase_threads_user(account_id)
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        erased.inbox_items = self.erase_inbox(account_id).await?;
        Ok(erased)
    }

    async fn erase_inbox(&self, account_id: &UserId) -> Result<u64, String> {
        let mut count = 0;
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .dynamodb
                .query()
                .table_name(&self.inbox_table)
                .key_condition_expression("account_id = :a")
                .expression_attribute_values(":a", s(account_id.as_str()))
                .projection_expression("account_id, sk")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| crate::aws::describe_error(&e))?;
            for item in page.items() {
                let Some(sk) = item.get("sk").cloned() else {
                    continue;
                };
                self.dynamodb
                    .delete_item()
                    .table_name(&self.inbox_table)
                    .key("account_id", s(account_id.as_str()))
                    .key("sk", sk)
                    .send()
                    .await
                    .map_err(|e| crate::aws::describe_error(&e))?;
                count += 1;
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(count)
    }

    async fn put_status(
        &self,
        code: &str,
        subject: &str,
        status: &str,
        requested_at: i64,
        completed_at: Option<i64>,
    ) -> Result<(), Problem> {
        let mut item = Item::from([
            ("id".to_owned(), s(format!("deletion#{code}"))),
            ("status".to_owned(), s(status)),
            ("subject".to_owned(), s(subject)),
            ("requested_at".to_owned(), n(requested_at)),
            (
                "expires_at".to_owned(),
                n(requested_at.saturating_add(DELETION_STATUS_SECONDS)),
            ),
        ]);
        if let Some(at) = completed_at {
            item.insert("completed_at".to_owned(), n(at));
        }
        self.dynamodb
            .put_item()
            .table_name(&self.idempotency_table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| {
                tracing::error!(error = %crate::aws::describe_error(&e), "storing a deletion status failed");
                Problem::unavailable()
            })?;
        Ok(())
    }

    /// `GET /meta/deletion-status/{code}`: HTML for people, JSON for `Accept: application/json`.
    async fn deletion_status(&self, req: &Request, code: &str) -> Result<Response<Body>, Problem> {
        if code.len() != CONFIRMATION_CODE_LEN || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Problem::not_found());
        }
        let item = self
            .dynamodb
            .get_item()
            .table_name(&self.idempotency_table)
            .key("id", s(format!("deletion#{code}")))
            .send()
            .await
            .map_err(|e| {
                tracing::error!(error = %crate::aws::describe_error(&e), "reading a deletion status failed");
                Problem::unavailable()
            })?
            .item
            .ok_or_else(Problem::not_found)?;
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let number = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let status = text("status").unwrap_or_else(|| "unknown".to_owned());
        let wants_json = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        if wants_json {
            return Ok(edge::json_response(
                200,
                &json!({
                    "confirmation_code": code,
                    "status": status,
                    "requested_at": number("requested_at"),
                    "completed_at": number("completed_at"),
                }),
            ));
        }
        let message = match status.as_str() {
            "completed" => format!(
                "Deletion request {code}: completed. Whatever ThreadStorm held for this Threads account (its token and record, the user who signed in with it, its posts and its inbox) is erased."
            ),
            _ => format!("Deletion request {code}: in progress."),
        };
        Ok(edge::response(
            200,
            "text/html; charset=utf-8",
            product::page("Data deletion", &message),
        ))
    }

    /// Counts this request against its source address's minute ([`RateLimiter`]); an
    /// unreachable counter lets the request through, so Meta's deliveries are not lost to it.
    async fn rate_limit(&self, caller: &Caller) -> Result<(), Problem> {
        self.rate_limiter
            .admit_address(self.now(), &self.audit, caller)
            .await
    }

    async fn versions(&self, id: &str) -> Result<SecretVersions, Problem> {
        self.secrets.current_and_previous(id).await.map_err(|e| {
            tracing::error!(error = %e, "reading a secret failed");
            Problem::unavailable()
        })
    }

    /// The secret read again if the cached values are over a minute old (a rotation may have
    /// finished since); `None` when nothing new was read.
    async fn refreshed(&self, id: &str) -> Option<SecretVersions> {
        self.secrets
            .refresh_if_older_than(id, SECRET_REFRESH_AFTER)
            .await
            .ok()
            .flatten()
    }

    async fn record(&self, record: AuditRecord, caller: &Caller) {
        self.audit.record_best_effort(record.caller(caller)).await;
    }
}

/// What a data deletion removed.
#[derive(Debug, Default, Clone, Copy)]
struct Erased {
    account: bool,
    user: bool,
    posts: u64,
    inbox_items: u64,
}

fn secrets(versions: &SecretVersions) -> Vec<&Secret> {
    versions.iter().collect()
}

/// A stable pseudonymous id for audit records about an erased user: the first 16 hex digits of
/// SHA-256 of the Threads user id.
pub fn pseudonym(account_id: &UserId) -> String {
    let digest = Sha256::digest(account_id.as_str().as_bytes());
    hex::encode(digest)[..16].to_owned()
}

/// The ThreadStorm account a change is addressed to: for a reply the owner of the conversation's
/// root post, else the delivery's subscribed user; for a deletion the post's owner.
fn concerned_account(change: &Change, delivery: &Delivery) -> Option<UserId> {
    let own = match change {
        Change::Reply(reply) => reply.root_post.as_ref().and_then(|r| r.owner_id.clone()),
        Change::Delete(delete) => delete.owner_id.clone(),
        _ => None,
    };
    own.or_else(|| delivery.target_id.clone())
}

/// The inbox item for a change: newest first by `sk` = zero-padded Unix seconds `#` media id.
/// Publish and delete changes (kept as a record of what Meta reported) sort under `post#`, apart
/// from the replies and mentions that `GET /v1/inbox` reads.
fn inbox_item(account_id: &UserId, change: &Change, now: i64) -> Item {
    let (field, id, timestamp) = match change {
        Change::Reply(r) => ("replies", r.id.as_str(), r.timestamp.as_deref()),
        Change::Mention(m) => ("mentions", m.id.as_str(), m.timestamp.as_deref()),
        Change::Publish(p) => ("publish", p.id.as_str(), p.timestamp.as_deref()),
        Change::Delete(d) => (
            "delete",
            d.id.as_str(),
            d.deleted_at.as_deref().or(d.timestamp.as_deref()),
        ),
        Change::Unknown(_) | Change::Malformed { .. } => ("unknown", "", None),
    };
    let at = timestamp.and_then(threads_time).unwrap_or(now);
    let prefix = match change {
        Change::Reply(_) | Change::Mention(_) => "",
        _ => crate::inbox::RECORD_PREFIX,
    };
    let mut item = Item::from([
        ("account_id".to_owned(), s(account_id.as_str())),
        (
            "sk".to_owned(),
            s(format!("{prefix}{:011}#{id}", at.max(0))),
        ),
        ("field".to_owned(), s(field)),
        ("id".to_owned(), s(id)),
        ("received_at".to_owned(), n(now)),
        (
            "expires_at".to_owned(),
            n(now.saturating_add(INBOX_SECONDS)),
        ),
    ]);
    let mut text = |name: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            item.insert(name.to_owned(), AttributeValue::S(clip(v).to_owned()));
        }
    };
    text("timestamp", timestamp);
    match change {
        Change::Reply(r) | Change::Mention(r) => reply_fields(r, &mut text),
        Change::Publish(p) => {
            text("username", p.username.as_deref());
            text("permalink", p.permalink.as_deref());
            text("media_type", p.media_type.as_deref());
        }
        Change::Delete(d) => {
            text("username", d.username.as_deref());
            text("deleted_at", d.deleted_at.as_deref());
        }
        Change::Unknown(_) | Change::Malformed { .. } => {}
    }
    item
}

/// The most bytes of one field kept in the inbox. A Threads post is at most 500 characters (2,000
/// bytes of UTF-8); anything longer is not Threads' text, and would push the item past
/// DynamoDB's 400 KB — a permanent failure Meta would retry for a day and a half.
pub const MAX_FIELD_BYTES: usize = 4_096;

/// `value` cut to [`MAX_FIELD_BYTES`] at a character boundary.
fn clip(value: &str) -> &str {
    if value.len() <= MAX_FIELD_BYTES {
        return value;
    }
    let mut end = MAX_FIELD_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

fn reply_fields(r: &Reply, text: &mut impl FnMut(&str, Option<&str>)) {
    text("username", r.username.as_deref());
    text("text", r.text.as_deref());
    text("permalink", r.permalink.as_deref());
    text("media_type", r.media_type.as_deref());
    text(
        "replied_to_id",
        r.replied_to_id.as_ref().map(|i| i.as_str()),
    );
    text(
        "root_post_id",
        r.root_post
            .as_ref()
            .and_then(|p| p.id.as_ref())
            .map(|i| i.as_str()),
    );
}

/// Threads' `2024-09-12T23:17:39+0000` as Unix seconds.
pub(crate) fn threads_time(text: &str) -> Option<i64> {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
    );
    time::OffsetDateTime::parse(text, format)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_timestamps_sort_as_unix_seconds() {
        assert_eq!(
            threads_time("2024-09-12T23:17:39+0000"),
            Some(1_726_183_059)
        );
        assert_eq!(
            threads_time("2024-09-13T01:17:39+0200"),
            Some(1_726_183_059)
        );
        assert_eq!(threads_time("yesterday"), None);
    }

    #[test]
    fn pseudonyms_are_stable_and_reveal_nothing() {
        let id = UserId::parse("218471").unwrap();
        assert_eq!(pseudonym(&id), pseudonym(&id));
        assert_eq!(pseudonym(&id).len(), 16);
        assert!(!pseudonym(&id).contains("218471"));
    }
}
