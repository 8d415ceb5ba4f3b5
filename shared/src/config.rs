//! Configuration, read once at start-up from the environment.
//!
//! Variable names follow the seed where it named them (`ENABLE_KMS_ENCRYPTION`, `LOG_LEVEL`, …); the
//! names of tables, queues and secrets come from [`crate::resources`]. A missing or malformed value
//! is a start-up error that names the variable, so a broken deployment fails at init, not on the
//! first request.

use std::collections::BTreeMap;

use crate::pipeline::quota::{GovernorError, Governors, Limit};
use crate::policy::ProhibitedTerms;
use crate::rate_limit::{MAX_PER_MINUTE, RateLimits, Scope};
use crate::resources::{FunctionSpec, Resource};

/// Why the configuration could not be read. Each variant names the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {var} is not set ({why})")]
    Missing {
        var: &'static str,
        why: &'static str,
    },
    #[error("configuration: {var} is malformed: {reason}")]
    Malformed { var: &'static str, reason: String },
    #[error("configuration: {var} is refused: {reason}")]
    Refused { var: &'static str, reason: String },
}

/// Log verbosity, from `LOG_LEVEL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Where browsers may call the API from (`CORS_ORIGINS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No cross-origin access at all (the variable is unset or empty).
    None,
    /// `*`: any origin. Refused in production mode.
    Any,
    /// An explicit list of `scheme://host[:port]` origins.
    List(Vec<String>),
}

/// The seed's switches for optional log streams. Security events are recorded whatever these say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSwitches {
    pub audit: bool,
    pub rate_limit: bool,
    pub access: bool,
    pub deletion: bool,
}

/// Everything a function reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub region: String,
    pub production_mode: bool,
    pub debug: bool,
    pub log_level: LogLevel,
    pub cors_origins: CorsOrigins,
    pub logs: LogSwitches,
    /// `ENABLE_KMS_ENCRYPTION`: tokens are sealed with KMS envelope encryption (the default). When
    /// false, the local key in `TOKEN_ENCRYPTION_KEY` (or its secret) is used instead.
    pub kms_encryption: bool,
    /// `AWS_KMS_KEY_ID`: the key that wraps token data keys, when this function seals tokens.
    pub kms_key_id: Option<String>,
    /// `TOKEN_ENCRYPTION_KEY`: local fallback key material, only read when KMS is off.
    pub token_encryption_key: Option<Secret>,
    /// `ADMIN_THREADS_USER_IDS`: comma-separated Threads user ids that become `super_admin` on
    /// their first login. Empty when unset.
    pub admin_threads_user_ids: Vec<crate::threads::UserId>,
    /// `TOKEN_REFRESH_WINDOW_DAYS` (1–59, default 7): the refresher renews tokens that expire
    /// within this many days.
    pub token_refresh_window_days: u64,
    /// Where and as whom ThreadStorm talks to Threads.
    pub threads: ThreadsSettings,
    /// `PUBLIC_BASE_URL`: where ThreadStorm's API is reachable from outside (template parameter
    /// PublicBaseUrl), without a trailing `/`; used for links handed to Meta.
    pub public_base_url: Option<String>,
    /// `PROHIBITED_TERMS`: comma-separated terms no post may contain (brand protection). Unset,
    /// the defaults in [`crate::policy::DEFAULT_PROHIBITED_TERMS`]; brand protection cannot be
    /// switched off, only given other terms.
    pub prohibited_terms: ProhibitedTerms,
    /// `GOVERNOR_POSTS_PER_DAY`, `GOVERNOR_REPLIES_PER_DAY`, `GOVERNOR_REQUESTS_PER_HOUR`: the
    /// operator's quotas per Threads account (seed defaults 250, 1000, 200). A value above Meta's
    /// limit is refused, not clamped: the operator learns at start-up that they cannot have it.
    pub governors: Governors,
    /// `API_RATE_LIMIT_PER_MINUTE` (default 120, per signed-in user on `/v1`),
    /// `OAUTH_RATE_LIMIT_PER_MINUTE` (default 30, per source address on `/oauth/start` and
    /// `/oauth/callback`), `WEBHOOKS_RATE_LIMIT_PER_MINUTE` (default 120, per source address):
    /// each from 1 to [`MAX_PER_MINUTE`].
    pub rate_limits: RateLimits,
    /// `SIGNED_REQUEST_MAX_AGE_SECONDS` (default a day, 60 to 604800): how old a Meta callback's
    /// `signed_request` (its `issued_at`) may be.
    pub signed_request_max_age_seconds: u64,
    /// Physical names of the tables, queues and secrets this function uses, keyed by resource.
    resources: BTreeMap<Resource, String>,
}

