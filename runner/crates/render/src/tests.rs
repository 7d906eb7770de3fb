use serde_json::json;

use super::*;

fn context(values_yaml: &str) -> Context {
    let mut values = Values::new();
    values
        .merge_yaml(Path::new("values.yaml"), values_yaml)
        .unwrap();
    Context::new(values)
}

fn render_one_file(name: &str, text: &str, context: &Context) -> Result<String, RenderError> {
    let files = [SourceFile::new(name, text)];
    render(&files, context).map(|mut out| out.remove(0).text)
}

fn ok(text: &str, values_yaml: &str) -> String {
    render_one_file("t/x.yaml.j2", text, &context(values_yaml)).unwrap()
}

fn err(text: &str, values_yaml: &str) -> String {
    render_one_file("t/x.yaml.j2", text, &context(values_yaml))
        .unwrap_err()
        .to_string()
}

#[test]
fn values_are_not_escaped_in_yaml_templates() {
    assert_eq!(
        ok(
            "name: {{ values.name }}\nport: {{ values.port }}\n",
            "name: web\nport: 80"
        ),
        "name: web\nport: 80\n"
    );
}

#[test]
fn booleans_and_null_print_as_yaml() {
    assert_eq!(
        ok(
            "a: {{ values.a }}\nb: {{ values.b }}\nc: {{ values.c }}\nd: {{ values.d }}\n",
            "a: true\nb: false\nc: null\nd: 1.5"
        ),
        "a: true\nb: false\nc: null\nd: 1.5\n"
    );
}

#[test]
fn block_tags_leave_no_blank_lines_and_the_final_newline_stays() {
    let template = "a: 1\n  {% if values.on %}\nb: 2\n  {% endif %}\nc: 3\n";
    assert_eq!(ok(template, "on: true"), "a: 1\nb: 2\nc: 3\n");
    assert_eq!(ok(template, "on: false"), "a: 1\nc: 3\n");
}

#[test]
fn an_undefined_value_names_file_line_and_variable() {
    let template = "apiVersion: v1\nkind: ConfigMap\ndata:\n  tag: {{ values.image.tag }}\n";
    assert_eq!(
        err(template, "image: {repository: nginx}"),
        "t/x.yaml.j2:4: undefined value `values.image.tag`\n\n\
         hint: pass it with `--set image.tag=...` or in a values file (`--values FILE`)"
    );
}

#[test]
fn an_undefined_parent_is_named_by_the_whole_lookup() {
    assert_eq!(
        err("a: 1\nb: {{ values.image.tag }}\n", ""),
        "t/x.yaml.j2:2: undefined value `values.image.tag`\n\n\
         hint: pass it with `--set image.tag=...` or in a values file (`--values FILE`)"
    );
    let error = err("b: {{ values.a.b.c | upper }}\n", "a: {x: 1}");
    assert!(
        error.starts_with("t/x.yaml.j2:1: undefined value `values.a.b.c`"),
        "{error}"
    );
}

#[test]
fn undefined_values_are_errors_everywhere_they_are_used() {
    for template in [
        "{% if values.enabled %}x: 1{% endif %}\n",
        "{% for x in values.items %}- {{ x }}\n{% endfor %}",
        "x: {{ values.name | upper }}\n",
        "x: {{ values.name | quote }}\n",
        "x: {{ values.name | toyaml }}\n",
    ] {
        let error = err(template, "");
        assert!(
            error.starts_with("t/x.yaml.j2:1: undefined value `values."),
            "{template}: {error}"
        );
    }
}

#[test]
fn optional_values_work_with_is_defined_and_default() {
    let template = "{% if values.extra is defined %}extra: {{ values.extra }}\n{% endif %}\
                    tag: {{ values.tag | default('latest') }}\n";
    assert_eq!(ok(template, ""), "tag: latest\n");
    assert_eq!(ok(template, "extra: 1\ntag: v2"), "extra: 1\ntag: v2\n");
}

#[test]
fn ci_and_release_hints_say_where_the_value_comes_from() {
    let error = err("x: {{ ci.branch }}\n", "");
    assert!(
        error.starts_with("t/x.yaml.j2:1: undefined value `ci.branch`"),
        "{error}"
    );
    assert!(error.contains("{% if ci.branch is defined %}"), "{error}");
    let error = err("x: {{ release.name }}\n", "");
    assert!(
        error.ends_with("hint: pass `--release-name NAME`"),
        "{error}"
    );
    let error = err("x: {{ valeus.name }}\n", "");
    assert!(error.contains("undefined value `valeus`"), "{error}");
    assert!(error.contains("check the spelling"), "{error}");
}

