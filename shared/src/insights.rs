//! Threads' own figures of connected accounts (views, likes, followers…), read for
//! `GET /v1/analytics`: one `threads_insights` call per account, a few at a time, within a time
//! budget. An account whose figures cannot be read gets a short reason instead; nothing here
//! fails the whole answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::accounts::{Account, AccountStatus};
use crate::posts::AccountId;
use crate::threads::{Insight, InsightPeriod, ThreadsClient, ThreadsError, UserMetric};
use crate::vault::{TokenError, TokenOpener, TokenUse};

/// The profile metrics asked for, each in its own field of [`AccountInsights`].
pub const METRICS: [UserMetric; 6] = [
    UserMetric::Views,
    UserMetric::Likes,
    UserMetric::Replies,
    UserMetric::Reposts,
    UserMetric::Quotes,
    UserMetric::FollowersCount,
];

/// How much one request may ask of Threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsightSettings {
    /// Accounts fetched at most (in account id order); the others are `not_fetched`.
    pub max_accounts: usize,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Every fetch ends within this; one still running is `unavailable`. Well under the api
    /// function's 10-second timeout, with room for ThreadStorm's own records.
    pub budget: Duration,
}

impl Default for InsightSettings {
    fn default() -> Self {
        InsightSettings {
            max_accounts: 25,
            concurrency: 4,
            budget: Duration::from_secs(5),
        }
    }
}

/// One account's figures over the period as Threads reports them (`followers_count` is the
/// count now); a metric Threads gave no figure for is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountInsights {
    pub views: Option<u64>,
    pub likes: Option<u64>,
    pub replies: Option<u64>,
    pub reposts: Option<u64>,
    pub quotes: Option<u64>,
    pub followers_count: Option<u64>,
}

impl AccountInsights {
    pub fn from_items(items: &[Insight]) -> Self {
        AccountInsights {
            views: UserMetric::Views.total_in(items),
            likes: UserMetric::Likes.total_in(items),
            replies: UserMetric::Replies.total_in(items),
            reposts: UserMetric::Reposts.total_in(items),
            quotes: UserMetric::Quotes.total_in(items),
            followers_count: UserMetric::FollowersCount.total_in(items),
        }
    }
}

/// Why an account has no figures in this answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Threads refused the token just now (190): the account is to be flagged `needs_reauth`,
    /// as the poster does, and its owner connects it again.
    TokenRefused,
    /// The account is flagged `needs_reauth`, or its stored token cannot be opened: the owner
    /// connects it again.
    NeedsReauth,
    /// Disconnected, revoked, or no longer the caller's: no token to ask with.
    Disconnected,
    /// Threads' rate limit: ask later.
    RateLimited,
    /// Threads or the key service failed for now, or did not answer in time: ask later.
    Unavailable,
    /// Threads refused the request itself (most likely the insights permission was not
    /// granted): asking again will not help.
    Refused,
    /// Beyond the accounts one request fetches.
    NotFetched,
    /// The period ends before Threads' insights begin (13 April 2024) or starts in the future.
    PeriodNotCovered,
}