/// The Threads app and endpoints (`THREADS_APP_ID`, `THREADS_GRAPH_URL`, `THREADS_AUTH_URL`,
/// `OAUTH_REDIRECT_URI`). The URLs default to Meta's; locally they point at the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadsSettings {
    /// The Threads App ID (numeric), if configured.
    pub app_id: Option<String>,
    pub graph_url: String,
    pub authorize_url: String,
    /// The exact redirect URI registered with Meta; required by the oauth function.
    pub redirect_uri: Option<String>,
}

/// A value that must never be printed. `Debug` shows only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Config {
    /// Reads the configuration of `function` from the process environment.
    pub fn from_env(function: &FunctionSpec) -> Result<Self, ConfigError> {
        Self::from_lookup(function, |name| std::env::var(name).ok())
    }

    /// Reads the configuration of `function` through `lookup`, so tests need not touch the
    /// process environment.
    pub fn from_lookup(
        function: &FunctionSpec,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |var: &'static str| {
            lookup(var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let region = get("AWS_REGION").ok_or(ConfigError::Missing {
            var: "AWS_REGION",
            why: "Lambda sets it; locally the runner does",
        })?;
        let production_mode = flag(&get, "PRODUCTION_MODE", false)?;
        let debug = flag(&get, "DEBUG", false)?;
        let log_level = match get("LOG_LEVEL").map(|v| v.to_ascii_lowercase()).as_deref() {
            None => LogLevel::Info,
            Some("trace") => LogLevel::Trace,
            Some("debug") => LogLevel::Debug,
            Some("info") => LogLevel::Info,
            Some("warn" | "warning") => LogLevel::Warn,
            Some("error") => LogLevel::Error,
            Some(other) => {
                return Err(ConfigError::Malformed {
                    var: "LOG_LEVEL",
                    reason: format!("{other:?} is not one of trace, debug, info, warn, error"),
                });
            }
        };
        let cors_origins = cors(get("CORS_ORIGINS"))?;
        let logs = LogSwitches {
            audit: flag(&get, "ENABLE_AUDIT_LOGS", true)?,
            rate_limit: flag(&get, "ENABLE_RATE_LIMIT_LOGS", true)?,
            access: flag(&get, "ENABLE_ACCESS_LOGS", true)?,
            deletion: flag(&get, "ENABLE_DELETION_LOGS", true)?,
        };
        if !flag(&get, "ENABLE_TOKEN_ENCRYPTION", true)? {
            return Err(ConfigError::Refused {
                var: "ENABLE_TOKEN_ENCRYPTION",
                reason: "Threads tokens are never stored in plain text; remove the variable or set it to true"
                    .into(),
            });
        }
        let kms_encryption = flag(&get, "ENABLE_KMS_ENCRYPTION", true)?;
        let admin_threads_user_ids = admin_ids(get("ADMIN_THREADS_USER_IDS"))?;
        let token_refresh_window_days =
            whole_number(&get, "TOKEN_REFRESH_WINDOW_DAYS", 7, 1..=59, "days")?;
        let mut rate_limits = RateLimits::default();
        for scope in Scope::ALL {
            let per_minute = whole_number(
                &get,
                scope.env_var(),
                u64::from(scope.default_per_minute()),
                1..=u64::from(MAX_PER_MINUTE),
                "requests a minute",
            )?;
            rate_limits.set(scope, u32::try_from(per_minute).unwrap_or(MAX_PER_MINUTE));
        }
        let signed_request_max_age_seconds = whole_number(
            &get,
            "SIGNED_REQUEST_MAX_AGE_SECONDS",
            crate::webhooks::signed_request::DEFAULT_MAX_AGE_SECONDS,
            crate::webhooks::signed_request::MAX_AGE_SECONDS_RANGE,
            "seconds",
        )?;
        let prohibited_terms = match get("PROHIBITED_TERMS") {
            None => ProhibitedTerms::default(),
            Some(list) => {
                ProhibitedTerms::parse_list(&list).map_err(|reason| ConfigError::Malformed {
                    var: "PROHIBITED_TERMS",
                    reason,
                })?
            }
        };

        let threads = threads_settings(&get, production_mode)?;
        let public_base_url = match get("PUBLIC_BASE_URL") {
            Some(url) => {
                http_url("PUBLIC_BASE_URL", &url, production_mode)?;
                Some(url.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        let governors = governors(&get)?;

        let mut resources = BTreeMap::new();
        for resource in function.env_resources() {
            let var = resource.env_var();
            let value = get(var).ok_or(ConfigError::Missing {
                var,
                why: "template.yaml sets it for this function",
            })?;
            resources.insert(resource, value);
        }

        let seals_tokens = function.env_resources().any(|r| r == Resource::TokenKey);
        let kms_key_id = if seals_tokens && kms_encryption {
            resources.get(&Resource::TokenKey).cloned()
        } else {
            None
        };
        let token_encryption_key = if seals_tokens && !kms_encryption {
            get("TOKEN_ENCRYPTION_KEY").map(Secret)
        } else {
            None
        };

        if production_mode {
            if debug {
                return Err(ConfigError::Refused {
                    var: "DEBUG",
                    reason: "debug output is off in production mode (PRODUCTION_MODE=true): it \
                             can show request details; set DEBUG=false"
                        .into(),
                });
            }
            if matches!(log_level, LogLevel::Debug | LogLevel::Trace) {
                return Err(ConfigError::Refused {
                    var: "LOG_LEVEL",
                    reason: format!(
                        "{} logs are refused in production mode (PRODUCTION_MODE=true): they \
                         can carry request and response details; use info, warn or error",
                        log_level.as_str()
                    ),
                });
            }
            if cors_origins == CorsOrigins::Any {
                return Err(ConfigError::Refused {
                    var: "CORS_ORIGINS",
                    reason: "`*` is refused in production mode (PRODUCTION_MODE=true): any \
                             site could call the API with its users' credentials; list the \
                             origins, such as https://app.example.com"
                        .into(),
                });
            }
            if !kms_encryption {
                return Err(ConfigError::Refused {
                    var: "ENABLE_KMS_ENCRYPTION",
                    reason: "production mode (PRODUCTION_MODE=true) seals Threads tokens with \
                             KMS; the local key is for development; set ENABLE_KMS_ENCRYPTION=true"
                        .into(),
                });
            }
        }

        Ok(Config {
            region,
            production_mode,
            debug,
            log_level,
            cors_origins,
            logs,
            kms_encryption,
            kms_key_id,
            token_encryption_key,
            admin_threads_user_ids,
            token_refresh_window_days,
            threads,
            public_base_url,
            prohibited_terms,
            governors,
            rate_limits,
            signed_request_max_age_seconds,
            resources,
        })
    }

    /// The physical name (table name, queue URL, secret id or key id) of `resource`.
    ///
    /// Only resources the function declared are present; asking for another is a programming
    /// error caught by the tests that run every function, so it reports rather than panics.
    pub fn resource(&self, resource: Resource) -> Result<&str, ConfigError> {
        self.resources
            .get(&resource)
            .map(String::as_str)
            .ok_or(ConfigError::Missing {
                var: resource.env_var(),
                why: "this function does not declare the resource in resources::FunctionSpec",
            })
    }
}

fn flag(
    get: &impl Fn(&'static str) -> Option<String>,
    var: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(var).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::Malformed {
            var,
            reason: format!("{other:?} is not a boolean (use true or false)"),
        }),
    }
}

/// A whole number in `range` from `var`, or `default` when it is unset.
fn whole_number(
    get: &impl Fn(&'static str) -> Option<String>,
    var: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
) -> Result<u64, ConfigError> {
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    match raw.parse::<u64>() {
        Ok(value) if range.contains(&value) => Ok(value),
        _ => Err(ConfigError::Malformed {
            var,
            reason: format!(
                "{raw:?} is not a whole number of {unit} from {} to {}",
                range.start(),
                range.end()
            ),
        }),
    }
}

fn threads_settings(
    get: &impl Fn(&'static str) -> Option<String>,
    production_mode: bool,
) -> Result<ThreadsSettings, ConfigError> {
    let app_id = get("THREADS_APP_ID").filter(|id| id != "0");
    if let Some(id) = &app_id
        && !id.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ConfigError::Malformed {
            var: "THREADS_APP_ID",
            reason: "the Threads App ID is numeric (Meta dashboard → Threads use case → settings)"
                .into(),
        });
    }
    let url = |var: &'static str, default: &str| -> Result<String, ConfigError> {
        let value = get(var).unwrap_or_else(|| default.to_owned());
        http_url(var, &value, production_mode)?;
        Ok(value.trim_end_matches('/').to_owned())
    };
    let graph_url = url("THREADS_GRAPH_URL", crate::threads::DEFAULT_GRAPH_BASE)?;
    let authorize_url = url("THREADS_AUTH_URL", crate::threads::DEFAULT_AUTHORIZE_URL)?;
    let redirect_uri = match get("OAUTH_REDIRECT_URI") {
        Some(uri) => {
            http_url("OAUTH_REDIRECT_URI", &uri, production_mode)?;
            Some(uri)
        }
        None => None,
    };
    Ok(ThreadsSettings {
        app_id,
        graph_url,
        authorize_url,
        redirect_uri,
    })
}

/// An absolute http(s) URL; plain http only for loopback hosts and never in production mode.
fn http_url(var: &'static str, value: &str, production_mode: bool) -> Result<(), ConfigError> {
    let malformed = |reason: &str| ConfigError::Malformed {
        var,
        reason: format!("{value:?} {reason}"),
    };
    let parsed = url::Url::parse(value).map_err(|_| malformed("is not an absolute URL"))?;
    let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback && !production_mode => Ok(()),
        _ => Err(malformed(
            "must be https (plain http only for a local stack on loopback)",
        )),
    }
}

