//! `GET /v1.0/{user}/threads_insights`: a profile's figures, computed from what the emulator
//! recorded — the user's posts (their publish times and the counters set with `POST /insights`)
//! and the followers set with `POST /followers` — in the shapes Meta answers: `views` a daily
//! series (`values` with `end_time`), the other totals `total_value`, `clicks` per link
//! (`link_total_values`), `followers_count` the current count whatever the range.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use crate::calls::Call;
use crate::clock::graph_timestamp;
use crate::error::GraphError;
use crate::json::{JsonText, Obj, array, quote};
use crate::media::{metric_value, resolve_user};
use crate::request::GraphRequest;
use crate::state::{App, Inner, Media};
use crate::tokens::authenticate;

/// Meta's user insights do not go back before 13 April 2024 (Unix `1712991600`).
pub const EARLIEST_SINCE: i64 = 1_712_991_600;

/// Meta's days end at midnight Pacific time (`end_time` …T07:00:00+0000 in its examples); the
/// emulator keeps that boundary all year.
const DAY_END_UTC_OFFSET: i64 = 7 * 3600;
const DAY: i64 = 86_400;

/// How a metric's figure is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `values`: one `{value, end_time}` a day.
    TimeSeries,
    /// `total_value: {value}` over the range.
    Total,
    /// `link_total_values: [{value, link_url}]` over the range.
    LinkTotals,
    /// `total_value: {value}`, now, whatever the range.
    Current,
}

/// The profile metrics: name, shape, description.
const METRICS: [(&str, Shape, &str); 7] = [
    (
        "views",
        Shape::TimeSeries,
        "The number of times your profile was viewed.",
    ),
    ("likes", Shape::Total, "The number of likes on your posts."),
    (
        "replies",
        Shape::Total,
        "The number of replies on your posts.",
    ),
    (
        "reposts",
        Shape::Total,
        "The number of times your posts were reposted.",
    ),
    (
        "quotes",
        Shape::Total,
        "The number of times your posts were quoted.",
    ),
    (
        "clicks",
        Shape::LinkTotals,
        "The number of clicks on links in your posts.",
    ),
    (
        "followers_count",
        Shape::Current,
        "Your total number of followers on Threads.",
    ),
];

/// A metric Meta serves that the emulator does not (it needs `breakdown` and 100 followers).
const NOT_SERVED: &str = "follower_demographics";

/// The Unix seconds a query covers, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    since: i64,
    until: i64,
}

/// The start (Unix seconds) of the day holding `t`; times before 1970 or absurdly far ahead
/// are taken as their bound, so no request can overflow the arithmetic.
fn day_start(t: i64) -> i64 {
    let t = t.clamp(DAY, i64::MAX / 2);
    (t - DAY_END_UTC_OFFSET).div_euclid(DAY) * DAY + DAY_END_UTC_OFFSET
}

/// `since` and `until` as Meta takes them: Unix seconds, not before [`EARLIEST_SINCE`], `since`
/// not after `until`; without both, yesterday through today.
fn range(req: &GraphRequest, now: i64) -> Result<Range, GraphError> {
    let (since, until) = match (
        req.params.unix_time("since")?,
        req.params.unix_time("until")?,
    ) {
        (None, None) => (day_start(now) - DAY, now),
        (Some(since), None) => (since, now.max(since)),
        (None, Some(until)) => (day_start(until) - DAY, until),
        (Some(since), Some(until)) => (since, until),
    };
    if since < EARLIEST_SINCE {
        return Err(GraphError::invalid_param(format!(
            "Param since must be at or after {EARLIEST_SINCE}: user insights are not available before April 13, 2024"
        )));
    }
    if since > until {
        return Err(GraphError::invalid_param(
            "Param since must be before or equal to param until",
        ));
    }
    Ok(Range { since, until })
}

/// The link a post's clicks are counted under: its link attachment, else its first URL.
fn link_of(media: &Media) -> Option<String> {
    media.link_attachment.clone().or_else(|| {
        media.text.as_deref().and_then(|text| {
            text.split_whitespace()
                .find(|w| w.starts_with("https://") || w.starts_with("http://"))
                .map(|w| {
                    w.trim_end_matches(['.', ',', ';', ':', '!', '?', ')'])
                        .to_string()
                })
        })
    })
}

