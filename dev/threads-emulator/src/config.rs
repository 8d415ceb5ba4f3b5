//! What an emulator instance is set up with: the Threads app, its registered redirect URIs,
//! the test users who "log in", lifetimes and limits. Every number Meta documents is a default
//! here; a test may shrink it (say a quota of 3) to reach an edge without 250 requests.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A Threads account that the authorization window approves without a person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestUser {
    /// Threads user id, a numeric string; it may exceed 2^53.
    pub id: String,
    pub username: String,
    pub name: String,
    pub threads_biography: String,
    pub threads_profile_picture_url: String,
    pub is_verified: bool,
    /// When true the window answers this user's consent with "cancel"
    /// (`error=access_denied&error_reason=user_denied`).
    pub denies: bool,
}

impl TestUser {
    pub fn new(id: &str, username: &str, name: &str) -> TestUser {
        TestUser {
            id: id.to_string(),
            username: username.to_string(),
            name: name.to_string(),
            threads_biography: format!("Test account {username}"),
            threads_profile_picture_url: format!(
                "https://scontent.cdninstagram.com/v/t51.2885-19/{id}_n.jpg"
            ),
            ..TestUser::default()
        }
    }
}

/// Meta's per-profile publishing limits, all over one rolling window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quotas {
    pub posts: u32,
    pub replies: u32,
    pub deletes: u32,
    #[serde(with = "secs", rename = "window_secs")]
    pub window: Duration,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            posts: 250,
            replies: 1000,
            deletes: 100,
            window: Duration::from_secs(86_400),
        }
    }
}

/// How an emulator behaves. Loaded from JSON by the binary (`--config`), every field optional;
/// durations are written as `*_ms` or `*_secs` numbers there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmulatorConfig {
    /// The Threads App ID (the numeric `client_id`).
    pub app_id: String,
    /// The Threads App secret: checked at code exchange and used to sign webhooks and
    /// signed requests.
    pub app_secret: String,
    /// Shown by `debug_token` as `application`.
    pub app_name: String,
    /// Registered redirect URIs; matched exactly, a trailing slash included.
    pub redirect_uris: Vec<String>,
    /// Meta refuses plain-http redirect URIs (1349187). When true, `http://127.0.0.1`,
    /// `http://localhost` and `http://[::1]` URIs are allowed, if registered, so a local stack
    /// can receive the callback without TLS.
    pub allow_http_loopback_redirects: bool,
    pub users: Vec<TestUser>,
    /// The user the window approves when the request names none (`test_user=`);
    /// the first user when unset.
    pub default_user: Option<String>,
    /// Return `user_id` from the code exchange as a JSON string instead of a number.
    pub user_id_as_string: bool,
    /// Time from container creation to FINISHED.
    #[serde(with = "millis", rename = "readiness_delay_ms")]
    pub readiness_delay: Duration,
    /// Time after FINISHED during which publishing still answers 4279009 (Meta's eventual
    /// consistency).
    #[serde(with = "millis", rename = "not_found_after_ready_ms")]
    pub not_found_after_ready: Duration,
    /// Time after which an unpublished container is EXPIRED.
    #[serde(with = "secs", rename = "container_ttl_secs")]
    pub container_ttl: Duration,
    #[serde(with = "secs", rename = "code_ttl_secs")]
    pub code_ttl: Duration,
    #[serde(with = "secs", rename = "short_lived_ttl_secs")]
    pub short_lived_ttl: Duration,
    #[serde(with = "secs", rename = "long_lived_ttl_secs")]
    pub long_lived_ttl: Duration,
    /// A long-lived token younger than this cannot be refreshed.
    #[serde(with = "secs", rename = "refresh_min_age_secs")]
    pub refresh_min_age: Duration,
    /// Meta keeps the old token working until its own expiry after a refresh; set this to
    /// make a refresh invalidate it instead.
    pub refresh_revokes_old_token: bool,
    /// Meta does not check PKCE. When true, a code issued with a `code_challenge` is only
    /// exchanged with the matching `code_verifier`.
    pub enforce_pkce: bool,
    pub quotas: Quotas,
    /// Seed of the random draws behind fault rates.
    pub fault_seed: u64,
    /// How long a `timeout` fault holds the response: longer than any client's timeout.
    #[serde(with = "secs", rename = "timeout_hang_secs")]
    pub timeout_hang: Duration,
    /// Webhook delivery: attempts per delivery (the first included) and the pause before the
    /// first retry, doubled after each retry.
    pub webhook_max_attempts: u32,
    #[serde(with = "millis", rename = "webhook_retry_delay_ms")]
    pub webhook_retry_delay: Duration,
    /// Base URL written into `paging.next`; the bound address when unset.
    pub public_base_url: Option<String>,
}

