//! Hostile input: devices, FIFOs, link loops, huge and malformed files, broken CI payloads,
//! standard input, and a generated corpus of mangled manifests. Each must end promptly with a
//! clear message, never a panic, a hang or unbounded memory.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rollout_runner::manifest::{self, Source};
use rollout_runner::validate::{self, Options};

fn repo_dir(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Time limits that hold on a loaded machine and still catch a hang. The work a run does is
/// limited by its CPU time, which other processes on the machine do not inflate. A blocked read
/// (a FIFO without a writer) uses no CPU at all, so the wall clock is limited too: to the CPU
/// limit scaled by how loaded the machine is (the load average per core, at least 1), twice over
/// because the load average lags behind a sudden burst.
fn wall_limit(cpu_limit: Duration) -> Duration {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    cpu_limit.mul_f64((load / cpus).max(1.0) * 2.0)
}

/// CPU time (user + system, all threads) that `/proc/.../stat` (of a process, or
/// `/proc/thread-self/stat`) reports, in Linux's fixed 1/100 s clock ticks (USER_HZ).
fn cpu_time(stat: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(stat).ok()?;
    // After the command name, which may hold spaces and parentheses: field 3 onwards;
    // utime and stime are fields 14 and 15.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Waits for `child` within `cpu_limit` of CPU time and [`wall_limit`] of wall time; kills it
/// and says which limit it broke otherwise.
fn wait_limited(
    child: &mut std::process::Child,
    cpu_limit: Duration,
) -> Result<std::process::ExitStatus, String> {
    let started = Instant::now();
    let stat = format!("/proc/{}/stat", child.id());
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Ok(status);
        }
        let used = cpu_time(&stat).unwrap_or_default();
        let wall = wall_limit(cpu_limit);
        let broken = if used > cpu_limit {
            Some(format!("used more than {cpu_limit:?} of CPU time"))
        } else if started.elapsed() > wall {
            Some(format!(
                "did not finish within {wall:?} with {used:?} of CPU time: blocked (a hang)"
            ))
        } else {
            None
        };
        if let Some(broken) = broken {
            let _ = child.kill();
            let _ = child.wait();
            return Err(broken);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run the binary within time limits (30 s of CPU time, [`wall_limit`] of it); stdin is
/// `input` (or empty). A run that breaks them is killed and fails the test: a hang is a bug.
fn runner(dir: &Path, args: &[&str], env: &[(&str, &str)], input: Option<&str>) -> Run {
    let out = dir.join(".stdout");
    let err = dir.join(".stderr");
    let mut command = Command::new(binary());
    command
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("KUBECONFIG", dir.join("no-kubeconfig"))
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI")
        .env_remove("GITHUB_EVENT_PATH")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut child = command.spawn().expect("rollout-runner runs");
    {
        let mut stdin = child.stdin.take().unwrap();
        if let Some(input) = input {
            let _ = stdin.write_all(input.as_bytes());
        }
    }
    let status = wait_limited(&mut child, Duration::from_secs(30))
        .unwrap_or_else(|broken| panic!("rollout-runner {args:?} {broken}"));
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out).unwrap(),
        stderr: std::fs::read_to_string(&err).unwrap(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "rollout-runner {args:?} panicked: {}",
        run.stderr
    );
    run
}

/// The binary under test: `ROLLOUT_RUNNER_BIN` (a release build, `tests/bench/hostile`) or
/// the one cargo built for the tests.
fn binary() -> PathBuf {
    std::env::var_os("ROLLOUT_RUNNER_BIN")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_rollout-runner")),
            PathBuf::from,
        )
}

/// The limits fail a run: a blocked read by the wall clock, a busy loop by its CPU time.
#[test]
fn the_time_limits_catch_a_blocked_read_and_a_busy_loop() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("pipe");
    mkfifo(&pipe);
    let limit = Duration::from_millis(300);
    let mut blocked = Command::new("cat").arg(&pipe).spawn().unwrap();
    let broken = wait_limited(&mut blocked, limit).unwrap_err();
    assert!(broken.contains("blocked (a hang)"), "{broken}");
    let mut busy = Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let broken = wait_limited(&mut busy, limit).unwrap_err();
    assert!(broken.contains("of CPU time"), "{broken}");
    assert!(!broken.contains("blocked"), "{broken}");
    let mut quick = Command::new("true").spawn().unwrap();
    assert!(wait_limited(&mut quick, limit).unwrap().success());
}

