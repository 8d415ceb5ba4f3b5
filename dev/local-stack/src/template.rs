//! Reads template.yaml: parameters, resources and each function's environment, with the
//! CloudFormation short-form tags (`!Ref`, `!GetAtt`, `!Sub`, …) turned into their long JSON form.
//!
//! The local stack and the template tests both read the template through this module, so there is
//! one reading of the one source of truth.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use serde_yaml_ng::value::{Tag, TaggedValue};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid YAML: {source}")]
    Yaml {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },
    #[error("template: {0}")]
    Shape(String),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
}

/// One entry of `Resources`.
#[derive(Debug, Clone)]
pub struct ResourceDef<'a> {
    pub logical_id: &'a str,
    pub kind: &'a str,
    pub properties: &'a Value,
    pub definition: &'a Value,
}

impl Template {
    /// The workspace's template.yaml.
    pub fn workspace_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
    }

    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.to_owned(),
            source,
        })?;
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).map_err(|source| TemplateError::Yaml {
                path: path.to_owned(),
                source,
            })?;
        Ok(Template {
            root: to_json(yaml)?,
        })
    }

    pub fn load_workspace() -> Result<Self, TemplateError> {
        Self::load(&Self::workspace_path())
    }

    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Every resource, in the template's order.
    pub fn resources(&self) -> impl Iterator<Item = ResourceDef<'_>> {
        self.root
            .get("Resources")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(logical_id, definition)| ResourceDef {
                logical_id,
                kind: definition.get("Type").and_then(Value::as_str).unwrap_or(""),
                properties: definition.get("Properties").unwrap_or(&Value::Null),
                definition,
            })
    }

    pub fn resource(&self, logical_id: &str) -> Option<ResourceDef<'_>> {
        self.resources().find(|r| r.logical_id == logical_id)
    }

    pub fn resources_of_kind<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = ResourceDef<'a>> + 'a {
        self.resources().filter(move |r| r.kind == kind)
    }

    /// Parameter defaults, as strings.
    pub fn parameter_defaults(&self) -> BTreeMap<String, String> {
        self.root
            .get("Parameters")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(name, p)| {
                let default = p.get("Default")?;
                let text = match default {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Some((name.clone(), text))
            })
            .collect()
    }

    /// A function's environment variables as written in the template: the `Globals` ones overlaid
    /// with the function's own. Values are unresolved (they may hold `Ref` and friends).
    pub fn function_environment(
        &self,
        logical_id: &str,
    ) -> Result<Map<String, Value>, TemplateError> {
        let function = self
            .resource(logical_id)
            .filter(|r| r.kind == "AWS::Serverless::Function")
            .ok_or_else(|| TemplateError::Shape(format!("no function {logical_id}")))?;
        let mut env = self
            .root
            .pointer("/Globals/Function/Environment/Variables")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(own) = function
            .properties
            .pointer("/Environment/Variables")
            .and_then(Value::as_object)
        {
            env.extend(own.clone());
        }
        Ok(env)
    }
}

/// YAML → JSON, turning `!Ref X` into `{"Ref": "X"}`, `!GetAtt A.B` into
/// `{"Fn::GetAtt": ["A", "B"]}` and `!Sub`, `!Join`, … into `{"Fn::Sub": …}`.
fn to_json(yaml: serde_yaml_ng::Value) -> Result<Value, TemplateError> {
    use serde_yaml_ng::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            serde_json::to_value(&n).map_err(|e| TemplateError::Shape(e.to_string()))?
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_yaml_ng::to_string(&other)
                        .map_err(|e| TemplateError::Shape(e.to_string()))?
                        .trim()
                        .to_owned(),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => intrinsic(*tagged)?,
    })
}

fn intrinsic(tagged: TaggedValue) -> Result<Value, TemplateError> {
    let TaggedValue { tag, value } = tagged;
    let name = tag_name(&tag);
    let inner = to_json(value)?;
    let long = match name.as_str() {
        "Ref" => "Ref".to_owned(),
        "GetAtt" => {
            if let Value::String(s) = &inner {
                let (resource, attribute) = s
                    .split_once('.')
                    .ok_or_else(|| TemplateError::Shape(format!("!GetAtt {s} has no attribute")))?;
                return Ok(serde_json::json!({ "Fn::GetAtt": [resource, attribute] }));
            }
            "Fn::GetAtt".to_owned()
        }
        other => format!("Fn::{other}"),
    };
    let mut map = Map::new();
    map.insert(long, inner);
    Ok(Value::Object(map))
}

fn tag_name(tag: &Tag) -> String {
    tag.to_string().trim_start_matches('!').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_form_tags_become_long_form() {
        let yaml = "a: !Ref X\nb: !GetAtt Q.Arn\nc: !Sub \"${AWS::StackName}-x\"\nd: [!Ref Y]\n";
        let json = to_json(serde_yaml_ng::from_str(yaml).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "a": {"Ref": "X"},
                "b": {"Fn::GetAtt": ["Q", "Arn"]},
                "c": {"Fn::Sub": "${AWS::StackName}-x"},
                "d": [{"Ref": "Y"}],
            })
        );
    }

    #[test]
    fn workspace_template_loads() {
        let template = Template::load_workspace().unwrap();
        assert!(template.resources_of_kind("AWS::DynamoDB::Table").count() >= 1);
        assert!(template.parameter_defaults().contains_key("Architecture"));
    }
}
