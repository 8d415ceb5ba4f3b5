//! template.yaml is the one source of truth: these tests read it and check that it declares and
//! grants exactly what each function uses (shared::resources), that queues and tables carry the
//! settings the pipeline relies on, that cfn-lint passes, and that the local stack creates
//! whatever it declares.

use std::collections::BTreeSet;

use local_stack::testing::TestStack;
use local_stack::{Moto, Stack, StackOptions, Template};
use serde_json::{Value, json};
use threadstorm::resources::{Access, FUNCTIONS, FunctionSpec, Kind, Resource, SECRET_ROTATION};

fn template() -> Template {
    Template::load_workspace().expect("template.yaml loads")
}

fn function<'a>(t: &'a Template, spec: &FunctionSpec) -> &'a Value {
    let f = t
        .resource(spec.logical_id)
        .unwrap_or_else(|| panic!("{} is not in template.yaml", spec.logical_id));
    assert_eq!(f.kind, "AWS::Serverless::Function", "{}", spec.logical_id);
    f.definition
}

/// The logical ids a value refers to through Ref, GetAtt or Sub.
fn referenced(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("Ref", Value::String(id)) => {
                        out.insert(id.clone());
                    }
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        if let Some(Value::String(id)) = parts.first() {
                            out.insert(id.clone());
                        }
                    }
                    ("Fn::Sub", Value::String(text)) => {
                        for piece in text.split("${").skip(1) {
                            if let Some(name) = piece.split('}').next() {
                                out.insert(name.split('.').next().unwrap_or(name).to_owned());
                            }
                        }
                    }
                    _ => referenced(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| referenced(v, out)),
        _ => {}
    }
}

fn refs(value: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    referenced(value, &mut out);
    out
}

/// What the function's policies grant on `resource`, as a set of access levels.
fn grants(policies: &[Value], resource: Resource) -> BTreeSet<&'static str> {
    let id = resource.logical_id();
    let mut out = BTreeSet::new();
    for policy in policies {
        let Some((name, args)) = policy.as_object().and_then(|m| m.iter().next()) else {
            continue;
        };
        if !refs(args).contains(id) {
            continue;
        }
        match name.as_str() {
            "DynamoDBReadPolicy" => out.insert("table-read"),
            "DynamoDBCrudPolicy" => out.insert("table-write"),
            "SQSSendMessagePolicy" => out.insert("queue-send"),
            "AWSSecretsManagerGetSecretValuePolicy" => out.insert("secret-read"),
            "Statement" => {
                for statement in args.as_array().into_iter().flatten() {
                    if !refs(&statement["Resource"]).contains(id) {
                        continue;
                    }
                    let actions: BTreeSet<&str> = match &statement["Action"] {
                        Value::String(a) => [a.as_str()].into(),
                        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                        _ => BTreeSet::new(),
                    };
                    // Counting is UpdateItem and PutItem and nothing else on the table; any
                    // other DynamoDB action in a statement is a grant this test does not know.
                    let dynamodb: BTreeSet<&str> = actions
                        .iter()
                        .copied()
                        .filter(|a| a.starts_with("dynamodb:"))
                        .collect();
                    if dynamodb == BTreeSet::from(["dynamodb:PutItem", "dynamodb:UpdateItem"]) {
                        out.insert("table-count");
                    } else if !dynamodb.is_empty() {
                        out.insert("table-other");
                    }
                    if actions.contains("kms:GenerateDataKey") && actions.contains("kms:Decrypt") {
                        out.insert("key-seal");
                    } else if actions.contains("kms:Decrypt") {
                        out.insert("key-open");
                    }
                    if actions.contains("secretsmanager:RotateSecret")
                        && actions.contains("secretsmanager:DescribeSecret")
                    {
                        out.insert("secret-start-rotation");
                    }
                    if actions.contains("secretsmanager:PutSecretValue")
                        && actions.contains("secretsmanager:UpdateSecretVersionStage")
                    {
                        out.insert("secret-rotate");
                    }
                }
                true
            }
            other => panic!("policy {other} is not understood by this test: extend it"),
        };
    }
    out
}

