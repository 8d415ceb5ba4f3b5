//! ThreadStorm's own sessions, issued after "Login with Threads" and sent back as a cookie or as a
//! `Bearer` credential.
//!
//! A session token is `<id>.<signature>`: 32 random bytes and an HMAC-SHA256 of them under the
//! session signing key (SessionKeySecret), both base64url without padding. The SessionsTable keeps
//! only a SHA-256 of the id (`session#<hex>`), so a leaked table holds no usable token; the
//! signature lets forged tokens be refused before any read. Either the current or the previous
//! signing key verifies, so a rotation logs nobody out. A session ends after 12 idle hours or 7
//! days, whichever is first (expiry is checked here; TTL only cleans up), renewal writes at most
//! once per 5 minutes, and logout deletes the record. The user's role is not in the session: read
//! it from the UsersTable on every request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use lambda_http::http::HeaderMap;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, Secret};
use crate::edge;
use crate::resources::Resource;
use crate::secrets::{SecretReader, SecretsError};
use crate::store::{Condition, Conditional, Item, StoreError, n, put_if, s};
use crate::users::UserId;

/// The session cookie. The `__Host-` prefix makes browsers insist on `Secure`, `Path=/` and no
/// `Domain`, so no subdomain can set or shadow it.
pub const SESSION_COOKIE: &str = "__Host-threadstorm_session";

/// Signed message prefix: a session signature can never be mistaken for another use of the key.
const SIGNING_LABEL: &[u8] = b"threadstorm-session-v1.";
const ID_BYTES: usize = 32;
/// base64url of 32 bytes, without padding.
const PART_CHARS: usize = 43;
const TOKEN_CHARS: usize = PART_CHARS * 2 + 1;
/// Shortest signing key accepted, in bytes (the generated secret is 64 characters).
const MIN_KEY_BYTES: usize = 32;

/// How long sessions live and how often their renewal is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused this long ends.
    pub idle: Duration,
    /// No session lives longer than this, however active.
    pub absolute: Duration,
    /// Renewal (sliding the idle deadline) is written at most this often per session.
    pub renew_after: Duration,
    /// A token whose signature fails with the cached keys makes this function re-read the signing
    /// key (a rotation may have finished elsewhere) at most this often.
    pub key_refresh_after: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle: Duration::from_secs(12 * 3600),
            absolute: Duration::from_secs(7 * 24 * 3600),
            renew_after: Duration::from_secs(5 * 60),
            key_refresh_after: Duration::from_secs(30),
        }
    }
}

/// A session token as the client holds it. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    pub fn new(value: impl Into<String>) -> Self {
        SessionToken(value.into())
    }

    /// The token itself, for the `Set-Cookie` header or a JSON login response and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub last_seen: OffsetDateTime,
    /// When it ends if unused (sliding), never after `absolute_expires_at`.
    pub expires_at: OffsetDateTime,
    pub absolute_expires_at: OffsetDateTime,
    /// This verification wrote a renewal.
    pub renewed: bool,
}

impl Session {
    /// The `Max-Age` for its cookie at `now`: until the absolute end (the server enforces idleness,
    /// so the cookie need not be re-sent on every renewal).
    pub fn cookie_max_age(&self, now: OffsetDateTime) -> Duration {
        Duration::try_from(self.absolute_expires_at - now).unwrap_or(Duration::ZERO)
    }
}

/// A session just issued, and the token to give the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub token: SessionToken,
    pub session: Session,
}

impl Issued {
    /// The `Set-Cookie` value that hands the session to a browser.
    pub fn set_cookie(&self) -> String {
        set_cookie(
            &self.token,
            self.session.cookie_max_age(self.session.created_at),
        )
    }
}

/// Why a token was refused. All of these are a 401 at the edge; the variants are for audit and
/// logs, not for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a session token")]
    Malformed,
    #[error("signature does not verify with the current or previous signing key")]
    BadSignature,
    #[error("no such session (logged out or never issued)")]
    Unknown,
    #[error("session expired")]
    Expired,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The client's token is not a live session: 401.
    #[error("session refused: {0}")]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The current signing key is too short to sign with.
    #[error("session signing key is shorter than {MIN_KEY_BYTES} bytes")]
    WeakKey,
    /// A stored session does not read as one.
    #[error("sessions table: {0}")]
    Corrupt(&'static str),
}

