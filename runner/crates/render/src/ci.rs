//! The CI context: which commit, branch, tag, pull request and run this is.
//!
//! Owns detecting GitHub Actions, GitLab CI or a local run and reading what templates and
//! reports need to know about the change: from the CI system's environment variables, from the
//! event payload GitHub writes to disk, and from the git repository around the working
//! directory (git2, `Repository::discover`). CI variables win over git: in CI the checkout may
//! be a detached merge commit. Git fields come only from a HEAD that is the commit CI names.
//!
//! Refuses to call any API, to read tokens (the reporters read their own), or to fail: what
//! cannot be found is simply absent, and a template that needs it fails with a strict-undefined
//! error. Every environment variable read is declared in [`ENV_VARS`]; reads go through one
//! function that the environment is passed into, so tests hand in a fake one.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

/// An environment variable this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable's name.
    pub name: &'static str,
    /// What it is used for.
    pub meaning: &'static str,
}

/// Every environment variable the CI context reads. Empty values count as unset.
pub const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "GITHUB_ACTIONS",
        meaning: "`true` in GitHub Actions: selects the `github` provider",
    },
    EnvVar {
        name: "GITHUB_SHA",
        meaning: "`commit` (on `pull_request` events, the merge commit GitHub checks out)",
    },
    EnvVar {
        name: "GITHUB_REF",
        meaning: "the full ref: `refs/pull/N/merge` gives `pr`",
    },
    EnvVar {
        name: "GITHUB_REF_NAME",
        meaning: "`branch` when `GITHUB_REF_TYPE` is `branch`, `tag` when it is `tag`",
    },
    EnvVar {
        name: "GITHUB_REF_TYPE",
        meaning: "`branch` or `tag`: what `GITHUB_REF_NAME` names",
    },
    EnvVar {
        name: "GITHUB_HEAD_REF",
        meaning: "the source branch of a pull request: `branch` (wins over `GITHUB_REF_NAME`)",
    },
    EnvVar {
        name: "GITHUB_EVENT_NAME",
        meaning: "`event`: which fields of the payload name the commit, pull request and refs",
    },
    EnvVar {
        name: "GITHUB_EVENT_PATH",
        meaning: "the event payload, which wins over the variables: `head_sha`, `pr`, `branch`, \
                  `tag` and `base_branch` from `pull_request`/`pull_request_target` (the head \
                  commit, not the merge commit), `push` (`after`, `ref`), `merge_group`, \
                  `workflow_dispatch` (`ref`), `issue_comment` on a pull request (`pr`) and \
                  `deployment` (`sha`); `head_commit.message` gives the commit message",
    },
    EnvVar {
        name: "GITHUB_SERVER_URL",
        meaning: "with `GITHUB_REPOSITORY`: `remote_url`, and with `GITHUB_RUN_ID`: `run_url`",
    },
    EnvVar {
        name: "GITHUB_REPOSITORY",
        meaning: "`repository` (`owner/name`)",
    },
    EnvVar {
        name: "GITHUB_RUN_ID",
        meaning: "`run_url` (`$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`)",
    },
    EnvVar {
        name: "GITHUB_ACTOR",
        meaning: "`actor`",
    },
    EnvVar {
        name: "GITLAB_CI",
        meaning: "`true` in GitLab CI: selects the `gitlab` provider",
    },
    EnvVar {
        name: "CI_COMMIT_SHA",
        meaning: "`commit`",
    },
    EnvVar {
        name: "CI_COMMIT_SHORT_SHA",
        meaning: "`short_sha` (GitLab's, 8 characters)",
    },
    EnvVar {
        name: "CI_COMMIT_BRANCH",
        meaning: "`branch` (unset in merge request and tag pipelines)",
    },
    EnvVar {
        name: "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
        meaning: "`branch` in merge request pipelines",
    },
    EnvVar {
        name: "CI_COMMIT_REF_NAME",
        meaning: "`branch` when neither of the two above is set and the pipeline is not for a tag",
    },
    EnvVar {
        name: "CI_COMMIT_TAG",
        meaning: "`tag`",
    },
    EnvVar {
        name: "CI_MERGE_REQUEST_IID",
        meaning: "`pr` (the merge request number within the project)",
    },
    EnvVar {
        name: "CI_PIPELINE_SOURCE",
        meaning: "`event` (`push`, `merge_request_event`, `trigger`, ...)",
    },
    EnvVar {
        name: "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
        meaning: "`base_branch` in merge request pipelines",
    },
    EnvVar {
        name: "CI_JOB_URL",
        meaning: "`run_url`",
    },
    EnvVar {
        name: "GITLAB_USER_LOGIN",
        meaning: "`actor`",
    },
    EnvVar {
        name: "CI_PROJECT_PATH",
        meaning: "`repository` (`group/project`)",
    },
    EnvVar {
        name: "CI_PROJECT_URL",
        meaning: "`remote_url`",
    },
    EnvVar {
        name: "CI_COMMIT_MESSAGE",
        meaning: "`commit_message`, and `commit_subject` from its first paragraph",
    },
];