fn expected_grant(access: Access) -> Option<&'static str> {
    match access {
        Access::Read => Some("table-read"),
        Access::ReadWrite => Some("table-write"),
        Access::Count => Some("table-count"),
        Access::Send => Some("queue-send"),
        Access::ReadSecret => Some("secret-read"),
        Access::Rotate => Some("secret-rotate"),
        Access::StartRotation => Some("secret-start-rotation"),
        Access::Seal => Some("key-seal"),
        Access::Open => Some("key-open"),
        Access::Consume => None,
    }
}

#[test]
fn every_function_is_declared_once_with_its_binary() {
    let t = template();
    let declared: BTreeSet<&str> = t
        .resources_of_kind("AWS::Serverless::Function")
        .map(|r| r.logical_id)
        .collect();
    let expected: BTreeSet<&str> = FUNCTIONS.iter().map(|f| f.logical_id).collect();
    assert_eq!(declared, expected);
    for spec in FUNCTIONS {
        let f = function(&t, spec);
        assert_eq!(
            f["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{}",
            spec.name
        );
        assert_eq!(
            f["Metadata"]["BuildProperties"]["Binary"], spec.name,
            "{}",
            spec.name
        );
        let manifest = local_stack::moto::workspace_root()
            .join("functions")
            .join(spec.name)
            .join("Cargo.toml");
        assert!(manifest.exists(), "functions/{}/Cargo.toml", spec.name);
    }
    let globals = &t.root()["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"], json!([{"Ref": "Architecture"}]));
    assert_eq!(t.parameter_defaults()["Architecture"], "arm64");
}

#[test]
fn each_function_gets_exactly_the_resources_it_reads_and_is_granted_exactly_those() {
    let t = template();
    for spec in FUNCTIONS {
        let f = function(&t, spec);
        let env = t.function_environment(spec.logical_id).unwrap();
        let policies = f["Properties"]["Policies"]
            .as_array()
            .cloned()
            .unwrap_or_default();

        for need in spec.needs {
            let id = need.resource.logical_id();
            let declared = t
                .resource(id)
                .unwrap_or_else(|| panic!("{id} is not declared"));
            let kind = match need.resource.kind() {
                Kind::Table => "AWS::DynamoDB::Table",
                Kind::Queue => "AWS::SQS::Queue",
                Kind::Secret => "AWS::SecretsManager::Secret",
                Kind::Key => "AWS::KMS::Key",
            };
            assert_eq!(declared.kind, kind, "{id}");

            match expected_grant(need.access) {
                Some(grant) => {
                    let var = need.resource.env_var();
                    let value = env
                        .get(var)
                        .unwrap_or_else(|| panic!("{}: {var} is not set", spec.name));
                    assert_eq!(
                        refs(value),
                        BTreeSet::from([id.to_owned()]),
                        "{}: {var}",
                        spec.name
                    );
                    let given = grants(&policies, need.resource);
                    // A resource may be needed in more than one way (read and start rotation).
                    let _ = grant;
                    let wanted: BTreeSet<&str> = spec
                        .needs
                        .iter()
                        .filter(|n| n.resource == need.resource)
                        .filter_map(|n| expected_grant(n.access))
                        .collect();
                    assert_eq!(given, wanted, "{}: grant on {id}", spec.name);
                }
                None => {
                    let events = f["Properties"]["Events"]
                        .as_object()
                        .cloned()
                        .unwrap_or_default();
                    let mapping = events
                        .values()
                        .find(|e| {
                            e["Type"] == "SQS" && refs(&e["Properties"]["Queue"]).contains(id)
                        })
                        .unwrap_or_else(|| panic!("{} has no SQS event on {id}", spec.name));
                    let batch = mapping["Properties"]["BatchSize"].as_i64().unwrap_or(10);
                    assert!(
                        (1..=10).contains(&batch),
                        "{}: FIFO batch size {batch}",
                        spec.name
                    );
                    assert_eq!(
                        mapping["Properties"]["FunctionResponseTypes"],
                        json!(["ReportBatchItemFailures"]),
                        "{}: partial batch responses",
                        spec.name
                    );
                }
            }
        }

        // Nothing beyond the needs: no stray environment reference and no stray grant.
        let needed: BTreeSet<String> = spec
            .needs
            .iter()
            .map(|n| n.resource.logical_id().to_owned())
            .collect();
        let parameters: BTreeSet<String> = t.parameter_defaults().into_keys().collect();
        for (var, value) in &env {
            for id in refs(value) {
                assert!(
                    needed.contains(&id) || parameters.contains(&id),
                    "{}: {var} refers to {id}, which the function does not declare",
                    spec.name
                );
            }
        }
        // Starting a rotation (RotateSecret) also needs lambda:InvokeFunction on the rotation
        // function, which Secrets Manager then invokes: granted with StartRotation, and only then.
        let starts_rotation = spec.needs.iter().any(|n| n.access == Access::StartRotation);
        let policies = Value::Array(policies);
        let invokes_rotation = serde_json::to_string(&policies)
            .unwrap()
            .contains("lambda:InvokeFunction");
        assert_eq!(
            starts_rotation, invokes_rotation,
            "{}: lambda:InvokeFunction on the rotation function goes with StartRotation",
            spec.name
        );
        let granted = refs(&policies);
        for id in granted {
            assert!(
                needed.contains(&id) || (starts_rotation && id == SECRET_ROTATION.logical_id),
                "{}: granted {id}, which it does not declare",
                spec.name
            );
        }
    }
}

