//! The HTTP client: one `reqwest::Client` built once, every call with timeouts, no redirects,
//! tokens in the `Authorization` header (or, where Threads demands it, in a query that is
//! redacted before anything prints it), every answer parsed into a type or a classified error.

use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, StatusCode, header};
use serde::de::DeserializeOwned;
use url::Url;

use super::error::{ApiError, Call, ThreadsError, classify};
use super::ids::{AccessToken, ContainerId, MediaId, UserId};
use super::oauth::{
    AppCredentials, AuthorizeRequest, LongLivedToken, ShortLivedToken, TokenInfo, clean_code,
};
use super::redact::redact_url;
use super::types::{
    ContainerStatus, ContainerStatusBody, DataBody, Deleted, IdBody, Insight, InsightPeriod,
    ListThreads, Metric, NewContainer, Page, Profile, PublishingLimit, ThreadsMedia, UserMetric,
};

/// Where Threads is and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadsConfig {
    /// The Graph API host, e.g. `https://graph.threads.net` (or the emulator's base URL).
    pub graph_base: Url,
    /// The authorization window, e.g. `https://threads.com/oauth/authorize`.
    pub authorize_url: Url,
    /// The path prefix of versioned endpoints.
    pub api_version: String,
    pub connect_timeout: Duration,
    /// Whole call, from sending to the last byte of the answer.
    pub timeout: Duration,
}

pub const DEFAULT_GRAPH_BASE: &str = "https://graph.threads.net";
pub const DEFAULT_AUTHORIZE_URL: &str = "https://threads.com/oauth/authorize";

