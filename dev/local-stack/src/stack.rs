//! Creates template.yaml's tables, queues, keys and secrets in a local AWS (moto), and resolves each
//! function's environment against what was created.
//!
//! Physical names are made from a stack name, as CloudFormation does, so every test can have a stack
//! of its own in one moto server.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types as ddb;
use aws_sdk_sqs::types::QueueAttributeName;
use rand::Rng;
use serde_json::Value;

use crate::template::{ResourceDef, Template};

pub const ACCOUNT_ID: &str = "123456789012";

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("template: {0}")]
    Template(String),
    #[error("creating {logical_id}: {message}")]
    Create { logical_id: String, message: String },
}

fn create_err(logical_id: &str, err: impl std::fmt::Display) -> StackError {
    StackError::Create {
        logical_id: logical_id.to_owned(),
        message: err.to_string(),
    }
}

/// What a created resource is called, and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Physical {
    pub kind: String,
    /// What `Ref` gives: a table name, queue URL, secret ARN, key id or alias name.
    pub reference: String,
    /// What `GetAtt` gives, by attribute name.
    pub attributes: BTreeMap<String, String>,
}

/// Options for [`Stack::create`].
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Values for template parameters, over their defaults.
    pub parameters: BTreeMap<String, String>,
    /// Secret values by logical id, instead of generated ones (e.g. the emulator's app secret).
    pub secret_values: BTreeMap<String, String>,
}

impl StackOptions {
    /// Parameters for a stack on this machine: not production mode (plain-http loopback URLs and a
    /// local token key are allowed), and a loopback public URL for the OAuth redirect.
    pub fn local(public_base_url: &str) -> Self {
        StackOptions {
            parameters: BTreeMap::from([
                ("ProductionMode".to_owned(), "false".to_owned()),
                (
                    "PublicBaseUrl".to_owned(),
                    public_base_url.trim_end_matches('/').to_owned(),
                ),
            ]),
            secret_values: BTreeMap::new(),
        }
    }
}

/// The resources of one local stack.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub parameters: BTreeMap<String, String>,
    pub resources: BTreeMap<String, Physical>,
    template: Template,
}

impl Stack {
    /// Creates every table, queue, KMS key and alias, and secret of `template` under `name`.
    pub async fn create(
        sdk: &SdkConfig,
        template: &Template,
        name: &str,
        options: StackOptions,
    ) -> Result<Stack, StackError> {
        let mut parameters = template.parameter_defaults();
        parameters.extend(options.parameters);
        let mut stack = Stack {
            name: name.to_owned(),
            parameters,
            resources: BTreeMap::new(),
            template: template.clone(),
        };
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let kms = aws_sdk_kms::Client::new(sdk);
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);