fn canary_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    for name in ["rollout.yaml", "service.yaml"] {
        std::fs::copy(
            repo_dir("examples/canary-basic").join(name),
            input.join(name),
        )
        .unwrap();
    }
    dir
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

#[test]
fn devices_fifos_and_sockets_in_an_input_directory_are_refused() {
    let dir = canary_dir();
    let input = dir.path().join("in");
    // A link out of the directory is refused before anything is opened.
    std::os::unix::fs::symlink("/dev/zero", input.join("zero.yaml")).unwrap();
    for command in ["lint", "render", "plan"] {
        let run = runner(dir.path(), &[command, "in"], &[], None);
        let text = format!("{}{}", run.stdout, run.stderr);
        assert_eq!(run.code, 2, "{command}: {text}");
        assert!(
            text.contains("`in/zero.yaml` is a symbolic link to `/dev/zero`, outside `in`"),
            "{command}: {text}"
        );
    }
    std::fs::remove_file(input.join("zero.yaml")).unwrap();
    // Named directly, a device is refused for what it is.
    for command in ["lint", "render", "plan"] {
        let run = runner(dir.path(), &[command, "in", "/dev/zero"], &[], None);
        let text = format!("{}{}", run.stdout, run.stderr);
        assert_eq!(run.code, 2, "{command}: {text}");
        assert!(
            text.contains("`/dev/zero` is a character device, not a regular file"),
            "{command}: {text}"
        );
    }

    // A FIFO with no writer would block `open` forever.
    mkfifo(&input.join("pipe.yaml"));
    let run = runner(dir.path(), &["plan", "in"], &[], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`in/pipe.yaml` is a FIFO (named pipe), not a regular file"),
        "{}",
        run.stderr
    );
    std::fs::remove_file(input.join("pipe.yaml")).unwrap();

    let _socket = std::os::unix::net::UnixListener::bind(input.join("s.yaml")).unwrap();
    let run = runner(dir.path(), &["lint", "in"], &[], None);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stdout.contains("is a socket"), "{}", run.stdout);
}