#[test]
fn ci_and_release_are_visible() {
    let context = context("").with_ci(&json!({"short_sha": "abc1234", "pr": 42}));
    let context = context.with_release(Release {
        name: Some("web-1".into()),
    });
    let text = render_one_file(
        "x.yaml.j2",
        "sha: {{ ci.short_sha }}\npr: {{ ci.pr }}\nrelease: {{ release.name }}\n",
        &context,
    )
    .unwrap();
    assert_eq!(text, "sha: abc1234\npr: 42\nrelease: web-1\n");
}

#[test]
fn syntax_errors_name_file_and_line() {
    let error = err("a: 1\nb: 2\nc: {{ values.x \n", "x: 1");
    assert!(
        error.starts_with("t/x.yaml.j2:3: syntax error: "),
        "{error}"
    );
    let error = err("a: 1\n{% if values.x %}\nb: 2\n", "x: 1");
    assert!(error.starts_with("t/x.yaml.j2:"), "{error}");
    assert!(error.contains("syntax error"), "{error}");
}

#[test]
fn plain_files_pass_through_byte_for_byte() {
    let analysis = "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\n\
                    spec:\n  metrics:\n  - name: x\n    successCondition: result[0] >= {{args.threshold}}\n\
                    \r\n# {% not jinja %}\n";
    let files = [SourceFile::new("a/analysis.yaml", analysis)];
    let out = render(&files, &context("")).unwrap();
    assert_eq!(out[0].text, analysis);
    assert!(!out[0].templated);
    assert_eq!(out[0].name, PathBuf::from("analysis.yaml"));
}

#[test]
fn argo_placeholders_render_back_verbatim() {
    let template = "\
a: '{{ args.threshold }}'
b: '{{ args['service-name'] }}'
c: '{{ templates.baseline.podTemplateHash }}'
d: '{{ templates.canary.replicaset.name }}'
e: '{{ experiment.availableAt }}'
f: '{{ experiment.finishedAt }}'
g: \"{{ args.x }}-{{ values.name }}\"
h: result[0] < {{ args.threshold }}
";
    assert_eq!(
        ok(template, "name: web"),
        "\
a: '{{ args.threshold }}'
b: '{{ args.service-name }}'
c: '{{ templates.baseline.podTemplateHash }}'
d: '{{ templates.canary.replicaset.name }}'
e: '{{ experiment.availableAt }}'
f: '{{ experiment.finishedAt }}'
g: \"{{ args.x }}-web\"
h: result[0] < {{ args.threshold }}
"
    );
}

#[test]
fn unknown_argo_fields_are_undefined() {
    let error = err("x: {{ templates.baseline.image }}\n", "");
    assert!(
        error.contains("undefined value `templates.baseline.image`"),
        "{error}"
    );
    let error = err("x: {{ experiment.startedAt }}\n", "");
    assert!(
        error.contains("undefined value `experiment.startedAt`"),
        "{error}"
    );
}

#[test]
fn toyaml_and_nindent_place_blocks() {
    let template = "spec:\n  resources: {{ values.resources | toyaml | nindent(4) }}\n\
                    list: {{ values.list | to_yaml | nindent(2) }}\nempty: {{ values.empty | toyaml }}\n";
    let values = "resources:\n  limits: {cpu: 500m, memory: 128Mi}\n  requests: {cpu: 100m}\n\
                  list: [a, 'yes', 3]\nempty: {}\n";
    let text = ok(template, values);
    assert_eq!(
        text,
        "spec:\n  resources: \n    limits:\n      cpu: 500m\n      memory: 128Mi\n    \
         requests:\n      cpu: 100m\nlist: \n  - a\n  - \"yes\"\n  - 3\nempty: {}\n"
    );
    let parsed: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(parsed["list"], json!(["a", "yes", 3]));
    assert_eq!(parsed["spec"]["resources"]["limits"]["cpu"], json!("500m"));
}

#[test]
fn toyaml_keeps_long_strings_on_one_line_and_multiline_as_literal() {
    let long = "x".repeat(50) + " " + &"y".repeat(50);
    let values = format!("long: '{long}'\nscript: \"a\\nb\\n\"\n");
    let text = ok("{{ values | toyaml }}\n", &values);
    assert!(text.contains(&format!("long: {long}")), "{text}");
    let parsed: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(parsed["script"], json!("a\nb\n"));
}