impl Default for EmulatorConfig {
    fn default() -> EmulatorConfig {
        EmulatorConfig {
            app_id: "1234567890".to_string(),
            app_secret: "test_app_secret".to_string(),
            app_name: "ThreadStorm Dev".to_string(),
            redirect_uris: vec!["https://localhost:3000/oauth/callback".to_string()],
            allow_http_loopback_redirects: true,
            users: vec![
                TestUser::new("17841405793187218", "storm_tester", "Storm Tester"),
                TestUser::new("90071992547409931", "big_id_tester", "Big Id Tester"),
                TestUser {
                    denies: true,
                    ..TestUser::new("17841400000000042", "says_no", "Says No")
                },
            ],
            default_user: None,
            user_id_as_string: false,
            readiness_delay: Duration::ZERO,
            not_found_after_ready: Duration::ZERO,
            container_ttl: Duration::from_secs(86_400),
            code_ttl: Duration::from_secs(3_600),
            short_lived_ttl: Duration::from_secs(3_600),
            long_lived_ttl: Duration::from_secs(5_184_000),
            refresh_min_age: Duration::from_secs(86_400),
            refresh_revokes_old_token: false,
            enforce_pkce: false,
            quotas: Quotas::default(),
            fault_seed: 0,
            timeout_hang: Duration::from_secs(300),
            webhook_max_attempts: 3,
            webhook_retry_delay: Duration::from_millis(100),
            public_base_url: None,
        }
    }
}

impl EmulatorConfig {
    /// Refuses a configuration the emulator could not serve faithfully.
    pub fn validate(&self) -> Result<(), String> {
        if self.app_id.is_empty() || !self.app_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("app_id must be numeric, got {:?}", self.app_id));
        }
        if self.users.is_empty() {
            return Err("at least one test user is needed".to_string());
        }
        for user in &self.users {
            let numeric = !user.id.is_empty() && user.id.bytes().all(|b| b.is_ascii_digit());
            if !numeric || user.id.starts_with('0') {
                return Err(format!("test user id must be numeric, got {:?}", user.id));
            }
        }
        if let Some(default) = &self.default_user
            && !self.users.iter().any(|u| &u.id == default)
        {
            return Err(format!("default_user {default} is not a test user"));
        }
        Ok(())
    }

    pub fn user(&self, id: &str) -> Option<&TestUser> {
        self.users.iter().find(|u| u.id == id)
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_include_a_user_id_beyond_float_precision() {
        let config = EmulatorConfig::default();
        assert!(config.validate().is_ok());
        let big = config
            .users
            .iter()
            .filter_map(|u| u.id.parse::<u64>().ok())
            .any(|id| id > (1u64 << 53));
        assert!(big);
    }

    #[test]
    fn a_partial_json_file_keeps_the_other_defaults() {
        let config: EmulatorConfig =
            serde_json::from_str(r#"{"readiness_delay_ms": 1500, "quotas": {"posts": 3}}"#)
                .unwrap();
        assert_eq!(config.readiness_delay, Duration::from_millis(1500));
        assert_eq!(config.quotas.posts, 3);
        assert_eq!(config.quotas.replies, 1000);
        assert_eq!(config.app_secret, "test_app_secret");
    }
}