/// Issues, verifies, renews and revokes sessions.
pub struct Sessions {
    client: Client,
    table: String,
    secrets: Arc<SecretReader>,
    key_secret_id: String,
    limits: SessionLimits,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("table", &self.table)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions in `table`, signed with the secret `key_secret_id` read through `secrets`.
    pub fn new(
        client: Client,
        table: impl Into<String>,
        secrets: Arc<SecretReader>,
        key_secret_id: impl Into<String>,
    ) -> Self {
        Sessions {
            client,
            table: table.into(),
            secrets,
            key_secret_id: key_secret_id.into(),
            limits: SessionLimits::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The SessionsTable and SessionKeySecret of `config`.
    pub fn from_config(
        client: Client,
        secrets: Arc<SecretReader>,
        config: &Config,
    ) -> Result<Self, ConfigError> {
        Ok(Self::new(
            client,
            config.resource(Resource::SessionsTable)?,
            secrets,
            config.resource(Resource::SessionKeySecret)?,
        ))
    }

    pub fn with_limits(mut self, limits: SessionLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Starts a session for `user_id`.
    pub async fn issue(&self, user_id: &UserId) -> Result<Issued, SessionError> {
        let key = self.secrets.current(&self.key_secret_id).await?;
        if key.expose().len() < MIN_KEY_BYTES {
            return Err(SessionError::WeakKey);
        }
        let id: [u8; ID_BYTES] = rand::random();
        let id_text = URL_SAFE_NO_PAD.encode(id);
        let signature = URL_SAFE_NO_PAD.encode(sign(&key, &id_text)?);
        let now = self.now_s();
        let absolute = now.saturating_add(secs(self.limits.absolute));
        let expires = now.saturating_add(secs(self.limits.idle)).min(absolute);
        let item = Item::from([
            ("id".to_owned(), s(record_key(&id))),
            ("kind".to_owned(), s("session")),
            ("user_id".to_owned(), s(user_id.as_str())),
            ("created_at".to_owned(), n(now)),
            ("last_seen".to_owned(), n(now)),
            ("expires_at".to_owned(), n(expires)),
            ("absolute_expires_at".to_owned(), n(absolute)),
        ]);
        let fresh = Condition::new("attribute_not_exists(#id)").name("#id", "id");
        match put_if(&self.client, &self.table, item, fresh).await? {
            Conditional::Written => {}
            // 256 random bits never collide; if they did, refuse rather than share a session.
            Conditional::Lost { .. } => return Err(SessionError::Corrupt("session id collision")),
        }
        Ok(Issued {
            token: SessionToken(format!("{id_text}.{signature}")),
            session: Session {
                user_id: user_id.clone(),
                created_at: at(now),
                last_seen: at(now),
                expires_at: at(expires),
                absolute_expires_at: at(absolute),
                renewed: false,
            },
        })
    }

    /// The live session `token` names, renewing its idle deadline when due. Refuses (as
    /// [`SessionError::Refused`]) a malformed or forged token, a revoked session and an expired
    /// one — even while its record still exists.
    pub async fn verify(&self, token: &SessionToken) -> Result<Session, SessionError> {
        let id = self.check_signature(token).await?;
        let key = record_key(&id);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(&key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.store_error("GetItem", e))?;
        let item = output.item.ok_or(Refusal::Unknown)?;
        let mut session = read_session(&item)?;
        let now = self.now_s();
        let expires = session.expires_at.unix_timestamp();
        let absolute = session.absolute_expires_at.unix_timestamp();
        if now >= expires || now >= absolute {
            return Err(Refusal::Expired.into());
        }
        let last_seen = session.last_seen.unix_timestamp();
        if now.saturating_sub(last_seen) >= secs(self.limits.renew_after) {
            let new_expires = now.saturating_add(secs(self.limits.idle)).min(absolute);
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("id", s(&key))
                .update_expression("SET #seen = :now, #exp = :exp")
                // Only the first of concurrent renewals writes, and never a revoked session.
                .condition_expression("#seen = :seen AND #exp > :now")
                .expression_attribute_names("#seen", "last_seen")
                .expression_attribute_names("#exp", "expires_at")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":exp", n(new_expires))
                .expression_attribute_values(":seen", n(last_seen))
                .return_values(ReturnValue::None)
                .send()
                .await;
            match result {
                Ok(_) => {
                    session.last_seen = at(now);
                    session.expires_at = at(new_expires);
                    session.renewed = true;
                }
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(err) => return Err(self.store_error("UpdateItem", err)),
            }
        }
        Ok(session)
    }

    /// Ends the session `token` names (logout): its record is deleted, so the token is refused
    /// from now on everywhere. `true` if a session was there.
    pub async fn revoke(&self, token: &SessionToken) -> Result<bool, SessionError> {
        let id = self.check_signature(token).await?;
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", s(record_key(&id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| self.store_error("DeleteItem", e))?;
        Ok(output.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// The id bytes of a token whose signature verifies with the current or previous key.
    async fn check_signature(&self, token: &SessionToken) -> Result<[u8; ID_BYTES], SessionError> {
        let (id_text, id, signature) = parse(token.expose()).ok_or(Refusal::Malformed)?;
        let keys = self
            .secrets
            .current_and_previous(&self.key_secret_id)
            .await?;
        if verifies(keys.iter(), id_text, &signature) {
            return Ok(id);
        }
        // A key rotated in elsewhere may be newer than this function's cached one.
        if let Some(fresh) = self
            .secrets
            .refresh_if_older_than(&self.key_secret_id, self.limits.key_refresh_after)
            .await?
            && verifies(fresh.iter(), id_text, &signature)
        {
            return Ok(id);
        }
        Err(Refusal::BadSignature.into())
    }

    fn now_s(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    fn store_error<E, R>(
        &self,
        operation: &'static str,
        err: aws_sdk_dynamodb::error::SdkError<E, R>,
    ) -> SessionError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        SessionError::Store(StoreError {
            operation,
            table: self.table.clone(),
            message: crate::aws::describe_error(&err),
        })
    }
}

/// Splits and decodes `<id>.<signature>`; `None` for anything else.
fn parse(token: &str) -> Option<(&str, [u8; ID_BYTES], [u8; 32])> {
    if token.len() != TOKEN_CHARS {
        return None;
    }
    let (id_text, sig_text) = token.split_once('.')?;
    let decode = |text: &str| -> Option<[u8; 32]> {
        if text.len() != PART_CHARS {
            return None;
        }
        URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()
    };
    Some((id_text, decode(id_text)?, decode(sig_text)?))
}

fn mac(key: &Secret, id_text: &str) -> Result<Hmac<Sha256>, SessionError> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose().as_bytes())
        .map_err(|_| SessionError::WeakKey)?;
    mac.update(SIGNING_LABEL);
    mac.update(id_text.as_bytes());
    Ok(mac)
}

fn sign(key: &Secret, id_text: &str) -> Result<Vec<u8>, SessionError> {
    Ok(mac(key, id_text)?.finalize().into_bytes().to_vec())
}

/// Constant-time check of `signature` against each key in turn; keys too short to have signed
/// are skipped.
fn verifies<'a>(keys: impl Iterator<Item = &'a Secret>, id_text: &str, signature: &[u8]) -> bool {
    keys.filter(|k| k.expose().len() >= MIN_KEY_BYTES)
        .filter_map(|k| mac(k, id_text).ok())
        .any(|m| m.verify_slice(signature).is_ok())
}

/// Proves that `new` can take over as the signing key: it is long enough, a session it signs
/// verifies with the keys readers hold after the rotation (`new`, then `old`), and so does a
/// session `old` signed before it — nobody is logged out. The secret-rotation function runs this
/// on a pending key before promoting it.
pub fn prove_signing_key(new: &Secret, old: Option<&Secret>) -> Result<(), SessionError> {
    if new.expose().len() < MIN_KEY_BYTES {
        return Err(SessionError::WeakKey);
    }
    let after: Vec<&Secret> = std::iter::once(new).chain(old).collect();
    let id_text = URL_SAFE_NO_PAD.encode(rand::random::<[u8; ID_BYTES]>());
    let signed_new = sign(new, &id_text)?;
    if !verifies(after.iter().copied(), &id_text, &signed_new) {
        return Err(SessionError::Corrupt(
            "a session signed with the new key does not verify",
        ));
    }
    if let Some(old) = old.filter(|k| k.expose().len() >= MIN_KEY_BYTES) {
        let signed_old = sign(old, &id_text)?;
        if !verifies(after.iter().copied(), &id_text, &signed_old) {
            return Err(SessionError::Corrupt(
                "a session signed with the old key does not verify after the rotation",
            ));
        }
        if verifies([new].into_iter(), &id_text, &signed_old) {
            return Err(SessionError::Corrupt("the new key is the old key"));
        }
    }
    Ok(())
}

/// The table key of a session: a SHA-256 of its id, never the id itself.
fn record_key(id: &[u8; ID_BYTES]) -> String {
    format!("session#{}", hex::encode(Sha256::digest(id)))
}

fn read_session(item: &Item) -> Result<Session, SessionError> {
    let number = |name: &'static str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or(SessionError::Corrupt("missing or invalid time"))
    };
    let user_id = item
        .get("user_id")
        .and_then(|v| v.as_s().ok())
        .and_then(|v| UserId::parse(v).ok())
        .ok_or(SessionError::Corrupt("missing or invalid user_id"))?;
    Ok(Session {
        user_id,
        created_at: at(number("created_at")?),
        last_seen: at(number("last_seen")?),
        expires_at: at(number("expires_at")?),
        absolute_expires_at: at(number("absolute_expires_at")?),
        renewed: false,
    })
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The `Set-Cookie` value that gives a browser `token` for `max_age`.
pub fn set_cookie(token: &SessionToken, max_age: Duration) -> String {
    edge::set_cookie(SESSION_COOKIE, token.expose(), secs(max_age))
}

/// The `Set-Cookie` value that removes the session cookie (logout).
pub fn clear_cookie() -> String {
    edge::clear_cookie(SESSION_COOKIE)
}

/// The session token a request carries: `Authorization: Bearer <token>` (API clients) if present,
/// else the session cookie (refused if sent twice, see [`edge::cookie`]). Only finds it;
/// [`Sessions::verify`] decides whether it is valid.
pub fn token_from_headers(headers: &HeaderMap) -> Option<SessionToken> {
    const MAX_CHARS: usize = 1024;
    edge::bearer(headers)
        .or_else(|| edge::cookie(headers, SESSION_COOKIE))
        .filter(|t| !t.is_empty() && t.len() <= MAX_CHARS)
        .map(SessionToken::new)
}

#[cfg(test)]
mod tests {
    use lambda_http::http::HeaderValue;

