//! DynamoDB primitives every stage builds on: a conditional put or update whose lost condition is
//! its own outcome (with the winning item, no second read), and a counter that stops exactly at its
//! limit.
//!
//! A lost condition is never a success and never a generic error: callers decide what it means
//! (already done, in progress, duplicate, over quota).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// A failure to talk to DynamoDB (throttling, network, permissions): retryable by the caller.
#[derive(Debug, thiserror::Error)]
#[error("dynamodb {operation} on {table}: {message}")]
pub struct StoreError {
    pub operation: &'static str,
    pub table: String,
    pub message: String,
}

impl StoreError {
    pub(crate) fn new<E, R>(operation: &'static str, table: &str, err: SdkError<E, R>) -> Self
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        StoreError {
            operation,
            table: table.to_owned(),
            message: DisplayErrorContext(err).to_string(),
        }
    }
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, PartialEq)]
pub enum Conditional {
    /// The condition held and the item was written.
    Written,
    /// The condition failed; this is the item that made it fail (if one exists).
    Lost { existing: Option<Item> },
}

/// A condition with its placeholders, e.g.
/// `attribute_not_exists(#id) OR #expires < :now` with `#id → id`, `:now → N(…)`.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    pub expression: String,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl Condition {
    pub fn new(expression: impl Into<String>) -> Self {
        Condition {
            expression: expression.into(),
            ..Default::default()
        }
    }
    pub fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names
            .insert(placeholder.to_owned(), attribute.to_owned());
        self
    }
    pub fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }
}

/// Puts `item` if `condition` holds; a lost condition returns the existing item
/// (`ReturnValuesOnConditionCheckFailure = ALL_OLD`).
pub async fn put_if(
    client: &Client,
    table: &str,
    item: Item,
    condition: Condition,
) -> Result<Conditional, StoreError> {
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition.expression)
        .set_expression_attribute_names(non_empty(condition.names))
        .set_expression_attribute_values(non_empty(condition.values))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => Ok(Conditional::Written),
        Err(err) => match err.as_service_error() {
            Some(e) if e.is_conditional_check_failed_exception() => {
                let existing = match e {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                        c.item().cloned()
                    }
                    _ => None,
                };
                Ok(Conditional::Lost { existing })
            }
            _ => Err(StoreError::new("PutItem", table, err)),
        },
    }
}

/// The outcome of [`update_if`].
#[derive(Debug, Clone, PartialEq)]
pub enum Updated {
    /// The condition held and the update was applied; `old` is the item as it was before (none if
    /// the update created it).
    Written { old: Option<Item> },
    /// The condition failed; this is the item that made it fail (if one exists).
    Lost { existing: Option<Item> },
}

/// Applies `update` (an `UpdateExpression`) to the item at `key` if `condition` holds, creating the
/// item when missing. The condition's names and values serve both expressions. Either way the
/// answer carries the item as it was (`ReturnValues` and `ReturnValuesOnConditionCheckFailure` =
/// `ALL_OLD`), so no second read is needed.
pub async fn update_if(
    client: &Client,
    table: &str,
    key: Item,
    update: &str,
    condition: Condition,
) -> Result<Updated, StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(update)
        .condition_expression(condition.expression)
        .set_expression_attribute_names(non_empty(condition.names))
        .set_expression_attribute_values(non_empty(condition.values))
        .return_values(ReturnValue::AllOld)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(output) => Ok(Updated::Written {
            old: output.attributes().filter(|a| !a.is_empty()).cloned(),
        }),
        Err(err) => match err.as_service_error() {
            Some(
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c),
            ) => Ok(Updated::Lost {
                existing: c.item().cloned(),
            }),
            _ => Err(StoreError::new("UpdateItem", table, err)),
        },
    }
}

/// The outcome of [`increment_below`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// The counter was below the limit and now stands at this value.
    Incremented(i64),
    /// The counter was already at (or above) the limit; nothing changed.
    AtLimit,
}

/// Adds `by` to the number attribute `counter` of the item at `key`, only if the result stays at or
/// below `limit` — one atomic conditional update, so concurrent callers can never overshoot and a
/// refused increment consumes nothing. Creates the item when missing; `extra` attributes (e.g. a
/// TTL) are set on every successful increment.
pub async fn increment_below(
    client: &Client,
    table: &str,
    key: Item,
    counter: &str,
    by: i64,
    limit: i64,
    extra: &[(&str, AttributeValue)],
) -> Result<Counted, StoreError> {
    if by > limit {
        return Ok(Counted::AtLimit);
    }
    let mut update = String::from("SET #c = if_not_exists(#c, :zero) + :by");
    let mut names = HashMap::from([("#c".to_owned(), counter.to_owned())]);
    let mut values = HashMap::from([
        (":zero".to_owned(), AttributeValue::N("0".into())),
        (":by".to_owned(), AttributeValue::N(by.to_string())),
        (
            ":ceiling".to_owned(),
            AttributeValue::N((limit - by).to_string()),
        ),
    ]);
    for (i, (attribute, value)) in extra.iter().enumerate() {
        update.push_str(&format!(", #x{i} = :x{i}"));
        names.insert(format!("#x{i}"), (*attribute).to_owned());
        values.insert(format!(":x{i}"), value.clone());
    }
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(update)
        .condition_expression("attribute_not_exists(#c) OR #c <= :ceiling")
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await;
    match result {
        Ok(output) => {
            let value = output
                .attributes()
                .and_then(|a| a.get(counter))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(by);
            Ok(Counted::Incremented(value))
        }
        Err(err) => match err.as_service_error() {
            Some(e) if e.is_conditional_check_failed_exception() => Ok(Counted::AtLimit),
            _ => Err(StoreError::new("UpdateItem", table, err)),
        },
    }
}

fn non_empty<K, V>(map: HashMap<K, V>) -> Option<HashMap<K, V>> {
    if map.is_empty() { None } else { Some(map) }
}

/// A string attribute.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
