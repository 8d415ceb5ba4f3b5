//! template.yaml's alarms, topic and dashboard, read from the template and held against the metric
//! catalogue in shared/src/metrics.rs: every ThreadStorm alarm watches a metric, dimension set and
//! service the code emits; every API route, dead-letter queue and function is watched; every alarm
//! notifies the alarm topic; `sam validate --lint` passes.

use std::collections::{BTreeMap, BTreeSet};

use local_stack::Template;
use serde_json::{Value, json};
use threadstorm::metrics::{Metric, NAMESPACE, dimension};
use threadstorm::resources::{Access, FUNCTIONS, Kind};

fn template() -> Template {
    Template::load_workspace().expect("template.yaml loads")
}

/// One metric an alarm reads: namespace, name, dimensions (values as JSON, for `!Ref`/`!GetAtt`),
/// and the statistic.
#[derive(Debug, Clone)]
struct Watched {
    namespace: String,
    name: String,
    dimensions: BTreeMap<String, Value>,
    stat: String,
}

fn dimensions(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|d| (d["Name"].as_str().unwrap().to_owned(), d["Value"].clone()))
        .collect()
}

/// Every metric an alarm reads, whether it is a single-metric or a metric-math alarm.
fn watched(alarm: &Value) -> Vec<Watched> {
    if let Some(name) = alarm["MetricName"].as_str() {
        let stat = alarm["Statistic"]
            .as_str()
            .or_else(|| alarm["ExtendedStatistic"].as_str())
            .unwrap();
        return vec![Watched {
            namespace: alarm["Namespace"].as_str().unwrap().to_owned(),
            name: name.to_owned(),
            dimensions: dimensions(&alarm["Dimensions"]),
            stat: stat.to_owned(),
        }];
    }
    alarm["Metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|q| q["MetricStat"].is_object())
        .map(|q| {
            let stat = &q["MetricStat"];
            Watched {
                namespace: stat["Metric"]["Namespace"].as_str().unwrap().to_owned(),
                name: stat["Metric"]["MetricName"].as_str().unwrap().to_owned(),
                dimensions: dimensions(&stat["Metric"]["Dimensions"]),
                stat: stat["Stat"].as_str().unwrap().to_owned(),
            }
        })
        .collect()
}

struct Alarm {
    id: String,
    props: Value,
    metrics: Vec<Watched>,
}

fn alarms(t: &Template) -> Vec<Alarm> {
    t.resources_of_kind("AWS::CloudWatch::Alarm")
        .map(|a| Alarm {
            id: a.logical_id.to_owned(),
            props: a.properties.clone(),
            metrics: watched(a.properties),
        })
        .collect()
}

/// The alarms reading `metric` with `service` as their service dimension.
fn alarms_on<'a>(all: &'a [Alarm], metric: &str, service: &str) -> Vec<&'a Alarm> {
    all.iter()
        .filter(|a| {
            a.metrics.iter().any(|m| {
                m.namespace == NAMESPACE
                    && m.name == metric
                    && m.dimensions.get(dimension::SERVICE) == Some(&json!(service))
            })
        })
        .collect()
}

/// The API routes (paths) of each function, as template.yaml's Api events declare them.
fn api_routes(t: &Template) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut routes = BTreeMap::new();
    for spec in FUNCTIONS {
        let Some(f) = t.resource(spec.logical_id) else {
            continue;
        };
        for event in f.properties["Events"].as_object().into_iter().flatten() {
            let event = event.1;
            if event["Type"] == "Api" {
                routes
                    .entry(spec.name)
                    .or_insert_with(BTreeSet::new)
                    .insert(event["Properties"]["Path"].as_str().unwrap().to_owned());
            }
        }
    }
    routes
}

fn assert_above(alarm: &Alarm, threshold: Value) {
    assert_eq!(
        alarm.props["ComparisonOperator"], "GreaterThanThreshold",
        "{}",
        alarm.id
    );
    assert_eq!(alarm.props["Threshold"], threshold, "{}", alarm.id);
}

