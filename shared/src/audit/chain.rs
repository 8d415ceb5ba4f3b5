//! The hash chain that makes the audit log tamper-evident.
//!
//! Every partition (`user#<id>`, `system`) is its own chain: record n carries `seq` = n,
//! `prev_hash` = the hash of record n − 1 and `hash` = SHA-256 over all of its other attributes.
//! A head item per partition (`chain#<partition>` / `head`) holds the last `seq` and `hash`; it is
//! moved in the same transaction as the record is put, on the condition that it still names the
//! record the writer chained to — so two concurrent writers can never both extend the same link.
//! [`verify`] walks each chain and names the first record that does not fit.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::store::Item;

/// The `prev_hash` of a chain's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The sort key of a partition's head item.
pub const HEAD_SK: &str = "head";
/// Attributes of the chain.
pub const SEQ: &str = "seq";
pub const PREV_HASH: &str = "prev_hash";
pub const HASH: &str = "hash";

/// The partition key of the head item of `partition`.
pub fn head_pk(partition: &str) -> String {
    format!("chain#{partition}")
}

/// Whether an item of the AuditTable is a head item rather than a record.
pub fn is_head(item: &Item) -> bool {
    item.get("pk")
        .and_then(|v| v.as_s().ok())
        .is_some_and(|pk| pk.starts_with("chain#"))
}

/// The end of a chain: the last record's `seq` and `hash` (0 and [`GENESIS`] when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Head {
    pub fn genesis() -> Self {
        Head {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }

    /// The head as stored, if the item is a well-formed head.
    pub fn from_item(item: &Item) -> Option<Head> {
        Some(Head {
            seq: item.get(SEQ)?.as_n().ok()?.parse().ok()?,
            hash: item.get(HASH)?.as_s().ok()?.clone(),
        })
    }
}

/// Adds the chain attributes to a record's `item`, linking it after `head`; returns the new head.
pub fn link(item: &mut Item, head: &Head) -> Head {
    let seq = head.seq + 1;
    item.insert(SEQ.to_owned(), AttributeValue::N(seq.to_string()));
    item.insert(PREV_HASH.to_owned(), AttributeValue::S(head.hash.clone()));
    item.remove(HASH);
    let hash = digest(item);
    item.insert(HASH.to_owned(), AttributeValue::S(hash.clone()));
    Head { seq, hash }
}

/// SHA-256 (hex) over every attribute of `item` except `hash`, in a canonical form: attributes
/// sorted by name, each with its DynamoDB type. Adding, removing or changing any attribute —
/// including `seq`, `prev_hash` and the keys — changes it.
pub fn digest(item: &Item) -> String {
    let canonical: BTreeMap<&str, Value> = item
        .iter()
        .filter(|(name, _)| name.as_str() != HASH)
        .map(|(name, value)| (name.as_str(), typed(value)))
        .collect();
    let bytes = serde_json::to_vec(&json!(["threadstorm-audit-v1", canonical])).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

fn typed(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::Ss(list) => json!({"SS": list}),
        AttributeValue::Ns(list) => json!({"NS": list}),
        AttributeValue::L(list) => json!({"L": list.iter().map(typed).collect::<Vec<_>>()}),
        AttributeValue::M(map) => {
            let sorted: BTreeMap<&str, Value> =
                map.iter().map(|(k, v)| (k.as_str(), typed(v))).collect();
            json!({ "M": sorted })
        }
        AttributeValue::B(blob) => json!({"B": hex::encode(blob.as_ref())}),
        other => json!({"?": format!("{other:?}")}),
    }
}

/// What is wrong at one place of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The record's content no longer matches its hash: a field was changed.
    Altered,
    /// Records are missing before this one (or after the last one, up to the head).
    Missing,
    /// The record's `prev_hash` is not the previous record's hash: moved or re-linked.
    BrokenLink,
    /// Two records claim the same place in the chain.
    Duplicate,
    /// The head does not name the last record.
    HeadMismatch,
    /// Records without a head item (it was deleted).
    HeadMissing,
    /// A record without chain attributes.
    Unchained,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Altered => "altered",
            Fault::Missing => "missing",
            Fault::BrokenLink => "broken_link",
            Fault::Duplicate => "duplicate",
            Fault::HeadMismatch => "head_mismatch",
            Fault::HeadMissing => "head_missing",
            Fault::Unchained => "unchained",
        }
    }
}