#[test]
fn values_scenarios_and_series_from_devices_are_refused() {
    let dir = canary_dir();
    let cases: [&[&str]; 3] = [
        &["render", "in", "--values", "/dev/urandom"],
        &["simulate", "in", "--scenario", "/dev/zero"],
        &["plan", "in", "--values", "/dev/zero"],
    ];
    for args in cases {
        let run = runner(dir.path(), args, &[], None);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("is a character device, not a regular file"),
            "{args:?}: {}",
            run.stderr
        );
    }
    let scenario = dir.path().join("scenario.yaml");
    std::fs::write(
        &scenario,
        "metrics:\n  error-rate:\n    series: /dev/zero\n",
    )
    .unwrap();
    let run = runner(
        dir.path(),
        &["simulate", "in", "--scenario", "scenario.yaml"],
        &[],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "metric `error-rate`: cannot read the series: `/dev/zero` is a character device"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn link_loops_and_links_out_of_the_directory() {
    let dir = canary_dir();
    let input = dir.path().join("in");
    std::fs::create_dir(input.join("sub")).unwrap();
    std::os::unix::fs::symlink("..", input.join("sub/up")).unwrap();
    std::os::unix::fs::symlink(".", input.join("sub/self")).unwrap();
    let run_loop = runner(dir.path(), &["render", "in"], &[], None);
    assert_eq!(run_loop.code, 0, "{}", run_loop.stderr);
    assert_eq!(run_loop.stdout.matches("kind: Rollout").count(), 1);
    let lint_loop = runner(dir.path(), &["lint", "in"], &[], None);
    assert!(
        lint_loop.stdout.contains("in 2 files"),
        "{}",
        lint_loop.stdout
    );

    std::os::unix::fs::symlink("/", input.join("root")).unwrap();
    for command in ["lint", "render", "plan"] {
        let run = runner(dir.path(), &[command, "in"], &[], None);
        let text = format!("{}{}", run.stdout, run.stderr);
        assert_eq!(run.code, 2, "{command}: {text}");
        assert!(
            text.contains("`in/root` is a symbolic link to `/`, outside `in`"),
            "{command}: {text}"
        );
    }
}

#[test]
fn files_over_the_cap_are_refused() {
    let dir = canary_dir();
    let big = dir.path().join("in/big.yaml");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(8 * 1024 * 1024 + 1)
        .unwrap();
    let run = runner(dir.path(), &["plan", "in"], &[], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("`in/big.yaml` is larger than 8 MiB"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
}

#[test]
fn a_broken_github_event_payload_is_an_error() {
    let dir = canary_dir();
    let event = dir.path().join("event.json");
    std::fs::write(&event, "{\"pull_request\": ").unwrap();
    let event = event.display().to_string();
    let cases: [(&str, &str); 3] = [
        (&event, "not JSON"),
        ("/dev/zero", "is a character device"),
        ("/nonexistent/event.json", "no such file or directory"),
    ];
    for (path, expected) in cases {
        let run = runner(
            dir.path(),
            &["render", "in"],
            &[("GITHUB_ACTIONS", "true"), ("GITHUB_EVENT_PATH", path)],
            None,
        );
        assert_eq!(run.code, 2, "{path}: {}", run.stderr);
        assert!(
            run.stderr.contains("GITHUB_EVENT_PATH") && run.stderr.contains(expected),
            "{path}: {}",
            run.stderr
        );
    }
}

#[test]
fn manifests_from_standard_input() {
    let dir = canary_dir();
    let stream = format!(
        "{}\n---\n{}",
        std::fs::read_to_string(dir.path().join("in/rollout.yaml")).unwrap(),
        std::fs::read_to_string(dir.path().join("in/service.yaml")).unwrap()
    );
    let lint = runner(dir.path(), &["lint", "-"], &[], Some(&stream));
    assert_eq!(lint.code, 0, "{}{}", lint.stdout, lint.stderr);
    let render = runner(dir.path(), &["render", "-"], &[], Some(&stream));
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(render.stdout.contains("kind: Rollout"), "{}", render.stdout);

    let broken = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: [\n";
    for command in ["lint", "plan"] {
        let run = runner(dir.path(), &[command, "-"], &[], Some(broken));
        let text = format!("{}{}", run.stdout, run.stderr);
        assert_eq!(run.code, 2, "{command}: {text}");
        assert!(text.contains("<stdin>:"), "{command}: {text}");
    }
    std::fs::copy(
        repo_dir("examples/canary-basic/scenario.yaml"),
        dir.path().join("scenario.yaml"),
    )
    .unwrap();
    let simulate = runner(
        dir.path(),
        &["simulate", "-", "--scenario", "scenario.yaml"],
        &[],
        Some(&stream),
    );
    assert_eq!(simulate.code, 0, "{}{}", simulate.stdout, simulate.stderr);
    assert!(simulate.stdout.contains("step 1/"), "{}", simulate.stdout);
    let twice = runner(dir.path(), &["plan", "-", "-"], &[], Some(&stream));
    assert_eq!(twice.code, 2, "{}", twice.stderr);
    assert!(twice.stderr.contains("named twice"), "{}", twice.stderr);
}

/// A small deterministic generator (xorshift), so that a failing case is reproducible by its
/// number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const HOSTILE_VALUES: &[&str] = &[
    "\"\"",
    "-1",
    "\"abc%\"",
    "\"-5%\"",
    "99999999999999999999999999",
    "1e308",
    "-0.0",
    ".nan",
    "\"\\0\"",
    "\"\\e[31mred\"",
    "\"../../etc\"",
    "UPPER",
    "a/b",
    "\"{{ oops\"",
    "*undefined",
    "&anchor x",
    "!!binary AAAA",
    "1y",
    "-5s",
    "0",
    "[]",
    "{}",
    "null",
    "~",
    "\"line\\nbreak\"",
    "!custom tag",
    "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
];

fn seeds() -> Vec<String> {
    let mut seeds = Vec::new();
    for dir in ["examples", "tests/invalid", "tests/valid"] {
        let root = repo_dir(dir);
        let Ok(found) = rollout_runner::render::input::walk(&root) else {
            continue;
        };
        for file in found {
            let is_manifest = file
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json");
            if is_manifest && let Ok(text) = std::fs::read_to_string(root.join(&file)) {
                seeds.push(text);
            }
        }
    }
    assert!(seeds.len() > 20, "too few seed manifests: {}", seeds.len());
    seeds
}

fn mangle(seed: &str, rng: &mut Rng) -> String {
    let lines: Vec<&str> = seed.lines().collect();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match rng.below(8) {
        // Truncate at a character boundary.
        0 => {
            let mut at = rng.below(seed.len());
            while !seed.is_char_boundary(at) {
                at -= 1;
            }
            return seed[..at].to_string();
        }
        // Replace a scalar with a hostile one, several times.
        1..=3 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(out.len());
                if let Some((key, _)) = out[i].split_once(": ") {
                    let value = HOSTILE_VALUES[rng.below(HOSTILE_VALUES.len())];
                    out[i] = format!("{key}: {value}");
                }
            }
        }
        // Shift a line's indentation.
        4 => {
            let i = rng.below(out.len());
            out[i] = format!("{}{}", " ".repeat(rng.below(5)), out[i].trim_start());
        }
        // Duplicate or drop a line.
        5 => {
            let i = rng.below(out.len());
            if rng.below(2) == 0 {
                let line = out[i].clone();
                out.insert(i, line);
            } else if !out.is_empty() {
                out.remove(i);
            }
        }
        // Many documents, or a huge scalar.
        6 => {
            if rng.below(2) == 0 {
                return format!("{seed}\n{}", "---\n{}\n".repeat(1500 + rng.below(1000)));
            }
            let i = rng.below(out.len());
            if let Some((key, _)) = out[i].split_once(": ") {
                out[i] = format!("{key}: {}", "x".repeat(64 * 1024));
            }
        }
        // Alias expansion and deep nesting.
        _ => {
            // Rare: each bomb costs a second or two in a debug build.
            if rng.below(16) == 0 {
                let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
                for level in 0..9 {
                    let name = (b'b' + level) as char;
                    let previous = (b'a' + level) as char;
                    bomb.push_str(&format!(
                        "{name}: &{name} [{}]\n",
                        vec![format!("*{previous}"); 10].join(", ")
                    ));
                }
                return format!("{seed}\n---\n{bomb}");
            }
            let depth = 1000 + rng.below(20_000);
            return format!(
                "{seed}\n---\nx: {}{}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            );
        }
    }
    out.join("\n")
}

/// Per case of the generated corpus: CPU time (see [`wall_limit`] for the wall clock).
const CASE_CPU_LIMIT: Duration = Duration::from_secs(10);

/// 1,200 mangled manifests through loading and validation, in process: no panic, prompt, and
/// every problem a message in the user's words with a position or a file. A case may use
/// [`CASE_CPU_LIMIT`] of CPU time; the cases run on a thread of their own, watched, so that
/// one that blocks or loops forever fails the test after [`wall_limit`].
#[test]
fn generated_corpus_of_mangled_manifests() {
    let (started, cases) = std::sync::mpsc::channel::<usize>();
    let worker = std::thread::spawn(move || mangled_manifests_corpus(&started));
    loop {
        match cases.recv_timeout(wall_limit(CASE_CPU_LIMIT)) {
            Ok(_) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!(
                    "a case of the corpus did not finish within {:?}: a hang",
                    wall_limit(CASE_CPU_LIMIT)
                )
            }
        }
    }
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
}

fn mangled_manifests_corpus(started: &std::sync::mpsc::Sender<usize>) {
    let seeds = seeds();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let options = Options::default();
    for case in 0..1200 {
        let seed = &seeds[rng.below(seeds.len())];
        let text = mangle(seed, &mut rng);
        started.send(case).unwrap();
        let cpu_before = cpu_time("/proc/thread-self/stat").unwrap_or_default();
        let sources = [Source::new(format!("case-{case}.yaml"), text.clone())];
        let outcome = std::panic::catch_unwind(|| {
            let loaded = manifest::load(&sources);
            let mut problems = loaded.problems;
            problems.extend(validate::validate(&loaded.set, &options));
            problems
        });
        let used = cpu_time("/proc/thread-self/stat")
            .unwrap_or_default()
            .saturating_sub(cpu_before);
        let problems = outcome.unwrap_or_else(|_| panic!("case {case} panicked:\n{text}"));
        assert!(
            used < CASE_CPU_LIMIT,
            "case {case} used {used:?} of CPU time:\n{}",
            &text[..text.len().min(2000)]
        );
        for problem in &problems {
            assert!(!problem.message.is_empty(), "case {case}: empty message");
            assert_eq!(problem.file, format!("case-{case}.yaml"), "case {case}");
            for debug in ["Nodes {", "budget", "struct CanaryStep", "panicked"] {
                assert!(
                    !problem.message.contains(debug),
                    "case {case}: debug text in `{}`:\n{}",
                    problem.message,
                    &text[..text.len().min(2000)]
                );
            }
        }
    }
}

/// A sample of the generated corpus through the binary's `plan`: a mangled input is refused
/// with exit 2 before anything is touched (a valid one fails later, without a cluster).
#[test]
fn generated_corpus_through_plan() {
    let seeds = seeds();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let dir = tempfile::tempdir().unwrap();
    for case in 0..40 {
        let seed = &seeds[rng.below(seeds.len())];
        let text = mangle(seed, &mut rng);
        let file = dir.path().join(format!("case-{case}.yaml"));
        std::fs::write(&file, &text).unwrap();
        let sources = [Source::new(format!("case-{case}.yaml"), text.clone())];
        let loaded = manifest::load(&sources);
        let mut problems = loaded.problems;
        problems.extend(validate::validate(&loaded.set, &Options::default()));
        let invalid = problems.iter().any(|p| p.is_error());
        let name = format!("case-{case}.yaml");
        let run = runner(dir.path(), &["plan", &name], &[], None);
        if invalid {
            assert_eq!(run.code, 2, "case {case}: {}\n{text}", run.stderr);
            assert!(
                run.stderr.contains(&format!("case-{case}.yaml")),
                "case {case}: {}",
                run.stderr
            );
        }
        std::fs::remove_file(file).unwrap();
    }
}

/// The secret `secret_release` puts into a condition.
const SECRET: &str = "0.98765";

/// `canary-analysis-fails` under `DIR/in`, with its condition's threshold read from a Secret
/// (`{{args.threshold}}`, a `secretKeyRef`) that the scenario holds: the failed measurement's
/// explanation would show it.
fn secret_release() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let example = repo_dir("examples/canary-analysis-fails");
    for name in ["rollout.yaml", "service.yaml", "scenario.yaml"] {
        std::fs::copy(example.join(name), input.join(name)).unwrap();
    }
    let analysis = std::fs::read_to_string(example.join("analysis.yaml"))
        .unwrap()
        .replace(
            "    - name: prometheus-address\n",
            "    - name: threshold\n      valueFrom:\n        secretKeyRef: {name: creds, key: threshold}\n    - name: prometheus-address\n",
        )
        .replace("result[0] >= 0.99", "result[0] >= {{args.threshold}}");
    assert!(analysis.contains("{{args.threshold}}"));
    std::fs::write(input.join("analysis.yaml"), analysis).unwrap();
    let mut scenario = std::fs::read_to_string(input.join("scenario.yaml")).unwrap();
    scenario.push_str(&format!(
        "secrets:\n  creds:\n    threshold: \"{SECRET}\"\n"
    ));
    std::fs::write(input.join("scenario.yaml"), scenario).unwrap();
    dir
}

