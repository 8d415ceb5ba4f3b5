//! `Idempotency-Key` on the POSTs that create something: the same key with the same body gets
//! the first answer again (and nothing is created twice); the same key with another body is a 422;
//! a request still running under the key is a 409. Keys are per user and route, kept a day.
//!
//! Only answers that created or changed something (below 400) are remembered. A refusal (4xx:
//! invalid input, no permission, over a limit) changed nothing: its key is forgotten, so the
//! corrected request may use it. A 5xx may not have finished: its key is released for a retry of
//! the same body.

use lambda_http::http::{HeaderValue, header};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use super::{Api, Ctx};
use crate::clock::EpochMillis;
use crate::edge::{self, Problem};
use crate::pipeline::idempotency::{Begin, Fenced, IdempotencyKey, PayloadHash};

pub const HEADER: &str = "idempotency-key";
/// Set on an answer that was replayed from an earlier request.
pub const REPLAYED: &str = "idempotent-replayed";
/// The longest key accepted.
pub const MAX_KEY_CHARS: usize = 255;
/// How long a request may hold its key (the function's timeout is far shorter).
const HOLD_MILLIS: i64 = 60_000;

/// The remembered answer.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    status: u16,
    body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    location: Option<String>,
}

/// Runs the route under the request's `Idempotency-Key`, if it has one.
pub(super) async fn idempotent(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let Some(raw) = req.headers().get(HEADER) else {
        return api.dispatch(ctx, req).await;
    };
    let client_key = raw
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_CHARS)
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            Problem::bad_request(
                "invalid_idempotency_key",
                format!("Idempotency-Key is 1–{MAX_KEY_CHARS} printable ASCII characters"),
            )
        })?;
    let key = IdempotencyKey::new(
        "api",
        &format!(
            "{}#{}#{client_key}",
            ctx.principal.user_id, ctx.route.pattern
        ),
    )
    .map_err(|_| {
        Problem::bad_request("invalid_idempotency_key", "Idempotency-Key is not usable")
    })?;
    let payload = PayloadHash::of(&canonical(edge::body(req, edge::MAX_BODY_BYTES)?));
    let now = EpochMillis::at(api.clock.now());
    let deadline = EpochMillis::new(now.get().saturating_add(HOLD_MILLIS));
    let begun = api
        .idempotency
        .begin(&key, &payload, deadline, now)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "idempotency records unavailable");
            Problem::unavailable()
        })?;
    let owner = match begun {
        Begin::Acquired { owner, .. } => owner,
        Begin::AlreadyCompleted { data } => return replayed(&data),
        Begin::InProgress { .. } => {
            return Err(Problem::new(
                409,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still running; retry in a moment",
            ));
        }
        Begin::PayloadMismatch => {
            return Err(Problem::new(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different body; use a new key for new \
                 content",
            ));
        }
    };
    let res = match api.dispatch(ctx, req).await {
        Ok(res) => res,
        Err(problem) => problem.into_response(),
    };
    let status = res.status().as_u16();
    if status >= 500 {
        if let Err(e) = api.idempotency.release(&key, &owner).await {
            tracing::warn!(error = %e, "idempotency key not released; it frees at its deadline");
        }
        return Ok(res);
    }
    if status >= 400 {
        // Refused: nothing was done, so the key is forgotten, whatever body comes next.
        if let Err(e) = api.idempotency.forget(&key, &owner).await {
            tracing::warn!(error = %e, "idempotency key not forgotten; it frees at its deadline");
        }
        return Ok(res);
    }
    let stored = Stored {
        status,
        body: match res.body() {
            Body::Text(text) => text.clone(),
            Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => String::new(),
        },
        location: res
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let data = serde_json::to_string(&stored).unwrap_or_default();
    match api.idempotency.complete(&key, &owner, &data, now).await {
        Ok(Fenced::Applied) => {}
        Ok(Fenced::LostOwnership) => {
            tracing::warn!("idempotency key was taken over while the request ran");
        }
        Err(e) => tracing::warn!(error = %e, "idempotency key not completed"),
    }
    Ok(res)
}

/// The same JSON with other whitespace or key order is the same body.
fn canonical(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => value.to_string().into_bytes(),
        Err(_) => body.to_vec(),
    }
}

fn replayed(data: &str) -> Result<Response<Body>, Problem> {
    let stored: Stored = serde_json::from_str(data).map_err(|e| {
        tracing::error!(error = %e, "stored idempotent answer unreadable");
        Problem::unavailable()
    })?;
    let content_type = if stored.status >= 400 {
        "application/problem+json"
    } else {
        "application/json"
    };
    let mut res = edge::response(stored.status, content_type, stored.body);
    res.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    if let Some(location) = stored.location
        && let Ok(value) = HeaderValue::from_str(&location)
    {
        res.headers_mut().insert(header::LOCATION, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_key_order_do_not_change_the_payload() {
        let a = canonical(br#"{"a":1, "b":[1,2]}"#);
        let b = canonical(b"{ \"b\": [1,2],\n \"a\": 1 }");
        assert_eq!(a, b);
        assert_ne!(a, canonical(br#"{"a":2,"b":[1,2]}"#));
        assert_eq!(canonical(b"not json"), b"not json".to_vec());
    }
}