impl Missing {
    /// A stable code for programs.
    pub fn code(self) -> &'static str {
        match self {
            Missing::TokenRefused | Missing::NeedsReauth => "needs_reauth",
            Missing::Disconnected => "disconnected",
            Missing::RateLimited => "rate_limited",
            Missing::Unavailable => "unavailable",
            Missing::Refused => "refused",
            Missing::NotFetched => "not_fetched",
            Missing::PeriodNotCovered => "period_not_covered",
        }
    }

    /// What happened and what to do about it, for the person reading the figures.
    pub fn text(self) -> &'static str {
        match self {
            Missing::TokenRefused => {
                "Threads refused this account's token: connect the account again."
            }
            Missing::NeedsReauth => {
                "Threads no longer accepts this account's authorization: connect the account again."
            }
            Missing::Disconnected => {
                "The account is not connected: connect it again to see its Threads insights."
            }
            Missing::RateLimited => {
                "Threads is limiting requests for this account: try again in a while."
            }
            Missing::Unavailable => "Threads did not answer in time: try again shortly.",
            Missing::Refused => {
                "Threads refused to give this account's insights: connect the account again and \
                 allow ThreadStorm to read insights."
            }
            Missing::NotFetched => {
                "Not fetched: one request reads Threads insights for a limited number of \
                 accounts; ask for this account alone with account=<id>."
            }
            Missing::PeriodNotCovered => {
                "Threads has insights from 13 April 2024 up to now: choose a period inside that."
            }
        }
    }

    fn from_threads(err: &ThreadsError) -> Self {
        match err {
            ThreadsError::NeedsReauth { .. } => Missing::TokenRefused,
            ThreadsError::RateLimited { .. } => Missing::RateLimited,
            ThreadsError::Transient { .. }
            | ThreadsError::RetrySameContainer { .. }
            | ThreadsError::UncertainPublish { .. } => Missing::Unavailable,
            ThreadsError::Validation { .. } | ThreadsError::PermanentOther { .. } => {
                Missing::Refused
            }
        }
    }
}

pub type Outcome = Result<AccountInsights, Missing>;

/// What one request learned: an outcome per account asked about, and whether every account
/// that could be fetched was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub accounts: BTreeMap<AccountId, Outcome>,
    /// False when accounts were left out by [`InsightSettings::max_accounts`].
    pub complete: bool,
}

/// Reads accounts' insights from Threads with their own tokens.
#[derive(Clone)]
pub struct InsightsReader {
    pub threads: ThreadsClient,
    pub tokens: Arc<dyn TokenOpener>,
    pub settings: InsightSettings,
}

impl InsightsReader {
    /// Figures over `period` for each of `accounts` (each asked once, whatever the repeats).
    /// Accounts that are not connected, and every account when there is no period Threads
    /// has figures for, are answered without any call.
    pub async fn fetch(&self, accounts: &[Account], period: Option<InsightPeriod>) -> Fetched {
        let mut outcomes: BTreeMap<AccountId, Outcome> = BTreeMap::new();
        let mut connected: BTreeMap<AccountId, Account> = BTreeMap::new();
        for account in accounts {
            let id = account.account_id.clone();
            match account.status {
                AccountStatus::Connected if account.sealed_token.is_some() => {
                    connected.insert(id, account.clone());
                }
                AccountStatus::NeedsReauth => {
                    outcomes.insert(id, Err(Missing::NeedsReauth));
                }
                AccountStatus::Connected | AccountStatus::Disconnected => {
                    outcomes.insert(id, Err(Missing::Disconnected));
                }
            }
        }
        let Some(period) = period else {
            outcomes.extend(
                connected
                    .into_keys()
                    .map(|id| (id, Err(Missing::PeriodNotCovered))),
            );
            return Fetched {
                accounts: outcomes,
                complete: true,
            };
        };
        let complete = connected.len() <= self.settings.max_accounts;
        let mut queue: Vec<Account> = Vec::new();
        for (n, (id, account)) in connected.into_iter().enumerate() {
            if n < self.settings.max_accounts {
                // Whatever is not answered within the budget stays unavailable.
                outcomes.insert(id, Err(Missing::Unavailable));
                queue.push(account);
            } else {
                outcomes.insert(id, Err(Missing::NotFetched));
            }
        }
        let deadline = tokio::time::Instant::now() + self.settings.budget;
        let mut pending = queue.into_iter();
        let mut running = JoinSet::new();
        loop {
            while running.len() < self.settings.concurrency.max(1) {
                let Some(account) = pending.next() else { break };
                let (threads, tokens) = (self.threads.clone(), Arc::clone(&self.tokens));
                running.spawn(
                    async move {
                        let outcome = fetch_one(&threads, tokens.as_ref(), &account, period).await;
                        (account.account_id, outcome)
                    }
                    .instrument(tracing::Span::current()),
                );
            }
            match tokio::time::timeout_at(deadline, running.join_next()).await {
                Ok(Some(Ok((id, outcome)))) => {
                    outcomes.insert(id, outcome);
                }
                // A task that panicked leaves its account unavailable.
                Ok(Some(Err(e))) => tracing::error!(error = %e, "an insights fetch did not finish"),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        unanswered = running.len() + pending.len(),
                        "insights budget spent; the rest are unavailable"
                    );
                    // Dropping the set aborts the calls still running.
                    break;
                }
            }
        }
        Fetched {
            accounts: outcomes,
            complete,
        }
    }
}

