//! Argo's own placeholders inside our templates.
//!
//! Argo Rollouts substitutes `{{ args.<name> }}` in AnalysisTemplates, and
//! `{{ templates.<name>.podTemplateHash }}`, `{{ templates.<name>.replicaset.name }}`,
//! `{{ experiment.availableAt }}` and `{{ experiment.finishedAt }}` in Experiments, when the
//! AnalysisRun or Experiment runs. Those are not ours to fill in: in a `.j2` template, each of
//! these references renders back as the placeholder Argo expects, so `{{ args.service }}` comes
//! out as `{{ args.service }}`. Names that are not identifiers work through subscripts:
//! `{{ args["service-name"] }}` renders `{{ args.service-name }}`.

use std::fmt;
use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};

/// The context variables this module provides, with the value each one holds.
pub(super) fn globals() -> [(&'static str, Value); 3] {
    [
        ("args", Value::from_object(Args)),
        ("templates", Value::from_object(Templates)),
        (
            "experiment",
            Value::from_object(Placeholder::new(
                "experiment",
                &["availableAt", "finishedAt"],
            )),
        ),
    ]
}

fn placeholder(path: &str) -> Value {
    Value::from(format!("{{{{ {path} }}}}"))
}

/// `args`: every attribute is an Argo analysis argument.
#[derive(Debug)]
struct Args;

impl Object for Args {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        Some(placeholder(&format!("args.{name}")))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{{ args }}")
    }
}

/// `templates`: every attribute is an Experiment template name.
#[derive(Debug)]
struct Templates;

impl Object for Templates {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        Some(Value::from_object(ExperimentTemplate {
            name: name.to_owned(),
        }))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }
}

/// `templates.<name>`: `podTemplateHash` and `replicaset.name`.
#[derive(Debug)]
struct ExperimentTemplate {
    name: String,
}

impl Object for ExperimentTemplate {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let prefix = format!("templates.{}", self.name);
        match key.as_str()? {
            "podTemplateHash" => Some(placeholder(&format!("{prefix}.podTemplateHash"))),
            "replicaset" => Some(Value::from_object(Placeholder {
                path: format!("{prefix}.replicaset"),
                fields: &["name"],
            })),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["podTemplateHash", "replicaset"])
    }
}

/// An object whose listed fields render as `{{ <path>.<field> }}`.
#[derive(Debug)]
struct Placeholder {
    path: String,
    fields: &'static [&'static str],
}

impl Placeholder {
    fn new(path: &str, fields: &'static [&'static str]) -> Self {
        Self {
            path: path.to_owned(),
            fields,
        }
    }
}

impl Object for Placeholder {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let field = key.as_str()?;
        self.fields
            .contains(&field)
            .then(|| placeholder(&format!("{}.{field}", self.path)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(self.fields)
    }
}