/// One fault, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub partition: String,
    /// The record's place in the chain, when it has one.
    pub seq: Option<u64>,
    /// The record's sort key, when the problem is at a record that exists.
    pub sk: Option<String>,
    pub fault: Fault,
    pub detail: String,
}

impl Problem {
    pub fn to_json(&self) -> Value {
        json!({
            "partition": self.partition,
            "seq": self.seq,
            "sk": self.sk,
            "fault": self.fault.as_str(),
            "detail": self.detail,
        })
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub partitions: usize,
    pub records: usize,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "intact": self.intact(),
            "partitions": self.partitions,
            "records": self.records,
            "problems": self.problems.iter().map(Problem::to_json).collect::<Vec<_>>(),
        })
    }

    pub(crate) fn merge(&mut self, other: Report) {
        self.partitions += other.partitions;
        self.records += other.records;
        self.problems.extend(other.problems);
    }
}

/// Checks the chains in `items` (records and head items of any partitions, in any order).
///
/// `heads` must have been read before the records: a record with a `seq` beyond its head's was
/// written after the head was read and is left for the next run.
pub fn verify(items: &[Item]) -> Report {
    let mut heads: HashMap<String, Head> = HashMap::new();
    let mut chains: BTreeMap<String, Vec<&Item>> = BTreeMap::new();
    for item in items {
        let Some(pk) = item.get("pk").and_then(|v| v.as_s().ok()) else {
            continue;
        };
        if let Some(partition) = pk.strip_prefix("chain#") {
            if let Some(head) = Head::from_item(item) {
                heads.insert(partition.to_owned(), head);
            }
        } else {
            chains.entry(pk.clone()).or_default().push(item);
        }
    }
    let mut report = Report::default();
    for (partition, records) in &chains {
        report.partitions += 1;
        report.records += records.len();
        verify_one(
            partition,
            records,
            heads.get(partition),
            &mut report.problems,
        );
    }
    // A head whose records are all gone.
    for (partition, head) in &heads {
        if !chains.contains_key(partition) && head.seq > 0 {
            report.partitions += 1;
            report.problems.push(Problem {
                partition: partition.clone(),
                seq: Some(1),
                sk: None,
                fault: Fault::Missing,
                detail: format!("the head names {} records; none is left", head.seq),
            });
        }
    }
    report
}