/// A secret argument used in a condition never shows, in any channel: text, JSON, workflow
/// annotations, the step summary, and debug logs.
#[test]
fn a_secret_in_a_condition_is_redacted_in_every_channel() {
    let dir = secret_release();
    let summary = dir.path().join("summary.md");
    let summary_path = summary.display().to_string();
    let github = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary_path.as_str()),
        ("ROLLOUT_RUNNER_LOG", "debug"),
        ("RUST_LOG", "debug"),
    ];
    for output in ["text", "json"] {
        let run = runner(
            dir.path(),
            &["simulate", "in", "--output", output],
            &github,
            None,
        );
        let summary_text = std::fs::read_to_string(&summary).unwrap_or_default();
        let all = format!("{}{}{summary_text}", run.stdout, run.stderr);
        assert_ne!(run.code, 0, "the analysis fails: {all}");
        if output == "text" {
            assert!(all.contains("why: "), "no explanation:\n{all}");
            assert!(all.contains("*****"), "no redacted explanation:\n{all}");
        }
        assert!(!all.contains(SECRET), "{output}: the secret leaked:\n{all}");
    }
}

/// The same secret never reaches the forge or a webhook either: the check run (its summary,
/// text and annotations), the pull-request comment and the deployment statuses carry the
/// failed measurement's explanation redacted; the webhook events (the run's verdict, the
/// abort) and the trace-level log do not carry it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_a_condition_never_reaches_the_forge_or_a_webhook() {
    use crate::forge_github::{Fake, Mode, simulate_github};
    let dir = secret_release();
    let input = dir.path().join("in").display().to_string();

    let github = Fake::start(Mode::Normal).await;
    let run = simulate_github(&input, &github.server.uri(), &["--environment", "staging"]).await;
    assert_eq!(run.code, 1, "the analysis fails: {}", run.stderr);
    let calls = github.take_calls();
    assert!(
        calls.iter().any(|c| c.route.ends_with("/comments")),
        "a comment was posted"
    );
    assert!(
        calls.iter().any(|c| c.raw_body.contains("\"annotations\"")),
        "the check run has annotations"
    );
    // The explanation that would hold the secret went out, redacted.
    assert!(
        calls.iter().any(|c| c.raw_body.contains("*****")),
        "no redacted explanation reached GitHub"
    );
    for call in &calls {
        assert!(
            !call.raw_body.contains(SECRET),
            "the secret leaked into {} {}: {}",
            call.method,
            call.path,
            call.raw_body
        );
    }
    for (what, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("outputs", &run.output_file),
        ("summary", &run.summary_file),
    ] {
        assert!(
            !text.contains(SECRET),
            "the secret leaked into {what}: {text}"
        );
    }

    let hook = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let url = hook.uri();
    let run = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || {
            runner(
                &dir,
                &[
                    "simulate",
                    "in",
                    "--report",
                    "webhook",
                    "--webhook-url",
                    &url,
                ],
                &[("ROLLOUT_RUNNER_LOG", "trace")],
                None,
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(run.code, 1, "the analysis fails: {}", run.stderr);
    let requests = hook.received_requests().await.unwrap_or_default();
    assert!(!requests.is_empty(), "the webhook got the events");
    // Measurements are not webhook events, but the run's verdict and the abort are.
    assert!(
        requests
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("service.rolledback")),
        "the webhook got the rollback"
    );
    for request in &requests {
        let body = String::from_utf8_lossy(&request.body);
        assert!(
            !body.contains(SECRET),
            "the secret leaked into a webhook event: {body}"
        );
    }
    assert!(
        !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
        "the secret leaked into the trace log"
    );
}