#[test]
fn queues_are_fifo_with_fifo_dead_letter_queues_and_long_enough_visibility() {
    let t = template();
    for spec in FUNCTIONS {
        let timeout = function(&t, spec)["Properties"]["Timeout"]
            .as_i64()
            .or_else(|| t.root()["Globals"]["Function"]["Timeout"].as_i64())
            .unwrap();
        for need in spec.needs.iter().filter(|n| n.access == Access::Consume) {
            let queue = t.resource(need.resource.logical_id()).unwrap().properties;
            assert_eq!(queue["FifoQueue"], true, "{:?}", need.resource);
            let visibility = queue["VisibilityTimeout"].as_i64().unwrap();
            assert!(
                visibility >= 6 * timeout,
                "{:?}: {visibility} < 6 x {timeout}",
                need.resource
            );
            let redrive = &queue["RedrivePolicy"];
            assert!(redrive["maxReceiveCount"].as_i64().unwrap() >= 5);
            let dlq_id = refs(&redrive["deadLetterTargetArn"])
                .into_iter()
                .next()
                .unwrap();
            let dlq = t.resource(&dlq_id).unwrap().properties;
            assert_eq!(dlq["FifoQueue"], true, "{dlq_id} must be FIFO");
            assert_eq!(
                dlq["MessageRetentionPeriod"], 1209600,
                "{dlq_id} keeps messages 14 days"
            );
            assert_eq!(queue["SqsManagedSseEnabled"], true);
        }
    }
}

#[test]
fn tables_are_on_demand_encrypted_recoverable_and_expire_by_ttl() {
    let t = template();
    let tables: Vec<_> = t.resources_of_kind("AWS::DynamoDB::Table").collect();
    assert_eq!(
        tables.len(),
        Resource::ALL
            .iter()
            .filter(|r| r.kind() == Kind::Table)
            .count(),
        "every table in the template is a Resource in shared::resources"
    );
    for table in tables {
        let p = table.properties;
        assert_eq!(p["BillingMode"], "PAY_PER_REQUEST", "{}", table.logical_id);
        assert_eq!(
            p["TimeToLiveSpecification"]["Enabled"], true,
            "{}",
            table.logical_id
        );
        assert_eq!(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            true
        );
        assert_eq!(p["SSESpecification"]["SSEEnabled"], true);
        assert_eq!(table.definition["DeletionPolicy"], "Retain");
    }
}

