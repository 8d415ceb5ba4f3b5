//! Reading the audit log back: one user's records (one partition, newest first), or everyone's
//! for administrators, filtered by category and time, a page at a time. Records were redacted
//! before they were written, so nothing read here can carry a secret.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::Category;
use super::chain;
use crate::store::{Item, StoreError, n, s};

/// Whose records, which ones, and where the page starts.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// One user's records; `None` reads everyone's (administrators only).
    pub user: Option<String>,
    pub category: Option<Category>,
    /// Unix milliseconds, inclusive.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: i32,
    pub after: Option<Cursor>,
}

/// Where the next page starts: the last key read. Opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pk: String,
    sk: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}\n{}", self.pk, self.sk))
    }

    /// A cursor [`Cursor::encode`] made, for `filter`'s partition; `None` for anything else.
    pub fn decode(raw: &str, user: Option<&str>) -> Option<Cursor> {
        if raw.len() > 300 {
            return None;
        }
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
        let (pk, sk) = text.split_once('\n')?;
        let record_key = pk == "system" || pk.starts_with("user#");
        let sk_ok = !sk.is_empty()
            && sk.len() <= 64
            && sk
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'#' || b == b'-');
        let partition_ok = user.is_none_or(|u| pk == partition(u));
        (record_key && sk_ok && partition_ok).then(|| Cursor {
            pk: pk.to_owned(),
            sk: sk.to_owned(),
        })
    }

    fn key(&self) -> Item {
        Item::from([
            ("pk".to_owned(), s(self.pk.clone())),
            ("sk".to_owned(), s(self.sk.clone())),
        ])
    }
}

fn partition(user: &str) -> String {
    format!("user#{user}")
}

/// One page of records, as JSON entries, and where the next starts.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub entries: Vec<Value>,
    pub next: Option<Cursor>,
}

/// Reads one page of `filter` from the AuditTable.
pub async fn read(client: &Client, table: &str, filter: &Filter) -> Result<Page, StoreError> {
    let err = |operation: &'static str, message: String| StoreError {
        operation,
        table: table.to_owned(),
        message,
    };
    let mut conditions: Vec<&str> = Vec::new();
    let mut names = Vec::new();
    let mut values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)> = Vec::new();
    if let Some(category) = filter.category {
        conditions.push("#category = :category");
        names.push(("#category", "category"));
        values.push((":category", s(category.as_str())));
    }
    let (items, last) = match &filter.user {
        Some(user) => {
            // Sort keys start with the 13-digit millisecond time, so a time range is a key range.
            let lo = format!("{:013}#", filter.from_ms.unwrap_or(0).max(0));
            let hi = format!("{:013}#~", filter.to_ms.unwrap_or(9_999_999_999_999).max(0));
            let mut query = client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(partition(user)))
                .expression_attribute_values(":lo", s(lo))
                .expression_attribute_values(":hi", s(hi))
                .scan_index_forward(false)
                .limit(filter.limit)
                .set_exclusive_start_key(filter.after.as_ref().map(Cursor::key));
            if !conditions.is_empty() {
                query = query.filter_expression(conditions.join(" AND "));
            }
            for (k, v) in names {
                query = query.expression_attribute_names(k, v);
            }
            for (k, v) in values {
                query = query.expression_attribute_values(k, v);
            }
            let page = query
                .send()
                .await
                .map_err(|e| err("Query", DisplayErrorContext(e).to_string()))?;
            (page.items().to_vec(), page.last_evaluated_key().cloned())
        }
        None => {
            // Head items carry no category.
            conditions.push("attribute_exists(#category)");
            names.push(("#category", "category"));
            if let Some(from) = filter.from_ms {
                conditions.push("#ts >= :from");
                names.push(("#ts", "timestamp_ms"));
                values.push((":from", n(from)));
            }
            if let Some(to) = filter.to_ms {
                conditions.push("#ts <= :to");
                names.push(("#ts", "timestamp_ms"));
                values.push((":to", n(to)));
            }
            let mut scan = client
                .scan()
                .table_name(table)
                .filter_expression(conditions.join(" AND "))
                .limit(filter.limit)
                .set_exclusive_start_key(filter.after.as_ref().map(Cursor::key));
            for (k, v) in names {
                scan = scan.expression_attribute_names(k, v);
            }
            for (k, v) in values {
                scan = scan.expression_attribute_values(k, v);
            }
            let page = scan
                .send()
                .await
                .map_err(|e| err("Scan", DisplayErrorContext(e).to_string()))?;
            (page.items().to_vec(), page.last_evaluated_key().cloned())
        }
    };
    let next = last.filter(|k| !k.is_empty()).and_then(|k| {
        Some(Cursor {
            pk: k.get("pk")?.as_s().ok()?.clone(),
            sk: k.get("sk")?.as_s().ok()?.clone(),
        })
    });
    Ok(Page {
        entries: items
            .iter()
            .filter(|i| !chain::is_head(i))
            .map(entry)
            .collect(),
        next,
    })
}

/// A stored record as the API shows it.
pub fn entry(item: &Item) -> Value {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let metadata = text("metadata")
        .map(|m| serde_json::from_str(&m).unwrap_or(Value::String(m)))
        .unwrap_or(Value::Null);
    json!({
        "id": text("id"),
        "category": text("category"),
        "action": text("action"),
        "description": text("description").unwrap_or_default(),
        "user_id": text("user_id"),
        "ip_address": text("ip_address"),
        "user_agent": text("user_agent"),
        "timestamp": text("timestamp"),
        "outcome": text("outcome"),
        "request_id": text("request_id"),
        "metadata": metadata,
        "seq": item.get(chain::SEQ).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<u64>().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_stay_in_their_partition() {
        let c = Cursor {
            pk: "user#u-1".into(),
            sk: "1800000000000#0b1c".into(),
        };
        assert_eq!(Cursor::decode(&c.encode(), Some("u-1")), Some(c.clone()));
        assert_eq!(Cursor::decode(&c.encode(), None), Some(c.clone()));
        assert_eq!(Cursor::decode(&c.encode(), Some("u-2")), None);
        for raw in ["", "%%%", "bm90IGEgY3Vyc29y", &"a".repeat(400)] {
            assert_eq!(Cursor::decode(raw, None), None, "{raw}");
        }
        let head = Cursor {
            pk: "chain#user#u-1".into(),
            sk: "head".into(),
        };
        assert_eq!(Cursor::decode(&head.encode(), None), None);
    }
}
