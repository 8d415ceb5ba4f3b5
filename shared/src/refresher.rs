//! The token refresher (scheduled): keeps connections alive past Threads' 60 days.
//!
//! A long-lived token is its own refresh credential — there is no separate refresh token. Threads
//! refreshes a token only when it is at least 24 hours old and not yet expired, and the new one
//! lasts `expires_in` seconds from the refresh. So each run refreshes the connected accounts whose
//! token is old enough and expires within the window; a 190 marks the account `needs_reauth`
//! (its owner must connect again) and keeps the old token; nothing is retried in a loop.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::accounts::{Account, AccountStore};
use crate::audit::{Audit, AuditRecord, Category, Outcome};
use crate::clock::{Clock, SystemClock};
use crate::config::ConfigError;
use crate::resources::Resource;
use crate::secrets::SecretReader;
use crate::threads::{AccessToken, ThreadsClient, ThreadsConfig, ThreadsError};
use crate::users::UserId;
use crate::vault::{Purpose, TokenOwner, Vault};

/// Threads refuses to refresh a token younger than this.
pub const MIN_TOKEN_AGE: Duration = Duration::from_secs(24 * 3600);

/// What one run did, returned by the function and logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    pub due: u32,
    pub refreshed: u32,
    /// Due, but younger than 24 hours: left for a later run (no call).
    pub too_young: u32,
    /// Threads refused the token (or it had already expired): the owner must connect again.
    pub needs_reauth: u32,
    /// Failed for a reason that may pass (network, throttling): the next run tries again.
    pub failed: u32,
}

pub struct Refresher {
    pub accounts: AccountStore,
    pub vault: Vault,
    pub threads: ThreadsClient,
    pub audit: Audit,
    pub clock: Arc<dyn Clock>,
    pub window: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RefresherError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the refresher could not start: {0}")]
    Start(String),
    #[error("listing accounts due for refresh failed: {0}")]
    List(String),
}

impl From<RefresherError> for lambda_runtime::Diagnostic {
    fn from(err: RefresherError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "RefresherError".into(),
            error_message: err.to_string(),
        }
    }
}

impl Refresher {
    pub async fn from_deps(deps: &crate::runtime::Deps) -> Result<Self, RefresherError> {
        let config = &deps.config;
        let threads_config =
            ThreadsConfig::new(&config.threads.graph_url, &config.threads.authorize_url)
                .map_err(|e| RefresherError::Start(e.to_string()))?;
        let threads =
            ThreadsClient::new(threads_config).map_err(|e| RefresherError::Start(e.to_string()))?;
        let secrets = Arc::new(SecretReader::new(
            deps.aws.secrets.clone(),
            Duration::from_secs(300),
        ));
        let audit = Audit::dynamodb(
            deps.aws.dynamodb.clone(),
            config.resource(Resource::AuditTable)?,
            &config.logs,
        );
        let vault = Vault::open(config, deps.aws.kms.clone(), secrets, audit.clone())
            .await
            .map_err(|e| RefresherError::Start(e.to_string()))?;
        let window = Duration::from_secs(config.token_refresh_window_days * 24 * 3600);
        Ok(Refresher {
            accounts: AccountStore::new(
                deps.aws.dynamodb.clone(),
                config.resource(Resource::AccountsTable)?,
            ),
            vault,
            threads,
            audit,
            clock: Arc::new(SystemClock),
            window,
        })
    }

    /// One scheduled run over every connected account due for refresh.
    pub async fn run(&self) -> Result<RefreshReport, RefresherError> {
        let now = self.clock.now().unix_timestamp();
        let horizon = now.saturating_add(self.window.as_secs() as i64);
        let due = self
            .accounts
            .expiring_before(horizon)
            .await
            .map_err(|e| RefresherError::List(e.to_string()))?;
        let mut report = RefreshReport {
            due: due.len() as u32,
            ..Default::default()
        };
        for account in due {
            match self.refresh_one(&account, now).await {
                Step::Refreshed => report.refreshed += 1,
                Step::TooYoung => report.too_young += 1,
                Step::NeedsReauth => report.needs_reauth += 1,
                Step::Failed => report.failed += 1,
            }
        }
        tracing::info!(?report, "token refresh run");
        Ok(report)
    }

