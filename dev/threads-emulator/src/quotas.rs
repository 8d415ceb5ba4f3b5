//! Meta's per-profile publishing limits over a rolling window (250 posts, 1,000 replies,
//! 100 deletes per 24 hours), and `threads_publishing_limit`, which reports them in the
//! reference's exact shape.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use crate::calls::Call;
use crate::config::Quotas;
use crate::error::GraphError;
use crate::json::{JsonText, Obj};
use crate::request::GraphRequest;
use crate::state::{App, Ctx, Inner, millis};

/// What a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    /// A published post that is not a reply; a carousel counts once.
    Post,
    Reply,
    Delete,
}

impl QuotaKind {
    fn total(self, quotas: &Quotas) -> u32 {
        match self {
            QuotaKind::Post => quotas.posts,
            QuotaKind::Reply => quotas.replies,
            QuotaKind::Delete => quotas.deletes,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            QuotaKind::Post => "posts",
            QuotaKind::Reply => "replies",
            QuotaKind::Delete => "deletes",
        }
    }
}

/// When each profile used each quota.
#[derive(Debug, Default)]
pub struct QuotaLedger {
    events: HashMap<String, Vec<(i64, QuotaKind)>>,
}

impl QuotaLedger {
    /// Uses within the window ending now.
    pub fn usage(&self, user: &str, kind: QuotaKind, now_ms: i64, quotas: &Quotas) -> u32 {
        let since = now_ms - millis(quotas.window);
        let used = self.events.get(user).map_or(0, |events| {
            events
                .iter()
                .filter(|(at, k)| *k == kind && *at > since && *at <= now_ms)
                .count()
        });
        u32::try_from(used).unwrap_or(u32::MAX)
    }

    /// The throttle error when one more use would go over the quota.
    pub fn check(
        &self,
        user: &str,
        kind: QuotaKind,
        now_ms: i64,
        quotas: &Quotas,
    ) -> Result<(), GraphError> {
        let total = kind.total(quotas);
        if self.usage(user, kind, now_ms, quotas) >= total {
            Err(GraphError::quota_exceeded(kind.noun(), total))
        } else {
            Ok(())
        }
    }

    pub fn record(&mut self, user: &str, kind: QuotaKind, now_ms: i64) {
        self.events
            .entry(user.to_string())
            .or_default()
            .push((now_ms, kind));
    }
}

const FIELDS: [&str; 6] = [
    "quota_usage",
    "config",
    "reply_quota_usage",
    "reply_config",
    "delete_quota_usage",
    "delete_config",
];

/// `GET /v1.0/{user}/threads_publishing_limit`.
pub async fn publishing_limit(
    State(app): State<App>,
    Path(user): Path<String>,
    req: GraphRequest,
) -> Response {
    app.graph(Call::PublishingLimit, |inner, ctx| {
        limit_report(inner, ctx, &user, &req)
    })
    .await
}

fn limit_report(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    user: &str,
    req: &GraphRequest,
) -> Result<Response, GraphError> {
    let session = crate::tokens::authenticate(inner, req.token.as_deref(), ctx.now_ms)?;
    let user = crate::media::resolve_user(&session, user, "get")?;
    let mut wanted = req.params.list("fields");
    if wanted.is_empty() {
        wanted.push("quota_usage".to_string());
    }
    if let Some(unknown) = wanted.iter().find(|f| !FIELDS.contains(&f.as_str())) {
        return Err(GraphError::nonexisting_field(unknown));
    }
    let quotas = &ctx.config.quotas;
    let window = quotas.window.as_secs();
    let config = |total: u32| {
        let mut obj = Obj::new();
        obj.int("quota_total", i64::from(total))
            .raw("quota_duration", window.to_string());
        obj.text()
    };
    let mut item = Obj::new();
    // Meta's order, whatever order the fields were asked in.
    for field in FIELDS.iter().filter(|f| wanted.iter().any(|w| w == *f)) {
        let usage = |kind| i64::from(inner.quotas.usage(&user, kind, ctx.now_ms, quotas));
        match *field {
            "quota_usage" => item.int(field, usage(QuotaKind::Post)),
            "config" => item.raw(field, config(quotas.posts)),
            "reply_quota_usage" => item.int(field, usage(QuotaKind::Reply)),
            "reply_config" => item.raw(field, config(quotas.replies)),
            "delete_quota_usage" => item.int(field, usage(QuotaKind::Delete)),
            _ => item.raw(field, config(quotas.deletes)),
        };
    }
    let mut body = Obj::new();
    body.raw("data", format!("[{}]", item.text()));
    Ok(JsonText::ok(body.text()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_fall_out_of_the_window_after_24_hours() {
        let quotas = Quotas {
            posts: 2,
            ..Quotas::default()
        };
        let mut ledger = QuotaLedger::default();
        let t0 = 1_700_000_000_000;
        ledger.record("u", QuotaKind::Post, t0);
        ledger.record("u", QuotaKind::Post, t0 + 1_000);
        assert!(
            ledger
                .check("u", QuotaKind::Post, t0 + 2_000, &quotas)
                .is_err()
        );
        assert!(
            ledger
                .check("u", QuotaKind::Reply, t0 + 2_000, &quotas)
                .is_ok()
        );
        assert!(
            ledger
                .check("v", QuotaKind::Post, t0 + 2_000, &quotas)
                .is_ok()
        );
        let day = 86_400_000;
        assert_eq!(ledger.usage("u", QuotaKind::Post, t0 + day, &quotas), 1);
        assert!(
            ledger
                .check("u", QuotaKind::Post, t0 + day, &quotas)
                .is_ok()
        );
    }
}