/// Read a variable from the process environment: the function to pass to
/// [`CiContext::detect`] outside tests.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Where the run happens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// GitHub Actions (`GITHUB_ACTIONS=true`).
    Github,
    /// GitLab CI (`GITLAB_CI=true`).
    Gitlab,
    /// Anything else: a terminal, another CI system. Only git is read.
    #[default]
    Local,
}

impl Provider {
    /// `github`, `gitlab` or `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::Local => "local",
        }
    }
}

/// What templates see as `ci`. Unknown fields are absent (not `null`), so a template that
/// uses one fails unless it tests `is defined` or gives a `default`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CiContext {
    /// `github`, `gitlab` or `local`.
    pub provider: Provider,
    /// The full commit SHA of the checkout (on GitHub `pull_request` events, the merge commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The commit the change is about, where checks and statuses show: a pull request's head
    /// commit, the commit pushed, deployed or queued; else `commit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_sha: Option<String>,
    /// The GitHub event that started the run (`GITHUB_EVENT_NAME`): `push`, `pull_request`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The branch a pull request (or merge queue entry) merges into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_branch: Option<String>,
    /// The short SHA: GitLab's `CI_COMMIT_SHORT_SHA`, otherwise the first 7 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short_sha: Option<String>,
    /// The branch (a pull request's source branch); absent on tags and detached checkouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The tag being built, or a tag pointing at HEAD (the first in name order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The repository URL, without credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_url: Option<String>,
    /// The full commit message, without trailing newlines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_message: Option<String>,
    /// The commit message's first paragraph on one line (as `git log --format=%s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_subject: Option<String>,
    /// The pull request (GitHub) or merge request IID (GitLab) number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr: Option<u64>,
    /// The URL of this CI run (GitHub workflow run, GitLab job).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
    /// Who triggered the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// `owner/name` (GitHub) or `group/project` (GitLab); locally, the path of `origin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

/// What git says about the repository around a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitInfo {
    /// HEAD's commit SHA.
    pub commit: Option<String>,
    /// The checked-out branch; `None` when HEAD is detached.
    pub branch: Option<String>,
    /// The first (in name order) tag pointing at HEAD.
    pub tag: Option<String>,
    /// The URL of the `origin` remote, credentials removed.
    pub remote_url: Option<String>,
    /// HEAD's commit message.
    pub message: Option<String>,
}

impl GitInfo {
    /// Read the repository that contains `dir`; everything is `None` outside a repository.
    pub fn read(dir: &Path) -> Self {
        let Ok(repo) = git2::Repository::discover(dir) else {
            tracing::debug!(dir = %dir.display(), "no git repository");
            return Self::default();
        };
        let remote_url = repo
            .find_remote("origin")
            .ok()
            .and_then(|remote| remote.url().ok().map(strip_credentials));
        let mut info = Self {
            remote_url,
            ..Self::default()
        };
        let Ok(head) = repo.head() else {
            // An unborn branch: no commit yet.
            return info;
        };
        if head.is_branch() {
            info.branch = head.shorthand().ok().map(str::to_owned);
        }
        let Ok(commit) = head.peel_to_commit() else {
            return info;
        };
        info.commit = Some(commit.id().to_string());
        info.message = commit.message().ok().map(trim_message);
        info.tag = tags_at(&repo, commit.id()).into_iter().next();
        info
    }
}

