//! A JSON document in which some object names a key twice is refused as a whole: which of the two
//! values counts would otherwise depend on the type reading it (serde's derived structs refuse a
//! duplicate field, a flattened one keeps the last), just as with a repeated query parameter.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Deserializes any JSON value and fails on the first object with a repeated key, naming it.
pub(crate) struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeys)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                let shown: String = key.chars().take(64).collect();
                return Err(de::Error::custom(format_args!(
                    "{shown} is given more than once; give it once"
                )));
            }
            map.next_value::<UniqueKeys>()?;
            seen.insert(key);
        }
        Ok(UniqueKeys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str) -> Result<(), String> {
        serde_json::from_str::<UniqueKeys>(raw)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_key_named_twice_in_any_object_is_refused_naming_it() {
        for (raw, key) in [
            (r#"{"text":"a","text":"b"}"#, "text"),
            (
                r#"{"parts":[{"text":"a"},{"text":"b","text":"c"}]}"#,
                "text",
            ),
            (r#"{"a":{"b":{"c":1,"c":1}}}"#, "c"),
            // Escapes name the same key.
            (r#"{"text":"a","t\u0065xt":"b"}"#, "text"),
        ] {
            let err = check(raw).unwrap_err();
            assert!(
                err.starts_with(&format!("{key} is given more than once")),
                "{raw}: {err}"
            );
        }
    }

    #[test]
    fn distinct_keys_and_every_kind_of_value_pass() {
        for raw in [
            r#"{"a":1,"b":-2,"c":1.5,"d":"x","e":null,"f":true,"g":[1,{"a":1}],"h":{"a":1}}"#,
            r#"[{"a":1},{"a":2}]"#,
            r#""text""#,
            "18446744073709551615",
        ] {
            assert_eq!(check(raw), Ok(()), "{raw}");
        }
    }
}
