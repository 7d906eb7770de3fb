//! Files that are YAML but not manifests (a simulation scenario): one document, decoded into
//! a type, with every problem at its line, column and field, as manifests get them.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::yaml;
use super::{FieldPath, Problem, Rule, Severity, SpanMap, describe_type_error, field_path_of};

/// One parsed data file: its document as JSON, and where each field is written.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// The file as the user named it.
    pub file: String,
    /// The document (`null` for an empty file).
    pub value: Value,
    spans: SpanMap,
}

impl DataFile {
    /// Parse `text`, which must hold at most one YAML document.
    ///
    /// Messages never quote the text: a data file may hold secret values.
    pub fn parse(file: &str, text: &str) -> Result<Self, Box<Problem>> {
        let located = |message: String, hint: Option<String>, line, column| {
            Box::new(Problem {
                severity: Severity::Error,
                rule: Rule::Syntax,
                file: file.to_string(),
                line,
                column,
                object: String::new(),
                path: String::new(),
                message,
                hint,
            })
        };
        let mut documents = yaml::parse_stream(text).map_err(|error| {
            located(
                error.message,
                error.hint,
                error.position.line,
                error.position.column,
            )
        })?;
        if documents.len() > 1 {
            let second = documents[1].spans.locate(&FieldPath::root());
            return Err(located(
                "more than one YAML document".to_string(),
                Some("keep one document in this file: remove the `---` line".to_string()),
                second.line,
                second.column,
            ));
        }
        let (value, spans) = documents
            .pop()
            .map_or((Value::Null, SpanMap::default()), |d| (d.value, d.spans));
        Ok(Self {
            file: file.to_string(),
            value,
            spans,
        })
    }

    /// A problem at `path` (`pods.readyDelay`, `metrics.latency.series[2]`): placed where the
    /// field, or its nearest written parent, is.
    pub fn problem(&self, path: &str, message: impl Into<String>, hint: Option<String>) -> Problem {
        let path = FieldPath::parse(path);
        let position = self.spans.locate(&path);
        Problem {
            severity: Severity::Error,
            rule: Rule::InvalidType,
            file: self.file.clone(),
            line: position.line,
            column: position.column,
            object: String::new(),
            path: path.to_string(),
            message: message.into(),
            hint,
        }
    }

    /// Decode the document into `T` (an empty file decodes as an empty mapping). A wrong type
    /// or an unknown field is reported at its place, in the user's words.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Box<Problem>> {
        let value = match &self.value {
            Value::Null => Value::Object(Default::default()),
            value => value.clone(),
        };
        serde_path_to_error::deserialize::<_, T>(&value).map_err(|error| {
            let path = field_path_of(error.path());
            let inner = error.into_inner().to_string();
            let (message, hint) = describe_type_error(&inner, None);
            let hint = hint.or_else(|| {
                message
                    .starts_with("unknown field")
                    .then(|| "check the spelling against the documented fields".to_string())
            });
            Box::new(self.problem(&path.to_string(), message, hint))
        })
    }
}

impl std::fmt::Display for Problem {
    /// `file:line:column: error: message`, then the field and the hint, as `lint` prints them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(f, ": {}: {}", self.severity.as_str(), self.message)?;
        match (self.object.is_empty(), self.path.is_empty()) {
            (true, true) => {}
            (false, true) => write!(f, "\n  --> {}", self.object)?,
            (true, false) => write!(f, "\n  --> {}", self.path)?,
            (false, false) => write!(f, "\n  --> {}: {}", self.object, self.path)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Pods {
        #[serde(rename = "readyDelay")]
        ready_delay: Option<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Scenario {
        pods: Option<Pods>,
    }

    #[test]
    fn a_wrong_type_is_placed_and_said_in_words() {
        let file = DataFile::parse("s.yaml", "pods:\n  readyDelay: [10s]\n").unwrap();
        let problem = file.decode::<Scenario>().unwrap_err();
        assert_eq!((problem.line, problem.column), (2, 3));
        assert_eq!(problem.path, "pods.readyDelay");
        assert_eq!(
            problem.to_string(),
            "s.yaml:2:3: error: invalid type: sequence, expected a string\n  --> pods.readyDelay"
        );
        let file = DataFile::parse("s.yaml", "pods: 5\n").unwrap();
        let problem = file.decode::<Scenario>().unwrap_err();
        assert!(!problem.message.contains("struct"), "{problem}");
    }

    #[test]
    fn unknown_fields_syntax_and_streams() {
        let file = DataFile::parse("s.yaml", "pods:\n  redyDelay: 1s\n").unwrap();
        let problem = file.decode::<Scenario>().unwrap_err();
        assert_eq!((problem.line, problem.path.as_str()), (2, "pods.redyDelay"));
        assert!(problem.hint.is_some());

        let problem = DataFile::parse("s.yaml", "a: [\n").unwrap_err();
        assert_eq!(problem.rule, Rule::Syntax);
        assert!(problem.line > 0);

        let problem = DataFile::parse("s.yaml", "a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(problem.line, 3);

        let empty = DataFile::parse("s.yaml", "# nothing\n").unwrap();
        assert!(empty.decode::<Scenario>().is_ok());
    }
}
