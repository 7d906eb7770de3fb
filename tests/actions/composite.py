"""Run the composite GitHub Action (actions/github/action.yml) here, without GitHub.

Each case evaluates the action as the runner does, as far as these scripts depend on it: the
inputs with their defaults, each step's `env:` (`${{ inputs.X }}`, `${{ github.X }}`,
`${{ steps.ID.outputs.X }}`), `if: ${{ !cancelled() }}`, `shell: bash` (`bash --noprofile
--norc -eo pipefail`), `$GITHUB_ACTION_PATH`, `$GITHUB_OUTPUT` files in both formats, and the
action's `outputs:`. The rollout-runner it runs is a stand-in that records its argv (NUL
separated) and environment, exits with a chosen code and writes the step outputs the real
binary writes ($GITHUB_OUTPUT `phase`, `revision`, `verdict`, `check-url`).

Usage: python3 tests/actions/composite.py   (from the repository root; about 5 seconds)
"""

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.getcwd()
ACTION_DIR = os.path.join(ROOT, "actions/github")
ACTION = yaml.safe_load(open(os.path.join(ACTION_DIR, "action.yml")))
WORK = tempfile.mkdtemp(prefix="rr-action-")
FAILURES = []

FAKE = r"""#!/usr/bin/env bash
# A stand-in rollout-runner: records what it was given, then behaves as FAKE_* say.
if [ "${1:-}" = --version ]; then echo "rollout-runner 0.1.0"; exit 0; fi
n=$(( $(cat "$FAKE_DIR/calls" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$FAKE_DIR/calls"
printf '%s\0' "$@" > "$FAKE_DIR/argv.$n"
{
  echo "KUBECONFIG=${KUBECONFIG:-}"
  [ -n "${KUBECONFIG:-}" ] && echo "KUBECONFIG_MODE=$(stat -c %a "$KUBECONFIG")" && echo "KUBECONFIG_TEXT=$(cat "$KUBECONFIG")"
  echo "ROLLOUT_RUNNER_ENVIRONMENT=${ROLLOUT_RUNNER_ENVIRONMENT:-}"
  echo "GITHUB_TOKEN=${GITHUB_TOKEN:-}"
  echo "GITHUB_OUTPUT=${GITHUB_OUTPUT:-}"
  echo "ROLLOUT_RUNNER_REPORT_URL=${ROLLOUT_RUNNER_REPORT_URL:-}"
} > "$FAKE_DIR/env.$n"
# The files it is asked to write (--record, --junit, --html), with a line in each.
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
  case "${args[i]}" in --record | --junit | --html) echo "$1" > "${args[i + 1]}" ;; esac
done
[ -n "${FAKE_STDOUT:-}" ] && printf '%b' "$FAKE_STDOUT"
if [ "$n" = 2 ] && [ -n "${FAKE_STDOUT2:-}" ]; then printf '%b' "$FAKE_STDOUT2"; fi
[ -n "${FAKE_OUTPUTS:-}" ] && printf '%b' "$FAKE_OUTPUTS" >> "$GITHUB_OUTPUT"
if [ -n "${FAKE_SLEEP:-}" ]; then
  trap 'kill "$sleeper"; echo TERM > "$FAKE_DIR/signal"; printf "phase=Progressing\nrevision=4\n" >> "$GITHUB_OUTPUT"; exit 130' TERM
  sleep "$FAKE_SLEEP" > /dev/null & sleeper=$!
  touch "$FAKE_DIR/started"
  wait "$sleeper"
fi
exit "${FAKE_EXIT:-0}"
"""

HASH_A = "sha256:" + "a" * 64
HASH_B = "sha256:" + "b" * 64
HASH_ALL = "sha256:" + "c" * 64


def check(name, condition, detail=""):
    if not condition:
        FAILURES.append(f"{name}: {detail}")
        print(f"  FAIL {name}: {detail}", file=sys.stderr)


