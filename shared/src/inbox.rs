//! The InboxTable: replies and mentions that Meta's webhooks delivered, per Threads account,
//! newest first — written by the webhooks function, read by `GET /v1/inbox`.
//!
//! Layout: partition `account_id` = the Threads account the change concerns; `sk` =
//! `<Unix seconds, 11 digits>#<media id>` for replies and mentions, so a descending Query is
//! newest first. Publish and delete changes are kept too, as a record of what Meta reported,
//! under `post#…`, which sorts after every digit and is never read as inbox.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::posts::AccountId;
use crate::store::{Item, StoreError, s};
use crate::threads::MediaId;

/// The `sk` prefix of publish and delete records.
pub const RECORD_PREFIX: &str = "post#";
/// An exclusive upper bound above every reply or mention key and below every record key.
const INBOX_BOUND: &str = ":";
/// A cursor is never longer than this.
const MAX_CURSOR_LEN: usize = 128;

/// One reply or mention, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    pub account_id: AccountId,
    sk: String,
    /// `replies` or `mentions`.
    pub field: String,
    pub id: String,
    /// Everything else stored with it: username, text, permalink, … as Threads sent them.
    pub attributes: Vec<(String, String)>,
    pub received_at: Option<i64>,
}

impl InboxItem {
    /// The item as JSON: its id, kind, account, what Threads sent, and when it arrived.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "id": self.id,
            "field": self.field,
            "account_id": self.account_id,
            "received_at": self.received_at,
        });
        for (name, value) in &self.attributes {
            out[name] = json!(value);
        }
        out
    }
}

/// The attributes of a stored change that the API shows, besides the ones above.
const SHOWN: [&str; 7] = [
    "username",
    "text",
    "permalink",
    "media_type",
    "replied_to_id",
    "root_post_id",
    "timestamp",
];

/// Where the next page starts: just after this item in (sk, account) descending order. Opaque
/// to clients; it only bounds the keys read in the caller's own accounts' partitions, so a
/// forged one can at worst skip the caller's own items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxAfter {
    sk: String,
    account: AccountId,
}

impl InboxAfter {
    /// `<sk>|<account>`, base64url without padding.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", self.sk, self.account))
    }

    /// The cursor a client sent back; `None` for anything [`InboxAfter::encode`] did not make.
    pub fn decode(raw: &str) -> Option<Self> {
        if raw.len() > MAX_CURSOR_LEN {
            return None;
        }
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
        let (sk, account) = text.split_once('|')?;
        let (at, id) = sk.split_once('#')?;
        if at.len() != 11 || !at.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        MediaId::parse(id).ok()?;
        Some(InboxAfter {
            sk: sk.to_owned(),
            account: AccountId::parse(account).ok()?,
        })
    }
}

/// Reads the InboxTable.
#[derive(Debug, Clone)]
pub struct InboxStore {
    client: Client,
    table: String,
}

impl InboxStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        InboxStore {
            client,
            table: table.into(),
        }
    }

    /// One page of the replies and mentions of `accounts`, newest first, at most `limit`, and
    /// where the next page starts when there is one. One Query per account.
    pub async fn page(
        &self,
        accounts: &[AccountId],
        limit: usize,
        after: Option<&InboxAfter>,
    ) -> Result<(Vec<InboxItem>, Option<InboxAfter>), StoreError> {
        let want = limit.saturating_add(1);
        let mut items = Vec::new();
        // The oldest item any account's query could vouch for: an account whose query stopped
        // early (DynamoDB's 1 MB page, or items skipped as unreadable) may have items older than
        // its last one that belong between the others' — nothing older than that goes out now.
        let mut horizon: Option<(String, AccountId)> = None;
        for account in accounts {
            // Ties on sk (one post mentioning two of the caller's accounts) go by account, down.
            let (op, bound) = match after {
                None => ("<", INBOX_BOUND),
                Some(a) if account < &a.account => ("<=", a.sk.as_str()),
                Some(a) => ("<", a.sk.as_str()),
            };
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(format!("account_id = :a AND sk {op} :b"))
                .expression_attribute_values(":a", s(account.as_str()))
                .expression_attribute_values(":b", s(bound))
                .scan_index_forward(false)
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| StoreError::new("Query", &self.table, e))?;
            let read_all = page.items().len() >= want;
            let stopped_early =
                !read_all && page.last_evaluated_key().is_some_and(|k| !k.is_empty());
            if stopped_early {
                let last_sk = page
                    .last_evaluated_key()
                    .and_then(|k| k.get("sk"))
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                let candidate = (last_sk, account.clone());
                if horizon.as_ref().is_none_or(|h| candidate > *h) {
                    horizon = Some(candidate);
                }
            }
            items.extend(page.items().iter().filter_map(|it| read(account, it)));
        }
        items.sort_by(|a, b| (&b.sk, &b.account_id).cmp(&(&a.sk, &a.account_id)));
        let mut more = items.len() > limit || horizon.is_some();
        if let Some((sk, account)) = &horizon {
            let before = items.len();
            items.retain(|i| (&i.sk, &i.account_id) >= (sk, account));
            more |= items.len() < before;
        }
        items.truncate(limit);
        let next = match items.last() {
            Some(last) => more.then(|| InboxAfter {
                sk: last.sk.clone(),
                account: last.account_id.clone(),
            }),
            // Nothing readable up to the horizon: go on from there.
            None => horizon.map(|(sk, account)| InboxAfter { sk, account }),
        };
        Ok((items, next))
    }
}

fn read(account: &AccountId, it: &Item) -> Option<InboxItem> {
    let text = |name: &str| it.get(name).and_then(|v| v.as_s().ok()).cloned();
    let field = text("field")?;
    if field != "replies" && field != "mentions" {
        return None;
    }
    Some(InboxItem {
        account_id: account.clone(),
        sk: text("sk")?,
        id: text("id")?,
        field,
        attributes: SHOWN
            .iter()
            .filter_map(|name| text(name).map(|v| ((*name).to_owned(), v)))
            .collect(),
        received_at: it.get("received_at").and_then(|v| match v {
            AttributeValue::N(n) => n.parse().ok(),
            _ => None,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_nothing_else_decodes() {
        let after = InboxAfter {
            sk: "01726183059#17920000000000999".into(),
            account: AccountId::parse("17841405793187218").unwrap(),
        };
        assert_eq!(InboxAfter::decode(&after.encode()), Some(after));
        for bad in [
            "",
            "x",
            "%%%",
            &URL_SAFE_NO_PAD.encode("01726183059#1|"),
            &URL_SAFE_NO_PAD.encode("1726183059#1|1"),
            &URL_SAFE_NO_PAD.encode("post#01726183059#1|1"),
            &URL_SAFE_NO_PAD.encode("01726183059#x|1"),
            &URL_SAFE_NO_PAD.encode("01726183059#1|1|2"),
            &"A".repeat(200),
        ] {
            assert_eq!(InboxAfter::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn record_keys_sort_above_the_inbox_bound_and_inbox_keys_below() {
        assert!("99999999999#9" < INBOX_BOUND);
        assert!(RECORD_PREFIX > INBOX_BOUND);
    }
}
