//! Per-caller request limits at the HTTP edge: each caller (a signed-in user, a source address)
//! gets a number of requests per fixed one-minute window, counted with one conditional
//! `UpdateItem` in the RateLimitsTable — atomic, so concurrent requests never admit more than the
//! limit, and a refused request consumes nothing.
//!
//! A refused request is answered 429 with `Retry-After` before its handler runs. Each refusal
//! counts `rate_limit_violations`; the first refusal of a caller in a window also writes a
//! security audit record (one per caller and minute, so a flood cannot turn into a flood of audit
//! writes), and each refusal is logged unless `ENABLE_RATE_LIMIT_LOGS=false`.

use aws_sdk_dynamodb::Client;
use serde_json::json;

use crate::audit::{Audit, AuditRecord, Category, Outcome};
use crate::config::{Config, ConfigError};
use crate::edge::{Caller, Problem};
use crate::metrics;
use crate::resources::Resource;
use crate::store::{
    Condition, Conditional, Counted, Item, StoreError, increment_below, n, put_if, s,
};

/// The length of a counting window.
pub const WINDOW_SECONDS: i64 = 60;

/// The highest limit accepted from the configuration; above it a limit no longer limits anything.
pub const MAX_PER_MINUTE: u32 = 1_000_000;

/// Whose requests a limit counts, and in which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `/v1` routes of the api function, per authenticated user.
    ApiUser,
    /// `/oauth/start` and `/oauth/callback`, per source address.
    OAuthIp,
    /// Every route of the webhooks function, per source address.
    WebhooksIp,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::ApiUser, Scope::OAuthIp, Scope::WebhooksIp];

    /// The variable that sets the scope's limit.
    pub fn env_var(self) -> &'static str {
        match self {
            Scope::ApiUser => "API_RATE_LIMIT_PER_MINUTE",
            Scope::OAuthIp => "OAUTH_RATE_LIMIT_PER_MINUTE",
            Scope::WebhooksIp => "WEBHOOKS_RATE_LIMIT_PER_MINUTE",
        }
    }

    /// Requests per caller and minute when the variable is unset.
    pub fn default_per_minute(self) -> u32 {
        match self {
            Scope::ApiUser => 120,
            // A sign-in is one start and one callback: fifteen a minute from one address.
            Scope::OAuthIp => 30,
            Scope::WebhooksIp => 120,
        }
    }

    /// The function that counts it (its metrics' `service`).
    pub fn service(self) -> &'static str {
        match self {
            Scope::ApiUser => "api",
            Scope::OAuthIp => "oauth",
            Scope::WebhooksIp => "webhooks",
        }
    }

    /// The audit action of a refusal.
    pub fn audit_action(self) -> &'static str {
        match self {
            Scope::ApiUser => "api.rate_limited",
            Scope::OAuthIp => "oauth.rate_limited",
            Scope::WebhooksIp => "webhook.rate_limited",
        }
    }

    /// The start of the counter's partition key; the caller's key follows.
    fn key_prefix(self) -> &'static str {
        match self {
            Scope::ApiUser => "api#user#",
            Scope::OAuthIp => "oauth#ip#",
            Scope::WebhooksIp => "webhooks#ip#",
        }
    }

    fn whose(self) -> &'static str {
        match self {
            Scope::ApiUser => "user",
            Scope::OAuthIp | Scope::WebhooksIp => "address",
        }
    }

    /// When the counter cannot be reached: the api and oauth routes answer 503, as they do for
    /// any other store outage (their handlers need the same DynamoDB, and an outage is not
    /// something a request can cause); the webhooks let the request through, because Meta's
    /// deliveries must not be lost to the counter.
    fn fails_open(self) -> bool {
        matches!(self, Scope::WebhooksIp)
    }
}

/// Requests per caller and minute, by scope (`API_RATE_LIMIT_PER_MINUTE`,
/// `OAUTH_RATE_LIMIT_PER_MINUTE`, `WEBHOOKS_RATE_LIMIT_PER_MINUTE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub api_per_minute: u32,
    pub oauth_per_minute: u32,
    pub webhooks_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            api_per_minute: Scope::ApiUser.default_per_minute(),
            oauth_per_minute: Scope::OAuthIp.default_per_minute(),
            webhooks_per_minute: Scope::WebhooksIp.default_per_minute(),
        }
    }
}

impl RateLimits {
    pub fn per_minute(self, scope: Scope) -> u32 {
        match scope {
            Scope::ApiUser => self.api_per_minute,
            Scope::OAuthIp => self.oauth_per_minute,
            Scope::WebhooksIp => self.webhooks_per_minute,
        }
    }

