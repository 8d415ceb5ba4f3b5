//! Identifiers and the access token, each its own type so one cannot stand in for another.
//!
//! Threads ids are decimal strings of 17–18 digits; some endpoints send them as JSON numbers above
//! 2^53, which a float would round. They are read from the number's integer value (serde_json keeps
//! integers up to 2^64 exact) or from a string, checked to be digits, and kept as strings.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Why a value is not a Threads id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Threads id: {0}")]
pub struct InvalidId(String);

fn check_digits(raw: &str) -> Result<(), InvalidId> {
    if raw.is_empty() {
        return Err(InvalidId("empty".into()));
    }
    if raw.len() > 32 {
        return Err(InvalidId(format!("{} characters long", raw.len())));
    }
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidId(format!("{raw:?} is not made of decimal digits")));
    }
    Ok(())
}

/// Accepts a non-negative JSON integer or a string of digits; refuses floats and negatives.
struct IdVisitor(&'static str);

impl<'de> Visitor<'de> for IdVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "a {} as a non-negative integer or a string of digits",
            self.0
        )
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        u64::try_from(v)
            .map(|v| v.to_string())
            .map_err(|_| E::custom(format!("{} must not be negative, got {v}", self.0)))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        // A float has already lost digits above 2^53; accepting it would store a wrong id.
        Err(E::custom(format!(
            "{} must be an integer, got the float {v}",
            self.0
        )))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        check_digits(v).map_err(|e| E::custom(format!("{}: {e}", self.0)))?;
        Ok(v.to_owned())
    }
}

macro_rules! threads_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks that `raw` is a string of decimal digits.
            pub fn parse(raw: &str) -> Result<Self, InvalidId> {
                check_digits(raw)?;
                Ok(Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(raw: &str) -> Result<Self, InvalidId> {
                Self::parse(raw)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(IdVisitor($what)).map(Self)
            }
        }
    };
}

threads_id!(
    /// A Threads user (profile) id, as Threads' `user_id` / `id` of `/me`.
    UserId,
    "Threads user id"
);
threads_id!(
    /// A media container, returned by container creation; only `threads_publish` and the status
    /// read take it.
    ContainerId,
    "Threads container id"
);
threads_id!(
    /// A published post (or reply); what `reply_to_id`, insights and delete take.
    MediaId,
    "Threads media id"
);

/// A Threads access token. `Debug` and `Display` never show it, and it is not `Serialize`, so it
/// cannot end up in a log line or a JSON body by accident; [`AccessToken::expose`] is the one door.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(value: impl Into<String>) -> Self {
        AccessToken(value.into())
    }

    /// The token itself, for the `Authorization` header or a form field and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for AccessToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(AccessToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Exchange {
        user_id: UserId,
    }

    fn user_id(json: &str) -> Result<UserId, serde_json::Error> {
        serde_json::from_str::<Exchange>(json).map(|e| e.user_id)
    }

    #[test]
    fn user_id_above_2_pow_53_keeps_every_digit() {
        // 2^53 = 9007199254740992; this id is ten times larger and odd, so a float would round it.
        let id = user_id(r#"{"user_id":90071992547409931}"#).unwrap();
        assert_eq!(id.as_str(), "90071992547409931");
        let id = user_id(r#"{"access_token":"THx","user_id":17841405793187218}"#).unwrap();
        assert_eq!(id.as_str(), "17841405793187218");
    }

    #[test]
    fn user_id_at_u64_max_keeps_every_digit() {
        let id = user_id(r#"{"user_id":18446744073709551615}"#).unwrap();
        assert_eq!(id.as_str(), "18446744073709551615");
    }

    #[test]
    fn user_id_as_string_is_kept_as_is() {
        let id = user_id(r#"{"user_id":"90071992547409931"}"#).unwrap();
        assert_eq!(id.as_str(), "90071992547409931");
        assert_eq!(id, UserId::parse("90071992547409931").unwrap());
    }

    #[test]
    fn user_id_serialises_as_a_string() {
        let id = user_id(r#"{"user_id":90071992547409931}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            r#""90071992547409931""#
        );
    }

    #[test]
    fn ids_refuse_floats_negatives_and_non_digits() {
        for bad in [
            r#"{"user_id":9.007199254740993e16}"#,
            r#"{"user_id":90071992547409931.0}"#,
            r#"{"user_id":-17841405793187218}"#,
            r#"{"user_id":"-1"}"#,
            r#"{"user_id":"1784abc"}"#,
            r#"{"user_id":" 1784"}"#,
            r#"{"user_id":""}"#,
            r#"{"user_id":null}"#,
            r#"{"user_id":true}"#,
            r#"{"user_id":["1"]}"#,
            // Above 2^64 serde_json only has a float: refuse rather than round.
            r#"{"user_id":184467440737095516150}"#,
        ] {
            assert!(user_id(bad).is_err(), "{bad} was accepted");
        }
        assert!(MediaId::parse("17920000000000009").is_ok());
        assert!(MediaId::parse("1792000000000000x").is_err());
        assert!("12.5".parse::<ContainerId>().is_err());
    }

    #[test]
    fn float_ids_name_the_problem() {
        let err = user_id(r#"{"user_id":1.5}"#).unwrap_err().to_string();
        assert!(err.contains("must be an integer"), "{err}");
    }

    #[test]
    fn access_token_never_prints() {
        let token = AccessToken::new("THsecretvalue");
        assert_eq!(format!("{token:?}"), "AccessToken(<redacted>)");
        assert_eq!(format!("{token}"), "<redacted>");
        assert_eq!(token.expose(), "THsecretvalue");
    }
}