        for table in template.resources_of_kind("AWS::DynamoDB::Table") {
            let physical = create_table(&dynamodb, &stack, &table).await?;
            stack
                .resources
                .insert(table.logical_id.to_owned(), physical);
        }
        // Queues first without redrive, so a queue can name a dead-letter queue declared after it.
        let queues: Vec<_> = template.resources_of_kind("AWS::SQS::Queue").collect();
        for queue in &queues {
            let physical = create_queue(&sqs, &stack, queue).await?;
            stack
                .resources
                .insert(queue.logical_id.to_owned(), physical);
        }
        for queue in &queues {
            if let Some(redrive) = queue.properties.get("RedrivePolicy") {
                let policy = stack.resolve(redrive)?;
                let url = stack.reference(queue.logical_id)?.to_owned();
                sqs.set_queue_attributes()
                    .queue_url(url)
                    .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
                    .send()
                    .await
                    .map_err(|e| {
                        create_err(queue.logical_id, aws_sdk_sqs::error::DisplayErrorContext(e))
                    })?;
            }
        }
        for key in template.resources_of_kind("AWS::KMS::Key") {
            let physical = create_key(&kms, &stack, &key).await?;
            stack.resources.insert(key.logical_id.to_owned(), physical);
        }
        for alias in template.resources_of_kind("AWS::KMS::Alias") {
            let alias_name =
                stack.resolve_string(alias.properties.get("AliasName"), alias.logical_id)?;
            let target =
                stack.resolve_string(alias.properties.get("TargetKeyId"), alias.logical_id)?;
            kms.create_alias()
                .alias_name(&alias_name)
                .target_key_id(target)
                .send()
                .await
                .map_err(|e| {
                    create_err(alias.logical_id, aws_sdk_kms::error::DisplayErrorContext(e))
                })?;
            stack.resources.insert(
                alias.logical_id.to_owned(),
                Physical {
                    kind: alias.kind.to_owned(),
                    reference: alias_name,
                    attributes: BTreeMap::new(),
                },
            );
        }
        for secret in template.resources_of_kind("AWS::SecretsManager::Secret") {
            let value = options.secret_values.get(secret.logical_id).cloned();
            let physical = create_secret(&secrets, &stack, &secret, value).await?;
            stack
                .resources
                .insert(secret.logical_id.to_owned(), physical);
        }
        Ok(stack)
    }

    /// What `Ref` of a created resource or a parameter gives.
    pub fn reference(&self, logical_id: &str) -> Result<&str, StackError> {
        if let Some(physical) = self.resources.get(logical_id) {
            return Ok(&physical.reference);
        }
        if let Some(value) = self.parameters.get(logical_id) {
            return Ok(value);
        }
        Err(StackError::Template(format!(
            "Ref to {logical_id}, which the local stack does not create"
        )))
    }

    fn attribute(&self, logical_id: &str, attribute: &str) -> Result<&str, StackError> {
        self.resources
            .get(logical_id)
            .and_then(|p| p.attributes.get(attribute))
            .map(String::as_str)
            .ok_or_else(|| {
                StackError::Template(format!(
                    "GetAtt {logical_id}.{attribute} is unknown locally"
                ))
            })
    }

    fn pseudo(&self, name: &str) -> Option<String> {
        Some(match name {
            "AWS::StackName" => self.name.clone(),
            "AWS::Region" => crate::REGION.to_owned(),
            "AWS::AccountId" => ACCOUNT_ID.to_owned(),
            "AWS::Partition" => "aws".to_owned(),
            "AWS::URLSuffix" => "amazonaws.com".to_owned(),
            _ => return None,
        })
    }

    /// Resolves the intrinsic functions the template uses (`Ref`, `Fn::GetAtt`, `Fn::Sub`) in
    /// `value`; anything else is an error naming it.
    pub fn resolve(&self, value: &Value) -> Result<Value, StackError> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map
                    .iter()
                    .next()
                    .ok_or_else(|| StackError::Template("empty".into()))?;
                match key.as_str() {
                    "Ref" => {
                        let name = arg
                            .as_str()
                            .ok_or_else(|| StackError::Template(format!("Ref {arg}")))?;
                        let value = match self.pseudo(name) {
                            Some(v) => v,
                            None => self.reference(name)?.to_owned(),
                        };
                        Ok(Value::String(value))
                    }
                    "Fn::GetAtt" => {
                        let parts: Vec<&str> = arg
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        match parts.as_slice() {
                            [resource, attribute] => Ok(Value::String(
                                self.attribute(resource, attribute)?.to_owned(),
                            )),
                            _ => Err(StackError::Template(format!("Fn::GetAtt {arg}"))),
                        }
                    }
                    "Fn::Sub" => {
                        let text = arg
                            .as_str()
                            .ok_or_else(|| StackError::Template(format!("Fn::Sub {arg}")))?;
                        Ok(Value::String(self.substitute(text)?))
                    }
                    other if other.starts_with("Fn::") => Err(StackError::Template(format!(
                        "{other} is not supported by the local stack"
                    ))),
                    _ => Ok(Value::Object(
                        map.iter()
                            .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                            .collect::<Result<_, StackError>>()?,
                    )),
                }
            }
            Value::Object(map) => Ok(Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                    .collect::<Result<_, StackError>>()?,
            )),
            Value::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|v| self.resolve(v))
                    .collect::<Result<_, _>>()?,
            )),
            other => Ok(other.clone()),
        }
    }

    fn substitute(&self, text: &str) -> Result<String, StackError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| StackError::Template(format!("unclosed ${{ in {text:?}")))?;
            let name = &after[..end];
            let value = match (self.pseudo(name), name.split_once('.')) {
                (Some(v), _) => v,
                (None, Some((resource, attribute))) => {
                    self.attribute(resource, attribute)?.to_owned()
                }
                (None, None) => self.reference(name)?.to_owned(),
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn resolve_string(
        &self,
        value: Option<&Value>,
        logical_id: &str,
    ) -> Result<String, StackError> {
        let value =
            value.ok_or_else(|| StackError::Template(format!("{logical_id}: missing property")))?;
        match self.resolve(value)? {
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
    }

    /// A function's environment as Lambda would give it: the template's variables resolved against
    /// this stack, plus what Lambda itself sets and what reaches the local AWS endpoint.
    pub fn function_env(
        &self,
        function_logical_id: &str,
        endpoint: &str,
    ) -> Result<BTreeMap<String, String>, StackError> {
        let raw = self
            .template
            .function_environment(function_logical_id)
            .map_err(|e| StackError::Template(e.to_string()))?;
        let mut env = BTreeMap::new();
        for (name, value) in raw {
            let resolved = match self.resolve(&value)? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            env.insert(name, resolved);
        }
        env.insert("AWS_REGION".into(), crate::REGION.into());
        env.insert("AWS_DEFAULT_REGION".into(), crate::REGION.into());
        env.insert("AWS_ENDPOINT_URL".into(), endpoint.into());
        env.insert("AWS_ACCESS_KEY_ID".into(), "test".into());
        env.insert("AWS_SECRET_ACCESS_KEY".into(), "test".into());
        env.insert(
            "AWS_LAMBDA_FUNCTION_NAME".into(),
            format!("{}-{}", self.name, function_logical_id),
        );
        Ok(env)
    }

    pub fn template(&self) -> &Template {
        &self.template
    }
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    stack: &Stack,
    table: &ResourceDef<'_>,
) -> Result<Physical, StackError> {
    let id = table.logical_id;
    let props = table.properties;
    let name = format!("{}-{}", stack.name, id);
    let bad = |what: &str| StackError::Template(format!("{id}: {what}"));

    let key_schema = |v: &Value| -> Result<Vec<ddb::KeySchemaElement>, StackError> {
        v.as_array()
            .ok_or_else(|| bad("KeySchema is not a list"))?
            .iter()
            .map(|k| {
                let key_type = match k.get("KeyType").and_then(Value::as_str) {
                    Some("HASH") => ddb::KeyType::Hash,
                    Some("RANGE") => ddb::KeyType::Range,
                    _ => return Err(bad("KeyType")),
                };
                ddb::KeySchemaElement::builder()
                    .attribute_name(
                        k.get("AttributeName")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad("AttributeName"))?,
                    )
                    .key_type(key_type)
                    .build()
                    .map_err(|e| bad(&e.to_string()))
            })
            .collect()
    };

    let mut request = client
        .create_table()
        .table_name(&name)
        .billing_mode(ddb::BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(
            props.get("KeySchema").unwrap_or(&Value::Null),
        )?));
    for attribute in props
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = match attribute.get("AttributeType").and_then(Value::as_str) {
            Some("S") => ddb::ScalarAttributeType::S,
            Some("N") => ddb::ScalarAttributeType::N,
            Some("B") => ddb::ScalarAttributeType::B,
            _ => return Err(bad("AttributeType")),
        };
        request = request.attribute_definitions(
            ddb::AttributeDefinition::builder()
                .attribute_name(
                    attribute
                        .get("AttributeName")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("AttributeName"))?,
                )
                .attribute_type(kind)
                .build()
                .map_err(|e| bad(&e.to_string()))?,
        );
    }
    for index in props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let projection = match index
            .pointer("/Projection/ProjectionType")
            .and_then(Value::as_str)
        {
            Some("KEYS_ONLY") => ddb::ProjectionType::KeysOnly,
            Some("INCLUDE") => ddb::ProjectionType::Include,
            _ => ddb::ProjectionType::All,
        };
        request = request.global_secondary_indexes(
            ddb::GlobalSecondaryIndex::builder()
                .index_name(
                    index
                        .get("IndexName")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("IndexName"))?,
                )
                .set_key_schema(Some(key_schema(
                    index.get("KeySchema").unwrap_or(&Value::Null),
                )?))
                .projection(
                    ddb::Projection::builder()
                        .projection_type(projection)
                        .build(),
                )
                .build()
                .map_err(|e| bad(&e.to_string()))?,
        );
    }
    if props.pointer("/SSESpecification/SSEEnabled") == Some(&Value::Bool(true)) {
        request = request.sse_specification(ddb::SseSpecification::builder().enabled(true).build());
    }
    let created = request
        .send()
        .await
        .map_err(|e| create_err(id, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    let arn = created
        .table_description()
        .and_then(|d| d.table_arn())
        .unwrap_or_default()
        .to_owned();

    if let Some(ttl) = props.get("TimeToLiveSpecification")
        && ttl.get("Enabled") == Some(&Value::Bool(true))
        && let Some(attribute) = ttl.get("AttributeName").and_then(Value::as_str)
    {
        client
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(
                ddb::TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(true)
                    .build()
                    .map_err(|e| bad(&e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| create_err(id, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    }
    Ok(Physical {
        kind: table.kind.to_owned(),
        reference: name,
        attributes: BTreeMap::from([("Arn".to_owned(), arn)]),
    })
}

async fn create_queue(
    client: &aws_sdk_sqs::Client,
    stack: &Stack,
    queue: &ResourceDef<'_>,
) -> Result<Physical, StackError> {
    let id = queue.logical_id;
    let props = queue.properties;
    let fifo = props.get("FifoQueue") == Some(&Value::Bool(true));
    let name = match props.get("QueueName") {
        Some(v) => stack.resolve_string(Some(v), id)?,
        None if fifo => format!("{}-{}.fifo", stack.name, id),
        None => format!("{}-{}", stack.name, id),
    };
    let mut request = client.create_queue().queue_name(&name);
    let copied = [
        ("FifoQueue", QueueAttributeName::FifoQueue),
        (
            "ContentBasedDeduplication",
            QueueAttributeName::ContentBasedDeduplication,
        ),
        ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
        (
            "MessageRetentionPeriod",
            QueueAttributeName::MessageRetentionPeriod,
        ),
        ("DelaySeconds", QueueAttributeName::DelaySeconds),
        (
            "ReceiveMessageWaitTimeSeconds",
            QueueAttributeName::ReceiveMessageWaitTimeSeconds,
        ),
        ("DeduplicationScope", QueueAttributeName::DeduplicationScope),
        (
            "FifoThroughputLimit",
            QueueAttributeName::FifoThroughputLimit,
        ),
    ];
    for (property, attribute) in copied {
        if let Some(value) = props.get(property) {
            let text = match stack.resolve(value)? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            request = request.attributes(attribute, text);
        }
    }
    let created = request
        .send()
        .await
        .map_err(|e| create_err(id, aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    let url = created.queue_url().unwrap_or_default().to_owned();
    let arn = format!("arn:aws:sqs:{}:{ACCOUNT_ID}:{name}", crate::REGION);
    Ok(Physical {
        kind: queue.kind.to_owned(),
        reference: url.clone(),
        attributes: BTreeMap::from([
            ("Arn".to_owned(), arn),
            ("QueueName".to_owned(), name),
            ("QueueUrl".to_owned(), url),
        ]),
    })
}

async fn create_key(
    client: &aws_sdk_kms::Client,
    stack: &Stack,
    key: &ResourceDef<'_>,
) -> Result<Physical, StackError> {
    let id = key.logical_id;
    let description = format!("{} {}", stack.name, id);
    let created = client
        .create_key()
        .description(description)
        .send()
        .await
        .map_err(|e| create_err(id, aws_sdk_kms::error::DisplayErrorContext(e)))?;
    let metadata = created
        .key_metadata()
        .ok_or_else(|| create_err(id, "no key metadata"))?;
    let key_id = metadata.key_id().to_owned();
    let arn = metadata.arn().unwrap_or_default().to_owned();
    if key.properties.get("EnableKeyRotation") == Some(&Value::Bool(true)) {
        client
            .enable_key_rotation()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|e| create_err(id, aws_sdk_kms::error::DisplayErrorContext(e)))?;
    }
    Ok(Physical {
        kind: key.kind.to_owned(),
        reference: key_id.clone(),
        attributes: BTreeMap::from([("Arn".to_owned(), arn), ("KeyId".to_owned(), key_id)]),
    })
}

async fn create_secret(
    client: &aws_sdk_secretsmanager::Client,
    stack: &Stack,
    secret: &ResourceDef<'_>,
    value: Option<String>,
) -> Result<Physical, StackError> {
    let id = secret.logical_id;
    let props = secret.properties;
    let name = match props.get("Name") {
        Some(v) => stack.resolve_string(Some(v), id)?,
        None => format!("{}/{}", stack.name, id),
    };
    let value = match (
        value,
        props.get("SecretString"),
        props.get("GenerateSecretString"),
    ) {
        (Some(v), _, _) => v,
        (None, Some(s), _) => stack.resolve_string(Some(s), id)?,
        (None, None, Some(generate)) => {
            let length = generate
                .get("PasswordLength")
                .and_then(Value::as_u64)
                .unwrap_or(32) as usize;
            generated_secret(length)
        }
        (None, None, None) => {
            return Err(StackError::Template(format!(
                "{id}: no value to create the secret with"
            )));
        }
    };
    let mut request = client.create_secret().name(&name).secret_string(value);
    for tag in props
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(key), Some(value)) = (
            tag.get("Key").and_then(Value::as_str),
            tag.get("Value").and_then(Value::as_str),
        ) {
            request = request.tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build(),
            );
        }
    }
    let created = request
        .send()
        .await
        .map_err(|e| create_err(id, aws_sdk_secretsmanager::error::DisplayErrorContext(e)))?;
    let arn = created.arn().unwrap_or_default().to_owned();
    Ok(Physical {
        kind: secret.kind.to_owned(),
        reference: arn.clone(),
        attributes: BTreeMap::from([("Arn".to_owned(), arn), ("Name".to_owned(), name)]),
    })
}

fn generated_secret(length: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..length)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
