"""Check the GitLab CI/CD component and the include-by-file template, without GitLab.

1. Shape: the component file is a `spec:` header and a body; it has the documented inputs; its
   jobs take no `before_script`, start their `script` with the shared helpers, apply in a
   resource group per environment with a deployment tier, and promote/abort are manual.
2. The component's shell under the image's shell (busybox sh, else dash) with a stand-in
   rollout-runner: exact argv for inputs with spaces, quotes, `$(...)`, CRLF, empty lines.
3. gitlab-ci-local (tests/actions/gitlab-ci-local installs it, and rsync; skipped without node): the component included
   with `include: component` from a local project, inputs interpolated (`--preview`), the rules
   (plan on merge request pipelines, apply and manual jobs on the default branch, no manual
   jobs without a rollout), and the apply and plan jobs run with a `default: before_script`.

Usage: python3 tests/actions/gitlab.py   (from the repository root)
"""

import os
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.getcwd()
COMPONENT = "actions/gitlab/templates/rollout-runner.yml"
TEMPLATE = "actions/gitlab/rollout-runner.gitlab-ci.yml"
WORK = tempfile.mkdtemp(prefix="rr-gitlab-")
FAILURES = []

FAKE = """#!/bin/sh
n=$(ls "$FAKE_DIR" | grep -c '^argv')
printf '%s\\0' "$@" > "$FAKE_DIR/argv.$((n + 1))"
# The files it is asked to write (--record, --junit, --html), when FAKE_WRITES is set.
while [ -n "${FAKE_WRITES:-}" ] && [ $# -gt 1 ]; do
  case "$1" in --record | --junit | --html) echo "$1" > "$2" ;; esac
  shift
done
exit "${FAKE_EXIT:-0}"
"""


def check(name, condition, detail=""):
    if not condition:
        FAILURES.append(name)
        print(f"  FAIL {name}: {detail}", file=sys.stderr)


def fake_dir():
    d = tempfile.mkdtemp(dir=WORK)
    os.makedirs(os.path.join(d, "bin"))
    os.makedirs(os.path.join(d, "out"))
    with open(os.path.join(d, "bin", "rollout-runner"), "w") as f:
        f.write(FAKE)
    os.chmod(os.path.join(d, "bin", "rollout-runner"), 0o755)
    return d


def argvs(d):
    out = os.path.join(d, "out")
    return [open(os.path.join(out, f"argv.{i}"), "rb").read().decode().split("\0")[:-1]
            for i in range(1, len(os.listdir(out)) + 1)]


# 1. Shape.
header, body = list(yaml.safe_load_all(open(COMPONENT)))
inputs = header["spec"]["inputs"]
for name in ["stage", "path", "values", "set", "environment", "deployment_tier", "namespace", "context",
             "rollout", "timeout", "wait", "success_on_pause", "report", "args", "image"]:
    check(f"input {name}", name in inputs, "missing")
check("input wait is boolean", inputs["wait"].get("type") == "boolean", str(inputs["wait"]))
check("image default is the workspace version",
      inputs["image"]["default"].endswith(":" + subprocess.run(["tests/release/version"], capture_output=True, text=True).stdout.strip()),
      inputs["image"]["default"])
jobs = {name.split(":")[1]: job for name, job in body.items()}
check("jobs", sorted(jobs) == ["abort", "apply", "plan", "promote"], str(sorted(body)))
for kind, job in jobs.items():
    check(f"{kind}: no before_script", "before_script" not in job, "it would be replaced by a user's")
    check(f"{kind}: helpers first", "rr() {" in job["script"][0], job["script"][0][:60])
    check(f"{kind}: runs rr {kind}", job["script"][-1] == f"rr {kind}", str(job["script"][-1]))
    check(f"{kind}: entrypoint", job["image"]["entrypoint"] == [""], str(job["image"]))
apply = jobs["apply"]
check("apply: resource group per environment", apply["resource_group"] == "rollout-runner-$[[ inputs.environment ]]", str(apply.get("resource_group")))
check("apply: artifacts", apply.get("artifacts") == {"when": "always", "expose_as": "rollout-runner report",
      "paths": ["rollout-runner-report/"], "reports": {"junit": "rollout-runner-report/junit*.xml"}}, str(apply.get("artifacts")))
