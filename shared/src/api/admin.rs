//! `/v1/admin/…`: role changes (`manage_users`), the kill switch, token revocation, emergency
//! secret rotation and audit-log verification (`manage_system`). The route table has already
//! checked the permission; every change here leaves its own audit record.

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Api, Ctx, parse_optional_body, time_param_value};
use crate::audit::{AuditRecord, Category, Outcome};
use crate::edge::{self, Problem};
use crate::pipeline::gate::{self, KillSwitch};
use crate::posts::AccountId;
use crate::rbac;
use crate::resources::Resource;
use crate::rotation::RotationError;
use crate::rotation::emergency;
use crate::users::{Role, UserId};

/// The longest reason kept with a pause or a rotation.
pub const MAX_REASON_CHARS: usize = 500;

/// The secrets an emergency rotation may name: the generated ones (the Threads app secret is
/// issued by Meta and rotated by hand).
pub const ROTATABLE: [(&str, Resource); 4] = [
    ("session-key", Resource::SessionKeySecret),
    ("webhook-verify-token", Resource::WebhookVerifyTokenSecret),
    ("token-encryption-key", Resource::TokenEncryptionKeySecret),
    ("internal-api-key", Resource::InternalApiKeySecret),
];

fn record(ctx: &Ctx<'_>, category: Category, action: &str, outcome: Outcome) -> AuditRecord {
    AuditRecord::new(category, action, outcome)
        .user(ctx.principal.user_id.as_str())
        .caller(ctx.caller)
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "{what} unavailable");
    Problem::unavailable()
}

fn reason(raw: Option<String>) -> Result<Option<String>, Problem> {
    match raw {
        Some(r) if r.chars().count() > MAX_REASON_CHARS => Err(Problem::bad_request(
            "invalid_parameter",
            format!("reason is at most {MAX_REASON_CHARS} characters"),
        )
        .with_field("reason")),
        // It is kept in the audit log, which people read: no control characters or overrides.
        Some(r) if r.chars().any(crate::policy::disallowed_character) => Err(Problem::bad_request(
            "invalid_parameter",
            "reason holds a control character; send plain text",
        )
        .with_field("reason")),
        other => Ok(other.filter(|r| !r.trim().is_empty())),
    }
}

