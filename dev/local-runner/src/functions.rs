//! The functions template.yaml declares and what triggers them: API routes, SQS event source
//! mappings and schedules, with each function's binary, Timeout, MemorySize and Handler.
//!
//! Values are resolved against the local stack (`!Ref`, `!GetAtt`, `!Sub`), so a template that
//! takes its Timeout or StageName from a parameter reads the same here as in CloudFormation.

use std::time::Duration;

use local_stack::Stack;
use serde_json::Value;

/// Lambda's default Timeout when neither the function nor `Globals` sets one.
const DEFAULT_TIMEOUT_SECONDS: u64 = 3;
/// Lambda's default MemorySize.
const DEFAULT_MEMORY_MB: u64 = 128;
/// SQS event source mappings default to batches of 10.
const DEFAULT_BATCH_SIZE: u32 = 10;
/// SAM's implicit REST API, used by Api events without `RestApiId`.
pub const IMPLICIT_API: &str = "ServerlessRestApi";

#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("{function}: {message}")]
    Function { function: String, message: String },
    #[error("{0}")]
    Template(String),
}

/// One `AWS::Serverless::Function`.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub logical_id: String,
    /// The binary cargo builds for it (`Metadata.BuildProperties.Binary`): also its package name.
    pub binary: String,
    pub timeout: Duration,
    pub memory_mb: u64,
    pub handler: String,
    pub api_events: Vec<ApiEventDef>,
    pub sqs_events: Vec<SqsEventDef>,
    pub schedules: Vec<ScheduleDef>,
    /// Events of a type the runner does not emulate, by name and type (reported, not fired).
    pub unsupported_events: Vec<(String, String)>,
}

/// An `Api` event: a route of a REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiEventDef {
    pub name: String,
    pub path: String,
    /// Upper case, or `ANY`.
    pub method: String,
    /// The logical id of the `AWS::Serverless::Api` (SAM's implicit API when not given).
    pub rest_api: String,
}

/// An `SQS` event: an event source mapping from a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsEventDef {
    pub name: String,
    /// The queue's logical id in the template.
    pub queue: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: u32,
    pub report_batch_item_failures: bool,
    pub enabled: bool,
    /// The queue's visibility timeout in seconds (SQS's default 30 when the template sets none).
    pub visibility_timeout: u64,
}

/// A `Schedule` (or `ScheduleV2`) event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleDef {
    pub name: String,
    /// `rate(…)` or `cron(…)`, as written.
    pub expression: String,
    pub enabled: bool,
    /// The rule's constant `Input`, sent instead of the scheduled event when set.
    pub input: Option<String>,
}

/// A REST API (`AWS::Serverless::Api`) as the front serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestApiDef {
    pub logical_id: String,
    pub stage: String,
    pub stage_variables: Vec<(String, String)>,
}

/// Every function of the stack's template, with its events resolved against the stack.
pub fn read(stack: &Stack) -> Result<Vec<FunctionDef>, DefinitionError> {
    let template = stack.template();
    let globals = template
        .root()
        .pointer("/Globals/Function")
        .cloned()
        .unwrap_or(Value::Null);
    template
        .resources_of_kind("AWS::Serverless::Function")
        .map(|f| read_function(stack, &globals, f.logical_id, f.definition))
        .collect()
}