#[test]
fn key_rotates_secrets_are_generated_and_the_api_is_rest_with_schedules() {
    let t = template();
    let key = t.resource("TokenKey").unwrap();
    assert_eq!(key.properties["EnableKeyRotation"], true);
    assert!(
        t.resources_of_kind("AWS::KMS::Alias")
            .any(|a| refs(&a.properties["TargetKeyId"]).contains("TokenKey"))
    );
    for secret in t.resources_of_kind("AWS::SecretsManager::Secret") {
        assert!(
            secret.properties["GenerateSecretString"].is_object(),
            "{}: no value in the template",
            secret.logical_id
        );
    }
    // REST (v1) API, so WAF can be attached.
    assert_eq!(
        t.resource("ThreadStormApi").unwrap().kind,
        "AWS::Serverless::Api"
    );
    for (spec, routes) in [
        (
            &threadstorm::resources::OAUTH,
            &["/oauth/start", "/oauth/callback", "/oauth/logout"][..],
        ),
        (
            &threadstorm::resources::WEBHOOKS,
            &[
                "/webhooks/threads",
                "/meta/deauthorize",
                "/meta/data-deletion",
            ][..],
        ),
        (&threadstorm::resources::API, &["/", "/v1/{proxy+}"][..]),
    ] {
        let events = function(&t, spec)["Properties"]["Events"]
            .as_object()
            .unwrap()
            .clone();
        for route in routes {
            assert!(
                events.values().any(|e| e["Type"] == "Api"
                    && e["Properties"]["Path"] == *route
                    && e["Properties"]["RestApiId"] == json!({"Ref": "ThreadStormApi"})),
                "{}: route {route}",
                spec.name
            );
        }
    }
    for spec in [
        &threadstorm::resources::SCHEDULER,
        &threadstorm::resources::TOKEN_REFRESHER,
    ] {
        let events = function(&t, spec)["Properties"]["Events"]
            .as_object()
            .unwrap()
            .clone();
        assert!(
            events.values().any(|e| e["Type"] == "Schedule"),
            "{} has a schedule",
            spec.name
        );
    }
}