check("apply: deployment tier", apply["environment"]["deployment_tier"] == "$[[ inputs.deployment_tier ]]", str(apply["environment"]))
for kind in ["promote", "abort"]:
    job = jobs[kind]
    check(f"{kind}: manual", any(rule.get("when") == "manual" for rule in job["rules"]), str(job["rules"]))
    check(f"{kind}: beside apply", "resource_group" not in job and job.get("needs") == [], "it would wait for apply")
    check(f"{kind}: environment access", job["environment"]["action"] == "access", str(job["environment"]))
check("plan: on merge requests", jobs["plan"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}], str(jobs["plan"]["rules"]))
template = yaml.safe_load(open(TEMPLATE))
for name, job in template.items():
    if isinstance(job, dict):
        check(f"template {name}: no before_script", "before_script" not in job, "")
for name in [".rollout-runner-apply", ".rollout-runner-simulate", ".rollout-runner-status"]:
    check(f"template {name}: recorded", ".rollout-runner-recorded" in template[name]["extends"]
          and "$(rr_record_flags)" in template[name]["script"][-1], str(template[name]))
check("template: artifacts", template[".rollout-runner-recorded"]["artifacts"]["reports"] == {"junit": "rollout-runner-report/junit*.xml"}, "")
for path in ["examples/gitlab/.gitlab-ci.yml", "examples/gitlab/template.gitlab-ci.yml", "examples/gitlab/comment-command.gitlab-ci.yml", "actions/gitlab/.gitlab-ci.yml"]:
    yaml.safe_load(open(path))

# 2. The helpers under the image's shell.
lib = jobs["apply"]["script"][0]
shell = ["busybox", "sh"] if shutil.which("busybox") else ["dash"]
nasty = "note=$(touch " + WORK + "/pwned) `touch " + WORK + "/pwned2` 'q' \"d\" ; |&"


def run_lib(command, env, code=0):
    d = fake_dir()
    full = {"PATH": os.path.join(d, "bin") + ":/usr/bin:/bin", "FAKE_DIR": os.path.join(d, "out"), **env}
    result = subprocess.run(shell + ["-e", "-c", lib + f"\nrr {command}\n"], env=full, capture_output=True, text=True, cwd=d)
    check(f"sh {command}: exit", result.returncode == code, f"exit {result.returncode}: {result.stderr}")
    return argvs(d)


base = {"RR_PATH": "deploy dir/\r\n\nbase.yaml\n", "RR_VALUES": "v 1.yaml", "RR_SET": f"a=1 2\n{nasty}",
        "RR_NAMESPACE": "prod eu", "RR_CONTEXT": "ctx", "RR_ROLLOUT": "check out", "RR_TIMEOUT": "60m",
        "RR_WAIT": "true", "RR_SUCCESS_ON_PAUSE": "true", "RR_REPORT": "gitlab", "RR_ARGS": "--lease-duration\n30 s"}
want_inputs = ["deploy dir/", "base.yaml", "--values", "v 1.yaml", "--set", "a=1 2", "--set", nasty]
got = run_lib("apply", base)
check("sh apply: argv", got == [["apply", *want_inputs, "--context", "ctx", "--namespace", "prod eu", "--wait", "--timeout", "60m",
                                 "--success-on-pause", "--report", "gitlab", "--lease-duration", "30 s",
                                 "--record", "rollout-runner-report/record.json", "--junit", "rollout-runner-report/junit.xml"]], str(got))
# A failed release that was recorded: its HTML report is rendered, the job still fails, and
# the note links the job's artifacts.
got = run_lib("apply", {**base, "RR_ARGS": "", "FAKE_WRITES": "1", "FAKE_EXIT": "1", "CI_JOB_URL": "https://gl.example/p/-/jobs/7"}, code=1)
check("sh apply recorded: html", got[1:] == [["report", "rollout-runner-report/record.json", "--html", "rollout-runner-report/report.html"]], str(got))
check("sh: no evaluation", not os.path.exists(WORK + "/pwned") and not os.path.exists(WORK + "/pwned2"), "an input was evaluated")
got = run_lib("apply", {**base, "RR_WAIT": "false", "RR_ARGS": "", "RR_PATH": ""})
check("sh apply no wait: argv", got == [["apply", ".", "--values", "v 1.yaml", "--set", "a=1 2", "--set", nasty,
                                         "--context", "ctx", "--namespace", "prod eu"]], str(got))