fn verify_one(partition: &str, records: &[&Item], head: Option<&Head>, out: &mut Vec<Problem>) {
    let sk_of = |item: &Item| item.get("sk").and_then(|v| v.as_s().ok()).cloned();
    let problem = |seq: Option<u64>, sk: Option<String>, fault: Fault, detail: String| Problem {
        partition: partition.to_owned(),
        seq,
        sk,
        fault,
        detail,
    };
    let Some(head) = head else {
        out.push(problem(
            None,
            None,
            Fault::HeadMissing,
            format!(
                "{} records but no head item: the chain's end cannot be checked",
                records.len()
            ),
        ));
        return;
    };
    let mut linked: Vec<(u64, &Item)> = Vec::with_capacity(records.len());
    for item in records {
        match item
            .get(SEQ)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(seq) if seq <= head.seq => linked.push((seq, item)),
            Some(_) => {} // written after the head was read
            None => out.push(problem(
                None,
                sk_of(item),
                Fault::Unchained,
                "the record has no place in the chain".into(),
            )),
        }
    }
    linked.sort_by_key(|(seq, _)| *seq);
    let mut expected = 1u64;
    let mut prev_hash: Option<String> = Some(GENESIS.to_owned());
    for (seq, item) in linked {
        let stored_hash = item.get(HASH).and_then(|v| v.as_s().ok()).cloned();
        let stored_prev = item.get(PREV_HASH).and_then(|v| v.as_s().ok()).cloned();
        if seq < expected {
            out.push(problem(
                Some(seq),
                sk_of(item),
                Fault::Duplicate,
                format!("a second record at place {seq}"),
            ));
            continue;
        }
        if seq > expected {
            out.push(problem(
                Some(expected),
                None,
                Fault::Missing,
                format!("records {expected} to {} are missing", seq - 1),
            ));
            // The link across the gap cannot be checked; continue from this record.
            prev_hash = None;
        }
        if stored_hash.as_deref() != Some(digest(item).as_str()) {
            out.push(problem(
                Some(seq),
                sk_of(item),
                Fault::Altered,
                "the record's content does not match its hash".into(),
            ));
        } else if let Some(prev) = &prev_hash
            && stored_prev.as_deref() != Some(prev.as_str())
        {
            out.push(problem(
                Some(seq),
                sk_of(item),
                Fault::BrokenLink,
                "the record does not follow the one before it".into(),
            ));
        }
        prev_hash = stored_hash;
        expected = seq + 1;
    }
    if expected <= head.seq {
        out.push(problem(
            Some(expected),
            None,
            Fault::Missing,
            format!("records {expected} to {} are missing", head.seq),
        ));
    } else if prev_hash.as_deref().is_some_and(|h| h != head.hash) {
        out.push(problem(
            Some(head.seq),
            None,
            Fault::HeadMismatch,
            "the head does not name the last record".into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::s;

    fn chain(partition: &str, n: usize) -> Vec<Item> {
        let mut head = Head::genesis();
        let mut items = Vec::new();
        for i in 0..n {
            let mut item = Item::from([
                ("pk".to_owned(), s(partition)),
                ("sk".to_owned(), s(format!("{i:013}#x"))),
                ("action".to_owned(), s(format!("a{i}"))),
            ]);
            head = link(&mut item, &head);
            items.push(item);
        }
        items.push(Item::from([
            ("pk".to_owned(), s(head_pk(partition))),
            ("sk".to_owned(), s(HEAD_SK)),
            (SEQ.to_owned(), AttributeValue::N(head.seq.to_string())),
            (HASH.to_owned(), s(head.hash)),
        ]));
        items
    }

    fn faults(report: &Report) -> Vec<(Fault, Option<u64>)> {
        report.problems.iter().map(|p| (p.fault, p.seq)).collect()
    }

    #[test]
    fn an_untouched_chain_is_intact() {
        let mut items = chain("user#a", 5);
        items.extend(chain("system", 2));
        let report = verify(&items);
        assert!(report.intact(), "{report:?}");
        assert_eq!((report.partitions, report.records), (2, 7));
    }

    #[test]
    fn a_changed_field_names_its_record() {
        let mut items = chain("user#a", 4);
        items[2].insert("action".into(), s("innocent"));
        assert_eq!(faults(&verify(&items)), [(Fault::Altered, Some(3))]);
    }

    #[test]
    fn an_added_attribute_is_a_change() {
        let mut items = chain("user#a", 2);
        items[0].insert("note".into(), s("x"));
        assert_eq!(faults(&verify(&items)), [(Fault::Altered, Some(1))]);
    }

    #[test]
    fn removed_records_are_found_in_the_middle_at_the_start_and_at_the_end() {
        let mut middle = chain("user#a", 4);
        middle.remove(1);
        assert_eq!(faults(&verify(&middle)), [(Fault::Missing, Some(2))]);
        let mut first = chain("user#a", 3);
        first.remove(0);
        assert_eq!(faults(&verify(&first)), [(Fault::Missing, Some(1))]);
        let mut last = chain("user#a", 3);
        last.remove(2);
        assert_eq!(faults(&verify(&last)), [(Fault::Missing, Some(3))]);
        let mut head = chain("user#a", 3);
        head.pop();
        assert_eq!(faults(&verify(&head)), [(Fault::HeadMissing, None)]);
    }

    #[test]
    fn swapped_places_break_the_hashes() {
        let mut items = chain("user#a", 3);
        let (a, b) = (items[0].clone(), items[1].clone());
        for name in [SEQ, PREV_HASH, HASH] {
            items[0].insert(name.into(), b[name].clone());
            items[1].insert(name.into(), a[name].clone());
        }
        let report = verify(&items);
        assert!(!report.intact());
        assert!(
            report
                .problems
                .iter()
                .all(|p| p.fault == Fault::Altered && p.seq <= Some(2)),
            "{report:?}"
        );
    }

    #[test]
    fn a_record_rehashed_after_a_change_still_breaks_the_next_link() {
        let mut items = chain("user#a", 3);
        items[0].insert("action".into(), s("rewritten"));
        let rehashed = digest(&items[0]);
        items[0].insert(HASH.into(), s(rehashed));
        assert_eq!(faults(&verify(&items)), [(Fault::BrokenLink, Some(2))]);
    }

    #[test]
    fn records_newer_than_the_head_that_was_read_are_left_alone() {
        let mut items = chain("user#a", 3);
        // The head as it was read before record 3 was written.
        let head = items.pop().unwrap();
        let mut old = head.clone();
        old.insert(SEQ.into(), AttributeValue::N("2".into()));
        old.insert(HASH.into(), items[1][HASH].clone());
        items.push(old);
        assert!(verify(&items).intact());
    }
}