#[test]
fn every_threadstorm_alarm_watches_a_series_the_code_emits() {
    let t = template();
    let routes = api_routes(&t);
    let all = alarms(&t);
    let mut checked = 0;
    for alarm in &all {
        for m in alarm.metrics.iter().filter(|m| m.namespace == NAMESPACE) {
            checked += 1;
            let metric = Metric::from_name(&m.name)
                .unwrap_or_else(|| panic!("{}: {} is not in the catalogue", alarm.id, m.name));
            let names: BTreeSet<&str> = m.dimensions.keys().map(String::as_str).collect();
            assert!(
                metric.dimension_sets().iter().any(|set| set
                    .iter()
                    .copied()
                    .collect::<BTreeSet<_>>()
                    == names),
                "{}: {} is never emitted with dimensions {names:?} (it is with {:?})",
                alarm.id,
                m.name,
                metric.dimension_sets()
            );
            let service = m.dimensions[dimension::SERVICE].as_str().unwrap();
            assert!(
                metric.emitted_by().contains(&service),
                "{}: {service} does not emit {}",
                alarm.id,
                m.name
            );
            if let Some(route) = m.dimensions.get(dimension::ROUTE) {
                let route = route.as_str().unwrap();
                assert!(
                    routes.get(service).is_some_and(|r| r.contains(route)),
                    "{}: {service} has no API route {route}",
                    alarm.id
                );
            }
        }
    }
    assert!(
        checked >= 15,
        "only {checked} ThreadStorm metrics are alarmed"
    );
}

#[test]
fn error_rate_is_errors_over_requests_above_5_percent_for_every_function() {
    let t = template();
    let all = alarms(&t);
    assert_eq!(
        Metric::Errors.emitted_by(),
        threadstorm::metrics::ALL_SERVICES
    );
    for service in Metric::Errors.emitted_by() {
        let found = alarms_on(&all, Metric::Errors.name(), service);
        assert_eq!(found.len(), 1, "{service}: one error-rate alarm");
        let alarm = found[0];
        let queries = alarm.props["Metrics"].as_array().unwrap();
        let id_of = |name: &str| {
            queries
                .iter()
                .find(|q| q["MetricStat"]["Metric"]["MetricName"] == name)
                .map(|q| {
                    assert_eq!(q["MetricStat"]["Stat"], "Sum", "{}", alarm.id);
                    assert_eq!(
                        dimensions(&q["MetricStat"]["Metric"]["Dimensions"]),
                        BTreeMap::from([("service".to_owned(), json!(service))])
                    );
                    q["Id"].as_str().unwrap().to_owned()
                })
                .unwrap_or_else(|| panic!("{}: reads {name}", alarm.id))
        };
        let (errors, requests) = (id_of("errors"), id_of("request_count"));
        let returned: Vec<&Value> = queries.iter().filter(|q| q["ReturnData"] == true).collect();
        assert_eq!(returned.len(), 1, "{}: one expression is alarmed", alarm.id);
        assert_eq!(
            returned[0]["Expression"],
            format!("100 * {errors} / {requests}"),
            "{}",
            alarm.id
        );
        assert_above(alarm, json!(5));
    }
}

#[test]
fn every_api_route_has_a_p95_latency_alarm_above_the_parameter() {
    let t = template();
    let all = alarms(&t);
    let routes = api_routes(&t);
    assert_eq!(
        routes.keys().copied().collect::<Vec<_>>(),
        {
            let mut http = threadstorm::metrics::HTTP_SERVICES.to_vec();
            http.sort();
            http
        },
        "the HTTP functions are exactly those that serve API routes"
    );
    let mut latency_alarms = 0;
    for (service, paths) in &routes {
        for path in paths {
            let found: Vec<&Alarm> = alarms_on(&all, Metric::RequestDurationMs.name(), service)
                .into_iter()
                .filter(|a| a.metrics[0].dimensions.get(dimension::ROUTE) == Some(&json!(path)))
                .collect();
            assert_eq!(found.len(), 1, "{service} {path}: one p95 latency alarm");
            let alarm = found[0];
            assert_eq!(alarm.metrics[0].stat, "p95", "{}", alarm.id);
            assert_above(alarm, json!({"Ref": "LatencyP95ThresholdMs"}));
            latency_alarms += 1;
        }
    }
    let total = all
        .iter()
        .filter(|a| a.metrics.iter().any(|m| m.name == "request_duration_ms"))
        .count();
    assert_eq!(
        total, latency_alarms,
        "no latency alarm on a route that does not exist"
    );
    assert_eq!(
        t.parameter_defaults()["LatencyP95ThresholdMs"],
        "1000",
        "a default that a healthy Lambda behind API Gateway stays under"
    );
}