impl ThreadsConfig {
    /// Points the client at `graph_base` and `authorize_url` with default version and timeouts.
    pub fn new(graph_base: &str, authorize_url: &str) -> Result<Self, url::ParseError> {
        let graph_base = Url::parse(graph_base)?;
        if graph_base.cannot_be_a_base() {
            return Err(url::ParseError::RelativeUrlWithCannotBeABaseBase);
        }
        Ok(ThreadsConfig {
            graph_base,
            authorize_url: Url::parse(authorize_url)?,
            api_version: "v1.0".to_owned(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(20),
        })
    }

    /// Meta's production hosts.
    pub fn production() -> Self {
        // Both constants are valid absolute URLs, so this cannot fail; fall back defensively anyway.
        Self::new(DEFAULT_GRAPH_BASE, DEFAULT_AUTHORIZE_URL).unwrap_or_else(|_| unreachable!())
    }

    pub fn with_timeouts(mut self, connect: Duration, total: Duration) -> Self {
        self.connect_timeout = connect;
        self.timeout = total;
        self
    }
}

/// The typed Threads API client. Cheap to clone; build it once per process and share it.
#[derive(Debug, Clone)]
pub struct ThreadsClient {
    http: reqwest::Client,
    config: ThreadsConfig,
}

const ME_FIELDS: &str =
    "id,username,name,threads_profile_picture_url,threads_biography,is_verified";
const LIMIT_FIELDS: &str =
    "quota_usage,config,reply_quota_usage,reply_config,delete_quota_usage,delete_config";
const LIST_FIELDS: &str =
    "id,media_type,permalink,text,timestamp,shortcode,username,is_reply,replied_to,root_post";

impl ThreadsClient {
    pub fn new(config: ThreadsConfig) -> Result<Self, ThreadsError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("threadstorm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ThreadsError::PermanentOther {
                reason: format!("could not build the HTTP client: {e}"),
                alert: true,
                api: None,
            })?;
        Ok(ThreadsClient { http, config })
    }

    pub fn config(&self) -> &ThreadsConfig {
        &self.config
    }

    /// The authorization window URL for `request`, on the configured window.
    pub fn authorize_url(&self, request: &AuthorizeRequest) -> Url {
        request.url(&self.config.authorize_url)
    }

    // ---- OAuth -------------------------------------------------------------------------------

    /// Exchanges the redirect's `code` for a short-lived token (form POST; `#_` stripped).
    /// `redirect_uri` must equal the one sent to the window; `code_verifier` is the PKCE
    /// verifier whose challenge went to the window (Meta ignores it; a strict server checks it).
    pub async fn exchange_code(
        &self,
        app: &AppCredentials,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<ShortLivedToken, ThreadsError> {
        let mut form = vec![
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.expose()),
            ("code", clean_code(code)),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(verifier) = code_verifier {
            form.push(("code_verifier", verifier));
        }
        let req = self
            .http
            .post(self.url(false, &["oauth", "access_token"]))
            .form(&form);
        self.send(Call::CodeExchange, req).await
    }

    /// Exchanges a short-lived token for a long-lived one (≈ 60 days). Threads takes the secret
    /// and token in the query here; that URL is only ever shown redacted.
    pub async fn exchange_long_lived(
        &self,
        app: &AppCredentials,
        short: &AccessToken,
    ) -> Result<LongLivedToken, ThreadsError> {
        let mut url = self.url(false, &["access_token"]);
        url.query_pairs_mut()
            .append_pair("grant_type", "th_exchange_token")
            .append_pair("client_secret", app.client_secret.expose())
            .append_pair("access_token", short.expose());
        self.send(Call::LongLivedExchange, self.http.get(url)).await
    }

    /// Refreshes a long-lived token (at least 24 hours old and unexpired) for another 60 days.
    pub async fn refresh(&self, long: &AccessToken) -> Result<LongLivedToken, ThreadsError> {
        let mut url = self.url(false, &["refresh_access_token"]);
        url.query_pairs_mut()
            .append_pair("grant_type", "th_refresh_token")
            .append_pair("access_token", long.expose());
        self.send(Call::Refresh, self.http.get(url)).await
    }

    /// What Threads knows about `input`: validity, scopes, expiry, user. `inspector` is the
    /// token the call is made with: `input` itself (which fails with 190 once it is dead), or
    /// the app token from [`AppCredentials::app_token`], which can inspect dead tokens too.
    pub async fn debug_token(
        &self,
        input: &AccessToken,
        inspector: &AccessToken,
    ) -> Result<TokenInfo, ThreadsError> {
        let mut url = self.url(true, &["debug_token"]);
        url.query_pairs_mut()
            .append_pair("input_token", input.expose());
        let req = self.authed(Method::GET, url, inspector);
        let body: DataBody<TokenInfo> = self.send(Call::DebugToken, req).await?;
        Ok(body.data)
    }

    // ---- Profile and publishing -----------------------------------------------------------------

    pub async fn me(&self, token: &AccessToken) -> Result<Profile, ThreadsError> {
        let mut url = self.url(true, &["me"]);
        url.query_pairs_mut().append_pair("fields", ME_FIELDS);
        self.send(Call::Me, self.authed(Method::GET, url, token))
            .await
    }

    /// Creates a media container (step 1 of publishing). Parameters go as a form body.
    pub async fn create_container(
        &self,
        token: &AccessToken,
        user: &UserId,
        container: &NewContainer,
    ) -> Result<ContainerId, ThreadsError> {
        let url = self.url(true, &[user.as_str(), "threads"]);
        let req = self
            .authed(Method::POST, url, token)
            .form(&container.form());
        let body: IdBody<ContainerId> = self.send(Call::CreateContainer, req).await?;
        Ok(body.id)
    }

    /// Publishes a container (step 2). On [`ThreadsError::UncertainPublish`] read
    /// [`ThreadsClient::container_status`] before publishing again; on
    /// [`ThreadsError::RetrySameContainer`] publish the same container again after a backoff.
    pub async fn publish(
        &self,
        token: &AccessToken,
        user: &UserId,
        container: &ContainerId,
    ) -> Result<MediaId, ThreadsError> {
        let url = self.url(true, &[user.as_str(), "threads_publish"]);
        let req = self
            .authed(Method::POST, url, token)
            .form(&[("creation_id", container.as_str())]);
        let body: IdBody<MediaId> = self.send(Call::Publish, req).await?;
        Ok(body.id)
    }

    pub async fn container_status(
        &self,
        token: &AccessToken,
        container: &ContainerId,
    ) -> Result<ContainerStatus, ThreadsError> {
        let mut url = self.url(true, &[container.as_str()]);
        url.query_pairs_mut()
            .append_pair("fields", "id,status,error_message");
        let body: ContainerStatusBody = self
            .send(Call::ContainerStatus, self.authed(Method::GET, url, token))
            .await?;
        body.into_status()
            .map_err(|what| ThreadsError::unexpected_body(Call::ContainerStatus, 200, what))
    }

    /// The profile's rolling-24-hour quotas: posts, replies, deletes.
    pub async fn publishing_limit(
        &self,
        token: &AccessToken,
        user: &UserId,
    ) -> Result<PublishingLimit, ThreadsError> {
        let mut url = self.url(true, &[user.as_str(), "threads_publishing_limit"]);
        url.query_pairs_mut().append_pair("fields", LIMIT_FIELDS);
        let body: DataBody<Vec<PublishingLimit>> = self
            .send(Call::PublishingLimit, self.authed(Method::GET, url, token))
            .await?;
        body.data.into_iter().next().ok_or_else(|| {
            ThreadsError::unexpected_body(Call::PublishingLimit, 200, "an empty data list".into())
        })
    }

    // ---- Reading and deleting -----------------------------------------------------------------

    /// One page of the profile's own posts; pass the previous page's [`Page::next_cursor`] as
    /// `after`. [`ThreadsClient::threads_pages`] walks all pages.
    pub async fn list_threads(
        &self,
        token: &AccessToken,
        user: &UserId,
        filter: &ListThreads,
        after: Option<&str>,
    ) -> Result<Page<ThreadsMedia>, ThreadsError> {
        let mut url = self.url(true, &[user.as_str(), "threads"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("fields", LIST_FIELDS);
            if let Some(since) = &filter.since {
                q.append_pair("since", since);
            }
            if let Some(until) = &filter.until {
                q.append_pair("until", until);
            }
            if let Some(limit) = filter.limit {
                q.append_pair("limit", &limit.min(100).to_string());
            }
            if let Some(after) = after {
                q.append_pair("after", after);
            }
        }
        self.send(Call::ListThreads, self.authed(Method::GET, url, token))
            .await
    }

    /// One page of the top-level replies to `media` (newest first); pass the previous page's
    /// [`Page::next_cursor`] as `after`. Finds a reply whose publish outcome was unknown.
    pub async fn list_replies(
        &self,
        token: &AccessToken,
        media: &MediaId,
        after: Option<&str>,
    ) -> Result<Page<ThreadsMedia>, ThreadsError> {
        let mut url = self.url(true, &[media.as_str(), "replies"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("fields", LIST_FIELDS);
            q.append_pair("limit", "100");
            if let Some(after) = after {
                q.append_pair("after", after);
            }
        }
        self.send(Call::ListReplies, self.authed(Method::GET, url, token))
            .await
    }

    /// Walks the profile's posts page by page.
    pub fn threads_pages<'a>(
        &'a self,
        token: &'a AccessToken,
        user: &'a UserId,
        filter: ListThreads,
    ) -> ThreadsPages<'a> {
        ThreadsPages {
            client: self,
            token,
            user,
            filter,
            after: None,
            done: false,
        }
    }

    pub async fn media_insights(
        &self,
        token: &AccessToken,
        media: &MediaId,
        metrics: &[Metric],
    ) -> Result<Vec<Insight>, ThreadsError> {
        let metrics = if metrics.is_empty() {
            &Metric::ALL[..]
        } else {
            metrics
        };
        let metric = metrics
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut url = self.url(true, &[media.as_str(), "insights"]);
        url.query_pairs_mut().append_pair("metric", &metric);
        let body: DataBody<Vec<Insight>> = self
            .send(Call::Insights, self.authed(Method::GET, url, token))
            .await?;
        Ok(body.data)
    }

    /// The profile's own figures (`threads_insights`) over `period` (Threads' default — yesterday
    /// through today — when `None`): one call for every metric asked for, or all of them when
    /// `metrics` is empty. Read each with [`UserMetric::total_in`].
    pub async fn user_insights(
        &self,
        token: &AccessToken,
        user: &UserId,
        metrics: &[UserMetric],
        period: Option<InsightPeriod>,
    ) -> Result<Vec<Insight>, ThreadsError> {
        let url = self.user_insights_url(user, metrics, period);
        let body: DataBody<Vec<Insight>> = self
            .send(Call::UserInsights, self.authed(Method::GET, url, token))
            .await?;
        Ok(body.data)
    }

    fn user_insights_url(
        &self,
        user: &UserId,
        metrics: &[UserMetric],
        period: Option<InsightPeriod>,
    ) -> Url {
        let metrics = if metrics.is_empty() {
            &UserMetric::ALL[..]
        } else {
            metrics
        };
        let mut url = self.url(true, &[user.as_str(), "threads_insights"]);
        url.query_pairs_mut()
            .append_pair("metric", &user_metric_param(metrics));
        if let Some(period) = period {
            url.query_pairs_mut()
                .append_pair("since", &period.since.to_string())
                .append_pair("until", &period.until.to_string());
        }
        url
    }

    /// Deletes a published post (needs threads_delete; 100 a day). Replies of a deleted root stay.
    pub async fn delete(
        &self,
        token: &AccessToken,
        media: &MediaId,
    ) -> Result<Deleted, ThreadsError> {
        let url = self.url(true, &[media.as_str()]);
        self.send(Call::Delete, self.authed(Method::DELETE, url, token))
            .await
    }

    // ---- Plumbing -------------------------------------------------------------------------------

    fn url(&self, versioned: bool, segments: &[&str]) -> Url {
        let mut url = self.config.graph_base.clone();
        url.set_query(None);
        url.set_fragment(None);
        // `new` refused cannot-be-a-base URLs, so the segments are always there to extend.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            if versioned {
                path.push(&self.config.api_version);
            }
            path.extend(segments);
        }
        url
    }

    fn authed(&self, method: Method, url: Url, token: &AccessToken) -> RequestBuilder {
        self.http.request(method, url).bearer_auth(token.expose())
    }

    async fn send<T: DeserializeOwned>(
        &self,
        call: Call,
        req: RequestBuilder,
    ) -> Result<T, ThreadsError> {
        let request = req.build().map_err(|e| ThreadsError::PermanentOther {
            reason: format!(
                "{call}: the request could not be built: {}",
                e.without_url()
            ),
            alert: true,
            api: None,
        })?;
        let shown = redact_url(request.url().as_str());
        let started = Instant::now();
        let result = self.exchange(call, request, &shown).await;
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &result {
            Ok(_) => {
                tracing::debug!(call = call.name(), url = %shown, elapsed_ms, "threads call succeeded")
            }
            Err(err) => tracing::debug!(
                call = call.name(), url = %shown, elapsed_ms, class = err.class(), reason = err.reason(),
                "threads call failed"
            ),
        }
        result
    }

    async fn exchange<T: DeserializeOwned>(
        &self,
        call: Call,
        request: reqwest::Request,
        shown: &str,
    ) -> Result<T, ThreadsError> {
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| transport_error(call, &e, shown))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(redact_url);
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(call, &e, shown))?;

        if status.is_redirection() {
            return Err(ThreadsError::PermanentOther {
                reason: format!(
                    "{call}: {shown} answered HTTP {} redirecting to {}; redirects are not followed, \
                     check the configured base URL",
                    status.as_u16(),
                    location.as_deref().unwrap_or("nowhere")
                ),
                alert: true,
                api: None,
            });
        }
        if !status.is_success() || ApiError::parse(status.as_u16(), &body).is_some() {
            return Err(classify(call, status.as_u16(), &body, retry_after));
        }
        parse_success(call, status, &body)
    }
}