fn admin_ids(value: Option<String>) -> Result<Vec<crate::threads::UserId>, ConfigError> {
    let mut ids = Vec::new();
    for raw in value.iter().flat_map(|v| v.split(',')).map(str::trim) {
        if raw.is_empty() {
            continue;
        }
        let id = crate::threads::UserId::parse(raw).map_err(|e| ConfigError::Malformed {
            var: "ADMIN_THREADS_USER_IDS",
            reason: e.to_string(),
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn governors(get: &impl Fn(&'static str) -> Option<String>) -> Result<Governors, ConfigError> {
    let read = |limit: Limit| -> Result<u32, ConfigError> {
        let var = limit.env_var();
        match get(var) {
            None => Ok(Governors::SEED.get(limit)),
            Some(raw) => raw.parse::<u32>().map_err(|_| ConfigError::Malformed {
                var,
                reason: format!("{raw:?} is not a whole number"),
            }),
        }
    };
    Governors::new(
        read(Limit::PostsPerDay)?,
        read(Limit::RepliesPerDay)?,
        read(Limit::RequestsPerHour)?,
    )
    .map_err(|err| {
        let limit = match &err {
            GovernorError::Zero { limit } | GovernorError::AboveCeiling { limit, .. } => *limit,
        };
        ConfigError::Refused {
            var: limit.env_var(),
            reason: err.to_string(),
        }
    })
}

fn cors(value: Option<String>) -> Result<CorsOrigins, ConfigError> {
    let Some(value) = value else {
        return Ok(CorsOrigins::None);
    };
    if value == "*" {
        return Ok(CorsOrigins::Any);
    }
    let mut origins = Vec::new();
    for origin in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let valid = rest.is_some_and(|host| {
            !host.is_empty()
                && !host.contains('/')
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
        if !valid {
            return Err(ConfigError::Malformed {
                var: "CORS_ORIGINS",
                reason: format!("{origin:?} is not an origin like https://app.example.com"),
            });
        }
        origins.push(origin.to_owned());
    }
    Ok(if origins.is_empty() {
        CorsOrigins::None
    } else {
        CorsOrigins::List(origins)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poster() -> &'static FunctionSpec {
        &crate::resources::POSTER
    }

    fn full_env(function: &FunctionSpec) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([("AWS_REGION".to_owned(), "us-east-1".to_owned())]);
        for r in function.env_resources() {
            env.insert(r.env_var().to_owned(), format!("value-of-{}", r.env_var()));
        }
        env
    }

    fn read(env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(poster(), |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_are_safe() {
        let config = read(&full_env(poster())).expect("complete environment");
        assert!(!config.production_mode);
        assert!(!config.debug);
        assert!(config.kms_encryption);
        assert_eq!(config.log_level, LogLevel::Info);
        assert_eq!(config.cors_origins, CorsOrigins::None);
        assert_eq!(
            config.logs,
            LogSwitches {
                audit: true,
                rate_limit: true,
                access: true,
                deletion: true
            }
        );
        assert_eq!(
            config.kms_key_id.as_deref(),
            Some("value-of-AWS_KMS_KEY_ID")
        );
    }

    #[test]
    fn every_declared_resource_is_required_by_name() {
        for resource in poster().env_resources() {
            let mut env = full_env(poster());
            env.remove(resource.env_var());
            let err = read(&env).expect_err("a declared resource is missing");
            assert!(
                matches!(err, ConfigError::Missing { var, .. } if var == resource.env_var()),
                "{err}"
            );
            assert!(err.to_string().contains(resource.env_var()));
        }
    }

    #[test]
    fn missing_region_names_the_variable() {
        let mut env = full_env(poster());
        env.remove("AWS_REGION");
        assert!(read(&env).unwrap_err().to_string().contains("AWS_REGION"));
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (var, value) in [
            ("DEBUG", "maybe"),
            ("PRODUCTION_MODE", "2"),
            ("ENABLE_KMS_ENCRYPTION", "enabled"),
            ("ENABLE_AUDIT_LOGS", "y e s"),
            ("LOG_LEVEL", "loud"),
            ("CORS_ORIGINS", "example.com"),
            ("CORS_ORIGINS", "https://example.com/path"),
        ] {
            let mut env = full_env(poster());
            env.insert(var.to_owned(), value.to_owned());
            let err = read(&env).expect_err(var);
            assert!(
                matches!(err, ConfigError::Malformed { var: v, .. } if v == var),
                "{var}: {err}"
            );
        }
    }

    #[test]
    fn plain_text_tokens_are_refused() {
        let mut env = full_env(poster());
        env.insert("ENABLE_TOKEN_ENCRYPTION".into(), "false".into());
        assert!(matches!(
            read(&env),
            Err(ConfigError::Refused {
                var: "ENABLE_TOKEN_ENCRYPTION",
                ..
            })
        ));
    }

    #[test]
    fn production_mode_refuses_debug_wildcard_cors_and_local_keys() {
        for (var, value, why) in [
            ("DEBUG", "true", "DEBUG=false"),
            ("LOG_LEVEL", "debug", "use info, warn or error"),
            ("LOG_LEVEL", "TRACE", "use info, warn or error"),
            ("CORS_ORIGINS", "*", "list the origins"),
            (
                "ENABLE_KMS_ENCRYPTION",
                "false",
                "ENABLE_KMS_ENCRYPTION=true",
            ),
        ] {
            let mut env = full_env(poster());
            env.insert("PRODUCTION_MODE".into(), "true".into());
            env.insert(var.to_owned(), value.to_owned());
            let err = read(&env).expect_err(var);
            assert!(
                matches!(err, ConfigError::Refused { var: v, .. } if v == var),
                "{var}: {err}"
            );
            let message = err.to_string();
            assert!(
                message.contains(var) && message.contains("PRODUCTION_MODE=true"),
                "names the variable and the mode: {message}"
            );
            assert!(message.contains(why), "says what to do: {message}");
        }
    }

    #[test]
    fn production_mode_starts_with_safe_settings() {
        let mut env = full_env(poster());
        env.insert("PRODUCTION_MODE".into(), "true".into());
        for (level, expected) in [
            ("info", LogLevel::Info),
            ("warn", LogLevel::Warn),
            ("error", LogLevel::Error),
        ] {
            env.insert("LOG_LEVEL".into(), level.into());
            env.insert("CORS_ORIGINS".into(), "https://app.example.com".into());
            let config = read(&env).expect(level);
            assert!(config.production_mode && config.kms_encryption);
            assert_eq!(config.log_level, expected);
        }
    }

    #[test]
    fn outside_production_mode_debug_logs_wildcard_cors_and_local_keys_are_allowed() {
        let mut env = full_env(poster());
        env.insert("LOG_LEVEL".into(), "trace".into());
        env.insert("DEBUG".into(), "true".into());
        env.insert("CORS_ORIGINS".into(), "*".into());
        env.insert("ENABLE_KMS_ENCRYPTION".into(), "false".into());
        let config = read(&env).unwrap();
        assert_eq!(config.log_level, LogLevel::Trace);
        assert_eq!(config.cors_origins, CorsOrigins::Any);
        assert!(!config.kms_encryption);
    }

    #[test]
    fn the_configuration_never_prints_a_secret() {
        let mut env = full_env(poster());
        env.insert("ENABLE_KMS_ENCRYPTION".into(), "false".into());
        env.insert(
            "TOKEN_ENCRYPTION_KEY".into(),
            "super-secret-key-material".into(),
        );
        let config = read(&env).unwrap();
        assert!(!format!("{config:?}").contains("super-secret-key-material"));
    }

    #[test]
    fn local_key_is_read_only_when_kms_is_off() {
        let mut env = full_env(poster());
        env.insert("TOKEN_ENCRYPTION_KEY".into(), "k1".into());
        assert_eq!(read(&env).unwrap().token_encryption_key, None);
        env.insert("ENABLE_KMS_ENCRYPTION".into(), "false".into());
        let config = read(&env).unwrap();
        assert_eq!(config.kms_key_id, None);
        assert_eq!(
            config.token_encryption_key.as_ref().map(Secret::expose),
            Some("k1")
        );
        assert_eq!(
            format!("{:?}", config.token_encryption_key),
            "Some(Secret(<redacted>))"
        );
    }

    #[test]
    fn threads_endpoints_default_to_meta_and_must_be_https() {
        let config = read(&full_env(poster())).unwrap();
        assert_eq!(config.threads.graph_url, "https://graph.threads.net");
        assert_eq!(config.threads.app_id, None);
        let mut env = full_env(poster());
        env.insert("THREADS_GRAPH_URL".into(), "http://127.0.0.1:8787/".into());
        env.insert("THREADS_APP_ID".into(), "1234567890".into());
        let config = read(&env).unwrap();
        assert_eq!(config.threads.graph_url, "http://127.0.0.1:8787");
        assert_eq!(config.threads.app_id.as_deref(), Some("1234567890"));
        for (var, value) in [
            ("THREADS_GRAPH_URL", "http://graph.example.com"),
            ("THREADS_AUTH_URL", "not a url"),
            ("OAUTH_REDIRECT_URI", "/oauth/callback"),
            ("THREADS_APP_ID", "12ab"),
            ("TOKEN_REFRESH_WINDOW_DAYS", "60"),
            ("TOKEN_REFRESH_WINDOW_DAYS", "a week"),
        ] {
            let mut env = full_env(poster());
            env.insert(var.to_owned(), value.to_owned());
            assert!(
                matches!(read(&env), Err(ConfigError::Malformed { var: v, .. }) if v == var),
                "{var}"
            );
        }
        let mut env = full_env(poster());
        env.insert("PRODUCTION_MODE".into(), "true".into());
        env.insert(
            "OAUTH_REDIRECT_URI".into(),
            "http://localhost:3000/oauth/callback".into(),
        );
        assert!(matches!(
            read(&env),
            Err(ConfigError::Malformed {
                var: "OAUTH_REDIRECT_URI",
                ..
            })
        ));
    }

    #[test]
    fn prohibited_terms_default_and_can_be_replaced() {
        let mut env = full_env(poster());
        assert_eq!(
            read(&env).unwrap().prohibited_terms,
            ProhibitedTerms::default()
        );
        env.insert("PROHIBITED_TERMS".into(), "Glimmr, Ace,".into());
        let terms = read(&env).unwrap().prohibited_terms;
        assert_eq!(terms.terms().collect::<Vec<_>>(), ["Glimmr", "Ace"]);
        assert_eq!(terms.find_in("ACE deals!"), Some("Ace"));
        for bad in [",", "Glimmr, \u{200B}", "Glimmr, ..."] {
            env.insert("PROHIBITED_TERMS".into(), bad.into());
            let err = read(&env).expect_err(bad);
            assert!(
                matches!(
                    err,
                    ConfigError::Malformed {
                        var: "PROHIBITED_TERMS",
                        ..
                    }
                ),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn governors_default_to_the_seed_and_are_read_by_name() {
        let mut env = full_env(poster());
        assert_eq!(read(&env).unwrap().governors, Governors::SEED);
        env.insert("GOVERNOR_POSTS_PER_DAY".into(), "100".into());
        env.insert("GOVERNOR_REPLIES_PER_DAY".into(), " 400 ".into());
        env.insert("GOVERNOR_REQUESTS_PER_HOUR".into(), "60".into());
        assert_eq!(
            read(&env).unwrap().governors,
            Governors::new(100, 400, 60).unwrap()
        );
    }

    #[test]
    fn governors_that_are_malformed_or_above_meta_name_the_variable() {
        for (var, value, refused) in [
            ("GOVERNOR_POSTS_PER_DAY", "lots", false),
            ("GOVERNOR_POSTS_PER_DAY", "-1", false),
            ("GOVERNOR_REPLIES_PER_DAY", "2.5", false),
            ("GOVERNOR_REQUESTS_PER_HOUR", "99999999999", false),
            ("GOVERNOR_POSTS_PER_DAY", "251", true),
            ("GOVERNOR_REPLIES_PER_DAY", "1001", true),
            ("GOVERNOR_REQUESTS_PER_HOUR", "2001", true),
            ("GOVERNOR_REQUESTS_PER_HOUR", "0", true),
        ] {
            let mut env = full_env(poster());
            env.insert(var.to_owned(), value.to_owned());
            let err = read(&env).expect_err(value);
            let named = match &err {
                ConfigError::Malformed { var: v, .. } => !refused && *v == var,
                ConfigError::Refused { var: v, .. } => refused && *v == var,
                ConfigError::Missing { .. } => false,
            };
            assert!(named, "{var}={value}: {err}");
        }
    }

    #[test]
    fn rate_limits_and_callback_age_default_and_are_read_by_name() {
        let mut env = full_env(poster());
        let config = read(&env).unwrap();
        assert_eq!(
            config.rate_limits,
            RateLimits {
                api_per_minute: 120,
                oauth_per_minute: 30,
                webhooks_per_minute: 120
            }
        );
        assert_eq!(config.signed_request_max_age_seconds, 86_400);
        env.insert("API_RATE_LIMIT_PER_MINUTE".into(), " 600 ".into());
        env.insert("OAUTH_RATE_LIMIT_PER_MINUTE".into(), "5".into());
        env.insert("WEBHOOKS_RATE_LIMIT_PER_MINUTE".into(), "1000000".into());
        env.insert("SIGNED_REQUEST_MAX_AGE_SECONDS".into(), "3600".into());
        let config = read(&env).unwrap();
        assert_eq!(config.rate_limits.per_minute(Scope::ApiUser), 600);
        assert_eq!(config.rate_limits.per_minute(Scope::OAuthIp), 5);
        assert_eq!(config.rate_limits.per_minute(Scope::WebhooksIp), 1_000_000);
        assert_eq!(config.signed_request_max_age_seconds, 3600);
    }

    #[test]
    fn a_zero_or_malformed_rate_limit_or_callback_age_stops_the_start() {
        for (var, value) in [
            ("API_RATE_LIMIT_PER_MINUTE", "0"),
            ("API_RATE_LIMIT_PER_MINUTE", "lots"),
            ("API_RATE_LIMIT_PER_MINUTE", "-5"),
            ("OAUTH_RATE_LIMIT_PER_MINUTE", "2.5"),
            ("OAUTH_RATE_LIMIT_PER_MINUTE", "1000001"),
            ("WEBHOOKS_RATE_LIMIT_PER_MINUTE", "0x10"),
            ("SIGNED_REQUEST_MAX_AGE_SECONDS", "0"),
            ("SIGNED_REQUEST_MAX_AGE_SECONDS", "59"),
            ("SIGNED_REQUEST_MAX_AGE_SECONDS", "604801"),
            ("SIGNED_REQUEST_MAX_AGE_SECONDS", "1h"),
        ] {
            let mut env = full_env(poster());
            env.insert(var.to_owned(), value.to_owned());
            let err = read(&env).expect_err(value);
            assert!(
                matches!(err, ConfigError::Malformed { var: v, .. } if v == var),
                "{var}={value}: {err}"
            );
            let message = err.to_string();
            assert!(
                message.contains(var) && message.contains("whole number"),
                "{message}"
            );
        }
    }

    #[test]
    fn admin_threads_user_ids_are_an_optional_list_of_threads_ids() {
        let mut env = full_env(poster());
        assert!(read(&env).unwrap().admin_threads_user_ids.is_empty());
        env.insert(
            "ADMIN_THREADS_USER_IDS".into(),
            " 17841405793187218, ,90071992547409931,17841405793187218".into(),
        );
        let ids: Vec<String> = read(&env)
            .unwrap()
            .admin_threads_user_ids
            .iter()
            .map(|id| id.to_string())
            .collect();
        assert_eq!(ids, ["17841405793187218", "90071992547409931"]);
        env.insert("ADMIN_THREADS_USER_IDS".into(), "1784,admin".into());
        assert!(matches!(
            read(&env),
            Err(ConfigError::Malformed {
                var: "ADMIN_THREADS_USER_IDS",
                ..
            })
        ));
    }

    #[test]
    fn cors_list_is_parsed() {
        let mut env = full_env(poster());
        env.insert(
            "CORS_ORIGINS".into(),
            "https://a.example, http://localhost:3000".into(),
        );
        assert_eq!(
            read(&env).unwrap().cors_origins,
            CorsOrigins::List(vec![
                "https://a.example".into(),
                "http://localhost:3000".into()
            ])
        );
    }

    #[test]
    fn undeclared_resource_is_an_error_not_a_panic() {
        let config = read(&full_env(poster())).unwrap();
        assert!(config.resource(Resource::InboxTable).is_err());
        assert!(config.resource(Resource::PostsTable).is_ok());
    }
}