fn read_function(
    stack: &Stack,
    globals: &Value,
    logical_id: &str,
    definition: &Value,
) -> Result<FunctionDef, DefinitionError> {
    let bad = |message: String| DefinitionError::Function {
        function: logical_id.to_owned(),
        message,
    };
    let properties = definition.get("Properties").unwrap_or(&Value::Null);
    let property = |name: &str| -> Result<Option<Value>, DefinitionError> {
        match properties.get(name).or_else(|| globals.get(name)) {
            Some(v) => stack.resolve(v).map(Some).map_err(|e| bad(e.to_string())),
            None => Ok(None),
        }
    };

    let binary = definition
        .pointer("/Metadata/BuildProperties/Binary")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad("no Metadata.BuildProperties.Binary: the runner needs the binary's name".into())
        })?
        .to_owned();
    let timeout = match property("Timeout")? {
        Some(v) => number(&v).ok_or_else(|| bad(format!("Timeout {v} is not a number")))?,
        None => DEFAULT_TIMEOUT_SECONDS,
    };
    let memory_mb = match property("MemorySize")? {
        Some(v) => number(&v).ok_or_else(|| bad(format!("MemorySize {v} is not a number")))?,
        None => DEFAULT_MEMORY_MB,
    };
    let handler = match property("Handler")? {
        Some(Value::String(h)) => h,
        _ => "bootstrap".to_owned(),
    };

    let mut function = FunctionDef {
        logical_id: logical_id.to_owned(),
        binary,
        timeout: Duration::from_secs(timeout.max(1)),
        memory_mb,
        handler,
        api_events: Vec::new(),
        sqs_events: Vec::new(),
        schedules: Vec::new(),
        unsupported_events: Vec::new(),
    };

    let events = properties
        .get("Events")
        .and_then(Value::as_object)
        .into_iter()
        .flatten();
    for (name, event) in events {
        let kind = event.get("Type").and_then(Value::as_str).unwrap_or("");
        let props = event.get("Properties").unwrap_or(&Value::Null);
        let resolved = |key: &str| -> Result<Option<Value>, DefinitionError> {
            props
                .get(key)
                .map(|v| stack.resolve(v))
                .transpose()
                .map_err(|e| bad(format!("event {name}: {e}")))
        };
        match kind {
            "Api" => {
                let path = match resolved("Path")? {
                    Some(Value::String(p)) => p,
                    _ => return Err(bad(format!("event {name}: Api event without a Path"))),
                };
                let method = match resolved("Method")? {
                    Some(Value::String(m)) => m.to_ascii_uppercase(),
                    _ => return Err(bad(format!("event {name}: Api event without a Method"))),
                };
                let method = if method == "*" { "ANY".into() } else { method };
                let rest_api = props
                    .get("RestApiId")
                    .and_then(|v| v.get("Ref"))
                    .and_then(Value::as_str)
                    .unwrap_or(IMPLICIT_API)
                    .to_owned();
                function.api_events.push(ApiEventDef {
                    name: name.clone(),
                    path,
                    method,
                    rest_api,
                });
            }
            "SQS" => {
                let raw = props
                    .get("Queue")
                    .ok_or_else(|| bad(format!("event {name}: SQS event without a Queue")))?;
                let (queue, queue_url, queue_arn) = queue_of(stack, raw)
                    .ok_or_else(|| bad(format!("event {name}: queue {raw} is not in the stack")))?;
                let batch_size = match resolved("BatchSize")? {
                    Some(v) => number(&v)
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| bad(format!("event {name}: BatchSize {v}")))?,
                    None => DEFAULT_BATCH_SIZE,
                };
                let report_batch_item_failures = resolved("FunctionResponseTypes")?
                    .and_then(|v| v.as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .any(|t| t.as_str() == Some("ReportBatchItemFailures"));
                let enabled = resolved("Enabled")?.map(|v| truthy(&v)).unwrap_or(true);
                let visibility_timeout = stack
                    .template()
                    .resource(&queue)
                    .and_then(|q| q.properties.get("VisibilityTimeout"))
                    .and_then(|v| stack.resolve(v).ok())
                    .and_then(|v| number(&v))
                    .unwrap_or(30);
                function.sqs_events.push(SqsEventDef {
                    name: name.clone(),
                    queue,
                    queue_url,
                    queue_arn,
                    batch_size,
                    report_batch_item_failures,
                    enabled,
                    visibility_timeout,
                });
            }
            "Schedule" | "ScheduleV2" => {
                let key = if kind == "Schedule" {
                    "Schedule"
                } else {
                    "ScheduleExpression"
                };
                let expression = match resolved(key)? {
                    Some(Value::String(e)) => e,
                    _ => return Err(bad(format!("event {name}: {kind} without {key}"))),
                };
                let enabled = match (resolved("Enabled")?, resolved("State")?) {
                    (Some(v), _) => truthy(&v),
                    (None, Some(Value::String(state))) => state != "DISABLED",
                    _ => true,
                };
                let input = match resolved("Input")? {
                    Some(Value::String(s)) => Some(s),
                    Some(other) => Some(other.to_string()),
                    None => None,
                };
                function.schedules.push(ScheduleDef {
                    name: name.clone(),
                    expression,
                    enabled,
                    input,
                });
            }
            other => function
                .unsupported_events
                .push((name.clone(), other.to_owned())),
        }
    }
    Ok(function)
}

/// The one REST API the functions' Api events use, with its stage. `None` when no function has
/// an Api event; an error when they use more than one API (the front serves one).
pub fn rest_api(
    stack: &Stack,
    functions: &[FunctionDef],
) -> Result<Option<RestApiDef>, DefinitionError> {
    let mut ids: Vec<&str> = functions
        .iter()
        .flat_map(|f| f.api_events.iter().map(|e| e.rest_api.as_str()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let logical_id = match ids.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        many => {
            return Err(DefinitionError::Template(format!(
                "the Api events use {} REST APIs ({}); the local runner serves one",
                many.len(),
                many.join(", ")
            )));
        }
    };
    if logical_id == IMPLICIT_API {
        // SAM's implicit API is deployed at the stage "Prod".
        return Ok(Some(RestApiDef {
            logical_id: logical_id.to_owned(),
            stage: "Prod".to_owned(),
            stage_variables: Vec::new(),
        }));
    }
    let resource = stack.template().resource(logical_id).ok_or_else(|| {
        DefinitionError::Template(format!("RestApiId {logical_id} is not a resource"))
    })?;
    let properties = stack
        .resolve(resource.properties)
        .map_err(|e| DefinitionError::Template(format!("{logical_id}: {e}")))?;
    let stage = properties
        .get("StageName")
        .and_then(Value::as_str)
        .ok_or_else(|| DefinitionError::Template(format!("{logical_id}: no StageName")))?
        .to_owned();
    let stage_variables = properties
        .get("Variables")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let text = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            (k.clone(), text)
        })
        .collect();
    Ok(Some(RestApiDef {
        logical_id: logical_id.to_owned(),
        stage,
        stage_variables,
    }))
}

/// `(logical id, URL, ARN)` of the queue an SQS event names: `!GetAtt Q.Arn`, `!Ref Q` or an
/// ARN string of a queue in the stack.
fn queue_of(stack: &Stack, raw: &Value) -> Option<(String, String, String)> {
    let logical_id = raw
        .get("Fn::GetAtt")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .or_else(|| raw.get("Ref").and_then(Value::as_str))
        .map(str::to_owned)
        .or_else(|| {
            let arn = raw.as_str()?;
            stack
                .resources
                .iter()
                .find(|(_, p)| p.attributes.get("Arn").map(String::as_str) == Some(arn))
                .map(|(id, _)| id.clone())
        })?;
    let physical = stack.resources.get(&logical_id)?;
    if physical.kind != "AWS::SQS::Queue" {
        return None;
    }
    let arn = physical.attributes.get("Arn")?.clone();
    Some((logical_id, physical.reference.clone(), arn))
}

fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => !s.eq_ignore_ascii_case("false"),
        _ => true,
    }
}