got = run_lib("plan", {**base, "RR_REPORT": "none"})
check("sh plan: argv", got == [["plan", *want_inputs, "--comment", "--lease-duration", "30 s"]], str(got))
got = run_lib("promote", base)
check("sh promote: argv", got == [["promote", "check out", "--context", "ctx", "--namespace", "prod eu"]], str(got))
got = run_lib("abort", {**base, "RR_CONTEXT": ""})
check("sh abort: argv", got == [["abort", "check out", "--namespace", "prod eu"]], str(got))
got = run_lib("promote", {**base, "RR_ROLLOUT": ""}, code=2)
check("sh promote without rollout: not run", got == [], str(got))


# 3. gitlab-ci-local: the component as GitLab includes it.
def gitlab_ci_local():
    if not shutil.which("node"):
        print("check: gitlab: gitlab-ci-local SKIPPED (needs node)", file=sys.stderr)
        return
    entry = subprocess.run(["tests/actions/gitlab-ci-local"], capture_output=True, text=True, check=True).stdout.strip()
    project = os.path.join(WORK, "project")
    # The component project is actions/gitlab at its root (see actions/gitlab/README.md).
    shutil.copytree("actions/gitlab", project)
    git = ["git", "-C", project, "-c", "user.email=ci@example.invalid", "-c", "user.name=ci"]
    subprocess.run(git + ["init", "-q", "-b", "main"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "component"], check=True)
    subprocess.run(git + ["remote", "add", "origin", "https://gitlab.com/rollout-runner/rollout-runner.git"], check=True)
    subprocess.run(git + ["update-ref", "refs/remotes/origin/main", "HEAD"], check=True)
    subprocess.run(git + ["symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"], check=True)
    with open(os.path.join(project, ".git/info/exclude"), "a") as f:
        f.write(".gitlab-ci-local/\n.gitlab-ci-local-*\n")
    sha = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()

    def pipeline(rollout):
        config = {
            "default": {"before_script": ["echo a user's default before_script"]},
            "include": [{"component": f"gitlab.com/rollout-runner/rollout-runner/rollout-runner@{sha}",
                         "inputs": {"path": "deploy dir/\nbase.yaml\n", "environment": "production",
                                    "rollout": rollout, "namespace": "prod eu", "set": f"tag=$CI_COMMIT_SHORT_SHA\n{nasty}",
                                    "timeout": "60m"}}],
        }
        with open(os.path.join(project, ".gitlab-ci.yml"), "w") as f:
            yaml.safe_dump(config, f)

    def gcl(*args, source="push", extra_env=None):
        d = fake_dir()
        env = {**os.environ, "PATH": os.path.join(d, "bin") + ":" + os.environ["PATH"], **(extra_env or {})}
        result = subprocess.run(["node", entry, "--cwd", ".", "--no-json-schema-validation", "--force-shell-executor",
                                 "--ignore-predefined-vars", "CI_PIPELINE_SOURCE",
                                 "--variable", f"CI_PIPELINE_SOURCE={source}",
                                 "--variable", f"FAKE_DIR={os.path.join(d, 'out')}", *args],
                                cwd=project, env=env, capture_output=True, text=True, timeout=300)
        return result, d

    pipeline("checkout")
    result, _ = gcl("--preview")
    check("gcl preview", result.returncode == 0, result.stdout + result.stderr)
    preview = yaml.safe_load(result.stdout[result.stdout.index("---"):]) if "---" in result.stdout else {}
    apply_job = preview.get("rollout-runner:apply:production", {})
    check("gcl preview: interpolated", apply_job.get("resource_group") == "rollout-runner-production"
          and apply_job.get("environment", {}).get("deployment_tier") == "production"
          and apply_job.get("variables", {}).get("RR_NAMESPACE") == "prod eu", str(apply_job)[:400])

    listed, _ = gcl("--list-json")
    import json
    jobs_on_main = {j["name"]: j for j in json.loads(listed.stdout[listed.stdout.index("["):])}
    check("gcl main: jobs", {n for n, j in jobs_on_main.items() if j.get("when") != "never"} ==
          {"rollout-runner:apply:production", "rollout-runner:promote:production", "rollout-runner:abort:production"},
          str({n: j.get("when") for n, j in jobs_on_main.items()}))
    check("gcl main: promote manual", jobs_on_main.get("rollout-runner:promote:production", {}).get("when") == "manual", "")
    listed, _ = gcl("--list-json", source="merge_request_event")
    jobs_on_mr = {j["name"] for j in json.loads(listed.stdout[listed.stdout.index("["):]) if j.get("when") != "never"}
    check("gcl merge request: plan only", jobs_on_mr == {"rollout-runner:plan:production"}, str(jobs_on_mr))

    result, d = gcl("rollout-runner:apply:production")
    check("gcl apply: passes", result.returncode == 0, result.stdout[-2000:] + result.stderr)
    check("gcl apply: user before_script ran", "a user's default before_script" in result.stdout, "")
    got = argvs(d)
    sha_short = sha[:8]
    want = [["apply", "deploy dir/", "base.yaml", "--set", f"tag={sha_short}", "--set", nasty, "--namespace", "prod eu",
             "--wait", "--timeout", "60m", "--report", "gitlab",
             "--record", "rollout-runner-report/record.json", "--junit", "rollout-runner-report/junit.xml"]]
    check("gcl apply: argv", got == want, f"\n    got:    {got}\n    wanted: {want}")
    result, d = gcl("rollout-runner:plan:production", source="merge_request_event")
    check("gcl plan: argv", argvs(d) == [["plan", "deploy dir/", "base.yaml", "--set", f"tag={sha_short}", "--set", nasty,
                                          "--comment", "--report", "gitlab"]], str(argvs(d)) + result.stdout[-1500:])
    result, d = gcl("rollout-runner:apply:production", extra_env={"FAKE_EXIT": "1"})
    check("gcl apply failing: job fails", result.returncode != 0 and "FAIL" in result.stdout, result.stdout[-800:])

    # The example pipeline (two environments), with the component from the local project.
    example = open(os.path.join(ROOT, "examples/gitlab/.gitlab-ci.yml")).read()
    assert "$CI_SERVER_FQDN/rollout-runner/rollout-runner/rollout-runner@0.1.0" in example
    with open(os.path.join(project, ".gitlab-ci.yml"), "w") as f:
        f.write(example.replace("$CI_SERVER_FQDN/rollout-runner/rollout-runner/rollout-runner@0.1.0",
                                f"gitlab.com/rollout-runner/rollout-runner/rollout-runner@{sha}"))
    listed, _ = gcl("--list-json")
    example_jobs = {j["name"]: j for j in json.loads(listed.stdout[listed.stdout.index("["):]) if j.get("when") != "never"}
    want_jobs = {"lint"} | {f"rollout-runner:{k}:{e}" for k in ["apply", "promote", "abort"] for e in ["staging", "production"]}
    check("gcl example: jobs", set(example_jobs) == want_jobs, str(sorted(example_jobs)))
    production = example_jobs.get("rollout-runner:apply:production", {})
    check("gcl example: production after staging", production.get("stage") == "production"
          and "rollout-runner:apply:staging" in str(production.get("needs")), str(production)[:300])

    pipeline("")
    listed, _ = gcl("--list-json")
    names = {j["name"] for j in json.loads(listed.stdout[listed.stdout.index("["):]) if j.get("when") != "never"}
    check("gcl no rollout: no manual jobs", names == {"rollout-runner:apply:production"}, str(names))


try:
    gitlab_ci_local()
finally:
    shutil.rmtree(WORK, ignore_errors=True)
if FAILURES:
    print(f"check: gitlab: {len(FAILURES)} failure(s)", file=sys.stderr)
    sys.exit(1)
print(f"check: gitlab: ok (component shape, argv under {shell[0]}, gitlab-ci-local include: component)")