#[test]
fn indent_follows_helm_and_accepts_jinja_arguments() {
    assert_eq!(ok("{{ 'a\nb' | indent(2) }}\n", ""), "  a\n  b\n");
    assert_eq!(
        ok("{{ 'a\nb' | indent(2, first=false) }}\n", ""),
        "a\n  b\n"
    );
    assert_eq!(ok("{{ 'a\n\nb' | indent(width=1) }}\n", ""), " a\n\n b\n");
    assert_eq!(
        ok("x:{{ 'a: 1\nb: 2' | nindent(2) }}\n", ""),
        "x:\n  a: 1\n  b: 2\n"
    );
}

#[test]
fn string_helpers() {
    let cases = [
        ("{{ values.s | quote }}", "\"say \\\"hi\\\"\\n\""),
        ("{{ values.n | quote }}", "\"3\""),
        ("{{ values.b | quote }}", "\"true\""),
        ("{{ none | quote }}", "\"\""),
        ("{{ \"it's\" | squote }}", "'it''s'"),
        ("{{ 'hello' | b64enc }}", "aGVsbG8="),
        ("{{ 'aGVsbG8=' | b64dec }}", "hello"),
        ("{{ 'abc' | sha256sum | trunc(8) }}", "ba7816bf"),
        ("{{ 'my-app-canary' | trunc(-6) }}", "canary"),
        ("{{ 'web-' | trimSuffix('-') }}", "web"),
        ("{{ 'web-' | trim_suffix('x') }}", "web-"),
        ("{{ 'v1.2' | trimPrefix('v') }}", "1.2"),
        ("{{ 'v1.2' | trim_prefix('v') }}", "1.2"),
        ("{{ values.s | required('need s') | length }}", "9"),
        ("{{ required('need n', values.n) }}", "3"),
        ("{{ values.missing | default('d') }}", "d"),
        ("{{ values.map | tojson }}", "{\"a\": 1}"),
    ];
    for (template, expected) in cases {
        assert_eq!(
            ok(
                &format!("x: {template}\n"),
                "s: \"say \\\"hi\\\"\\n\"\nn: 3\nb: true\nmap: {a: 1}"
            ),
            format!("x: {expected}\n"),
            "{template}"
        );
    }
}

#[test]
fn required_and_fail_carry_the_authors_message() {
    assert_eq!(
        err(
            "a: 1\nb: {{ values.host | required('values.host is required: the public hostname') }}\n",
            ""
        ),
        "t/x.yaml.j2:2: values.host is required: the public hostname"
    );
    assert_eq!(
        err("b: {{ values.host | required('need host') }}\n", "host: ''"),
        "t/x.yaml.j2:1: need host"
    );
    assert_eq!(
        err(
            "b: {{ required('need host', values.host) }}\n",
            "host: null"
        ),
        "t/x.yaml.j2:1: need host"
    );
    assert_eq!(
        err(
            "a: 1\n\n{% if values.replicas > 10 %}{{ fail('too many replicas') }}{% endif %}\n",
            "replicas: 11"
        ),
        "t/x.yaml.j2:3: too many replicas"
    );
}

#[test]
fn other_template_errors_name_file_and_line() {
    let error = err("a: 1\nb: {{ values.x | nosuchfilter }}\n", "x: 1");
    assert!(
        error.starts_with("t/x.yaml.j2:2: unknown filter"),
        "{error}"
    );
    assert!(
        error.contains("hint: rollout-runner adds `toyaml`"),
        "{error}"
    );
    let error = err("a: {{ 'not base64!' | b64dec }}\n", "");
    assert!(
        error.starts_with("t/x.yaml.j2:1: invalid operation: b64dec"),
        "{error}"
    );
}

#[test]
fn output_that_is_not_yaml_is_an_error_with_an_excerpt() {
    let error = err("a:\n  b: 1\n c: {{ values.x }}\nd: 2\n", "x: 1");
    assert!(
        error.starts_with("t/x.yaml.j2: the rendered output is not valid YAML: "),
        "{error}"
    );
    assert!(error.contains("3 |  c: 1"), "{error}");
    assert!(error.contains("hint: check the indentation"), "{error}");
}

#[test]
fn multi_document_templates_are_fine() {
    let text = ok("a: 1\n---\nb: 2\n", "");
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    assert_eq!(docs.len(), 2);
}

