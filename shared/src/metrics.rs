//! CloudWatch metrics as Embedded Metric Format (EMF): JSON documents, one per stdout line, that
//! Lambda's log pipeline turns into metrics in namespace [`NAMESPACE`].
//!
//! [`Metric`] is the one catalogue of names, units, dimension sets and emitting functions;
//! template.yaml's alarms are tested against it, so an alarm cannot watch a series nobody writes.
//! A [`Metrics`] collects values during one invocation and writes them when it is flushed or
//! dropped — so a handler that fails (or unwinds) still reports what it measured.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The namespace every ThreadStorm metric is published in.
pub const NAMESPACE: &str = "ThreadStorm";
/// EMF: at most 100 metric definitions per directive.
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
/// EMF: at most 100 values per metric per document; more go into further documents.
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// Dimension names. Values are low-cardinality strings; ids (request, post, account) never become
/// dimensions — each distinct value is a billed custom metric. Put them in properties instead.
pub mod dimension {
    /// The function that emits the metric (`FunctionSpec::name`).
    pub const SERVICE: &str = "service";
    /// The API Gateway route template (`/meta/deletion-status/{code}`), never the raw path.
    pub const ROUTE: &str = "route";
    /// A named operation inside a function, for metrics that need one.
    pub const OPERATION: &str = "operation";
}

/// CloudWatch units used by ThreadStorm's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Every metric ThreadStorm emits. `error_rate` is not one: alarms compute it as
/// `errors / request_count` (metric math), which stays right when requests are sampled unevenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    RequestDurationMs,
    RequestCount,
    Errors,
    RateLimitViolations,
    TokenRefreshFailures,
    PublishFailures,
    PostsPublished,
    PostsDeferred,
    PostsRejected,
    DedupeHits,
    WebhookSignatureFailures,
    SignedRequestFailures,
    PublishLatencyMs,
}

/// The dimension sets of the HTTP request metrics: per route, and per function (for error rate).
const PER_ROUTE_AND_SERVICE: &[&[&str]] = &[
    &[dimension::SERVICE, dimension::ROUTE],
    &[dimension::SERVICE],
];
const PER_SERVICE: &[&[&str]] = &[&[dimension::SERVICE]];

/// The functions that answer HTTP through [`crate::runtime::serve_http`].
pub const HTTP_SERVICES: &[&str] = &["api", "oauth", "webhooks"];
/// Every function: each counts its invocations (HTTP requests, batches, sweeps, rotation steps).
pub const ALL_SERVICES: &[&str] = &[
    "api",
    "oauth",
    "webhooks",
    "scheduler",
    "dedupe",
    "gate",
    "poster",
    "result-sink",
    "token-refresher",
    "secret-rotation",
];

impl Metric {
    pub const ALL: [Metric; 13] = [
        Metric::RequestDurationMs,
        Metric::RequestCount,
        Metric::Errors,
        Metric::RateLimitViolations,
        Metric::TokenRefreshFailures,
        Metric::PublishFailures,
        Metric::PostsPublished,
        Metric::PostsDeferred,
        Metric::PostsRejected,
        Metric::DedupeHits,
        Metric::WebhookSignatureFailures,
        Metric::SignedRequestFailures,
        Metric::PublishLatencyMs,
    ];

    /// The metric's name in CloudWatch.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RequestDurationMs => "request_duration_ms",
            Metric::RequestCount => "request_count",
            Metric::Errors => "errors",
            Metric::RateLimitViolations => "rate_limit_violations",
            Metric::TokenRefreshFailures => "token_refresh_failures",
            Metric::PublishFailures => "publish_failures",
            Metric::PostsPublished => "posts_published",
            Metric::PostsDeferred => "posts_deferred",
            Metric::PostsRejected => "posts_rejected",
            Metric::DedupeHits => "dedupe_hits",
            Metric::WebhookSignatureFailures => "webhook_signature_failures",
            Metric::SignedRequestFailures => "signed_request_failures",
            Metric::PublishLatencyMs => "publish_latency_ms",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn unit(self) -> Unit {
        match self {
            Metric::RequestDurationMs | Metric::PublishLatencyMs => Unit::Milliseconds,
            _ => Unit::Count,
        }
    }

