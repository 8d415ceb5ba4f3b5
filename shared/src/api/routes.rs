//! Every route of the api function, in one table: its method, its path pattern, and what it asks
//! of the caller (an action and whose resource it touches). The router refuses anything not here;
//! the OpenAPI document (`openapi.yaml`) describes exactly these (a test compares them).

use lambda_http::http::Method;

use crate::rbac::Action;

/// Names one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteId {
    Me,
    ListAccounts,
    CreatePost,
    ListPosts,
    GetPost,
    CancelPost,
    CreateStorm,
    GetStorm,
    CancelStorm,
    // Bulk, analytics, the audit log and administration (issue 8).
    BatchPosts,
    Analytics,
    ListAudit,
    SetRole,
    Pause,
    Resume,
    RevokeAccount,
    RotateSecret,
    VerifyAudit,
    Inbox,
}

/// Whose resource a route touches, known before or after loading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The caller's own collection (create, list) or their own profile.
    Own,
    /// One resource named by the path; its owner is known once it is loaded.
    Resource,
    /// The whole system (administration).
    System,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub id: RouteId,
    pub method: &'static str,
    /// `/v1/posts/{id}`: literal segments and `{name}` parameters, each one whole segment.
    pub pattern: &'static str,
    pub action: Action,
    pub scope: Scope,
    /// A POST that creates something: an `Idempotency-Key` header makes retries safe.
    pub idempotent_post: bool,
}

const fn route(
    id: RouteId,
    method: &'static str,
    pattern: &'static str,
    action: Action,
    scope: Scope,
) -> Route {
    Route {
        id,
        method,
        pattern,
        action,
        scope,
        idempotent_post: false,
    }
}

const fn creating(mut r: Route) -> Route {
    r.idempotent_post = true;
    r
}

/// The api function's routes.
pub static ROUTES: &[Route] = &[
    route(RouteId::Me, "GET", "/v1/me", Action::Read, Scope::Own),
    route(
        RouteId::ListAccounts,
        "GET",
        "/v1/accounts",
        Action::Read,
        Scope::Own,
    ),
    creating(route(
        RouteId::CreatePost,
        "POST",
        "/v1/posts",
        Action::Write,
        Scope::Own,
    )),
    route(
        RouteId::ListPosts,
        "GET",
        "/v1/posts",
        Action::Read,
        Scope::Own,
    ),
    route(
        RouteId::GetPost,
        "GET",
        "/v1/posts/{id}",
        Action::Read,
        Scope::Resource,
    ),
    route(
        RouteId::CancelPost,
        "DELETE",
        "/v1/posts/{id}",
        Action::Write,
        Scope::Resource,
    ),
    creating(route(
        RouteId::CreateStorm,
        "POST",
        "/v1/storms",
        Action::Write,
        Scope::Own,
    )),
    route(
        RouteId::GetStorm,
        "GET",
        "/v1/storms/{id}",
        Action::Read,
        Scope::Resource,
    ),
    route(
        RouteId::CancelStorm,
        "DELETE",
        "/v1/storms/{id}",
        Action::Write,
        Scope::Resource,
    ),
    // --- bulk, analytics, audit log, administration ---
    creating(route(
        RouteId::BatchPosts,
        "POST",
        "/v1/posts:batch",
        Action::Bulk,
        Scope::Own,
    )),
    route(
        RouteId::Analytics,
        "GET",
        "/v1/analytics",
        Action::Analytics,
        Scope::Own,
    ),
    route(
        RouteId::ListAudit,
        "GET",
        "/v1/audit",
        Action::Read,
        Scope::Own,
    ),
    route(
        RouteId::SetRole,
        "PUT",
        "/v1/admin/users/{id}/role",
        Action::ManageUsers,
        Scope::System,
    ),
    route(
        RouteId::Pause,
        "POST",
        "/v1/admin/pause",
        Action::ManageSystem,
        Scope::System,
    ),
    route(
        RouteId::Resume,
        "POST",
        "/v1/admin/resume",
        Action::ManageSystem,
        Scope::System,
    ),
    route(
        RouteId::RevokeAccount,
        "POST",
        "/v1/admin/accounts/{id}/revoke",
        Action::ManageSystem,
        Scope::System,
    ),
    route(
        RouteId::RotateSecret,
        "POST",
        "/v1/admin/secrets/{name}/rotate",
        Action::ManageSystem,
        Scope::System,
    ),
    route(
        RouteId::VerifyAudit,
        "GET",
        "/v1/admin/audit/verify",
        Action::ManageSystem,
        Scope::System,
    ),
    // --- end of bulk, analytics, audit log, administration ---
    route(RouteId::Inbox, "GET", "/v1/inbox", Action::Read, Scope::Own),
];

/// Path parameters of a matched route, in pattern order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the table says about a method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Route(&'static Route, Params),
    /// The path exists with other methods (405, with `Allow`).
    WrongMethod(Vec<&'static str>),
    NotFound,
}

/// Finds the route for `method` and `path` (without the stage prefix).
pub fn find(method: &Method, path: &str) -> Found {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let mut allowed = Vec::new();
    for route in ROUTES {
        let Some(params) = matches(route.pattern, path) else {
            continue;
        };
        if route.method == method.as_str() {
            return Found::Route(route, params);
        }
        allowed.push(route.method);
    }
    if allowed.is_empty() {
        Found::NotFound
    } else {
        Found::WrongMethod(allowed)
    }
}

fn matches(pattern: &'static str, path: &str) -> Option<Params> {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    let mut params = Vec::new();
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(Params(params)),
            (Some(w), Some(g)) => {
                if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    params.push((name, g.to_owned()));
                } else if w != g {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_routes_parameters_and_wrong_methods() {
        let Found::Route(route, params) = find(&Method::GET, "/v1/posts/storm_abc") else {
            panic!("route expected");
        };
        assert_eq!(route.id, RouteId::GetPost);
        assert_eq!(params.get("id"), Some("storm_abc"));
        assert!(matches!(
            find(&Method::GET, "/v1/posts/"),
            Found::Route(
                Route {
                    id: RouteId::ListPosts,
                    ..
                },
                _
            )
        ));
        assert_eq!(
            find(&Method::PUT, "/v1/posts/x"),
            Found::WrongMethod(vec!["GET", "DELETE"])
        );
        assert_eq!(find(&Method::GET, "/v1/posts/a/b"), Found::NotFound);
        assert_eq!(find(&Method::GET, "/v1/nothing"), Found::NotFound);
        assert_eq!(find(&Method::GET, "/v1/posts//"), Found::NotFound);
    }

    #[test]
    fn every_pattern_and_method_pair_is_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.pattern == b.pattern && a.method == b.method),
                    "{} {} twice",
                    a.method,
                    a.pattern
                );
                assert_ne!(a.id, b.id);
            }
        }
    }
}