    pub fn set(&mut self, scope: Scope, per_minute: u32) {
        match scope {
            Scope::ApiUser => self.api_per_minute = per_minute,
            Scope::OAuthIp => self.oauth_per_minute = per_minute,
            Scope::WebhooksIp => self.webhooks_per_minute = per_minute,
        }
    }
}

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Within the limit; this is the request's place in its window.
    Admitted { count: i64 },
    /// Over the limit; nothing was counted.
    Refused {
        /// Seconds until the window ends and requests are admitted again.
        retry_after: u64,
        /// The caller's first refusal in this window (the one that is audited).
        first: bool,
    },
}

/// Counts one scope's requests in the RateLimitsTable.
///
/// Items: the counter (pk `<scope>#<key>`, sk `minute#<n>` with n = Unix seconds / 60, `count`)
/// and, once a caller is refused in a window, a marker (sk `minute#<n>#tripped`); both expire
/// (`expires_at`, the table's TTL) a minute after their window.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    dynamodb: Client,
    table: String,
    scope: Scope,
    /// Requests admitted per caller and minute.
    pub per_minute: u32,
    /// `ENABLE_RATE_LIMIT_LOGS`: log each refused request. Audit records and metrics are kept
    /// whatever it says.
    pub log_refusals: bool,
}