fn tags_at(repo: &git2::Repository, id: git2::Oid) -> BTreeSet<String> {
    let Ok(references) = repo.references_glob("refs/tags/*") else {
        return BTreeSet::new();
    };
    references
        .flatten()
        .filter(|reference| {
            reference
                .peel_to_commit()
                .is_ok_and(|commit| commit.id() == id)
        })
        .filter_map(|reference| reference.shorthand().ok().map(str::to_owned))
        .collect()
}

/// The environment, through the lookup function given, with empty values treated as unset.
struct Env<E>(E);

impl<E: Fn(&str) -> Option<String>> Env<E> {
    fn var(&self, name: &str) -> Option<String> {
        debug_assert!(
            ENV_VARS.iter().any(|var| var.name == name),
            "`{name}` is read but not declared in ENV_VARS"
        );
        (self.0)(name).filter(|value| !value.is_empty())
    }

    fn is_true(&self, name: &str) -> bool {
        self.var(name).is_some_and(|value| value == "true")
    }
}

impl CiContext {
    /// Detect the provider and fill in what is known, from the environment `env` (a lookup
    /// function such as [`process_env`]) and the git repository around `dir`.
    pub fn detect<E: Fn(&str) -> Option<String>>(env: E, dir: &Path) -> Self {
        Self::from_parts(env, GitInfo::read(dir))
    }

    /// Like [`CiContext::detect`], with git information already read.
    pub fn from_parts<E: Fn(&str) -> Option<String>>(env: E, git: GitInfo) -> Self {
        let env = Env(env);
        let mut ci = if env.is_true("GITHUB_ACTIONS") {
            github(&env)
        } else if env.is_true("GITLAB_CI") {
            gitlab(&env)
        } else {
            Self::default()
        };
        ci.fill_from_git(git);
        ci
    }

    fn fill_from_git(&mut self, git: GitInfo) {
        if self.remote_url.is_none() {
            self.remote_url = git.remote_url;
        }
        if self.repository.is_none() && self.provider == Provider::Local {
            self.repository = self.remote_url.as_deref().and_then(repository_path);
        }
        // Take commit-specific facts from git only when HEAD is the commit CI names.
        let same_commit = match (&self.commit, &git.commit) {
            (None, Some(_)) => {
                self.commit = git.commit.clone();
                true
            }
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => false,
        };
        if same_commit {
            if self.branch.is_none() && self.provider == Provider::Local {
                self.branch = git.branch;
            }
            if self.tag.is_none() {
                self.tag = git.tag;
            }
            if self.commit_message.is_none() {
                self.commit_message = git.message;
            }
        }
        if self.head_sha.is_none() {
            self.head_sha = self.commit.clone();
        }
        if self.short_sha.is_none() {
            self.short_sha = self
                .commit
                .as_deref()
                .map(|commit| commit.chars().take(7).collect());
        }
        if self.commit_subject.is_none() {
            self.commit_subject = self.commit_message.as_deref().map(subject);
        }
    }
}

