//! GitHub's own REST API description (`@octokit/openapi`, `api.github.com.json`, OpenAPI
//! 3.0) as the judge of every request the tests' GitHub server receives, and the source of its
//! answers.
//!
//! A request is matched to an operation by method and path template (the template with the
//! most literal segments wins, as a router would); its path and query parameters are checked
//! against their declared schemas (undeclared query parameters are refused too: GitHub would
//! ignore them, so a typo would silently change the request), and its JSON body against the
//! request body schema with the `jsonschema` crate (draft 4, which OpenAPI 3.0 schema objects
//! follow, plus `nullable`, converted below). Answers start from the operation's own example
//! for the status code, so a reporter reads the fields GitHub sends.
//!
//! Hand-written here: only the path matching and the OpenAPI-to-JSON-Schema step (`nullable`),
//! which no maintained crate does for OpenAPI 3.0 documents of this size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::{Draft, Registry, Validator};
use serde_json::{Value, json};

const SPEC_URI: &str = "urn:github-openapi";

pub(crate) struct GithubOpenApi {
    spec: &'static Value,
    registry: Registry<'static>,
    operations: Vec<Operation>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

struct Operation {
    method: String,
    template: String,
    segments: Vec<Option<String>>,
    /// JSON pointer of the path item.
    item: String,
}

/// The operation a request matched.
#[derive(Debug, Clone)]
pub(crate) struct Matched {
    /// The path template, as in the description: `/repos/{owner}/{repo}/check-runs`.
    pub(crate) template: String,
}

fn pointer_escape(text: &str) -> String {
    text.replace('~', "~0").replace('/', "~1")
}

/// A JSON pointer as a URI fragment: path templates' braces (and anything else outside
/// RFC 3986's fragment characters) percent-encoded.
fn fragment(pointer: &str) -> String {
    let mut out = String::new();
    for byte in pointer.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// OpenAPI 3.0's `nullable: true` as JSON Schema: `null` is allowed too.
fn convert_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                convert_nullable(child);
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(kind)) = map.get("type").cloned() {
                    map.insert("type".into(), json!([kind, "null"]));
                    if let Some(Value::Array(values)) = map.get_mut("enum") {
                        values.push(Value::Null);
                    }
                } else if !map.contains_key("type") {
                    let inner = Value::Object(std::mem::take(map));
                    map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(convert_nullable),
        _ => {}
    }
}