/// `GET /v1.0/{user}/threads_insights?metric=…&since=…&until=…`, for `me` or the caller's own
/// id. Unknown metrics, a missing `metric`, bad or early `since`/`until`: code 100.
pub async fn user_insights(
    State(app): State<App>,
    Path(user): Path<String>,
    req: GraphRequest,
) -> Response {
    app.graph(Call::UserInsights, |inner, ctx| {
        let session = authenticate(inner, req.token.as_deref(), ctx.now_ms)?;
        session.require(&["threads_basic", "threads_manage_insights"])?;
        let user = resolve_user(&session, &user, "get")?;
        let metrics = req.params.list("metric");
        if metrics.is_empty() {
            return Err(GraphError::missing_param("metric"));
        }
        let mut wanted = Vec::with_capacity(metrics.len());
        for (i, name) in metrics.iter().enumerate() {
            if name == NOT_SERVED {
                return Err(GraphError::invalid_param(format!(
                    "metric[{i}]: {NOT_SERVED} is not served by the emulator"
                )));
            }
            let known = METRICS.iter().find(|(n, _, _)| n == name).ok_or_else(|| {
                let names: Vec<&str> = METRICS.iter().map(|(n, _, _)| *n).collect();
                GraphError::invalid_param(format!(
                    "metric[{i}] must be one of the following values: {}, {NOT_SERVED}",
                    names.join(", ")
                ))
            })?;
            wanted.push(*known);
        }
        let now = ctx.now_ms.div_euclid(1000);
        let range = range(&req, now)?;
        let items = wanted
            .iter()
            .map(|(name, shape, description)| {
                item(inner, &user, range, now, name, *shape, description)
            })
            .collect::<Vec<_>>();
        let mut body = Obj::new();
        body.raw("data", array(items));
        Ok(JsonText::ok(body.text()).into_response())
    })
    .await
}

/// One metric's item, in Meta's key order.
fn item(
    inner: &Inner,
    user: &str,
    range: Range,
    now: i64,
    name: &str,
    shape: Shape,
    description: &str,
) -> String {
    // The user's posts and replies published in the range (carousel children are not posts).
    let posts = || {
        inner.media.values().filter(move |m| {
            let at = m.published_ms.div_euclid(1000);
            m.owner == user
                && !m.deleted
                && !m.is_carousel_child
                && (range.since..=range.until).contains(&at)
        })
    };
    let total = |name: &str| {
        posts().fold(0u64, |sum, m| {
            sum.saturating_add(metric_value(&m.insights, name))
        })
    };
    let total_value = |value: u64| {
        let mut v = Obj::new();
        v.raw("value", value.to_string());
        v.text()
    };
    let mut obj = Obj::new();
    obj.str("name", name).str("period", "day");
    match shape {
        Shape::TimeSeries => {
            // One value a day, from the day holding `since` to the one holding `until` (or
            // today, if `until` is later): no figures for days still to come.
            let mut days = Vec::new();
            let mut start = day_start(range.since);
            let last = day_start(range.until.min(now));
            while start <= last {
                let end = start + DAY;
                let value = posts()
                    .filter(|m| (start..end).contains(&m.published_ms.div_euclid(1000)))
                    .fold(0u64, |sum, m| {
                        sum.saturating_add(metric_value(&m.insights, name))
                    });
                let mut day = Obj::new();
                day.raw("value", value.to_string())
                    .str("end_time", &graph_timestamp(end));
                days.push(day.text());
                start = end;
            }
            obj.raw("values", array(days))
                .str("title", name)
                .str("description", description);
        }
        Shape::Total => {
            obj.str("title", name)
                .str("description", description)
                .raw("total_value", total_value(total(name)));
        }
        Shape::LinkTotals => {
            let mut links: Vec<(String, u64)> = Vec::new();
            for m in posts() {
                let (Some(link), clicks) = (link_of(m), m.insights.clicks) else {
                    continue;
                };
                match links.iter_mut().find(|(l, _)| *l == link) {
                    Some((_, sum)) => *sum = sum.saturating_add(clicks),
                    None => links.push((link, clicks)),
                }
            }
            links.sort();
            let values = links.iter().map(|(link, clicks)| {
                let mut v = Obj::new();
                v.raw("value", clicks.to_string())
                    .raw("link_url", quote(link));
                v.text()
            });
            obj.str("title", name)
                .str("description", description)
                .raw("link_total_values", array(values));
        }
        Shape::Current => {
            let followers = inner.followers.get(user).copied().unwrap_or(0);
            obj.str("title", name)
                .str("description", description)
                .raw("total_value", total_value(followers));
        }
    }
    obj.str("id", &format!("{user}/insights/{name}/day"));
    obj.text()
}

/// Sets a user's `followers_count`.
pub fn set_followers(inner: &mut Inner, user_id: &str, followers_count: u64) {
    inner.followers.insert(user_id.to_string(), followers_count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_end_at_midnight_pacific() {
        // 2026-12-03T06:59:59Z is still 2 December in Meta's days; 07:00 starts the 3rd.
        let third = 1_796_281_200; // 2026-12-03T07:00:00Z
        assert_eq!(graph_timestamp(third), "2026-12-03T07:00:00+0000");
        assert_eq!(day_start(third), third);
        assert_eq!(day_start(third - 1), third - DAY);
        assert_eq!(day_start(third + DAY - 1), third);
        // Nothing a request sends overflows.
        for t in [i64::MIN, -1, 0, i64::MAX] {
            let _ = day_start(t) - DAY;
        }
    }
}