def read_output_file(path):
    """A $GITHUB_OUTPUT file, as the runner reads it (a later key wins)."""
    values = {}
    if not os.path.exists(path):
        return values
    lines = open(path, newline="").read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^([A-Za-z0-9_-]+)<<(.+)$", line)
        if m:
            key, delimiter, body = m.group(1), m.group(2), []
            i += 1
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise ValueError(f"{path}: unterminated {key}<<{delimiter}")
            values[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
        elif line:
            raise ValueError(f"{path}: cannot read line {line!r}")
        i += 1
    return values


def evaluate(expression, inputs, github, steps):
    """The `${{ }}` expressions action.yml uses; anything else is an error of the test."""
    def one(m):
        expr = m.group(1).strip()
        if expr.startswith("inputs."):
            return inputs[expr[len("inputs."):]]
        if expr.startswith("github."):
            return github.get(expr[len("github."):], "")
        m2 = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr)
        if m2:
            return steps.get(m2.group(1), {}).get(m2.group(2), "")
        raise ValueError(f"unsupported expression {expr!r}")
    return re.sub(r"\$\{\{(.*?)\}\}", one, str(expression))


def run_action(given, *, github=None, fake_env=None, action_path=ACTION_DIR, on_start=None, binary=True):
    """Run the action's steps with inputs `given`; returns (exit code, outputs, stdout, fake dir)."""
    case = tempfile.mkdtemp(dir=WORK)
    fake_dir = os.path.join(case, "fake")
    os.makedirs(fake_dir)
    fake_bin = os.path.join(case, "bin", "rollout-runner")
    os.makedirs(os.path.dirname(fake_bin))
    with open(fake_bin, "w") as f:
        f.write(FAKE)
    os.chmod(fake_bin, 0o755)
    inputs = {}
    for name, spec in ACTION["inputs"].items():
        default = spec.get("default", "")
        inputs[name] = given.get(name, "" if "${{" in str(default) else str(default))
    if "github-token" not in given:
        inputs["github-token"] = "ghs_test_token"
    if "artifacts" not in given:
        inputs["artifacts"] = "false"  # the artifact cases say so
    if binary and "binary" not in given:
        inputs["binary"] = fake_bin
    for name in given:
        assert name in ACTION["inputs"], f"test uses an input the action lacks: {name}"
    github = {"action_ref": "", "action_repository": "", **(github or {})}
    steps, code, stdout = {}, 0, ""
    runner_temp = os.path.join(case, "runner-temp")
    os.makedirs(runner_temp)
    failed = False
    for step in ACTION["runs"]["steps"]:
        if "uses" in step:
            # A published action (the upload): not run here; what it would be given is kept.
            assert step["uses"] == "actions/upload-artifact@v4", step["uses"]
            assert step["if"] == "${{ !cancelled() && steps.run.outputs.report-dir != '' }}", step["if"]
            if steps.get("run", {}).get("report-dir"):
                with_ = {k: evaluate(v, inputs, github, steps) for k, v in step["with"].items()}
                open(os.path.join(fake_dir, "upload"), "w").write(repr(with_))
            continue
        condition = step.get("if", "")
        if condition and condition != "${{ !cancelled() }}":
            raise ValueError(f"unsupported if: {condition}")
        if failed and not condition:
            continue  # default condition success(): skipped after a failure
        assert step["shell"] == "bash"
        output_file = os.path.join(case, f"output-{step['id']}")
        open(output_file, "w").close()
        env = {
            "PATH": os.environ["PATH"],
            "HOME": case,
            "GITHUB_ACTION_PATH": action_path,
            "GITHUB_OUTPUT": output_file,
            "GITHUB_PATH": os.path.join(case, "github-path"),
            "RUNNER_TEMP": runner_temp,
            "RUNNER_TOOL_CACHE": os.path.join(case, "tool-cache"),
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "FAKE_DIR": fake_dir,
            **(fake_env or {}),
        }
        for key, value in step.get("env", {}).items():
            env[key] = evaluate(value, inputs, github, steps)
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=case, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        if on_start and step["id"] == "run":
            on_start(process, fake_dir)
        out, _ = process.communicate(timeout=120)
        stdout += out
        steps[step["id"]] = read_output_file(output_file)
        if process.returncode != 0:
            failed = True
            code = code or process.returncode
    outputs = {name: evaluate(spec["value"], inputs, github, steps) for name, spec in ACTION["outputs"].items()}
    return code, outputs, stdout, fake_dir