/// `simulate in --scenario scenario.yaml` in `dir`, with `scenario` as that file.
fn simulate_with_scenario(dir: &Path, scenario: &str) -> Run {
    std::fs::write(dir.join("scenario.yaml"), scenario).unwrap();
    runner(
        dir,
        &["simulate", "in", "--scenario", "scenario.yaml"],
        &[],
        None,
    )
}

/// A mistyped secret in a scenario is reported by its place, not echoed.
#[test]
fn a_mistyped_scenario_secret_is_not_echoed() {
    let dir = canary_dir();
    for (scenario, place) in [
        (
            "secrets:\n  creds:\n    token: 123456789\n",
            "`secrets.creds.token` must be a string",
        ),
        (
            "secrets:\n  creds:\n    token: [123456789]\n",
            "`secrets.creds.token` must be a string",
        ),
        (
            "secrets:\n  creds: 123456789\n",
            "`secrets.creds` must be a mapping",
        ),
        (
            "secrets:\n  creds:\n    token: \"123456789\n",
            "invalid scenario",
        ),
    ] {
        let run = simulate_with_scenario(dir.path(), scenario);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains(place), "{}", run.stderr);
        assert!(!run.stderr.contains("123456789"), "{}", run.stderr);
    }
}

/// Scenario problems carry the file, line, column and field, in the user's words.
#[test]
fn scenario_problems_are_placed() {
    let dir = canary_dir();
    for (scenario, expected) in [
        (
            "pods:\n  readyDelay: [10s]\n",
            "scenario.yaml:2:3: invalid scenario: invalid type: sequence, expected a string\n  --> pods.readyDelay",
        ),
        (
            "pods: 5\n",
            "scenario.yaml:1:1: invalid scenario: invalid type: integer `5`, expected a mapping\n  --> pods",
        ),
        (
            "metrics:\n  error-rate:\n    stepp: 1\n",
            "scenario.yaml:3:5: invalid scenario: unknown field `stepp`",
        ),
        (
            "pods: {}\n---\nmetrics: {}\n",
            "scenario.yaml:3:1: invalid scenario: more than one YAML document",
        ),
    ] {
        let run = simulate_with_scenario(dir.path(), scenario);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{scenario:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("struct "), "{}", run.stderr);
    }
}

