//! Schedules: each `Schedule` event fires its function with an EventBridge "Scheduled Event"
//! (or the rule's constant `Input`), on a clock that can run faster than real time.
//!
//! `rate(N minute|minutes|hour|hours|day|days)` is supported; `cron(...)` is not fired
//! automatically (it is listed, and can be fired by hand through the lib API).

use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::functions::ScheduleDef;
use crate::invocation::{Journal, Trigger};
use crate::process::FunctionHandle;

/// How often a schedule fires, in real time at speed-up 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Period {
    Every(Duration),
    /// An expression the runner does not fire by itself (`cron(...)`), as written.
    Unsupported(String),
}

/// Parses an EventBridge schedule expression.
pub fn period(expression: &str) -> Period {
    let unsupported = || Period::Unsupported(expression.to_owned());
    let Some(inner) = expression
        .trim()
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
    else {
        return unsupported();
    };
    let mut words = inner.split_whitespace();
    let (Some(value), Some(unit), None) = (words.next(), words.next(), words.next()) else {
        return unsupported();
    };
    let Ok(value) = value.parse::<u64>() else {
        return unsupported();
    };
    if value == 0 {
        return unsupported();
    }
    let seconds = match unit {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return unsupported(),
    };
    Period::Every(Duration::from_secs(value.saturating_mul(seconds)))
}

/// The rule's ARN, as EventBridge lists it in `resources`.
pub fn rule_arn(region: &str, account: &str, stack: &str, function: &str, event: &str) -> String {
    format!("arn:aws:events:{region}:{account}:rule/{stack}-{function}{event}")
}

/// The event a schedule sends: its constant `Input`, or a Scheduled Event.
pub fn scheduled_event(
    schedule: &ScheduleDef,
    rule_arn: &str,
    region: &str,
    account: &str,
    now: OffsetDateTime,
) -> Value {
    if let Some(input) = &schedule.input {
        // EventBridge sends the constant input as is; it must be JSON.
        if let Ok(value) = serde_json::from_str(input) {
            return value;
        }
    }
    let time = now
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default();
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time,
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    })
}

/// Fires one schedule on its (sped-up) period until the runner stops.
pub(crate) struct Ticker {
    pub schedule: ScheduleDef,
    pub every: Duration,
    pub rule_arn: String,
    pub region: String,
    pub account: String,
    pub function: FunctionHandle,
    pub journal: Journal,
    pub shutdown: watch::Receiver<bool>,
}

impl Ticker {
    pub async fn run(mut self) {
        let start = tokio::time::Instant::now() + self.every;
        let mut ticks = tokio::time::interval_at(start, self.every);
        // A function slower than its period is fired again when it is done, not in a burst.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = self.shutdown.wait_for(|stop| *stop) => return,
            }
            fire(
                &self.function,
                &self.schedule,
                &self.rule_arn,
                &self.region,
                &self.account,
                &self.journal,
            )
            .await;
        }
    }
}

/// Invokes the function with the schedule's event and journals it.
pub(crate) async fn fire(
    function: &FunctionHandle,
    schedule: &ScheduleDef,
    rule_arn: &str,
    region: &str,
    account: &str,
    journal: &Journal,
) -> Option<crate::invocation::Invocation> {
    let event = scheduled_event(
        schedule,
        rule_arn,
        region,
        account,
        OffsetDateTime::now_utc(),
    );
    let invocation = function
        .invoke(serde_json::to_vec(&event).unwrap_or_default())
        .await
        .ok()?;
    journal.record(
        &invocation,
        Trigger::Schedule {
            event: schedule.name.clone(),
        },
    );
    Some(invocation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            period("rate(1 minute)"),
            Period::Every(Duration::from_secs(60))
        );
        assert_eq!(
            period("rate(6 hours)"),
            Period::Every(Duration::from_secs(21_600))
        );
        assert_eq!(
            period("rate(2 days)"),
            Period::Every(Duration::from_secs(172_800))
        );
        assert!(matches!(period("rate(0 minutes)"), Period::Unsupported(_)));
        assert!(matches!(period("rate(5 weeks)"), Period::Unsupported(_)));
        assert!(matches!(
            period("cron(0 12 * * ? *)"),
            Period::Unsupported(_)
        ));
    }

    #[test]
    fn scheduled_events_have_eventbridge_shape() {
        let schedule = ScheduleDef {
            name: "Sweep".into(),
            expression: "rate(1 minute)".into(),
            enabled: true,
            input: None,
        };
        let arn = rule_arn("us-east-1", "123456789012", "s", "Fn", "Sweep");
        let event = scheduled_event(
            &schedule,
            &arn,
            "us-east-1",
            "123456789012",
            OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(event["source"], "aws.events");
        assert_eq!(event["time"], "1970-01-01T00:00:00Z");
        assert_eq!(event["resources"][0], arn);
        assert_eq!(event["detail"], json!({}));
        let typed: aws_lambda_events::eventbridge::EventBridgeEvent =
            serde_json::from_value(event).unwrap();
        assert_eq!(typed.detail_type, "Scheduled Event");
    }

    #[test]
    fn constant_input_replaces_the_event() {
        let schedule = ScheduleDef {
            name: "Sweep".into(),
            expression: "rate(1 minute)".into(),
            enabled: true,
            input: Some(r#"{"mode":"sweep"}"#.into()),
        };
        let event = scheduled_event(&schedule, "arn", "r", "a", OffsetDateTime::UNIX_EPOCH);
        assert_eq!(event, json!({"mode": "sweep"}));
    }
}