#[test]
fn every_generated_secret_rotates_on_a_schedule_that_secrets_manager_may_invoke() {
    use threadstorm::rotation::kind::{KIND_TAG, SecretKind};

    let t = template();
    let rotator = threadstorm::resources::SECRET_ROTATION.logical_id;
    let schedules: Vec<_> = t
        .resources_of_kind("AWS::SecretsManager::RotationSchedule")
        .collect();
    let mut scheduled = BTreeSet::new();
    for secret in t.resources_of_kind("AWS::SecretsManager::Secret") {
        let tag = secret.properties["Tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|tag| tag["Key"] == KIND_TAG)
            .and_then(|tag| tag["Value"].as_str())
            .unwrap_or_else(|| panic!("{}: no {KIND_TAG} tag", secret.logical_id));
        let kind = SecretKind::from_tag(tag)
            .unwrap_or_else(|| panic!("{}: unknown kind {tag}", secret.logical_id));
        let own: Vec<_> = schedules
            .iter()
            .filter(|s| refs(&s.properties["SecretId"]).contains(secret.logical_id))
            .collect();
        if kind.generation().is_none() {
            assert!(
                own.is_empty(),
                "{}: rotated by hand, no schedule",
                secret.logical_id
            );
            continue;
        }
        assert_eq!(own.len(), 1, "{}: one rotation schedule", secret.logical_id);
        let schedule = own[0];
        let p = schedule.properties;
        assert_eq!(
            p["RotationLambdaARN"],
            json!({"Fn::GetAtt": [rotator, "Arn"]}),
            "{}",
            schedule.logical_id
        );
        assert_eq!(
            p["RotateImmediatelyOnUpdate"], false,
            "{}: a deploy never rotates",
            schedule.logical_id
        );
        let expression = p["RotationRules"]["ScheduleExpression"]
            .as_str()
            .unwrap_or("");
        assert!(
            expression.starts_with("rate(") && expression.ends_with(" days)"),
            "{}: {expression}",
            schedule.logical_id
        );

        // Created only after Secrets Manager may invoke the function, from this account only.
        let depends: Vec<String> = match &schedule.definition["DependsOn"] {
            Value::String(one) => vec![one.clone()],
            Value::Array(many) => many
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let permission = depends
            .iter()
            .filter_map(|id| t.resource(id))
            .find(|r| r.kind == "AWS::Lambda::Permission")
            .unwrap_or_else(|| {
                panic!(
                    "{} does not depend on a Lambda permission",
                    schedule.logical_id
                )
            });
        let q = permission.properties;
        assert_eq!(q["Principal"], "secretsmanager.amazonaws.com");
        assert_eq!(q["Action"], "lambda:InvokeFunction");
        assert_eq!(q["SourceAccount"], json!({"Ref": "AWS::AccountId"}));
        assert!(refs(&q["FunctionName"]).contains(rotator));
        scheduled.insert(secret.logical_id.to_owned());
    }
    // Exactly the secrets the rotation function is declared (and granted) to rotate.
    let rotated: BTreeSet<String> = threadstorm::resources::SECRET_ROTATION
        .needs
        .iter()
        .filter(|n| n.access == Access::Rotate)
        .map(|n| n.resource.logical_id().to_owned())
        .collect();
    assert_eq!(scheduled, rotated);
    assert_eq!(schedules.len(), rotated.len(), "no stray schedule");

    // GetRandomPassword is the only action granted beyond those secrets.
    let policies = function(&t, &threadstorm::resources::SECRET_ROTATION)["Properties"]["Policies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for statement in policies
        .iter()
        .filter_map(|p| p.get("Statement"))
        .flat_map(|s| s.as_array().cloned().unwrap_or_default())
    {
        if statement["Resource"] == "*" {
            assert_eq!(statement["Action"], "secretsmanager:GetRandomPassword");
        }
    }
}

#[test]
fn template_passes_cfn_lint() {
    let cfn_lint = Moto::venv().join("bin/cfn-lint");
    assert!(
        cfn_lint.exists(),
        "cfn-lint is not installed at {}: run ./scripts/test, which creates .venv with it",
        cfn_lint.display()
    );
    let output = std::process::Command::new(&cfn_lint)
        .arg(Template::workspace_path())
        .output()
        .expect("cfn-lint runs");
    assert!(
        output.status.success(),
        "cfn-lint found problems:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Each HTTP function's per-caller limit (and the webhooks' signed_request age) is a parameter
/// an operator sets at deploy time, with the code's default and the bounds the code accepts, so
/// `sam deploy` refuses a value the function would refuse at start.
#[test]
fn each_http_function_takes_its_rate_limit_from_a_parameter_the_code_accepts() {
    use threadstorm::rate_limit::{MAX_PER_MINUTE, Scope};
    use threadstorm::webhooks::signed_request::{DEFAULT_MAX_AGE_SECONDS, MAX_AGE_SECONDS_RANGE};
    let t = template();
    let parameter = |spec: &FunctionSpec, var: &str| {
        let env = t.function_environment(spec.logical_id).unwrap();
        let value = env
            .get(var)
            .unwrap_or_else(|| panic!("{}: {var} is not set", spec.name));
        let name = value["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: {var} is not a parameter", spec.name));
        t.root()["Parameters"][name].clone()
    };
    for scope in Scope::ALL {
        let spec = FunctionSpec::by_name(scope.service()).unwrap();
        let p = parameter(spec, scope.env_var());
        assert_eq!(p["Type"], "Number", "{}", scope.env_var());
        assert_eq!(p["Default"], json!(scope.default_per_minute()));
        assert_eq!(p["MinValue"], json!(1));
        assert_eq!(p["MaxValue"], json!(MAX_PER_MINUTE));
        // Only the function that counts the scope reads its variable.
        for other in FUNCTIONS.iter().filter(|f| f.name != scope.service()) {
            let env = t.function_environment(other.logical_id).unwrap();
            assert!(!env.contains_key(scope.env_var()), "{}", other.name);
        }
    }
    let p = parameter(
        &threadstorm::resources::WEBHOOKS,
        "SIGNED_REQUEST_MAX_AGE_SECONDS",
    );
    assert_eq!(p["Default"], json!(DEFAULT_MAX_AGE_SECONDS));
    assert_eq!(p["MinValue"], json!(MAX_AGE_SECONDS_RANGE.start()));
    assert_eq!(p["MaxValue"], json!(MAX_AGE_SECONDS_RANGE.end()));
}

#[tokio::test]
async fn every_function_configures_itself_from_the_local_stack() {
    let t = TestStack::new().await;
    for spec in FUNCTIONS {
        let config = t
            .config(spec)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        let env = t.env(spec);
        for resource in spec.env_resources() {
            let physical = config.resource(resource).unwrap();
            assert_eq!(physical, env[resource.env_var()], "{}", spec.name);
            let created = &t.stack.resources[resource.logical_id()];
            assert!(
                created.reference == physical || created.attributes.values().any(|a| a == physical),
                "{}: {physical} is not what the stack created for {:?}",
                spec.name,
                resource
            );
        }
    }
}

#[tokio::test]
async fn local_stack_creates_every_declared_resource_and_a_newly_added_table() {
    let path = std::env::temp_dir().join(format!(
        "template-{}.yaml",
        local_stack::testing::unique_stack_name()
    ));
    let original = std::fs::read_to_string(Template::workspace_path()).unwrap();
    let extra = "Resources:\n  ExtraTable:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      BillingMode: PAY_PER_REQUEST\n      AttributeDefinitions:\n        - AttributeName: id\n          AttributeType: S\n      KeySchema:\n        - AttributeName: id\n          KeyType: HASH\n";
    std::fs::write(&path, original.replacen("Resources:\n", extra, 1)).unwrap();
    let template = Template::load(&path).unwrap();
    let _ = std::fs::remove_file(&path);

    let moto = Moto::shared();
    let sdk = moto.sdk_config();
    let name = local_stack::testing::unique_stack_name();
    let stack = Stack::create(&sdk, &template, &name, StackOptions::default())
        .await
        .unwrap();

    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let tables = dynamodb
        .list_tables()
        .send()
        .await
        .unwrap()
        .table_names
        .unwrap_or_default();
    for table in template.resources_of_kind("AWS::DynamoDB::Table") {
        let physical = stack.reference(table.logical_id).unwrap();
        assert!(
            tables.iter().any(|t| t == physical),
            "{} was not created",
            table.logical_id
        );
    }
    assert!(tables.contains(&format!("{name}-ExtraTable")));

    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queues = sqs
        .list_queues()
        .queue_name_prefix(&name)
        .send()
        .await
        .unwrap()
        .queue_urls
        .unwrap_or_default();
    assert_eq!(
        queues.len(),
        template.resources_of_kind("AWS::SQS::Queue").count()
    );

    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    for secret in template.resources_of_kind("AWS::SecretsManager::Secret") {
        let arn = stack.reference(secret.logical_id).unwrap();
        let value = secrets
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .unwrap();
        assert!(
            value.secret_string().is_some_and(|v| v.len() >= 32),
            "{}",
            secret.logical_id
        );
    }
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key = stack.reference("TokenKey").unwrap();
    let rotation = kms
        .get_key_rotation_status()
        .key_id(key)
        .send()
        .await
        .unwrap();
    assert!(rotation.key_rotation_enabled());
}