fn github<E: Fn(&str) -> Option<String>>(env: &Env<E>) -> CiContext {
    let ref_type = env.var("GITHUB_REF_TYPE");
    let ref_name = env.var("GITHUB_REF_NAME");
    let server = env.var("GITHUB_SERVER_URL");
    let repository = env.var("GITHUB_REPOSITORY");
    let commit = env.var("GITHUB_SHA");
    let event_name = env.var("GITHUB_EVENT_NAME");
    let event = env
        .var("GITHUB_EVENT_PATH")
        .and_then(|path| read_event(&path));
    let facts = event
        .as_ref()
        .map(|payload| EventFacts::read(event_name.as_deref(), payload))
        .unwrap_or_default();
    let branch = facts
        .branch
        .or_else(|| env.var("GITHUB_HEAD_REF"))
        .or_else(|| {
            (ref_type.as_deref() == Some("branch"))
                .then(|| ref_name.clone())
                .flatten()
        });
    let tag = facts.tag.or_else(|| {
        (ref_type.as_deref() == Some("tag"))
            .then(|| ref_name.clone())
            .flatten()
    });
    let pr = facts.pr.or_else(|| {
        env.var("GITHUB_REF")
            .and_then(|reference| pull_number(&reference))
    });
    let commit_message = event.as_ref().and_then(|event| {
        let head = event.get("head_commit")?;
        let id = head.get("id")?.as_str()?;
        (Some(id) == commit.as_deref())
            .then(|| head.get("message")?.as_str().map(trim_message))
            .flatten()
    });
    let remote_url = match (&server, &repository) {
        (Some(server), Some(repository)) => Some(strip_credentials(&format!(
            "{}/{repository}",
            server.trim_end_matches('/')
        ))),
        _ => None,
    };
    let run_url = match (&remote_url, env.var("GITHUB_RUN_ID")) {
        (Some(base), Some(run)) => Some(format!("{base}/actions/runs/{run}")),
        _ => None,
    };
    CiContext {
        provider: Provider::Github,
        commit,
        head_sha: facts.head_sha,
        event: event_name,
        base_branch: facts.base_branch,
        short_sha: None,
        branch,
        tag,
        remote_url,
        commit_message,
        commit_subject: None,
        pr,
        run_url,
        actor: env.var("GITHUB_ACTOR"),
        repository,
    }
}

/// What a GitHub event payload says about the change. Field paths per event are GitHub's
/// webhook payloads (tested against `@octokit/webhooks-examples`); an event not listed, or a
/// payload without the field, leaves it to the environment variables.
#[derive(Debug, Default)]
struct EventFacts {
    head_sha: Option<String>,
    pr: Option<u64>,
    branch: Option<String>,
    tag: Option<String>,
    base_branch: Option<String>,
}

impl EventFacts {
    fn read(event_name: Option<&str>, payload: &serde_json::Value) -> Self {
        let text = |pointer: &str| {
            payload
                .pointer(pointer)
                .and_then(serde_json::Value::as_str)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        let number = |pointer: &str| payload.pointer(pointer).and_then(serde_json::Value::as_u64);
        let mut facts = Self::default();
        match event_name {
            Some("pull_request" | "pull_request_target") => {
                facts.head_sha = text("/pull_request/head/sha");
                facts.pr = number("/pull_request/number");
                facts.branch = text("/pull_request/head/ref");
                facts.base_branch = text("/pull_request/base/ref");
            }
            Some("push") => {
                // `after` is all zeros when the push deleted the ref.
                facts.head_sha = text("/after").filter(|sha| sha.bytes().any(|b| b != b'0'));
                facts.set_ref(text("/ref").as_deref());
            }
            Some("merge_group") => {
                facts.head_sha = text("/merge_group/head_sha");
                facts.set_ref(text("/merge_group/head_ref").as_deref());
                facts.base_branch = text("/merge_group/base_ref")
                    .map(|base| base.trim_start_matches("refs/heads/").to_owned());
            }
            Some("workflow_dispatch") => facts.set_ref(text("/ref").as_deref()),
            Some("issue_comment") => {
                // Comments on pull requests are issue comments whose issue has `pull_request`;
                // the payload has no head commit (the reporter asks the API for it).
                if payload.pointer("/issue/pull_request").is_some() {
                    facts.pr = number("/issue/number");
                }
            }
            Some("deployment") => facts.head_sha = text("/deployment/sha"),
            _ => facts.pr = number("/pull_request/number"),
        }
        facts
    }

    /// `refs/heads/X` is a branch, `refs/tags/X` a tag.
    fn set_ref(&mut self, reference: Option<&str>) {
        let Some(reference) = reference else { return };
        if let Some(branch) = reference.strip_prefix("refs/heads/") {
            self.branch = Some(branch.to_owned());
        } else if let Some(tag) = reference.strip_prefix("refs/tags/") {
            self.tag = Some(tag.to_owned());
        }
    }
}

fn gitlab<E: Fn(&str) -> Option<String>>(env: &Env<E>) -> CiContext {
    let tag = env.var("CI_COMMIT_TAG");
    let branch = env
        .var("CI_COMMIT_BRANCH")
        .or_else(|| env.var("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"))
        .or_else(|| {
            if tag.is_some() {
                None
            } else {
                env.var("CI_COMMIT_REF_NAME")
            }
        });
    CiContext {
        provider: Provider::Gitlab,
        commit: env.var("CI_COMMIT_SHA"),
        head_sha: None,
        event: env.var("CI_PIPELINE_SOURCE"),
        base_branch: env.var("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"),
        short_sha: env.var("CI_COMMIT_SHORT_SHA"),
        branch,
        tag,
        remote_url: env.var("CI_PROJECT_URL").map(|url| strip_credentials(&url)),
        commit_message: env
            .var("CI_COMMIT_MESSAGE")
            .map(|message| trim_message(&message)),
        commit_subject: None,
        pr: env
            .var("CI_MERGE_REQUEST_IID")
            .and_then(|iid| iid.trim().parse().ok()),
        run_url: env.var("CI_JOB_URL"),
        actor: env.var("GITLAB_USER_LOGIN"),
        repository: env.var("CI_PROJECT_PATH"),
    }
}

/// In GitHub Actions, check that `GITHUB_EVENT_PATH` (when set) names a readable JSON object:
/// a broken payload would otherwise silently lose the pull request and its title.
pub fn check_event<E: Fn(&str) -> Option<String>>(env: E) -> Result<(), String> {
    let env = Env(env);
    if !env.is_true("GITHUB_ACTIONS") {
        return Ok(());
    }
    let Some(path) = env.var("GITHUB_EVENT_PATH") else {
        return Ok(());
    };
    let text = crate::input::read_text(Path::new(&path)).map_err(|error| {
        format!(
            "GITHUB_EVENT_PATH: {}\n\nhint: {}; GitHub Actions sets it to the event's JSON payload",
            error.reason(),
            error.hint()
        )
    })?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err(format!(
            "GITHUB_EVENT_PATH: `{path}` does not hold a JSON object\n\n\
             hint: GitHub Actions sets it to the event's JSON payload; unset it outside Actions"
        )),
        Err(error) => Err(format!(
            "GITHUB_EVENT_PATH: `{path}`:{}:{}: not JSON: {error}\n\n\
             hint: GitHub Actions sets it to the event's JSON payload; unset it outside Actions",
            error.line(),
            error.column()
        )),
    }
}