impl RateLimiter {
    /// The limiter of `scope`, with the limit and log switch of `config`.
    pub fn from_config(
        dynamodb: Client,
        config: &Config,
        scope: Scope,
    ) -> Result<Self, ConfigError> {
        Ok(RateLimiter {
            dynamodb,
            table: config.resource(Resource::RateLimitsTable)?.to_owned(),
            scope,
            per_minute: config.rate_limits.per_minute(scope),
            log_refusals: config.logs.rate_limit,
        })
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Counts one request of `key` at `now` (Unix seconds): one conditional `UpdateItem` when
    /// admitted; a refusal also tries to write the window's marker once.
    pub async fn count(&self, key: &str, now: i64) -> Result<Admission, StoreError> {
        let window = window(now);
        let pk = format!("{}{key}", self.scope.key_prefix());
        let expires_at = n(expires_at(window));
        let counter = Item::from([
            ("pk".to_owned(), s(&pk)),
            ("sk".to_owned(), s(format!("minute#{window}"))),
        ]);
        let counted = increment_below(
            &self.dynamodb,
            &self.table,
            counter,
            "count",
            1,
            i64::from(self.per_minute),
            &[("expires_at", expires_at.clone())],
        )
        .await?;
        match counted {
            Counted::Incremented(count) => Ok(Admission::Admitted { count }),
            Counted::AtLimit => {
                let marker = Item::from([
                    ("pk".to_owned(), s(&pk)),
                    ("sk".to_owned(), s(format!("minute#{window}#tripped"))),
                    ("expires_at".to_owned(), expires_at),
                ]);
                // An unwritten marker (taken, or the store failed) only means no audit record.
                let first = put_if(
                    &self.dynamodb,
                    &self.table,
                    marker,
                    Condition::new("attribute_not_exists(pk)"),
                )
                .await;
                Ok(Admission::Refused {
                    retry_after: retry_after(now),
                    first: matches!(first, Ok(Conditional::Written)),
                })
            }
        }
    }

    /// Admits one request of `caller`'s source address (the oauth and webhooks functions).
    /// Without one (not behind API Gateway) nothing is counted.
    pub async fn admit_address(
        &self,
        now: i64,
        audit: &Audit,
        caller: &Caller,
    ) -> Result<(), Problem> {
        match &caller.ip_address {
            Some(ip) => self.admit(ip, now, audit, caller, None).await,
            None => Ok(()),
        }
    }

    /// Admits one request of `key` at `now`, or refuses it: a 429 problem with `Retry-After`,
    /// counted in `rate_limit_violations`, audited (first refusal per caller and window) as a
    /// security event about `user` from `caller`. When the counter is unreachable, see
    /// [`Scope::fails_open`].
    pub async fn admit(
        &self,
        key: &str,
        now: i64,
        audit: &Audit,
        caller: &Caller,
        user: Option<&str>,
    ) -> Result<(), Problem> {
        let (retry_after, first) = match self.count(key, now).await {
            Ok(Admission::Admitted { .. }) => return Ok(()),
            Ok(Admission::Refused { retry_after, first }) => (retry_after, first),
            Err(e) if self.scope.fails_open() => {
                tracing::warn!(error = %e, "the rate limit counter is unreachable; request let through");
                return Ok(());
            }
            Err(e) => {
                tracing::error!(error = %e, "the rate limit counter is unreachable; request refused");
                return Err(Problem::unavailable());
            }
        };
        metrics::count(self.scope.service(), metrics::Metric::RateLimitViolations);
        if self.log_refusals {
            tracing::info!(
                action = self.scope.audit_action(),
                limit_per_minute = self.per_minute,
                retry_after,
                request_id = caller.request_id.as_deref().unwrap_or(""),
                "request refused: over the rate limit"
            );
        }
        if first {
            let mut record = AuditRecord::new(
                Category::Security,
                self.scope.audit_action(),
                Outcome::Denied,
            )
            .description(format!(
                "over {} requests in a minute from one {}; refused until the minute ends",
                self.per_minute,
                self.scope.whose()
            ))
            .metadata(json!({
                "limit_per_minute": self.per_minute,
                "window_start": window(now) * WINDOW_SECONDS,
                "retry_after": retry_after,
            }))
            .caller(caller);
            if let Some(user) = user {
                record = record.user(user);
            }
            audit.record_best_effort(record).await;
        }
        Err(Problem::new(
            429,
            "rate_limited",
            format!(
                "too many requests from this {}: at most {} a minute; try again in {retry_after} s",
                self.scope.whose(),
                self.per_minute
            ),
        )
        .with_retry_after(retry_after))
    }
}

/// The window `now` (Unix seconds) falls in: windows are numbered from the epoch, so every
/// function and every container agrees on where a minute starts.
pub fn window(now: i64) -> i64 {
    now.div_euclid(WINDOW_SECONDS)
}

/// When a window's items may go (the table's TTL): a whole window after it ended, so a counter
/// is never deleted while it still counts, even with clocks a little apart.
pub fn expires_at(window: i64) -> i64 {
    window.saturating_add(2).saturating_mul(WINDOW_SECONDS)
}

/// Seconds from `now` until its window ends (1 to [`WINDOW_SECONDS`]).
pub fn retry_after(now: i64) -> u64 {
    u64::try_from(WINDOW_SECONDS - now.rem_euclid(WINDOW_SECONDS)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_minutes_from_the_epoch() {
        assert_eq!(window(0), 0);
        assert_eq!(window(59), 0);
        assert_eq!(window(60), 1);
        assert_eq!(window(1_800_000_000), 30_000_000);
        assert_eq!(window(1_800_000_059), 30_000_000);
        assert_eq!(window(1_800_000_060), 30_000_001);
        // Before the epoch (a clock gone wrong) still has a window, the one it lies in.
        assert_eq!(window(-1), -1);
        assert_eq!(window(-60), -1);
        assert_eq!(window(-61), -2);
    }

    #[test]
    fn retry_after_is_the_rest_of_the_minute() {
        assert_eq!(retry_after(1_800_000_020), 40);
        assert_eq!(retry_after(1_800_000_000), 60);
        assert_eq!(
            retry_after(120),
            60,
            "a window's first second waits all of it"
        );
        assert_eq!(retry_after(179), 1, "its last second waits one");
        assert_eq!(retry_after(-1), 1);
        for now in [
            i64::MIN,
            i64::MIN + 1,
            -61,
            0,
            1,
            59,
            61,
            i64::MAX - 1,
            i64::MAX,
        ] {
            let wait = retry_after(now);
            assert!((1..=60).contains(&wait), "{now}: {wait}");
            // Waiting that long lands in the next window, at its start.
            if let Some(later) = now.checked_add(wait as i64) {
                assert_eq!(window(later), window(now) + 1, "{now}");
                assert_eq!(later.rem_euclid(WINDOW_SECONDS), 0, "{now}");
            }
        }
    }

    #[test]
    fn a_windows_items_expire_a_whole_window_after_it_ends() {
        let now = 1_800_000_000;
        let end = (window(now) + 1) * WINDOW_SECONDS;
        assert_eq!(expires_at(window(now)), end + WINDOW_SECONDS);
        assert!(expires_at(window(now)) > now + retry_after(now) as i64);
        assert_eq!(expires_at(window(i64::MAX)), i64::MAX);
    }

    #[test]
    fn scopes_have_distinct_keys_variables_and_functions() {
        let prefixes: std::collections::HashSet<_> =
            Scope::ALL.iter().map(|s| s.key_prefix()).collect();
        let vars: std::collections::HashSet<_> = Scope::ALL.iter().map(|s| s.env_var()).collect();
        assert_eq!(prefixes.len(), Scope::ALL.len());
        assert_eq!(vars.len(), Scope::ALL.len());
        for scope in Scope::ALL {
            assert!(crate::metrics::HTTP_SERVICES.contains(&scope.service()));
            assert!(scope.default_per_minute() > 0 && scope.default_per_minute() <= MAX_PER_MINUTE);
            let mut limits = RateLimits::default();
            limits.set(scope, 7);
            assert_eq!(limits.per_minute(scope), 7);
        }
        // The webhooks keep the keys they had before the limit was shared.
        assert_eq!(Scope::WebhooksIp.key_prefix(), "webhooks#ip#");
    }
}