def argv(fake_dir, call=1):
    path = os.path.join(fake_dir, f"argv.{call}")
    if not os.path.exists(path):
        return None
    data = open(path, "rb").read().decode()
    return data.split("\0")[:-1]


def fake_env_of(fake_dir, call=1):
    return dict(line.split("=", 1) for line in open(os.path.join(fake_dir, f"env.{call}")).read().splitlines() if "=" in line)


def expect_argv(name, given, want, **kw):
    code, outputs, out, fake_dir = run_action(given, **kw)
    got = argv(fake_dir)
    check(name + ": argv", got == want, f"\n    got:    {got}\n    wanted: {want}\n    log: {out}")
    return code, outputs, out, fake_dir


def all_outputs_written(name, outputs, outcome, exit_code):
    check(name + ": outcome", outputs["outcome"] == outcome, f"outcome {outputs['outcome']!r}, wanted {outcome!r}")
    check(name + ": exit-code", outputs["exit-code"] == str(exit_code), f"exit-code {outputs['exit-code']!r}, wanted {exit_code}")


def cases():
    nasty = "$(touch " + WORK + "/pwned) `touch " + WORK + "/pwned2` ${HOME} 'single' \"double\" ; |&"
    # apply: paths, values and set with spaces, quotes, $(...), backticks; no splitting, no evaluation.
    code, outputs, out, fake_dir = expect_argv("apply", {
        "command": "apply",
        "path": "deploy dir/\nbase/rollout.yaml\n",
        "values": "values prod.yaml\r\n",
        "set": f"image.tag=1.2 3\nnote={nasty}",
        "namespace": "prod eu",
        "context": "arn:aws:eks:eu-west-1:1:cluster/prod",
        "timeout": "60m",
        "success-on-pause": "true",
        "expect-plan": HASH_A,
        "environment": "prod eu",
        "args": "--lease-duration\n30 s\n" + nasty + "\n",
        "kubeconfig": "apiVersion: v1\nkind: Config\n",
    }, ["apply", "deploy dir/", "base/rollout.yaml", "--values", "values prod.yaml",
        "--set", "image.tag=1.2 3", "--set", f"note={nasty}",
        "--context", "arn:aws:eks:eu-west-1:1:cluster/prod", "--namespace", "prod eu",
        "--expect-plan", HASH_A, "--wait", "--timeout", "60m", "--success-on-pause",
        "--report", "github", "--lease-duration", "30 s", nasty])
    check("apply: exit", code == 0, f"exit {code}: {out}")
    all_outputs_written("apply", outputs, "success", 0)
    check("apply: no evaluation", not os.path.exists(WORK + "/pwned") and not os.path.exists(WORK + "/pwned2"), "an input was evaluated")
    env = fake_env_of(fake_dir)
    check("apply: environment", env.get("ROLLOUT_RUNNER_ENVIRONMENT") == "prod eu", str(env))
    check("apply: token", env.get("GITHUB_TOKEN") == "ghs_test_token", "GITHUB_TOKEN not passed")
    check("apply: kubeconfig private", env.get("KUBECONFIG_MODE") == "600" and env.get("KUBECONFIG_TEXT") == "apiVersion: v1", str(env))
    check("apply: kubeconfig removed", not os.path.exists(env.get("KUBECONFIG", "/nonexistent")), "the kubeconfig file is left behind")
    check("apply: own GITHUB_OUTPUT", env.get("GITHUB_OUTPUT", "").startswith(os.path.join(os.path.dirname(fake_dir), "runner-temp") + "/"), env.get("GITHUB_OUTPUT"))
    check("apply: command line logged", "rollout-runner apply deploy\\ dir/ base/rollout.yaml" in out, out)

    # artifacts: the record and JUnit of the release, its HTML report, the outputs, the upload,
    # and the link the check run and the comment carry; for a failed release too.
    run_env = {"GITHUB_JOB": "deploy", "GITHUB_RUN_ATTEMPT": "2", "GITHUB_SERVER_URL": "https://github.com",
               "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "99"}
    code, outputs, out, fake_dir = run_action({"command": "apply", "path": "deploy/", "artifacts": "true", "environment": "prod eu"},
                                              fake_env={**run_env, "FAKE_EXIT": "1"})
    reports = outputs["report-dir"]
    check("artifacts: directory", reports.endswith("/rollout-runner-reports/rollout-runner-deploy-apply-prod-eu-2"), str(outputs))
    check("artifacts: record and junit", argv(fake_dir) == ["apply", "deploy/", "--wait", "--report", "github",
          "--record", reports + "/record.json", "--junit", reports + "/junit.xml"], f"{argv(fake_dir)}\n{out}")
    check("artifacts: html", argv(fake_dir, 2) == ["report", reports + "/record.json", "--html", reports + "/report.html"], str(argv(fake_dir, 2)))
    check("artifacts: outputs", (outputs["html-report"], outputs["junit-report"], outputs["artifact-name"])
          == (reports + "/report.html", reports + "/junit.xml", "rollout-runner-deploy-apply-prod-eu-2"), str(outputs))
    upload = open(os.path.join(fake_dir, "upload")).read() if os.path.exists(os.path.join(fake_dir, "upload")) else ""
    check("artifacts: uploaded", upload == repr({"name": "rollout-runner-deploy-apply-prod-eu-2", "path": reports, "if-no-files-found": "ignore"}), upload)
    check("artifacts: linked", fake_env_of(fake_dir).get("ROLLOUT_RUNNER_REPORT_URL") == "https://github.com/o/r/actions/runs/99#artifacts", str(fake_env_of(fake_dir)))
    all_outputs_written("artifacts", outputs, "failure", 1)
    # Not for commands that record nothing.
    code, outputs, out, fake_dir = run_action({"command": "promote", "rollout": "web", "artifacts": "true"}, fake_env=run_env)
    check("artifacts: promote records nothing", argv(fake_dir) == ["promote", "web"] and outputs["report-dir"] == ""
          and not os.path.exists(os.path.join(fake_dir, "upload")), f"{argv(fake_dir)} {outputs}")

    # apply without waiting: no --wait, no reporting flags.
    expect_argv("apply wait false", {"command": "apply", "wait": "false", "report": "none"}, ["apply", "."])

    # The operate commands take the rollout's name (the bug: `promote .`).
    expect_argv("promote", {"command": "promote", "rollout": "checkout", "path": "deploy/"}, ["promote", "checkout"])
    expect_argv("promote full", {"command": "promote", "rollout": "checkout", "namespace": "shop", "args": "--full"},
                ["promote", "checkout", "--namespace", "shop", "--full"])
    expect_argv("abort", {"command": "abort", "rollout": "check out"}, ["abort", "check out"])
    expect_argv("retry", {"command": "retry", "rollout": "checkout", "context": "kind"}, ["retry", "checkout", "--context", "kind"])
    expect_argv("undo", {"command": "undo", "rollout": "checkout", "args": "--to-revision\n3"}, ["undo", "checkout", "--to-revision", "3"])
    expect_argv("pause", {"command": "pause", "rollout": "checkout"}, ["pause", "checkout"])
    expect_argv("resume", {"command": "resume", "rollout": "checkout"}, ["resume", "checkout"])
    expect_argv("status", {"command": "status", "rollout": "checkout", "timeout": "5m"},
                ["status", "checkout", "--watch", "--timeout", "5m", "--report", "github"])
    expect_argv("status once", {"command": "status", "rollout": "checkout", "wait": "false"}, ["status", "checkout"])
    expect_argv("simulate", {"command": "simulate", "path": "examples/canary-basic", "rollout": "web", "args": "--scenario\ns.yaml"},
                ["simulate", "examples/canary-basic", "--rollout", "web", "--report", "github", "--scenario", "s.yaml"])
    # comment-command: the rollout comes from the comment, the cluster from the inputs.
    expect_argv("comment-command", {"command": "comment-command", "namespace": "shop", "path": "deploy/"},
                ["comment-command", "--namespace", "shop"])
    expect_argv("lint", {"command": "lint", "path": "deploy/"}, ["lint", "deploy/"])
    expect_argv("lint with values", {"command": "lint", "path": "deploy/", "values": "deploy/values-production.yaml", "set": "image.tag=a b"},
                ["lint", "deploy/", "--values", "deploy/values-production.yaml", "--set", "image.tag=a b"])
    expect_argv("render", {"command": "render", "path": "t/", "set": "a=b"}, ["render", "t/", "--set", "a=b"])
    expect_argv("files (deprecated, split on spaces)", {"command": "lint", "files": "a.yaml b.yaml\nc.yaml"}, ["lint", "a.yaml", "b.yaml", "c.yaml"])

    # plan: the hash of one plan comes from its output.
    code, outputs, out, fake_dir = expect_argv("plan", {"command": "plan", "path": "deploy/", "comment": "true", "environment": "production"},
                                               ["plan", "deploy/", "--comment", "--report", "github"],
                                               fake_env={"FAKE_STDOUT": f"step table\\n\\nPlan hash: {HASH_A}\\n"})
    check("plan: hash", outputs["plan-hash"] == HASH_A, f"plan-hash {outputs['plan-hash']!r}")
    check("plan: output shown", f"Plan hash: {HASH_A}" in out, out)
    all_outputs_written("plan", outputs, "success", 0)
    # Several plans: the combined hash, from a second call for markdown without --output.
    code, outputs, out, fake_dir = expect_argv("plan several", {"command": "plan", "path": "a/", "args": "--output\njson"},
                                               ["plan", "a/", "--output", "json"],
                                               fake_env={"FAKE_STDOUT": f'[{{"hash": "{HASH_A}"}}, {{"hash": "{HASH_B}"}}]\\n',
                                                         "FAKE_STDOUT2": f"<!-- rollout-runner plan {HASH_ALL} -->\\n"})
    check("plan several: second call", argv(fake_dir, 2) == ["plan", "a/", "--output", "markdown"], str(argv(fake_dir, 2)))
    check("plan several: combined hash", outputs["plan-hash"] == HASH_ALL, f"plan-hash {outputs['plan-hash']!r}")

    # A failed release: the binary's outputs are mapped, the step fails with its exit code.
    code, outputs, out, _ = run_action({"command": "apply", "path": "deploy/"}, fake_env={
        "FAKE_EXIT": "1",
        "FAKE_OUTPUTS": "phase=Degraded\\nrevision=7\\nverdict=aborted\\ncheck-url=https://github.com/o/r/runs/1\\n"})
    check("failure: exit", code == 1, f"exit {code}")
    all_outputs_written("failure", outputs, "failure", 1)
    check("failure: mapped", (outputs["revision"], outputs["check-run-url"], outputs["check-url"], outputs["verdict"], outputs["phase"])
          == ("7", "https://github.com/o/r/runs/1", "https://github.com/o/r/runs/1", "aborted", "Degraded"), str(outputs))
    code, outputs, _, _ = run_action({"command": "apply", "timeout": "1m"}, fake_env={"FAKE_EXIT": "3", "FAKE_OUTPUTS": "revision=2\\nverdict=timed-out\\n"})
    check("timeout: exit", code == 3, f"exit {code}")
    all_outputs_written("timeout", outputs, "timed-out", 3)
    check("timeout: revision", outputs["revision"] == "2", str(outputs))
    code, outputs, _, _ = run_action({"command": "apply"}, fake_env={"FAKE_EXIT": "2"})
    all_outputs_written("runner error", outputs, "invalid", 2)

    # Bad input: rollout-runner never runs, the outputs say why.
    for name, given in [("unknown command", {"command": "deploy"}),
                        ("no command", {"command": ""}),
                        ("promote without rollout", {"command": "promote"}),
                        ("bad boolean", {"command": "apply", "wait": "yes"})]:
        code, outputs, out, fake_dir = run_action(given)
        check(name + ": exit", code == 2, f"exit {code}: {out}")
        all_outputs_written(name, outputs, "invalid", 2)
        check(name + ": not run", argv(fake_dir) is None, "rollout-runner ran")
        check(name + ": annotated", "::error title=rollout-runner::" in out, out)
    code, outputs, out, _ = run_action({"command": "promote", "args": "--rollout checkout"}, binary=True)
    check("args warning", "::warning title=rollout-runner::args: `--rollout checkout` is passed as ONE argument" in out, out)

    # A cancelled job: SIGTERM reaches rollout-runner, which stops; the outputs are written.
    def cancel(process, fake_dir):
        deadline = time.time() + 20
        while not os.path.exists(os.path.join(fake_dir, "started")) and time.time() < deadline:
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGTERM)
    code, outputs, out, fake_dir = run_action({"command": "apply"}, fake_env={"FAKE_SLEEP": "30"}, on_start=cancel)
    check("cancel: rollout-runner got SIGTERM", os.path.exists(os.path.join(fake_dir, "signal")), out)
    check("cancel: exit", code == 130, f"exit {code}: {out}")
    all_outputs_written("cancel", outputs, "interrupted", 130)
    check("cancel: revision", outputs["revision"] == "4", str(outputs))

    install_cases()


