//! CloudWatch metrics as Embedded Metric Format: one JSON line on stdout per event, which Lambda's
//! log pipeline turns into a metric in namespace `ThreadStorm` with dimension `service`.

use serde_json::json;

/// The namespace every ThreadStorm metric is published in.
pub const NAMESPACE: &str = "ThreadStorm";

/// The EMF line that counts one `metric` for `service`.
pub fn count_line(service: &str, metric: &str, at_ms: i64) -> String {
    let mut line = json!({
        "_aws": { "Timestamp": at_ms, "CloudWatchMetrics": [{
            "Namespace": NAMESPACE, "Dimensions": [["service"]],
            "Metrics": [{ "Name": metric, "Unit": "Count" }] }] },
        "service": service,
    });
    line[metric] = json!(1);
    line.to_string()
}

/// Prints the EMF line that counts one `metric` for `service`, stamped now.
pub fn count(service: &str, metric: &str) {
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    println!(
        "{}",
        count_line(service, metric, i64::try_from(now_ms).unwrap_or(0))
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_one_emf_line_with_namespace_dimension_and_value() {
        let line = count_line("webhooks", "webhook_signature_failures", 1_700_000_000_000);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "ThreadStorm");
        assert_eq!(cw["Dimensions"], json!([["service"]]));
        assert_eq!(cw["Metrics"][0]["Name"], "webhook_signature_failures");
        assert_eq!(v["service"], "webhooks");
        assert_eq!(v["webhook_signature_failures"], 1);
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000_i64);
    }
}