/// Contract: bad flags are exit 2 with a message, before anything runs.
#[test]
fn bad_flags_exit_2() {
    let dir = canary_dir();
    std::fs::copy(
        repo_dir("examples/canary-basic/scenario.yaml"),
        dir.path().join("scenario.yaml"),
    )
    .unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "simulate",
                "in",
                "--report",
                "webhook",
                "--webhook-url",
                "not a url",
            ],
            "--webhook-url (or ROLLOUT_RUNNER_WEBHOOK_URL) is not a URL",
        ),
        (
            &[
                "simulate",
                "in",
                "--report",
                "webhook",
                "--webhook-url",
                "ftp://tok3n@example.com/x",
            ],
            "must be an http or https URL with a host",
        ),
        (
            &["simulate", "in", "--timeout=-1s"],
            "timeout `-1s` must not be negative",
        ),
        (
            &["apply", "in", "--wait", "--timeout=-1s"],
            "--timeout `-1s` must not be negative",
        ),
    ];
    for (args, expected) in cases {
        let run = runner(dir.path(), args, &[], None);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("tok3n"), "{args:?}: {}", run.stderr);
    }
}

/// `canary_dir`'s Rollout with `old` replaced by `new` in its text.
fn edited_canary(old: &str, new: &str) -> tempfile::TempDir {
    let dir = canary_dir();
    let path = dir.path().join("in/rollout.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(old), "{old} is not in the example");
    std::fs::write(&path, text.replacen(old, new, 1)).unwrap();
    dir
}

/// Names Kubernetes refuses that `bad-names.yaml` does not hold: a newline, NUL, 64 KiB. Each
/// is refused with Kubernetes' message, printed escaped, a long one cut.
#[test]
fn names_with_control_characters_or_64_kib_are_refused() {
    let dir = canary_dir();
    let long = "a".repeat(64 * 1024);
    std::fs::write(
        dir.path().join("in/names.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"a\\nb\"\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"a\\0b\"\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {long}\n"
        ),
    )
    .unwrap();
    let run = runner(dir.path(), &["lint", "in"], &[], None);
    assert_eq!(run.code, 1, "{}", run.stdout);
    for expected in [
        "names.yaml:4:3: error: metadata.name: Invalid value: \"a\\nb\": a lowercase RFC 1123 subdomain",
        "names.yaml:9:3: error: metadata.name: Invalid value: \"a\\u{0}b\": a lowercase RFC 1123 subdomain",
        "(65536 bytes in all)\": must be no more than 253 characters",
    ] {
        assert!(run.stdout.contains(expected), "{expected}: {}", run.stdout);
    }
    assert!(!run.stdout.contains(&long[..1000]), "the long name is cut");
    assert!(!run.stdout.contains('\0'), "NUL is printed escaped");
}

/// Numbers as Kubernetes validates them: a negative `maxSurge` and a percentage below zero are
/// errors; a value of the wrong type is named in the user's terms, not as a Rust type.
#[test]
fn max_surge_is_validated_as_kubernetes_does() {
    for (value, expected) in [
        ("-2", "invalid value -2: must be greater than or equal to 0"),
        (
            "\"-5%\"",
            "invalid value `-5%`: must be an integer or a percentage",
        ),
        (
            "[1]",
            "invalid type: sequence, expected an integer or a percentage such as \"25%\"",
        ),
    ] {
        let dir = edited_canary("maxSurge: \"25%\"", &format!("maxSurge: {value}"));
        let run = runner(dir.path(), &["lint", "in"], &[], None);
        assert_eq!(run.code, 1, "{value}: {}", run.stdout);
        assert!(run.stdout.contains(expected), "{value}: {}", run.stdout);
        assert!(
            run.stdout
                .contains("--> Rollout/checkout: spec.strategy.canary.maxSurge"),
            "{}",
            run.stdout
        );
        assert!(!run.stdout.contains("IntOrString"), "{}", run.stdout);
    }
}

/// A failureLimit below -1 with a 1 ms interval: refused before anything runs (the engine once
/// reported its own bug on it).
#[test]
fn a_failure_limit_below_minus_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let example = repo_dir("examples/canary-analysis-fails");
    for name in [
        "rollout.yaml",
        "service.yaml",
        "scenario.yaml",
        "analysis.yaml",
    ] {
        std::fs::copy(example.join(name), input.join(name)).unwrap();
    }
    let analysis = std::fs::read_to_string(input.join("analysis.yaml")).unwrap();
    assert!(analysis.contains("interval: 1m") && analysis.contains("failureLimit: 1"));
    std::fs::write(
        input.join("analysis.yaml"),
        analysis
            .replace("interval: 1m", "interval: 1ms")
            .replace("failureLimit: 1", "failureLimit: -3"),
    )
    .unwrap();
    let expected = "analysis.yaml:14:7: error: failureLimit must be >= -1";
    let lint = runner(dir.path(), &["lint", "in"], &[], None);
    assert_eq!(lint.code, 1, "{}", lint.stdout);
    assert!(lint.stdout.contains(expected), "{}", lint.stdout);
    let simulate = runner(
        dir.path(),
        &["simulate", "in", "--scenario", "in/scenario.yaml"],
        &[],
        None,
    );
    assert_eq!(simulate.code, 2, "{}{}", simulate.stdout, simulate.stderr);
    assert!(simulate.stderr.contains(expected), "{}", simulate.stderr);
    assert!(!simulate.stderr.contains("bug"), "{}", simulate.stderr);
}

/// `simulate` of a canary with 4,000 steps stays within 20 s of CPU time: about twice what a
/// debug build used when this test was written (8.6 s), so a path several times slower fails.
#[test]
fn simulate_of_four_thousand_steps_is_not_quadratic() {
    let steps: String = (0..4000)
        .map(|i| format!("        - setWeight: {}\n", 1 + i % 99))
        .collect();
    let dir = canary_dir();
    let path = dir.path().join("in/rollout.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.find("      steps:\n").expect("the example's steps");
    std::fs::write(&path, format!("{}      steps:\n{steps}", &text[..at])).unwrap();
    std::fs::copy(
        repo_dir("examples/canary-basic/scenario.yaml"),
        dir.path().join("scenario.yaml"),
    )
    .unwrap();
    let mut child = Command::new(binary())
        .args(["simulate", "in", "--scenario", "scenario.yaml"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_limited(&mut child, Duration::from_secs(20))
        .unwrap_or_else(|broken| panic!("simulate of 4,000 steps {broken}"));
    assert!(status.success());
}