/// One account: open its token (the vault audits the opening), then one `threads_insights` call.
async fn fetch_one(
    threads: &ThreadsClient,
    tokens: &dyn TokenOpener,
    account: &Account,
    period: InsightPeriod,
) -> Outcome {
    let account_id = account.account_id.as_str();
    let token = tokens
        .open(account, TokenUse::Insights)
        .await
        .map_err(|e| {
            tracing::warn!(account_id, error = %e, "cannot open the token to read insights");
            match e {
                TokenError::Retryable(_) => Missing::Unavailable,
                TokenError::Unusable(_) => Missing::NeedsReauth,
            }
        })?;
    let items = threads
        .user_insights(&token, &account.account_id, &METRICS, Some(period))
        .await
        .map_err(|e| {
            // Reasons name the call and what Threads said, never the token.
            tracing::warn!(account_id, class = e.class(), reason = %e.reason(), "insights not read");
            Missing::from_threads(&e)
        })?;
    Ok(AccountInsights::from_items(&items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_failures_become_short_reasons() {
        let reason = || "r".to_owned();
        let cases = [
            (
                ThreadsError::NeedsReauth {
                    reason: reason(),
                    api: None,
                },
                "needs_reauth",
            ),
            (
                ThreadsError::RateLimited {
                    reason: reason(),
                    retry_after: None,
                    api: None,
                },
                "rate_limited",
            ),
            (
                ThreadsError::Transient {
                    reason: reason(),
                    retry_after: None,
                    api: None,
                },
                "unavailable",
            ),
            (
                ThreadsError::PermanentOther {
                    reason: reason(),
                    alert: false,
                    api: None,
                },
                "refused",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(Missing::from_threads(&err).code(), want, "{err:?}");
        }
    }

    #[test]
    fn every_reason_says_what_to_do() {
        for missing in [
            Missing::TokenRefused,
            Missing::NeedsReauth,
            Missing::Disconnected,
            Missing::RateLimited,
            Missing::Unavailable,
            Missing::Refused,
            Missing::NotFetched,
            Missing::PeriodNotCovered,
        ] {
            let text = missing.text();
            assert!(text.contains(": "), "{text}");
            assert!(!text.to_lowercase().contains("unknown"), "{text}");
        }
    }

    /// The emulator's answer for one account, read into the fields the analytics answer shows.
    #[test]
    fn an_accounts_figures_come_from_both_shapes() {
        let items: Vec<Insight> = serde_json::from_str(
            r#"[
              {"name":"views","period":"day","values":[
                {"value":0,"end_time":"2026-12-03T07:00:00+0000"},
                {"value":123,"end_time":"2026-12-04T07:00:00+0000"}]},
              {"name":"likes","period":"day","total_value":{"value":5}},
              {"name":"replies","period":"day","total_value":{"value":0}},
              {"name":"quotes","period":"day","total_value":{"value":6}},
              {"name":"followers_count","period":"day","total_value":{"value":57}}
            ]"#,
        )
        .unwrap();
        assert_eq!(
            AccountInsights::from_items(&items),
            AccountInsights {
                views: Some(123),
                likes: Some(5),
                replies: Some(0),
                reposts: None,
                quotes: Some(6),
                followers_count: Some(57),
            }
        );
    }

    /// Opens nothing: counts the openings and says the token is unusable, so no Threads call is
    /// ever made.
    #[derive(Default)]
    struct Refusing(std::sync::Mutex<Vec<String>>);

    impl TokenOpener for Refusing {
        fn open<'a>(&'a self, account: &'a Account, _: TokenUse) -> crate::vault::OpenFuture<'a> {
            Box::pin(async move {
                if let Ok(mut opened) = self.0.lock() {
                    opened.push(account.account_id.to_string());
                }
                Err(TokenError::Unusable("test".into()))
            })
        }
    }

    fn account(id: &str, status: AccountStatus) -> Account {
        Account {
            account_id: AccountId::parse(id).unwrap(),
            owner_user_id: "user-1".into(),
            username: format!("u{id}"),
            status,
            sealed_token: (status != AccountStatus::Disconnected).then(|| "sealed".into()),
            token_issued_at: 0,
            token_expires_at: 0,
            connected_at: 0,
        }
    }

    fn reader(tokens: Arc<Refusing>, max_accounts: usize) -> InsightsReader {
        let config = crate::threads::ThreadsConfig::new(
            "http://127.0.0.1:1",
            "http://127.0.0.1:1/oauth/authorize",
        )
        .unwrap();
        InsightsReader {
            threads: ThreadsClient::new(config).unwrap(),
            tokens,
            settings: InsightSettings {
                max_accounts,
                ..InsightSettings::default()
            },
        }
    }

    #[tokio::test]
    async fn only_connected_accounts_up_to_the_cap_are_asked_about() {
        let tokens = Arc::new(Refusing::default());
        let accounts = [
            account("17841400000000003", AccountStatus::Connected),
            account("17841400000000001", AccountStatus::Connected),
            account("17841400000000004", AccountStatus::NeedsReauth),
            account("17841400000000002", AccountStatus::Connected),
            account("17841400000000005", AccountStatus::Disconnected),
            account("17841400000000001", AccountStatus::Connected),
        ];
        let period = InsightPeriod {
            since: 1_796_000_000,
            until: 1_796_299_200,
        };
        let fetched = reader(tokens.clone(), 2)
            .fetch(&accounts, Some(period))
            .await;
        let codes: Vec<(String, &str)> = fetched
            .accounts
            .iter()
            .map(|(id, o)| (id.to_string(), o.as_ref().err().map_or("ok", |m| m.code())))
            .collect();
        assert_eq!(
            codes,
            [
                ("17841400000000001".into(), "needs_reauth"),
                ("17841400000000002".into(), "needs_reauth"),
                ("17841400000000003".into(), "not_fetched"),
                ("17841400000000004".into(), "needs_reauth"),
                ("17841400000000005".into(), "disconnected"),
            ]
        );
        assert!(!fetched.complete);
        let mut opened = tokens.0.lock().unwrap().clone();
        opened.sort();
        assert_eq!(opened, ["17841400000000001", "17841400000000002"]);
    }

    #[tokio::test]
    async fn a_period_before_threads_insights_opens_no_token() {
        let tokens = Arc::new(Refusing::default());
        let accounts = [
            account("17841400000000001", AccountStatus::Connected),
            account("17841400000000002", AccountStatus::Disconnected),
        ];
        let fetched = reader(tokens.clone(), 25).fetch(&accounts, None).await;
        let first = AccountId::parse("17841400000000001").unwrap();
        let second = AccountId::parse("17841400000000002").unwrap();
        assert_eq!(fetched.accounts[&first], Err(Missing::PeriodNotCovered));
        assert_eq!(fetched.accounts[&second], Err(Missing::Disconnected));
        assert!(fetched.complete);
        assert!(tokens.0.lock().unwrap().is_empty());
    }
}