/// `metric=` for `threads_insights`: the names in the order given, each once.
fn user_metric_param(metrics: &[UserMetric]) -> String {
    let mut names: Vec<&str> = Vec::with_capacity(metrics.len());
    for metric in metrics {
        if !names.contains(&metric.as_str()) {
            names.push(metric.as_str());
        }
    }
    names.join(",")
}

/// Reads a success body. Token-bearing answers never have serde's message (which may quote a
/// value) in the error, only where it failed.
fn parse_success<T: DeserializeOwned>(
    call: Call,
    status: StatusCode,
    body: &[u8],
) -> Result<T, ThreadsError> {
    serde_json::from_slice(body).map_err(|e| {
        let carries_token = matches!(
            call,
            Call::CodeExchange | Call::LongLivedExchange | Call::Refresh
        );
        let what = if carries_token {
            format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            )
        } else {
            e.to_string()
        };
        ThreadsError::unexpected_body(call, status.as_u16(), what)
    })
}

/// The `Retry-After` header in seconds, when given that way.
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// A call that got no HTTP answer. A connection that never opened cannot have published; a
/// timeout or a broken answer after sending may have.
fn transport_error(call: Call, err: &reqwest::Error, shown: &str) -> ThreadsError {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "lost the answer while reading it"
    } else {
        "failed to send or receive"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    let reason = format!("{call}: {what} calling {shown}{detail}");
    // Connecting failed (refused, DNS, TLS, connect timeout): nothing was sent, even on publish.
    if err.is_connect() {
        return ThreadsError::Transient {
            reason,
            retry_after: None,
            api: None,
        };
    }
    ThreadsError::transient(call, reason, None, None)
}