    async fn refresh_one(&self, account: &Account, now: i64) -> Step {
        let account_id = account.account_id.as_str();
        if now - account.token_issued_at < MIN_TOKEN_AGE.as_secs() as i64 {
            return Step::TooYoung;
        }
        if account.token_expires_at <= now {
            // Expired tokens cannot be refreshed: only a new connection helps.
            return self
                .needs_reauth(account, "the token expired before it could be refreshed")
                .await;
        }
        let (Some(sealed), Ok(owner_id)) =
            (&account.sealed_token, UserId::parse(&account.owner_user_id))
        else {
            return self
                .needs_reauth(account, "the account holds no usable token")
                .await;
        };
        let owner = TokenOwner::new(owner_id, account_id);
        let token = match self
            .vault
            .unseal(sealed, &owner, Purpose::ThreadsAccessToken, "token refresh")
            .await
        {
            Ok(token) => AccessToken::new(token.expose()),
            Err(e) => {
                metric_failure();
                tracing::error!(account_id, error = %e, "cannot open the token to refresh it");
                return Step::Failed;
            }
        };
        match self.threads.refresh(&token).await {
            Ok(fresh) => {
                let expires_at =
                    now.saturating_add(i64::try_from(fresh.expires_in).unwrap_or(i64::MAX));
                let sealed_new = match self
                    .vault
                    .seal(
                        fresh.access_token.expose(),
                        &owner,
                        Purpose::ThreadsAccessToken,
                    )
                    .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        metric_failure();
                        tracing::error!(account_id, error = %e, "sealing the refreshed token failed");
                        return Step::Failed;
                    }
                };
                match self
                    .accounts
                    .replace_token(
                        &account.account_id,
                        sealed,
                        sealed_new.as_str(),
                        now,
                        expires_at,
                    )
                    .await
                {
                    Ok(true) => {
                        self.record(
                            AuditRecord::new(
                                Category::Authentication,
                                "token.refresh",
                                Outcome::Success,
                            )
                            .user(&account.owner_user_id)
                            .description("refreshed the long-lived Threads token")
                            .metadata(
                                json!({ "account_id": account_id, "expires_at": expires_at }),
                            ),
                        )
                        .await;
                        Step::Refreshed
                    }
                    // Disconnected or refreshed by someone else meanwhile: theirs stands.
                    Ok(false) => Step::Failed,
                    Err(e) => {
                        metric_failure();
                        tracing::error!(account_id, error = %e, "storing the refreshed token failed");
                        Step::Failed
                    }
                }
            }
            Err(ThreadsError::NeedsReauth { reason, .. }) => {
                self.needs_reauth(account, &reason).await
            }
            Err(e) => {
                metric_failure();
                tracing::warn!(account_id, class = e.class(), reason = %e.reason(), "refresh failed; the next run tries again");
                Step::Failed
            }
        }
    }

    async fn needs_reauth(&self, account: &Account, reason: &str) -> Step {
        metric_failure();
        if let Err(e) = self.accounts.mark_needs_reauth(&account.account_id).await {
            tracing::error!(account_id = account.account_id.as_str(), error = %e, "marking needs_reauth failed");
            return Step::Failed;
        }
        self.record(
            AuditRecord::new(Category::Authentication, "token.refresh", Outcome::Failure)
                .user(&account.owner_user_id)
                .description("Threads refused the token: the account must be connected again")
                .metadata(json!({ "account_id": account.account_id.as_str(), "reason": reason })),
        )
        .await;
        Step::NeedsReauth
    }

    async fn record(&self, record: AuditRecord) {
        self.audit.record_best_effort(record).await;
    }
}

enum Step {
    Refreshed,
    TooYoung,
    NeedsReauth,
    Failed,
}

/// `token_refresh_failures`, one per failed account, as a CloudWatch embedded metric line.
fn metric_failure() {
    crate::metrics::count(
        "token-refresher",
        crate::metrics::Metric::TokenRefreshFailures,
    );
}