    use super::*;

    const KEY: &str = "k3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3y";

    fn token_for(key: &str) -> String {
        let id_text = URL_SAFE_NO_PAD.encode([7u8; ID_BYTES]);
        let sig = URL_SAFE_NO_PAD.encode(sign(&Secret::new(key), &id_text).unwrap());
        format!("{id_text}.{sig}")
    }

    #[test]
    fn a_token_is_two_base64url_parts_and_verifies_only_with_its_key() {
        let token = token_for(KEY);
        assert_eq!(token.len(), TOKEN_CHARS);
        let (id_text, id, sig) = parse(&token).unwrap();
        assert_eq!(id, [7u8; ID_BYTES]);
        let keys = [Secret::new(KEY)];
        assert!(verifies(keys.iter(), id_text, &sig));
        let other = [Secret::new(KEY.replace('k', "K"))];
        assert!(!verifies(other.iter(), id_text, &sig));
        // Previous key second in line still verifies.
        let rotated = [Secret::new(KEY.replace('k', "K")), Secret::new(KEY)];
        assert!(verifies(rotated.iter(), id_text, &sig));
    }

    #[test]
    fn tampered_or_malformed_tokens_do_not_parse_or_verify() {
        let token = token_for(KEY);
        let keys = [Secret::new(KEY)];
        // Flip one character of the signature.
        let mut chars: Vec<char> = token.chars().collect();
        let last = chars.len() - 2;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        let (id_text, _, sig) = parse(&tampered).unwrap();
        assert!(!verifies(keys.iter(), id_text, &sig));
        for bad in [
            "",
            ".",
            "abc.def",
            &token[..TOKEN_CHARS - 1],
            &format!("{token}A"),
            &token.replace('.', "_"),
            &format!("{}.!{}", &token[..PART_CHARS], &token[1..PART_CHARS]),
            &"é".repeat(43),
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_new_signing_key_is_proved_against_the_old_one() {
        let old = Secret::new(KEY);
        let new = Secret::new(KEY.replace('k', "K"));
        assert!(prove_signing_key(&new, Some(&old)).is_ok());
        assert!(prove_signing_key(&new, None).is_ok());
        assert!(matches!(
            prove_signing_key(&Secret::new("short"), Some(&old)),
            Err(SessionError::WeakKey)
        ));
        assert!(
            prove_signing_key(&old, Some(&old)).is_err(),
            "unchanged key"
        );
    }

    #[test]
    fn short_keys_never_verify() {
        let token = token_for("short");
        let (id_text, _, sig) = parse(&token).unwrap();
        assert!(!verifies([Secret::new("short")].iter(), id_text, &sig));
    }

    #[test]
    fn record_key_is_a_hash_not_the_id() {
        let id = [7u8; ID_BYTES];
        let key = record_key(&id);
        assert!(key.starts_with("session#") && key.len() == 8 + 64, "{key}");
        assert!(!key.contains(&URL_SAFE_NO_PAD.encode(id)));
    }

    #[test]
    fn cookie_is_host_only_secure_httponly_lax() {
        let cookie = set_cookie(&SessionToken::new("tok"), Duration::from_secs(604800));
        assert_eq!(
            cookie,
            "__Host-threadstorm_session=tok; Max-Age=604800; Path=/; HttpOnly; Secure; SameSite=Lax"
        );
        assert!(clear_cookie().contains("Max-Age=0"));
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                lambda_http::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn token_is_found_as_bearer_or_cookie() {
        let h = headers(&[("authorization", "Bearer abc.def")]);
        assert_eq!(token_from_headers(&h).unwrap().expose(), "abc.def");
        let h = headers(&[("Authorization", "bearer  abc.def ")]);
        assert_eq!(token_from_headers(&h).unwrap().expose(), "abc.def");
        let h = headers(&[
            ("cookie", "theme=dark; __Host-threadstorm_session=xyz.123"),
            ("cookie", "other=1"),
        ]);
        assert_eq!(token_from_headers(&h).unwrap().expose(), "xyz.123");
        // Bearer wins over a cookie; Basic is not a session.
        let h = headers(&[
            ("authorization", "Bearer from-header"),
            ("cookie", "__Host-threadstorm_session=from-cookie"),
        ]);
        assert_eq!(token_from_headers(&h).unwrap().expose(), "from-header");
        let h = headers(&[("authorization", "Basic dXNlcjpwdw==")]);
        assert!(token_from_headers(&h).is_none());
        let h = headers(&[(
            "cookie",
            "threadstorm_session=x; __Host-threadstorm_session=",
        )]);
        assert!(token_from_headers(&h).is_none());
        assert!(token_from_headers(&HeaderMap::new()).is_none());
    }

    #[test]
    fn tokens_and_errors_never_print_the_token() {
        let token = SessionToken::new("planted-session-token");
        assert!(!format!("{token:?}").contains("planted"));
        for err in [
            SessionError::Refused(Refusal::BadSignature),
            SessionError::WeakKey,
            SessionError::Refused(Refusal::Expired),
        ] {
            assert!(!format!("{err} {err:?}").contains("planted"));
        }
    }
}