#[test]
fn two_sources_with_the_same_output_name_are_an_error() {
    let files = [
        SourceFile::new("a/rollout.yaml", "a: 1\n"),
        SourceFile::new("b/rollout.yaml.j2", "a: 1\n"),
    ];
    let error = render(&files, &context("")).unwrap_err().to_string();
    assert!(
        error.starts_with("`a/rollout.yaml` and `b/rollout.yaml.j2` both render to `rollout.yaml`"),
        "{error}"
    );
}

#[test]
fn names_and_selection() {
    assert!(is_template(Path::new("a/rollout.yaml.j2")));
    assert!(!is_template(Path::new("a/rollout.yaml")));
    assert!(!is_template(Path::new(".j2")));
    assert_eq!(
        output_name(Path::new("a/rollout.yaml.j2")),
        PathBuf::from("a/rollout.yaml")
    );
    assert_eq!(
        output_name(Path::new("a/analysis.yaml")),
        PathBuf::from("a/analysis.yaml")
    );

    let found: Vec<PathBuf> = [
        "values.yaml",
        "values-staging.yaml",
        "values-production.yml",
        "service.yaml.j2",
        "rollout.yaml.j2",
        "README.md",
        "plain/values-production.yaml",
        ".hidden.yaml",
        ".git/config.yaml",
        "extra/values.yml",
        "extra/values.yaml",
        "extra/config.json",
        "plain/values.yaml",
        "notes.txt",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(
        select_files(&found),
        [
            "extra/config.json",
            "extra/values.yaml",
            "extra/values.yml",
            "plain/values-production.yaml",
            "plain/values.yaml",
            "rollout.yaml.j2",
            "service.yaml.j2"
        ]
        .iter()
        .map(PathBuf::from)
        .collect::<Vec<_>>()
    );
}

#[test]
fn blank_outputs_are_recognised() {
    let blank = RenderedFile {
        source: "x.yaml.j2".into(),
        name: "x.yaml".into(),
        text: "\n# nothing\n---\n".into(),
        templated: true,
    };
    assert!(blank.is_blank());
    let full = RenderedFile {
        text: "a: 1\n".into(),
        ..blank
    };
    assert!(!full.is_blank());
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn scalar() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            // Strings YAML could misread: booleans, numbers, nulls, indicators, blanks.
            prop_oneof![
                Just("yes".to_owned()),
                Just("off".to_owned()),
                Just("~".to_owned()),
                Just("010".to_owned()),
                Just("1.10".to_owned()),
                Just("- a".to_owned()),
                Just("a: b".to_owned()),
                Just("#x".to_owned()),
                Just("{{ args.x }}".to_owned()),
                Just(String::new()),
                Just(" lead".to_owned()),
                Just("a\r\nb\n".to_owned()),
                Just("\n".to_owned()),
                Just("a\n\n".to_owned()),
                "[ -~\n\t]{0,20}",
                "\\PC{0,12}",
            ]
            .prop_map(serde_json::Value::from),
        ]
    }

    fn value() -> impl Strategy<Value = serde_json::Value> {
        scalar().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-zA-Z0-9_.-]{1,8}|yes|no|y|null", inner, 0..4)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the values, `toyaml | nindent` writes YAML that reads back as the same data.
        #[test]
        fn toyaml_round_trips(value in value()) {
            let mut values = Values::new();
            values.merge([("v".to_owned(), value.clone())].into_iter().collect());
            let text = render_one_file(
                "x.yaml.j2",
                "wrapper:\n  v: {{- values.v | toyaml | nindent(4) }}\n",
                &Context::new(values),
            )
            .unwrap();
            let parsed: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
            prop_assert_eq!(&parsed["wrapper"]["v"], &value, "{}", text);
        }

        /// `--set-string` keeps any text as it is; `--set` never panics.
        #[test]
        fn set_string_keeps_text(text in "\\PC{0,30}") {
            let mut values = Values::new();
            values.set_string(&format!("a.b={text}")).unwrap();
            prop_assert_eq!(&values.to_value()["a"]["b"], &serde_json::Value::from(text.clone()));
            values.set(&format!("a.c={text}")).unwrap();
        }
    }
}

#[test]
fn huge_indentation_is_an_error_not_an_abort() {
    for template in [
        "a: {{ 'x' | indent(999999999999) }}\n",
        "a: {{ 'x' | nindent(18446744073709551615) }}\n",
        "a: {{ ('x\\n' * 100000) | indent(1000) }}\n",
    ] {
        let message = err(template, "{}");
        assert!(
            message.contains("indentation width") || message.contains("would produce more than"),
            "{template}: {message}"
        );
    }
    assert_eq!(ok("a: {{ 'x' | indent(2) }}\n", "{}"), "a:   x\n");
}