impl GithubOpenApi {
    /// The description from the npm cache, loaded once; `None` when the packages are missing
    /// (see [`super::npm::prefix`]).
    pub(crate) fn get() -> Option<&'static GithubOpenApi> {
        static LOADED: OnceLock<Option<GithubOpenApi>> = OnceLock::new();
        LOADED
            .get_or_init(|| {
                let prefix = super::npm::prefix()?;
                let mut spec = super::npm::read_json(
                    &prefix,
                    "@octokit/openapi/generated/api.github.com.json",
                );
                convert_nullable(&mut spec);
                let spec: &'static Value = Box::leak(Box::new(spec));
                let registry = Registry::new()
                    .draft(Draft::Draft4)
                    .add(SPEC_URI, spec)
                    .expect("register the description")
                    .prepare()
                    .expect("index the description");
                let mut operations = Vec::new();
                for (template, item) in spec["paths"].as_object().expect("paths") {
                    for method in ["get", "post", "patch", "put", "delete"] {
                        if item.get(method).is_some() {
                            operations.push(Operation {
                                method: method.to_uppercase(),
                                template: template.clone(),
                                segments: template
                                    .split('/')
                                    .map(|s| {
                                        (!(s.starts_with('{') && s.ends_with('}')))
                                            .then(|| s.to_string())
                                    })
                                    .collect(),
                                item: format!("/paths/{}", pointer_escape(template)),
                            });
                        }
                    }
                }
                Some(GithubOpenApi {
                    spec,
                    registry,
                    operations,
                    validators: Mutex::new(HashMap::new()),
                })
            })
            .as_ref()
    }

    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => self.spec.pointer(pointer).unwrap_or(&Value::Null),
            None => value,
        }
    }

    fn validator(&self, pointer: &str) -> Arc<Validator> {
        let mut cache = self.validators.lock().unwrap();
        cache
            .entry(pointer.to_string())
            .or_insert_with(|| {
                Arc::new(
                    jsonschema::options()
                        .with_draft(Draft::Draft4)
                        .with_registry(&self.registry)
                        .should_validate_formats(true)
                        .build(&json!({ "$ref": format!("{SPEC_URI}#{}", fragment(pointer)) }))
                        .unwrap_or_else(|e| panic!("the schema at {pointer}: {e}")),
                )
            })
            .clone()
    }

    fn errors(&self, pointer: &str, instance: &Value) -> Vec<String> {
        self.validator(pointer)
            .iter_errors(instance)
            .map(|e| format!("{} at `{}`", e, e.instance_path()))
            .collect()
    }

    /// Check one request: `Ok` with the operation, or every reason GitHub would refuse it.
    pub(crate) fn check(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Matched, Vec<String>> {
        let segments: Vec<&str> = path.split('/').collect();
        let operation = self
            .operations
            .iter()
            .filter(|op| op.method == method && op.segments.len() == segments.len())
            .filter(|op| {
                op.segments
                    .iter()
                    .zip(&segments)
                    .all(|(want, got)| match want {
                        Some(literal) => literal == got,
                        None => !got.is_empty(),
                    })
            })
            .max_by_key(|op| op.segments.iter().filter(|s| s.is_some()).count())
            .ok_or_else(|| vec![format!("no operation `{method} {path}` in GitHub's API")])?;
        let op_pointer = format!("{}/{}", operation.item, method.to_lowercase());
        let op = self.spec.pointer(&op_pointer).unwrap();
        let mut problems = Vec::new();

        // Parameters: the path item's, then the operation's.
        let mut parameters: Vec<(String, &Value)> = Vec::new();
        for (owner, list) in [
            (
                operation.item.clone(),
                &self.spec.pointer(&operation.item).unwrap()["parameters"],
            ),
            (op_pointer.clone(), &op["parameters"]),
        ] {
            for (i, parameter) in list.as_array().into_iter().flatten().enumerate() {
                let pointer = match parameter["$ref"].as_str() {
                    Some(r) => r.trim_start_matches('#').to_string(),
                    None => format!("{owner}/parameters/{i}"),
                };
                parameters.push((pointer, self.resolve(parameter)));
            }
        }
        let coerce = |schema: &Value, text: &str| -> Value {
            match schema["type"].as_str() {
                Some("integer") => text.parse::<i64>().map(Value::from).unwrap_or(json!(text)),
                Some("number") => text.parse::<f64>().map(Value::from).unwrap_or(json!(text)),
                Some("boolean") => match text {
                    "true" => json!(true),
                    "false" => json!(false),
                    _ => json!(text),
                },
                _ => json!(text),
            }
        };
        for (i, want) in operation.segments.iter().enumerate() {
            if want.is_some() {
                continue;
            }
            let name = operation
                .template
                .split('/')
                .nth(i)
                .unwrap()
                .trim_matches(['{', '}']);
            let Some((pointer, parameter)) = parameters
                .iter()
                .find(|(_, p)| p["in"] == "path" && p["name"] == name)
            else {
                problems.push(format!("path parameter `{name}` is not described"));
                continue;
            };
            let value = coerce(&parameter["schema"], segments[i]);
            for error in self.errors(&format!("{pointer}/schema"), &value) {
                problems.push(format!("path parameter `{name}`: {error}"));
            }
        }
        for (name, text) in query {
            match parameters
                .iter()
                .find(|(_, p)| p["in"] == "query" && p["name"] == name.as_str())
            {
                None => problems.push(format!(
                    "query parameter `{name}` is not a parameter of {}",
                    op["operationId"]
                )),
                Some((pointer, parameter)) => {
                    let value = coerce(&parameter["schema"], text);
                    for error in self.errors(&format!("{pointer}/schema"), &value) {
                        problems.push(format!("query parameter `{name}`: {error}"));
                    }
                }
            }
        }
        for (_, parameter) in &parameters {
            if parameter["in"] == "query"
                && parameter["required"] == true
                && !query.iter().any(|(k, _)| parameter["name"] == k.as_str())
            {
                problems.push(format!(
                    "query parameter `{}` is required",
                    parameter["name"]
                ));
            }
        }

        // The body.
        let request_body = self.resolve(&op["requestBody"]);
        match (
            request_body.pointer("/content/application~1json/schema"),
            body,
        ) {
            (Some(_), Some(body)) => {
                let pointer = format!("{op_pointer}/requestBody/content/application~1json/schema");
                let pointer = match op["requestBody"]["$ref"].as_str() {
                    Some(r) => format!(
                        "{}/content/application~1json/schema",
                        r.trim_start_matches('#')
                    ),
                    None => pointer,
                };
                for error in self.errors(&pointer, body) {
                    problems.push(format!("body: {error}"));
                }
            }
            (Some(_), None) if request_body["required"] == true => {
                problems.push("a JSON body is required".into())
            }
            (None, Some(body)) if !body.is_null() => {
                problems.push(format!("{} takes no JSON body", op["operationId"]))
            }
            _ => {}
        }
        if problems.is_empty() {
            Ok(Matched {
                template: operation.template.clone(),
            })
        } else {
            Err(problems)
        }
    }

    /// The operation's first example answer for `status`, with its `$ref`s resolved.
    pub(crate) fn example(&self, method: &str, template: &str, status: u16) -> Option<Value> {
        let pointer = format!(
            "/paths/{}/{}/responses/{status}",
            pointer_escape(template),
            method.to_lowercase()
        );
        let response = self.resolve(self.spec.pointer(&pointer)?);
        let examples = response.pointer("/content/application~1json/examples")?;
        let first = examples.as_object()?.values().next()?;
        self.resolve(first).get("value").cloned()
    }

    /// Check an answer against the operation's response schema for `status`, leaving out what
    /// GitHub's own example for it gets wrong too (some examples do not follow their schema:
    /// a `requested_teams` entry without `type`), compared with array indices ignored.
    pub(crate) fn check_answer(
        &self,
        method: &str,
        template: &str,
        status: u16,
        body: &Value,
    ) -> Vec<String> {
        let normal = |error: &String| {
            let indices = regex::Regex::new(r"/\d+").unwrap();
            indices.replace_all(error, "/*").into_owned()
        };
        let known: Vec<String> = self
            .example(method, template, status)
            .map(|example| self.check_response(method, template, status, &example))
            .unwrap_or_default()
            .iter()
            .map(normal)
            .collect();
        self.check_response(method, template, status, body)
            .into_iter()
            .filter(|error| !known.contains(&normal(error)))
            .collect()
    }

    /// Check an answer against the operation's response schema for `status`.
    fn check_response(
        &self,
        method: &str,
        template: &str,
        status: u16,
        body: &Value,
    ) -> Vec<String> {
        let mut pointer = format!(
            "/paths/{}/{}/responses/{status}",
            pointer_escape(template),
            method.to_lowercase()
        );
        let Some(response) = self.spec.pointer(&pointer) else {
            return vec![format!("{method} {template} does not answer {status}")];
        };
        if let Some(r) = response["$ref"].as_str() {
            pointer = r.trim_start_matches('#').to_string();
        }
        let schema = format!("{pointer}/content/application~1json/schema");
        if self.spec.pointer(&schema).is_none() {
            return Vec::new();
        }
        self.errors(&schema, body)
    }
}