/// Pages of a profile's posts, fetched one at a time.
pub struct ThreadsPages<'a> {
    client: &'a ThreadsClient,
    token: &'a AccessToken,
    user: &'a UserId,
    filter: ListThreads,
    after: Option<String>,
    done: bool,
}

impl ThreadsPages<'_> {
    /// The next page's posts, or `None` when all were read. An error leaves the walk where it
    /// was, so calling again retries the same page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<ThreadsMedia>>, ThreadsError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .client
            .list_threads(self.token, self.user, &self.filter, self.after.as_deref())
            .await?;
        match page.next_cursor() {
            // A cursor that does not move would loop forever: treat it as the end.
            Some(next) if !page.data.is_empty() && self.after.as_deref() != Some(next) => {
                self.after = Some(next.to_owned());
            }
            _ => self.done = true,
        }
        Ok(Some(page.data))
    }

    /// Every remaining post, in the order Threads lists them (newest first).
    pub async fn collect_all(mut self) -> Result<Vec<ThreadsMedia>, ThreadsError> {
        let mut all = Vec::new();
        while let Some(mut page) = self.next_page().await? {
            all.append(&mut page);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> ThreadsClient {
        ThreadsClient::new(ThreadsConfig::new(base, "http://127.0.0.1:1/oauth/authorize").unwrap())
            .unwrap()
    }

    #[test]
    fn urls_are_built_under_the_base_and_version() {
        let c = client("http://127.0.0.1:9000");
        assert_eq!(
            c.url(true, &["123", "threads"]).as_str(),
            "http://127.0.0.1:9000/v1.0/123/threads"
        );
        assert_eq!(
            c.url(false, &["refresh_access_token"]).as_str(),
            "http://127.0.0.1:9000/refresh_access_token"
        );
        let c = client("http://127.0.0.1:9000/graph/");
        assert_eq!(
            c.url(true, &["me"]).as_str(),
            "http://127.0.0.1:9000/graph/v1.0/me"
        );
        assert_eq!(
            client(DEFAULT_GRAPH_BASE).url(true, &["me"]).as_str(),
            "https://graph.threads.net/v1.0/me"
        );
    }

    #[test]
    fn user_insights_ask_for_each_metric_once_in_order() {
        use UserMetric::*;
        assert_eq!(
            user_metric_param(&[Views, Likes, Replies, Reposts, Quotes, FollowersCount]),
            "views,likes,replies,reposts,quotes,followers_count"
        );
        assert_eq!(user_metric_param(&[Likes, Views, Likes]), "likes,views");
        let client = client("http://127.0.0.1:9000");
        let user = UserId::parse("17841405793187218").unwrap();
        let period = InsightPeriod {
            since: 1_796_000_000,
            until: 1_796_299_200,
        };
        assert_eq!(
            client
                .user_insights_url(&user, &[Views, FollowersCount], Some(period))
                .as_str(),
            "http://127.0.0.1:9000/v1.0/17841405793187218/threads_insights\
             ?metric=views%2Cfollowers_count&since=1796000000&until=1796299200"
        );
        assert_eq!(
            client.user_insights_url(&user, &[], None).as_str(),
            "http://127.0.0.1:9000/v1.0/17841405793187218/threads_insights\
             ?metric=views%2Clikes%2Creplies%2Creposts%2Cquotes%2Cclicks%2Cfollowers_count"
        );
    }

    #[test]
    fn production_config_points_at_meta() {
        let config = ThreadsConfig::production();
        assert_eq!(config.graph_base.as_str(), "https://graph.threads.net/");
        assert_eq!(config.authorize_url.as_str(), DEFAULT_AUTHORIZE_URL);
    }

    #[test]
    fn cannot_be_a_base_urls_are_refused() {
        assert!(ThreadsConfig::new("mailto:x@y", DEFAULT_AUTHORIZE_URL).is_err());
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut h = header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(header::RETRY_AFTER, header::HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        h.insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn malformed_token_answer_never_quotes_the_body() {
        let body = br#"{"access_token":"THsecret","user_id":"not-digits-THsecret"}"#;
        let err =
            parse_success::<ShortLivedToken>(Call::CodeExchange, StatusCode::OK, body).unwrap_err();
        assert!(!err.to_string().contains("THsecret"), "{err}");
        assert!(matches!(
            err,
            ThreadsError::PermanentOther { alert: true, .. }
        ));
        let err =
            parse_success::<IdBody<MediaId>>(Call::Publish, StatusCode::OK, b"{}").unwrap_err();
        assert!(
            matches!(err, ThreadsError::UncertainPublish { .. }),
            "{err:?}"
        );
    }
}