#[test]
fn any_publish_failure_or_token_refresh_failure_alarms() {
    let t = template();
    let all = alarms(&t);
    for metric in [Metric::PublishFailures, Metric::TokenRefreshFailures] {
        for service in metric.emitted_by() {
            let found = alarms_on(&all, metric.name(), service);
            assert_eq!(found.len(), 1, "{} from {service}", metric.name());
            assert_eq!(found[0].metrics[0].stat, "Sum");
            assert_above(found[0], json!(0));
        }
    }
}

#[test]
fn rate_limit_violations_alarm_above_the_parameter() {
    let t = template();
    let all = alarms(&t);
    for service in Metric::RateLimitViolations.emitted_by() {
        let found = alarms_on(&all, Metric::RateLimitViolations.name(), service);
        assert_eq!(found.len(), 1, "{service}");
        assert_eq!(found[0].metrics[0].stat, "Sum");
        assert_above(found[0], json!({"Ref": "RateLimitViolationsThreshold"}));
    }
}

#[test]
fn any_message_in_any_dead_letter_queue_alarms() {
    let t = template();
    let all = alarms(&t);
    let dlqs: BTreeSet<String> = t
        .resources_of_kind("AWS::SQS::Queue")
        .filter_map(|q| {
            q.properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let consumed = threadstorm::resources::Resource::ALL
        .iter()
        .filter(|r| r.kind() == Kind::Queue)
        .filter(|r| {
            FUNCTIONS.iter().any(|f| {
                f.needs
                    .iter()
                    .any(|n| n.resource == **r && n.access == Access::Consume)
            })
        })
        .count();
    assert_eq!(
        dlqs.len(),
        consumed,
        "every consumed queue has a dead-letter queue"
    );
    for dlq in &dlqs {
        let found: Vec<&Alarm> = all
            .iter()
            .filter(|a| {
                a.metrics.iter().any(|m| {
                    m.namespace == "AWS/SQS"
                        && m.name == "ApproximateNumberOfMessagesVisible"
                        && m.dimensions.get("QueueName")
                            == Some(&json!({"Fn::GetAtt": [dlq, "QueueName"]}))
                })
            })
            .collect();
        assert_eq!(found.len(), 1, "{dlq}: one depth alarm");
        assert_eq!(found[0].metrics[0].stat, "Maximum");
        assert_above(found[0], json!(0));
    }
}

#[test]
fn every_function_alarms_on_lambda_errors_and_throttles() {
    let t = template();
    let all = alarms(&t);
    for spec in FUNCTIONS {
        for metric in ["Errors", "Throttles"] {
            let found: Vec<&Alarm> = all
                .iter()
                .filter(|a| {
                    a.metrics.iter().any(|m| {
                        m.namespace == "AWS/Lambda"
                            && m.name == metric
                            && m.dimensions.get("FunctionName")
                                == Some(&json!({"Ref": spec.logical_id}))
                    })
                })
                .collect();
            assert_eq!(found.len(), 1, "{} {metric}", spec.name);
            assert_eq!(found[0].metrics[0].stat, "Sum");
            assert_above(found[0], json!(0));
        }
    }
}

#[test]
fn every_alarm_notifies_the_alarm_topic_and_email_subscribes_only_when_set() {
    let t = template();
    let all = alarms(&t);
    assert_eq!(all.len(), 48, "alarms");
    for alarm in &all {
        assert_eq!(
            alarm.props["AlarmActions"],
            json!([{"Ref": "AlarmTopic"}]),
            "{}",
            alarm.id
        );
        assert_eq!(alarm.props["OKActions"], json!([{"Ref": "AlarmTopic"}]));
        assert_eq!(
            alarm.props["TreatMissingData"], "notBreaching",
            "{}: no traffic is not an incident",
            alarm.id
        );
        assert!(alarm.props["AlarmDescription"].is_string(), "{}", alarm.id);
    }
    assert_eq!(t.resource("AlarmTopic").unwrap().kind, "AWS::SNS::Topic");
    let subscription = t.resource("AlarmEmailSubscription").unwrap();
    assert_eq!(subscription.kind, "AWS::SNS::Subscription");
    assert_eq!(subscription.definition["Condition"], "HasAlarmEmail");
    assert_eq!(subscription.properties["Protocol"], "email");
    assert_eq!(
        subscription.properties["Endpoint"],
        json!({"Ref": "AlarmEmail"})
    );
    assert_eq!(
        t.root()["Conditions"]["HasAlarmEmail"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]})
    );
    assert_eq!(t.parameter_defaults()["AlarmEmail"], "");
}