    /// The dimension sets the metric is published under. Each set is a separate CloudWatch
    /// metric; alarms must name exactly one of them.
    pub fn dimension_sets(self) -> &'static [&'static [&'static str]] {
        match self {
            Metric::RequestDurationMs | Metric::RequestCount | Metric::Errors => {
                PER_ROUTE_AND_SERVICE
            }
            _ => PER_SERVICE,
        }
    }

    /// The functions (`service` values) that emit the metric.
    pub fn emitted_by(self) -> &'static [&'static str] {
        match self {
            Metric::RequestDurationMs | Metric::RequestCount | Metric::Errors => ALL_SERVICES,
            // Each HTTP function refuses callers over its own limit (rate_limit::Scope).
            Metric::RateLimitViolations => HTTP_SERVICES,
            Metric::WebhookSignatureFailures | Metric::SignedRequestFailures => &["webhooks"],
            Metric::TokenRefreshFailures => &["token-refresher"],
            // The result sink sees each storm's final outcome; the poster times its Threads calls.
            Metric::PublishFailures | Metric::PostsPublished => &["result-sink"],
            Metric::PublishLatencyMs => &["poster"],
            Metric::PostsDeferred => &["gate"],
            // The dedupe stage refuses by content; the gate refuses a storm no quota can ever fit.
            Metric::PostsRejected => &["dedupe", "gate"],
            Metric::DedupeHits => &["dedupe"],
        }
    }
}

impl AsRef<str> for Metric {
    fn as_ref(&self) -> &str {
        self.name()
    }
}

/// One metric name with its unit and dimension sets, as written into a document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Definition {
    name: String,
    unit: &'static str,
    sets: Vec<Vec<&'static str>>,
}

impl Definition {
    fn of(name: &str) -> Definition {
        match Metric::from_name(name) {
            Some(m) => Definition {
                name: name.to_owned(),
                unit: m.unit().as_str(),
                sets: m.dimension_sets().iter().map(|s| s.to_vec()).collect(),
            },
            // A name outside the catalogue still reaches CloudWatch (nothing is lost), per service.
            None => Definition {
                name: name.to_owned(),
                unit: Unit::Count.as_str(),
                sets: vec![vec![dimension::SERVICE]],
            },
        }
    }
}

/// Dimension values after empty ones are left out, and the sets that remain over them.
type GroupKey = (BTreeMap<&'static str, String>, Vec<Vec<&'static str>>);

/// The values of one invocation, written as EMF documents on flush or drop.
#[derive(Debug)]
pub struct Metrics {
    service: String,
    properties: Map<String, Value>,
    entries: Vec<Entry>,
    out: Output,
}

#[derive(Debug)]
struct Entry {
    definition: Definition,
    dimensions: Vec<(&'static str, String)>,
    value: f64,
}

#[derive(Debug)]
enum Output {
    Stdout,
    Discard,
}

impl Metrics {
    /// Metrics of `service` (the function name), written to stdout.
    pub fn new(service: &str) -> Self {
        Self::with_output(service, Output::Stdout)
    }

    /// Metrics whose documents are only returned by [`Metrics::documents`], never printed.
    pub fn detached(service: &str) -> Self {
        Self::with_output(service, Output::Discard)
    }

    fn with_output(service: &str, out: Output) -> Self {
        Metrics {
            service: service.to_owned(),
            properties: Map::new(),
            entries: Vec::new(),
            out,
        }
    }

    /// Records `value` of `metric` with only the `service` dimension.
    pub fn put(&mut self, metric: Metric, value: f64) -> &mut Self {
        self.put_with(metric, &[], value)
    }