def package_release(version):
    """A release directory as the release workflow makes it, with the stand-in binary."""
    fake = os.path.join(WORK, "release-bin")
    with open(fake, "w") as f:
        f.write(FAKE)
    os.chmod(fake, 0o755)
    dist = os.path.join(WORK, f"dist-{version}")
    subprocess.run(["tests/release/package", "x86_64-unknown-linux-musl", fake, dist, version], check=True, stdout=subprocess.DEVNULL)
    return dist


def checkout_at(ref):
    """The action as the runner checks it out: _actions/OWNER/REPO/REF/actions/github."""
    tree = os.path.join(WORK, "_actions", "rollout-runner", "rollout-runner", ref)
    if not os.path.exists(tree):
        shutil.copytree(ACTION_DIR, os.path.join(tree, "actions/github"))
        shutil.copy("Cargo.toml", tree)
        for manifest in ["runner/Cargo.toml"]:
            if os.path.exists(manifest):
                os.makedirs(os.path.join(tree, os.path.dirname(manifest)), exist_ok=True)
                shutil.copy(manifest, os.path.join(tree, manifest))
    return os.path.join(tree, "actions/github")


def install_cases():
    version = subprocess.run(["tests/release/version"], capture_output=True, text=True, check=True).stdout.strip()
    dist = package_release(version)
    url = "file://" + dist
    # A release ref (v0 moving tag, then vX.Y.Z): downloaded, checked, cached, then run.
    for ref in ["v0", f"v{version}"]:
        path = checkout_at(ref)
        code, outputs, out, fake_dir = run_action(
            {"command": "promote", "rollout": "checkout", "release-url": url},
            action_path=path, binary=False, github={"action_ref": ""})
        check(f"install {ref}: exit", code == 0, out)
        check(f"install {ref}: checksum", "sha256" in out and "ok" in out, out)
        check(f"install {ref}: version", outputs["version"] == version, str(outputs))
        check(f"install {ref}: ran", argv(fake_dir) == ["promote", "checkout"], str(argv(fake_dir)))
        cached = re.search(r"using (\S+)", out)
        check(f"install {ref}: tool cache", cached and cached.group(1).endswith(f"/rollout-runner/{version}/x64/rollout-runner"), out)
    # The version input wins over the ref; `{version}` in release-url.
    os.makedirs(os.path.join(WORK, "mirror"), exist_ok=True)
    os.symlink(dist, os.path.join(WORK, "mirror", version))
    code, outputs, out, _ = run_action({"command": "abort", "rollout": "x", "version": f"v{version}",
                                        "release-url": "file://" + WORK + "/mirror/{version}"},
                                       action_path=checkout_at("main"), binary=False)
    check("install version input: exit", code == 0 and outputs["version"] == version, out)
    # A checksum that does not match: the install fails, nothing runs, the outputs say so.
    bad = os.path.join(WORK, "bad")
    shutil.copytree(dist, bad)
    with open(os.path.join(bad, "SHA256SUMS")) as f:
        line = f.read()
    with open(os.path.join(bad, "SHA256SUMS"), "w") as f:
        f.write("0" * 64 + line[64:])
    code, outputs, out, fake_dir = run_action({"command": "apply", "release-url": "file://" + bad},
                                              action_path=checkout_at(f"v{version}"), binary=False)
    check("install bad checksum: fails", code != 0 and "checksum mismatch" in out, out)
    all_outputs_written("install bad checksum", outputs, "error", 2)
    check("install bad checksum: not cached", not os.path.exists(os.path.join(fake_dir, "..", "tool-cache", "rollout-runner", version, "x64", "rollout-runner")), "cached anyway")
    # An unsupported runner.
    code, outputs, out, _ = run_action({"command": "apply"}, binary=False, action_path=checkout_at(f"v{version}"),
                                       fake_env={"RUNNER_OS": "Windows"})
    check("install windows: fails", code != 0 and "no release for Windows/X64" in out, out)
    all_outputs_written("install windows", outputs, "error", 2)
    # A branch (not a release): built from the action's checkout with cargo install, then
    # cached per content. A stand-in cargo records its argv and installs the stand-in binary.
    cargo_dir = os.path.join(WORK, "cargo-bin")
    os.makedirs(cargo_dir, exist_ok=True)
    with open(os.path.join(cargo_dir, "cargo"), "w") as f:
        f.write("#!/usr/bin/env bash\n"
                "printf '%s\\0' \"$@\" > \"$FAKE_DIR/cargo.argv\"\n"
                "root=; while [ $# -gt 0 ]; do [ \"$1\" = --root ] && root=$2; shift; done\n"
                f"mkdir -p \"$root/bin\" && cp {os.path.join(WORK, 'release-bin')} \"$root/bin/rollout-runner\"\n")
    os.chmod(os.path.join(cargo_dir, "cargo"), 0o755)
    path = checkout_at("main")
    code, outputs, out, fake_dir = run_action({"command": "retry", "rollout": "checkout"}, action_path=path, binary=False,
                                              fake_env={"PATH": cargo_dir + ":" + os.environ["PATH"]})
    cargo_argv = open(os.path.join(fake_dir, "cargo.argv"), "rb").read().decode().split("\0")[:-1] if os.path.exists(os.path.join(fake_dir, "cargo.argv")) else None
    tree = os.path.dirname(os.path.dirname(path))
    check("source build: cargo install", cargo_argv is not None and cargo_argv[:5] == ["install", "--locked", "--path", os.path.join(tree, "runner"), "--bin"]
          and "--root" in cargo_argv, f"{cargo_argv}\n{out}")
    check("source build: ran", code == 0 and argv(fake_dir) == ["retry", "checkout"], out)
    # Without cargo: a clear error, and the outputs say so.
    no_cargo = ":".join(p for p in os.environ["PATH"].split(":") if not os.path.exists(os.path.join(p, "cargo")))
    code, outputs, out, _ = run_action({"command": "retry", "rollout": "checkout"}, action_path=path, binary=False,
                                       fake_env={"PATH": no_cargo})
    check("source build without cargo: fails", code != 0 and "cargo is missing" in out, out)
    all_outputs_written("source build without cargo", outputs, "error", 2)
    # The binary input: used as is.
    code, outputs, out, _ = run_action({"command": "lint", "binary": "/nonexistent/rollout-runner"}, binary=False)
    check("binary missing: fails", code != 0 and "is not an executable file" in out, out)


try:
    cases()
finally:
    shutil.rmtree(WORK, ignore_errors=True)
if FAILURES:
    print(f"composite action: {len(FAILURES)} failure(s)", file=sys.stderr)
    sys.exit(1)
print("check: composite action: ok (argv, outputs on every path, cancellation, install from a release)")