fn read_event(path: &str) -> Option<serde_json::Value> {
    let text = crate::input::read_text(Path::new(path))
        .inspect_err(|error| tracing::debug!(%path, %error, "cannot read the GitHub event payload"))
        .ok()?;
    serde_json::from_str(&text)
        .inspect_err(|error| tracing::debug!(%path, %error, "the GitHub event payload is not JSON"))
        .ok()
}

/// `refs/pull/42/merge` (or `/head`) → 42.
fn pull_number(reference: &str) -> Option<u64> {
    let rest = reference.strip_prefix("refs/pull/")?;
    let (number, kind) = rest.split_once('/')?;
    matches!(kind, "merge" | "head")
        .then(|| number.parse().ok())
        .flatten()
}

fn trim_message(message: &str) -> String {
    message.trim_end().to_owned()
}

/// The first paragraph of a commit message on one line, as `git log --format=%s`.
fn subject(message: &str) -> String {
    message
        .trim_start_matches(['\n', '\r'])
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Remove credentials from a URL: `https://user:token@host/x` → `https://host/x`.
///
/// For HTTP(S) the whole user part goes (a token is often the user name); for other schemes
/// (`ssh://git@host/x`) only a password. scp-like `git@host:x` addresses and paths are kept.
pub fn strip_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let is_http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    if is_http {
        format!("{scheme}://{host}{path}")
    } else {
        let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
        format!("{scheme}://{user}@{host}{path}")
    }
}

