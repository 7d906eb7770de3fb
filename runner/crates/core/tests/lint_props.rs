//! The load + validate path never panics: on random YAML-ish text, and on valid manifests with
//! lines deleted, duplicated, re-indented or with their values swapped for other types.

use proptest::prelude::*;
use rollout_runner_core::manifest::{self, Source};
use rollout_runner_core::validate::{self, Options};

const BASES: &[&str] = &[
    include_str!("../../../../tests/fixtures/argo/examples/analysis-success-rate.yaml"),
    include_str!("../../../../tests/fixtures/argo/examples/istio-mirror.yaml"),
    include_str!("../../../../tests/fixtures/argo/examples/analysis-bluegreen-prepromotion.yaml"),
    include_str!("../../../../tests/fixtures/argo/examples/experiment-with-analysis.yaml"),
    include_str!("../../../../tests/fixtures/argo/lint/valid-ingress-smi.yml"),
    include_str!("../../../../tests/fixtures/argo/lint/valid-alb-canary.yml"),
    include_str!("../../../../tests/invalid/missing-required-arg.yaml"),
    include_str!("../../../../tests/invalid/header-route-alb-regex.yaml"),
];

/// Values a mutation may put in place of a scalar.
const VALUES: &[&str] = &[
    "\"ten\"",
    "-1",
    "0",
    "1.5",
    "[]",
    "{}",
    "null",
    "~",
    "yes",
    "\"\"",
    "[1, 2]",
    "{a: b}",
    "99999999999999999999",
    "\"{{args.x}}\"",
    "'5m'",
    "*alias",
    "&anchor x",
    "!!binary aGk=",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Indent(usize, usize),
    Dedent(usize),
    SwapValue(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), 1usize..4).prop_map(|(l, n)| Mutation::Indent(l, n)),
        any::<usize>().prop_map(Mutation::Dedent),
        (any::<usize>(), any::<usize>()).prop_map(|(l, v)| Mutation::SwapValue(l, v)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(base: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
    for mutation in mutations {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match mutation {
            Mutation::Delete(i) => {
                lines.remove(i % n);
            }
            Mutation::Duplicate(i) => {
                let line = lines[i % n].clone();
                lines.insert(i % n, line);
            }
            Mutation::Indent(i, by) => {
                lines[i % n] = format!("{}{}", " ".repeat(*by), lines[i % n]);
            }
            Mutation::Dedent(i) => {
                let line = &lines[i % n];
                lines[i % n] = line.strip_prefix("  ").unwrap_or(line).to_string();
            }
            Mutation::SwapValue(i, v) => {
                let line = &lines[i % n];
                if let Some((key, _)) = line.split_once(": ") {
                    lines[i % n] = format!("{key}: {}", VALUES[v % VALUES.len()]);
                }
            }
            Mutation::Truncate(i) => {
                let line = &lines[i % n];
                let cut = line
                    .char_indices()
                    .nth(line.len() / 2)
                    .map_or(0, |(at, _)| at);
                lines[i % n] = line[..cut].to_string();
            }
        }
    }
    lines.join("\n")
}

/// Load and validate; every problem must be located in the one source.
fn lint(text: String) {
    let sources = [Source::new("case.yaml", text)];
    let loaded = manifest::load(&sources);
    let mut problems = loaded.problems;
    problems.extend(validate::validate(&loaded.set, &Options::default()));
    for problem in &problems {
        assert_eq!(problem.file, "case.yaml");
        assert!(!problem.message.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "[a-zA-Z0-9:{}\\[\\],&*!|>#'\"\\- \\n\\t.%{}]{0,300}") {
        lint(text);
    }

    #[test]
    fn mutated_manifests_never_panic(
        base in 0..BASES.len(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        lint(apply(BASES[base], &mutations));
    }

    #[test]
    fn kubernetes_shaped_documents_never_panic(
        kind in prop::sample::select(vec!["Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun", "Experiment", "Service", "Ingress", "VirtualService"]),
        body in "[a-z]{1,8}: [a-z0-9{}\\[\\], ]{0,30}",
    ) {
        lint(format!("apiVersion: argoproj.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: x\nspec:\n  {body}\n"));
    }
}