/// The optional body of an administrator's action that takes nothing but a reason for the
/// audit log.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `PUT /v1/admin/users/{id}/role` with `{"role": "pro"}`.
pub(super) async fn set_role(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RoleBody {
        role: String,
    }
    let target = ctx
        .params
        .get("id")
        .and_then(|raw| UserId::parse(raw).ok())
        .ok_or_else(|| {
            Problem::bad_request("invalid_parameter", "id is a ThreadStorm user id")
                .with_field("id")
        })?;
    let body: RoleBody = super::parse_required_body(req)?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        Problem::bad_request(
            "invalid_role",
            "role is one of user, pro, business, admin, super_admin",
        )
        .with_field("role")
    })?;
    let granter = ctx.principal.role;
    let refuse = |detail: String, metadata: serde_json::Value| async move {
        api.audit
            .record_best_effort(
                record(
                    ctx,
                    Category::Authorization,
                    "user.role_change",
                    Outcome::Denied,
                )
                .description(detail.clone())
                .metadata(metadata),
            )
            .await;
        Problem::forbidden("forbidden", detail)
    };
    if target == ctx.principal.user_id {
        return Err(refuse(
            "nobody changes their own role".into(),
            json!({"target_user_id": target.as_str(), "role": role.as_str()}),
        )
        .await);
    }
    if !rbac::may_grant(granter, role) {
        return Err(refuse(
            format!("a {granter} may not grant the {role} role"),
            json!({"target_user_id": target.as_str(), "role": role.as_str()}),
        )
        .await);
    }
    let current = api
        .users
        .get(&target)
        .await
        .map_err(|e| unavailable("users", e))?
        .ok_or_else(Problem::not_found)?;
    // Taking a role away is granting the lower one over the higher: an admin cannot demote an
    // admin or a super_admin.
    if !rbac::may_grant(granter, current.role) {
        return Err(refuse(
            format!("a {granter} may not change the role of a {}", current.role),
            json!({"target_user_id": target.as_str(), "from": current.role.as_str(), "role": role.as_str()}),
        )
        .await);
    }
    if !api
        .users
        .set_role(&target, role)
        .await
        .map_err(|e| unavailable("users", e))?
    {
        return Err(Problem::not_found());
    }
    api.audit
        .record(
            record(ctx, Category::System, "user.role_change", Outcome::Success)
                .description(format!("role changed from {} to {role}", current.role))
                .metadata(json!({
                    "target_user_id": target.as_str(),
                    "from": current.role.as_str(),
                    "to": role.as_str(),
                })),
        )
        .await
        .map_err(|e| unavailable("audit", e))?;
    Ok(edge::json_response(
        200,
        &json!({"user_id": target.as_str(), "role": role.as_str(), "previous_role": current.role.as_str()}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    #[serde(default)]
    reason: Option<String>,
    /// RFC 3339 or Unix seconds; absent means until resumed.
    #[serde(default)]
    until: Option<serde_json::Value>,
}

/// `POST /v1/admin/pause`, optionally `{"reason": "…", "until": "2026-12-24T09:00:00Z"}`:
/// the gate defers everything until then (or until resumed). Nothing is dropped.
pub(super) async fn pause(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let body: PauseBody = parse_optional_body(req)?.unwrap_or_default();
    let reason = reason(body.reason)?;
    let now = api.now();
    let until = body
        .until
        .filter(|v| !v.is_null())
        .map(|v| time_param_value(&v, "until"))
        .transpose()?;
    if let Some(until) = until
        && (until <= now || until > now + crate::pipeline::intake::MAX_SCHEDULE_AHEAD_SECS)
    {
        return Err(Problem::bad_request(
            "invalid_parameter",
            "until is a time in the future, at most a year ahead",
        )
        .with_field("until"));
    }
    let switch = KillSwitch::Paused { until };
    set_switch(api, ctx, &switch, reason.as_deref(), "publishing.pause").await?;
    Ok(edge::json_response(
        200,
        &json!({"paused": true, "until": until, "reason": reason}),
    ))
}

/// `POST /v1/admin/resume`: the gate lets work through again; deferred storms go at their
/// next sweep.
pub(super) async fn resume(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let body: PauseBody = parse_optional_body(req)?.unwrap_or_default();
    if body.until.is_some() {
        return Err(
            Problem::bad_request("invalid_parameter", "resume takes no until").with_field("until"),
        );
    }
    let reason = reason(body.reason)?;
    set_switch(
        api,
        ctx,
        &KillSwitch::Running,
        reason.as_deref(),
        "publishing.resume",
    )
    .await?;
    Ok(edge::json_response(
        200,
        &json!({"paused": false, "reason": reason}),
    ))
}

async fn set_switch(
    api: &Api,
    ctx: &Ctx<'_>,
    switch: &KillSwitch,
    reason: Option<&str>,
    action: &str,
) -> Result<(), Problem> {
    let now = api.now();
    let by = ctx.principal.user_id.as_str();
    let written = gate::set_kill_switch(
        &api.dynamodb,
        &api.rate_limits_table,
        switch,
        by,
        reason,
        now,
    )
    .await;
    let until = match switch {
        KillSwitch::Paused { until } => *until,
        KillSwitch::Running => None,
    };
    let outcome = if written.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let audited = api
        .audit
        .record(
            record(ctx, Category::System, action, outcome)
                .description(match switch {
                    KillSwitch::Paused { .. } => "publishing paused (kill switch on)",
                    KillSwitch::Running => "publishing resumed (kill switch off)",
                })
                .metadata(json!({"until": until, "reason": reason})),
        )
        .await;
    written.map_err(|e| unavailable("kill switch", e))?;
    audited.map_err(|e| unavailable("audit", e))?;
    tracing::warn!(action, by, ?until, "kill switch set");
    Ok(())
}

/// `POST /v1/admin/accounts/{id}/revoke`, optionally `{"reason": "…"}`: the account is disconnected and its token ciphertext
/// deleted; anything scheduled for it is refused at publish time.
pub(super) async fn revoke(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let account = ctx
        .params
        .get("id")
        .and_then(|raw| AccountId::parse(raw).ok())
        .ok_or_else(|| {
            Problem::bad_request("invalid_parameter", "id is a Threads account id").with_field("id")
        })?;
    let body: ReasonBody = parse_optional_body(req)?.unwrap_or_default();
    let reason = reason(body.reason)?;
    let stored = api
        .accounts
        .get(&account)
        .await
        .map_err(|e| unavailable("accounts", e))?
        .ok_or_else(Problem::not_found)?;
    let done = api
        .accounts
        .disconnect(&account)
        .await
        .map_err(|e| unavailable("accounts", e))?;
    if !done {
        return Err(Problem::not_found());
    }
    api.audit
        .record(
            record(ctx, Category::Security, "account.revoke", Outcome::Success)
                .description(
                    "Threads account disconnected and its token deleted by an administrator",
                )
                .metadata(json!({
                    "account_id": account.as_str(),
                    "owner_user_id": stored.owner_user_id,
                    "previous_status": stored.status.as_str(),
                    "reason": reason,
                })),
        )
        .await
        .map_err(|e| unavailable("audit", e))?;
    Ok(edge::json_response(
        200,
        &json!({"account_id": account.as_str(), "status": "disconnected", "token_deleted": true}),
    ))
}

/// `POST /v1/admin/secrets/{name}/rotate`, optionally `{"reason": "…"}`.
pub(super) async fn rotate(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let names = || ROTATABLE.map(|(n, _)| n).join(", ");
    let resource = ctx
        .params
        .get("name")
        .and_then(|name| ROTATABLE.iter().find(|(n, _)| *n == name))
        .map(|(_, r)| *r)
        .ok_or_else(|| {
            Problem::bad_request("invalid_parameter", format!("name is one of {}", names()))
                .with_field("name")
        })?;
    let body: ReasonBody = parse_optional_body(req)?.unwrap_or_default();
    let reason = reason(body.reason)?
        .unwrap_or_else(|| "emergency rotation requested through the admin API".into());
    let secret = api
        .config
        .resource(resource)
        .map_err(|e| unavailable("configuration", e))?;
    match emergency::rotate_now(
        &api.secret_store,
        &api.audit,
        secret,
        ctx.principal.user_id.as_str(),
        &reason,
    )
    .await
    {
        Ok(started) => Ok(edge::json_response(
            202,
            &json!({"secret": ctx.params.get("name"), "version": started.version, "status": "rotating"}),
        )),
        Err(RotationError::NotEnabled { .. }) => Err(Problem::new(
            409,
            "rotation_not_enabled",
            "this secret has no rotation configured; deploy the stack's rotation schedule first",
        )),
        Err(RotationError::Manual { .. }) => Err(Problem::new(
            409,
            "manual_rotation",
            "this secret is issued by Meta and rotated by hand",
        )),
        Err(e) => Err(unavailable("secrets manager", e)),
    }
}

/// `GET /v1/admin/audit/verify[?user=<id>|?partition=system]`: walks the hash chains and names
/// every record that was changed, removed or moved.
pub(super) async fn verify(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let partition = match (edge::query(req, "user"), edge::query(req, "partition")) {
        (Some(_), Some(_)) => {
            return Err(Problem::bad_request(
                "invalid_parameter",
                "give user or partition, not both",
            )
            .with_field("partition"));
        }
        (Some(user), None) => Some(format!(
            "user#{}",
            UserId::parse(&user).map_err(|_| {
                Problem::bad_request("invalid_parameter", "user is a ThreadStorm user id")
                    .with_field("user")
            })?
        )),
        (None, Some(p)) if p == "system" => Some(p),
        (None, Some(_)) => {
            return Err(Problem::bad_request(
                "invalid_parameter",
                "partition is system (use user for a user's records)",
            )
            .with_field("partition"));
        }
        (None, None) => None,
    };
    let report = api
        .audit_sink
        .verify(partition.as_deref())
        .await
        .map_err(|e| unavailable("audit log", e))?;
    let outcome = if report.intact() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let category = if report.intact() {
        Category::System
    } else {
        Category::Security
    };
    api.audit
        .record_best_effort(
            record(ctx, category, "audit.verify", outcome)
                .description(if report.intact() {
                    "audit log verified intact".to_owned()
                } else {
                    format!("audit log verification found {} problems", report.problems.len())
                })
                .metadata(json!({
                    "partition": partition,
                    "partitions": report.partitions,
                    "records": report.records,
                    "problems": report.problems.iter().take(20).map(|p| p.to_json()).collect::<Vec<_>>(),
                })),
        )
        .await;
    Ok(edge::json_response(200, &report.to_json()))
}