    /// Records `value` of `metric` with extra dimensions (e.g. `route`). Dimensions the metric's
    /// sets do not name are ignored; empty values are left out.
    pub fn put_with(
        &mut self,
        metric: Metric,
        dimensions: &[(&'static str, &str)],
        value: f64,
    ) -> &mut Self {
        self.put_named(metric.name(), dimensions, value)
    }

    fn put_named(
        &mut self,
        name: &str,
        dimensions: &[(&'static str, &str)],
        value: f64,
    ) -> &mut Self {
        if value.is_finite() {
            self.entries.push(Entry {
                definition: Definition::of(name),
                dimensions: dimensions
                    .iter()
                    .map(|(k, v)| (*k, (*v).to_owned()))
                    .collect(),
                value,
            });
        }
        self
    }

    /// A plain property on every document (request id, post id): searchable in Logs Insights,
    /// never a dimension.
    pub fn property(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.properties.insert(key.to_owned(), value.into());
        self
    }

    /// The EMF documents for what was recorded, stamped `timestamp_ms`.
    pub fn documents(&self, timestamp_ms: i64) -> Vec<Value> {
        // Group by dimension values and sets: one document holds one set of root dimension values.
        let mut groups: BTreeMap<GroupKey, BTreeMap<(String, &'static str), Vec<f64>>> =
            BTreeMap::new();
        for entry in &self.entries {
            let mut values: BTreeMap<&'static str, String> = BTreeMap::new();
            let named = |key: &str| entry.definition.sets.iter().any(|s| s.contains(&key));
            if !self.service.is_empty() && named(dimension::SERVICE) {
                values.insert(dimension::SERVICE, self.service.clone());
            }
            for (key, value) in &entry.dimensions {
                if !value.is_empty() && named(key) {
                    values.insert(key, value.clone());
                }
            }
            let mut sets: Vec<Vec<&'static str>> = Vec::new();
            for set in &entry.definition.sets {
                let kept: Vec<&'static str> = set
                    .iter()
                    .copied()
                    .filter(|k| values.contains_key(k))
                    .collect();
                if !kept.is_empty() && !sets.contains(&kept) {
                    sets.push(kept);
                }
            }
            groups
                .entry((values, sets))
                .or_default()
                .entry((entry.definition.name.clone(), entry.definition.unit))
                .or_default()
                .push(entry.value);
        }

        let mut documents = Vec::new();
        for ((values, sets), metrics) in groups {
            let rounds = metrics
                .values()
                .map(|v| v.len().div_ceil(MAX_VALUES_PER_METRIC))
                .max()
                .unwrap_or(0);
            for round in 0..rounds {
                let start = round * MAX_VALUES_PER_METRIC;
                let present: Vec<(&(String, &'static str), &[f64])> = metrics
                    .iter()
                    .filter(|(_, v)| v.len() > start)
                    .map(|(k, v)| (k, &v[start..v.len().min(start + MAX_VALUES_PER_METRIC)]))
                    .collect();
                for chunk in present.chunks(MAX_METRICS_PER_DOCUMENT) {
                    let mut root = self.properties.clone();
                    let definitions: Vec<Value> = chunk
                        .iter()
                        .map(|((name, unit), _)| json!({ "Name": name, "Unit": unit }))
                        .collect();
                    root.insert(
                        "_aws".to_owned(),
                        json!({
                            "Timestamp": timestamp_ms,
                            "CloudWatchMetrics": [{
                                "Namespace": NAMESPACE,
                                "Dimensions": sets,
                                "Metrics": definitions,
                            }],
                        }),
                    );
                    for (key, value) in &values {
                        root.insert((*key).to_owned(), json!(value));
                    }
                    for ((name, _), slice) in chunk {
                        root.insert(name.clone(), number_or_list(slice));
                    }
                    documents.push(Value::Object(root));
                }
            }
        }
        documents
    }

    /// Writes what was recorded (one line per document) and forgets it.
    pub fn flush(&mut self) {
        if self.entries.is_empty() {
            return;
        }
        let documents = self.documents(now_ms());
        self.entries.clear();
        if let Output::Stdout = self.out {
            tap::keep(&documents);
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for document in documents {
                // A line that cannot be written is lost; failing the invocation over it would be worse.
                let _ = writeln!(out, "{document}");
            }
        }
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        self.flush();
    }
}

fn number_or_list(values: &[f64]) -> Value {
    let one = |v: f64| {
        if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
            json!(v as i64)
        } else {
            json!(v)
        }
    };
    match values {
        [single] => one(*single),
        many => Value::Array(many.iter().map(|v| one(*v)).collect()),
    }
}

fn now_ms() -> i64 {
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(now_ms).unwrap_or(0)
}

/// A copy of what this thread writes, for tests that check what a handler emitted (stdout itself
/// cannot be read back in-process). Off unless a [`Tap`] is alive on the thread.
pub mod tap {
    use std::cell::RefCell;

    use serde_json::Value;

    use super::{Metric, dimension};

    thread_local! {
        static KEPT: RefCell<Option<Vec<Value>>> = const { RefCell::new(None) };
    }

    pub(super) fn keep(documents: &[Value]) {
        KEPT.with(|kept| {
            if let Some(kept) = kept.borrow_mut().as_mut() {
                kept.extend_from_slice(documents);
            }
        });
    }

    /// Keeps every document written on this thread until dropped. A current-thread async
    /// runtime (tokio's test default) runs all of a test's futures on its thread.
    #[derive(Debug)]
    pub struct Tap(());

    /// Starts keeping this thread's documents (and forgets any kept before).
    pub fn start() -> Tap {
        KEPT.with(|kept| *kept.borrow_mut() = Some(Vec::new()));
        Tap(())
    }

    impl Tap {
        /// The documents written so far.
        pub fn documents(&self) -> Vec<Value> {
            KEPT.with(|kept| kept.borrow().clone().unwrap_or_default())
        }

        /// The sum of `metric`'s values written for `service` so far.
        pub fn total(&self, service: &str, metric: Metric) -> f64 {
            self.documents()
                .iter()
                .filter(|d| d[dimension::SERVICE] == service)
                .map(|d| match &d[metric.name()] {
                    Value::Number(n) => n.as_f64().unwrap_or(0.0),
                    Value::Array(values) => values.iter().filter_map(Value::as_f64).sum(),
                    _ => 0.0,
                })
                .sum()
        }
    }

    impl Drop for Tap {
        fn drop(&mut self) {
            KEPT.with(|kept| *kept.borrow_mut() = None);
        }
    }
}

/// Counts one `metric` for `service` at once. `metric` is a [`Metric`] or, for names outside the
/// catalogue, a string (published per service, as a count).
pub fn count(service: &str, metric: impl AsRef<str>) {
    Metrics::new(service).put_named(metric.as_ref(), &[], 1.0);
}

/// The EMF line that counts one `metric` for `service`, stamped `at_ms`.
pub fn count_line(service: &str, metric: impl AsRef<str>, at_ms: i64) -> String {
    let mut metrics = Metrics::detached(service);
    metrics.put_named(metric.as_ref(), &[], 1.0);
    metrics
        .documents(at_ms)
        .first()
        .map(Value::to_string)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: i64 = 1_700_000_000_000;

    fn directive(doc: &Value) -> &Value {
        &doc["_aws"]["CloudWatchMetrics"][0]
    }

    /// Checks a document against the EMF specification's rules that CloudWatch enforces.
    fn assert_valid_emf(doc: &Value) {
        let root = doc.as_object().expect("a document is an object");
        assert!(doc["_aws"]["Timestamp"].is_i64(), "{doc}");
        let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert!(!directives.is_empty());
        for d in directives {
            assert_eq!(d["Namespace"], NAMESPACE);
            let metrics = d["Metrics"].as_array().unwrap();
            assert!(!metrics.is_empty() && metrics.len() <= MAX_METRICS_PER_DOCUMENT);
            for m in metrics {
                let name = m["Name"].as_str().unwrap();
                assert!(matches!(m["Unit"].as_str(), Some("Count" | "Milliseconds")));
                match &root[name] {
                    Value::Number(_) => {}
                    Value::Array(values) => {
                        assert!(values.len() <= MAX_VALUES_PER_METRIC);
                        assert!(values.iter().all(Value::is_number));
                    }
                    other => panic!("{name} has no numeric value: {other}"),
                }
            }
            for set in d["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(!set.is_empty() && set.len() <= 30);
                for key in set {
                    let value = &root[key.as_str().unwrap()];
                    assert!(
                        value.as_str().is_some_and(|v| !v.is_empty()),
                        "dimension {key} must be a non-empty string: {doc}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_tap_keeps_what_its_thread_writes_until_dropped() {
        let kept = tap::start();
        count("api", Metric::RateLimitViolations);
        count("api", Metric::RateLimitViolations);
        count("oauth", Metric::RateLimitViolations);
        std::thread::spawn(|| count("api", Metric::RateLimitViolations))
            .join()
            .unwrap();
        assert_eq!(kept.total("api", Metric::RateLimitViolations), 2.0);
        assert_eq!(kept.total("oauth", Metric::RateLimitViolations), 1.0);
        assert_eq!(kept.total("webhooks", Metric::RateLimitViolations), 0.0);
        drop(kept);
        count("api", Metric::RateLimitViolations);
        assert!(tap::start().documents().is_empty());
    }

    #[test]
    fn a_count_is_one_emf_line_with_namespace_dimension_and_value() {
        let line = count_line(
            "webhooks",
            Metric::WebhookSignatureFailures,
            1_700_000_000_000,
        );
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_valid_emf(&v);
        let cw = directive(&v);
        assert_eq!(cw["Namespace"], "ThreadStorm");
        assert_eq!(cw["Dimensions"], json!([["service"]]));
        assert_eq!(cw["Metrics"][0]["Name"], "webhook_signature_failures");
        assert_eq!(cw["Metrics"][0]["Unit"], "Count");
        assert_eq!(v["service"], "webhooks");
        assert_eq!(v["webhook_signature_failures"], 1);
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000_i64);
    }

    #[test]
    fn a_name_outside_the_catalogue_is_still_counted_per_service() {
        let v: Value = serde_json::from_str(&count_line("x", "something_new", AT)).unwrap();
        assert_valid_emf(&v);
        assert_eq!(directive(&v)["Dimensions"], json!([["service"]]));
        assert_eq!(v["something_new"], 1);
    }

    #[test]
    fn request_metrics_are_per_route_and_per_service_with_units() {
        let mut m = Metrics::detached("oauth");
        m.put_with(
            Metric::RequestCount,
            &[(dimension::ROUTE, "/oauth/start")],
            1.0,
        )
        .put_with(Metric::Errors, &[(dimension::ROUTE, "/oauth/start")], 0.0)
        .put_with(
            Metric::RequestDurationMs,
            &[(dimension::ROUTE, "/oauth/start")],
            12.5,
        )
        .property("request_id", "abc-123");
        let docs = m.documents(AT);
        assert_eq!(docs.len(), 1, "{docs:?}");
        let doc = &docs[0];
        assert_valid_emf(doc);
        assert_eq!(
            directive(doc)["Dimensions"],
            json!([["service", "route"], ["service"]])
        );
        assert_eq!(doc["route"], "/oauth/start");
        assert_eq!(doc["request_count"], 1);
        assert_eq!(doc["errors"], 0);
        assert_eq!(doc["request_duration_ms"], 12.5);
        assert_eq!(doc["request_id"], "abc-123", "ids are properties");
        let units: BTreeMap<String, String> = directive(doc)["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["Name"].as_str().unwrap().to_owned(),
                    d["Unit"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(units["request_duration_ms"], "Milliseconds");
        assert_eq!(units["request_count"], "Count");
    }

    #[test]
    fn empty_dimensions_are_left_out_and_ids_never_become_dimensions() {
        let mut m = Metrics::detached("api");
        m.put_with(
            Metric::RequestCount,
            &[(dimension::ROUTE, ""), ("post_id", "p-1")],
            1.0,
        );
        let doc = &m.documents(AT)[0];
        assert_valid_emf(doc);
        assert_eq!(directive(doc)["Dimensions"], json!([["service"]]));
        assert!(doc.get("route").is_none());
        assert!(
            doc.get("post_id").is_none(),
            "undeclared dimensions are ignored"
        );

        let mut nameless = Metrics::detached("");
        nameless.put(Metric::PublishFailures, 1.0);
        let doc = &nameless.documents(AT)[0];
        assert_eq!(directive(doc)["Dimensions"], json!([]));
        assert!(doc.get("service").is_none());
    }

    #[test]
    fn more_than_100_values_are_split_across_documents() {
        let mut m = Metrics::detached("poster");
        for i in 0..250 {
            m.put(Metric::PublishLatencyMs, f64::from(i));
        }
        m.put(Metric::PostsPublished, 1.0);
        let docs = m.documents(AT);
        assert_eq!(docs.len(), 3);
        let mut seen = Vec::new();
        for doc in &docs {
            assert_valid_emf(doc);
            match &doc["publish_latency_ms"] {
                Value::Array(values) => seen.extend(values.iter().map(|v| v.as_i64().unwrap())),
                other => seen.push(other.as_i64().unwrap()),
            }
        }
        assert_eq!(
            seen,
            (0..250).collect::<Vec<_>>(),
            "every value once, in order"
        );
        let with_published = docs
            .iter()
            .filter(|d| d.get("posts_published").is_some())
            .count();
        assert_eq!(with_published, 1);
        assert_eq!(docs[0]["publish_latency_ms"].as_array().unwrap().len(), 100);
        assert_eq!(docs[2]["publish_latency_ms"].as_array().unwrap().len(), 50);
    }

    #[test]
    fn at_most_100_metrics_per_document() {
        let mut m = Metrics::detached("x");
        for i in 0..150 {
            m.put_named(&format!("custom_{i}"), &[], 1.0);
        }
        let docs = m.documents(AT);
        assert_eq!(docs.len(), 2);
        let counts: Vec<usize> = docs
            .iter()
            .map(|d| directive(d)["Metrics"].as_array().unwrap().len())
            .collect();
        assert_eq!(counts, [100, 50]);
        docs.iter().for_each(assert_valid_emf);
    }

    #[test]
    fn different_dimension_values_go_to_different_documents() {
        let mut m = Metrics::detached("webhooks");
        m.put_with(
            Metric::RequestCount,
            &[(dimension::ROUTE, "/webhooks/threads")],
            1.0,
        )
        .put_with(
            Metric::RequestCount,
            &[(dimension::ROUTE, "/meta/deauthorize")],
            1.0,
        )
        .put(Metric::WebhookSignatureFailures, 1.0);
        let docs = m.documents(AT);
        assert_eq!(docs.len(), 3);
        docs.iter().for_each(assert_valid_emf);
    }

    #[test]
    fn nothing_recorded_writes_nothing_and_non_finite_values_are_dropped() {
        let mut m = Metrics::detached("x");
        assert!(m.documents(AT).is_empty());
        m.put(Metric::PublishLatencyMs, f64::NAN);
        m.put(Metric::PublishLatencyMs, f64::INFINITY);
        assert!(m.documents(AT).is_empty());
    }

    #[test]
    fn flush_forgets_what_it_wrote() {
        let mut m = Metrics::detached("x");
        m.put(Metric::DedupeHits, 1.0);
        m.flush();
        assert!(m.documents(AT).is_empty());
    }

    #[test]
    fn every_function_is_a_service_and_every_http_function_among_them() {
        let functions: Vec<&str> = crate::resources::FUNCTIONS.iter().map(|f| f.name).collect();
        assert_eq!(ALL_SERVICES, functions.as_slice());
        for http in HTTP_SERVICES {
            assert!(ALL_SERVICES.contains(http), "{http}");
        }
    }

    #[test]
    fn the_catalogue_is_consistent() {
        let mut names = std::collections::BTreeSet::new();
        for metric in Metric::ALL {
            assert!(names.insert(metric.name()), "{} twice", metric.name());
            assert_eq!(Metric::from_name(metric.name()), Some(metric));
            assert!(!metric.emitted_by().is_empty());
            for set in metric.dimension_sets() {
                assert!(set.contains(&dimension::SERVICE), "{}", metric.name());
            }
            for service in metric.emitted_by() {
                assert!(
                    crate::resources::FUNCTIONS
                        .iter()
                        .any(|f| f.name == *service),
                    "{service} is not a function"
                );
            }
        }
        for required in [
            "request_duration_ms",
            "request_count",
            "errors",
            "rate_limit_violations",
            "token_refresh_failures",
            "publish_failures",
            "posts_published",
            "posts_deferred",
            "posts_rejected",
            "dedupe_hits",
            "webhook_signature_failures",
            "publish_latency_ms",
        ] {
            assert!(Metric::from_name(required).is_some(), "{required}");
        }
    }
}