#[test]
fn the_dashboard_shows_every_alarm_and_only_emitted_metrics() {
    let t = template();
    let dashboard = t.resource("OperationsDashboard").unwrap();
    assert_eq!(dashboard.kind, "AWS::CloudWatch::Dashboard");
    let body = dashboard.properties["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("the body is a !Sub string");
    let parsed: Value = serde_json::from_str(&body.replace("${LatencyP95ThresholdMs}", "1000"))
        .expect("the dashboard body is JSON");
    let widgets = parsed["widgets"].as_array().unwrap();
    let shown: BTreeSet<&str> = widgets
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| w["properties"]["alarms"].as_array().unwrap())
        .filter_map(Value::as_str)
        .collect();
    for alarm in alarms(&t) {
        assert!(
            shown.contains(format!("${{{}.Arn}}", alarm.id).as_str()),
            "{} is not on the dashboard",
            alarm.id
        );
    }
    // Every ThreadStorm series drawn is one the code emits.
    for widget in widgets.iter().filter(|w| w["type"] == "metric") {
        for row in widget["properties"]["metrics"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            if row.first() != Some(&json!(NAMESPACE)) {
                continue;
            }
            let metric = Metric::from_name(row[1].as_str().unwrap()).unwrap();
            let pairs: BTreeMap<&str, &str> = row[2..]
                .chunks(2)
                .filter_map(|c| Some((c.first()?.as_str()?, c.get(1)?.as_str()?)))
                .collect();
            let names: BTreeSet<&str> = pairs.keys().copied().collect();
            assert!(
                metric
                    .dimension_sets()
                    .iter()
                    .any(|s| s.iter().copied().collect::<BTreeSet<_>>() == names),
                "dashboard: {} with {names:?}",
                metric.name()
            );
            assert!(metric.emitted_by().contains(&pairs[dimension::SERVICE]));
        }
    }
}

#[test]
fn template_passes_sam_validate_lint() {
    let venv = std::env::var_os("THREADSTORM_SAM_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Template::workspace_path()
                .parent()
                .unwrap()
                .join(".venv-sam")
        });
    let sam = venv.join("bin/sam");
    assert!(
        sam.exists(),
        "sam is not installed at {}: run ./scripts/test, which creates .venv-sam with it",
        sam.display()
    );
    let output = std::process::Command::new(&sam)
        .args(["validate", "--lint", "-t"])
        .arg(Template::workspace_path())
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .expect("sam runs");
    assert!(
        output.status.success(),
        "sam validate --lint found problems:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn samconfig_deploys_with_a_changeset_to_confirm_and_known_parameters() {
    let path = Template::workspace_path()
        .parent()
        .unwrap()
        .join("samconfig.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let deploy = text
        .split("[default.deploy.parameters]")
        .nth(1)
        .expect("a deploy section")
        .split("\n[")
        .next()
        .unwrap();
    let value = |key: &str| {
        deploy
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().strip_prefix('=').map(str::trim))
            .unwrap_or_else(|| panic!("samconfig.toml: deploy sets {key}"))
            .to_owned()
    };
    assert_eq!(value("confirm_changeset"), "true");
    assert!(value("capabilities").contains("CAPABILITY_IAM"));
    assert!(value("stack_name").len() > 2);
    assert!(value("region").len() > 2);
    let overrides = value("parameter_overrides");
    let parameters = template().parameter_defaults();
    let mut keys = BTreeSet::new();
    for pair in overrides.trim_matches('"').split_whitespace() {
        let key = pair.split('=').next().unwrap();
        assert!(
            parameters.contains_key(key),
            "{key} is not a template parameter"
        );
        keys.insert(key);
    }
    assert!(
        keys.contains("AlarmEmail") && keys.contains("ThreadsAppId"),
        "{keys:?}"
    );
}