/// The repository path of a remote URL: `git@github.com:org/app.git` → `org/app`.
fn repository_path(url: &str) -> Option<String> {
    let path = if let Some((_, rest)) = url.split_once("://") {
        let start = rest.find('/')?;
        &rest[start..]
    } else if let Some((_, path)) = url.split_once(':') {
        path
    } else {
        return None;
    };
    let path = path
        .trim_matches('/')
        .trim_end_matches(".git")
        .trim_end_matches('/');
    (path.contains('/') && !path.is_empty()).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use git2::{Repository, RepositoryInitOptions, Signature};

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn github_base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", SHA),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_RUN_ID", "123456"),
            ("GITHUB_ACTOR", "octocat"),
        ]
    }

    #[test]
    fn github_pull_request() {
        let mut vars = github_base();
        vars.extend([
            ("GITHUB_REF", "refs/pull/42/merge"),
            ("GITHUB_REF_NAME", "42/merge"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_HEAD_REF", "feature/login"),
        ]);
        let ci = CiContext::from_parts(env(&vars), GitInfo::default());
        assert_eq!(
            ci,
            CiContext {
                provider: Provider::Github,
                commit: Some(SHA.into()),
                head_sha: Some(SHA.into()),
                event: None,
                base_branch: None,
                short_sha: Some("0123456".into()),
                branch: Some("feature/login".into()),
                tag: None,
                remote_url: Some("https://github.com/acme/shop".into()),
                commit_message: None,
                commit_subject: None,
                pr: Some(42),
                run_url: Some("https://github.com/acme/shop/actions/runs/123456".into()),
                actor: Some("octocat".into()),
                repository: Some("acme/shop".into()),
            }
        );
    }

    #[test]
    fn github_pull_request_number_from_the_event_payload() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        std::fs::write(&event, r#"{"action":"opened","pull_request":{"number":7}}"#).unwrap();
        let mut vars = github_base();
        vars.extend([
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_HEAD_REF", "fix"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
        ]);
        let ci = CiContext::from_parts(env(&vars), GitInfo::default());
        assert_eq!(ci.pr, Some(7));
        assert_eq!(ci.branch.as_deref(), Some("fix"));
    }

    #[test]
    fn github_push_reads_the_message_from_the_payload() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        let payload = serde_json::json!({
            "head_commit": {"id": SHA, "message": "Add checkout\n\nLonger text.\n"}
        });
        std::fs::write(&event, payload.to_string()).unwrap();
        let mut vars = github_base();
        vars.extend([
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_HEAD_REF", ""),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
        ]);
        let ci = CiContext::from_parts(env(&vars), GitInfo::default());
        assert_eq!(ci.branch.as_deref(), Some("main"));
        assert_eq!(ci.pr, None);
        assert_eq!(ci.tag, None);
        assert_eq!(
            ci.commit_message.as_deref(),
            Some("Add checkout\n\nLonger text.")
        );
        assert_eq!(ci.commit_subject.as_deref(), Some("Add checkout"));
    }

    #[test]
    fn github_tag_push() {
        let mut vars = github_base();
        vars.extend([
            ("GITHUB_REF", "refs/tags/v1.2.0"),
            ("GITHUB_REF_NAME", "v1.2.0"),
            ("GITHUB_REF_TYPE", "tag"),
            ("GITHUB_EVENT_PATH", "/nonexistent/event.json"),
        ]);
        let ci = CiContext::from_parts(env(&vars), GitInfo::default());
        assert_eq!(ci.tag.as_deref(), Some("v1.2.0"));
        assert_eq!(ci.branch, None);
        assert_eq!(ci.pr, None);
    }

    #[test]
    fn gitlab_merge_request() {
        let vars = [
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", SHA),
            ("CI_COMMIT_SHORT_SHA", "01234567"),
            ("CI_COMMIT_REF_NAME", "feature/login"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature/login"),
            ("CI_MERGE_REQUEST_IID", "17"),
            (
                "CI_JOB_URL",
                "https://gitlab.example.com/acme/shop/-/jobs/99",
            ),
            ("GITLAB_USER_LOGIN", "alice"),
            ("CI_PROJECT_PATH", "acme/shop"),
            ("CI_PROJECT_URL", "https://gitlab.example.com/acme/shop"),
            (
                "CI_COMMIT_MESSAGE",
                "Fix login\nwhen the session expired\n\nDetails.\n",
            ),
        ];
        let ci = CiContext::from_parts(env(&vars), GitInfo::default());
        assert_eq!(
            ci,
            CiContext {
                provider: Provider::Gitlab,
                commit: Some(SHA.into()),
                head_sha: Some(SHA.into()),
                event: None,
                base_branch: None,
                short_sha: Some("01234567".into()),
                branch: Some("feature/login".into()),
                tag: None,
                remote_url: Some("https://gitlab.example.com/acme/shop".into()),
                commit_message: Some("Fix login\nwhen the session expired\n\nDetails.".into()),
                commit_subject: Some("Fix login when the session expired".into()),
                pr: Some(17),
                run_url: Some("https://gitlab.example.com/acme/shop/-/jobs/99".into()),
                actor: Some("alice".into()),
                repository: Some("acme/shop".into()),
            }
        );
    }

    #[test]
    fn gitlab_tag_pipeline_has_no_branch() {
        let vars = [
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", SHA),
            ("CI_COMMIT_REF_NAME", "v2.0.0"),
            ("CI_COMMIT_TAG", "v2.0.0"),
        ];
        let ci = CiContext::from_parts(env(&vars), GitInfo::default());
        assert_eq!(ci.tag.as_deref(), Some("v2.0.0"));
        assert_eq!(ci.branch, None);
        assert_eq!(ci.short_sha.as_deref(), Some("0123456"));
    }

    #[test]
    fn local_run_outside_git_knows_nothing() {
        let ci = CiContext::from_parts(env(&[("GITHUB_ACTIONS", "false")]), GitInfo::default());
        assert_eq!(ci, CiContext::default());
        assert_eq!(
            serde_json::to_value(&ci).unwrap(),
            serde_json::json!({"provider": "local"})
        );
    }

    #[test]
    fn ci_wins_over_git_and_git_fills_gaps_for_the_same_commit() {
        let git = GitInfo {
            commit: Some(SHA.into()),
            branch: None,
            tag: Some("v1".into()),
            remote_url: Some("https://github.com/acme/shop.git".into()),
            message: Some("Merge abc into def".into()),
        };
        let ci = CiContext::from_parts(env(&github_base()), git.clone());
        assert_eq!(
            ci.remote_url.as_deref(),
            Some("https://github.com/acme/shop")
        );
        assert_eq!(ci.tag.as_deref(), Some("v1"));
        assert_eq!(ci.commit_subject.as_deref(), Some("Merge abc into def"));

        let other_head = GitInfo {
            commit: Some("f".repeat(40)),
            ..git
        };
        let ci = CiContext::from_parts(env(&github_base()), other_head);
        assert_eq!(ci.commit.as_deref(), Some(SHA));
        assert_eq!(ci.tag, None);
        assert_eq!(ci.commit_message, None);
    }

    fn commit(repo: &Repository, message: &str) -> git2::Oid {
        let signature = Signature::now("Test", "test@example.com").unwrap();
        let mut index = repo.index().unwrap();
        let tree_id = index.write_tree().unwrap();
        let tree = repo.find_tree(tree_id).unwrap();
        let parent = repo.head().ok().and_then(|head| head.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )
        .unwrap()
    }

    fn init(dir: &Path) -> Repository {
        let mut options = RepositoryInitOptions::new();
        options.initial_head("main");
        Repository::init_opts(dir, &options).unwrap()
    }

    #[test]
    fn git_commit_branch_tag_remote_and_message() {
        let dir = tempfile::tempdir().unwrap();
        let repo = init(dir.path());
        commit(&repo, "First\n");
        let head = commit(&repo, "Add the rollout\n\nWith a body.\n");
        let object = repo.find_object(head, None).unwrap();
        repo.tag_lightweight("v0.2.0", &object, false).unwrap();
        let signature = Signature::now("Test", "test@example.com").unwrap();
        repo.tag("v0.1.9", &object, &signature, "annotated", false)
            .unwrap();
        repo.remote(
            "origin",
            "https://x-access-token:ghs_secret@github.com/acme/shop.git",
        )
        .unwrap();
        let nested = dir.path().join("deploy/templates");
        std::fs::create_dir_all(&nested).unwrap();

        let git = GitInfo::read(&nested);
        assert_eq!(
            git,
            GitInfo {
                commit: Some(head.to_string()),
                branch: Some("main".into()),
                tag: Some("v0.1.9".into()),
                remote_url: Some("https://github.com/acme/shop.git".into()),
                message: Some("Add the rollout\n\nWith a body.".into()),
            }
        );

        let ci = CiContext::detect(env(&[]), &nested);
        assert_eq!(ci.provider, Provider::Local);
        assert_eq!(ci.short_sha.as_deref(), Some(&head.to_string()[..7]));
        assert_eq!(ci.branch.as_deref(), Some("main"));
        assert_eq!(ci.commit_subject.as_deref(), Some("Add the rollout"));
        assert_eq!(ci.repository.as_deref(), Some("acme/shop"));
        assert!(!serde_json::to_string(&ci).unwrap().contains("secret"));

        repo.set_head_detached(head).unwrap();
        let git = GitInfo::read(dir.path());
        assert_eq!(git.branch, None);
        assert_eq!(git.commit, Some(head.to_string()));
    }

    #[test]
    fn git_repository_without_commits() {
        let dir = tempfile::tempdir().unwrap();
        let repo = init(dir.path());
        repo.remote("origin", "git@github.com:acme/shop.git")
            .unwrap();
        let git = GitInfo::read(dir.path());
        assert_eq!(
            git,
            GitInfo {
                remote_url: Some("git@github.com:acme/shop.git".into()),
                ..GitInfo::default()
            }
        );
    }

    #[test]
    fn outside_a_repository_git_knows_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // tempdir is normally outside any repository; stop discovery at it to be sure.
        let inner = dir.path().join("x");
        std::fs::create_dir(&inner).unwrap();
        if Repository::discover(&inner).is_err() {
            assert_eq!(GitInfo::read(&inner), GitInfo::default());
        }
    }

    #[test]
    fn credentials_are_stripped_from_urls() {
        let cases = [
            (
                "https://user:token@github.com/a/b.git",
                "https://github.com/a/b.git",
            ),
            ("https://ghp_token@github.com/a/b", "https://github.com/a/b"),
            ("HTTP://u:p@host:8080/a?x=1", "HTTP://host:8080/a?x=1"),
            ("https://github.com/a/b.git", "https://github.com/a/b.git"),
            ("ssh://git:secret@host/a.git", "ssh://git@host/a.git"),
            ("ssh://git@host/a.git", "ssh://git@host/a.git"),
            ("git@github.com:a/b.git", "git@github.com:a/b.git"),
            ("/srv/git/a.git", "/srv/git/a.git"),
            ("https://u:p@host", "https://host"),
        ];
        for (url, expected) in cases {
            assert_eq!(strip_credentials(url), expected, "{url}");
        }
    }

    #[test]
    fn repository_paths_from_remote_urls() {
        assert_eq!(
            repository_path("git@github.com:acme/shop.git").as_deref(),
            Some("acme/shop")
        );
        assert_eq!(
            repository_path("https://gitlab.com/group/sub/app.git").as_deref(),
            Some("group/sub/app")
        );
        assert_eq!(
            repository_path("https://github.com/acme/shop/").as_deref(),
            Some("acme/shop")
        );
        assert_eq!(repository_path("/srv/git/app.git"), None);
    }

    #[test]
    fn subjects_join_the_first_paragraph() {
        assert_eq!(subject("One\nTwo\n\nThree"), "One Two");
        assert_eq!(subject("\n\nOnly\n"), "Only");
        assert_eq!(subject(""), "");
    }

    #[test]
    fn pull_numbers_come_from_pull_refs_only() {
        assert_eq!(pull_number("refs/pull/42/merge"), Some(42));
        assert_eq!(pull_number("refs/pull/42/head"), Some(42));
        assert_eq!(pull_number("refs/heads/main"), None);
        assert_eq!(pull_number("refs/pull/x/merge"), None);
    }

    #[test]
    fn every_declared_variable_is_read_and_documented_once() {
        let names: BTreeSet<&str> = ENV_VARS.iter().map(|var| var.name).collect();
        assert_eq!(names.len(), ENV_VARS.len(), "a variable is declared twice");
        let source = include_str!("ci.rs");
        let code = source.split("#[cfg(test)]").next().unwrap();
        let table_end = code.find("pub fn process_env").unwrap();
        for name in names {
            let quoted = format!("\"{name}\"");
            assert!(
                code[table_end..].contains(&quoted),
                "`{name}` is declared but never read"
            );
        }
    }
}
