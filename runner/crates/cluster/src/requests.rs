//! What a process asks the API server: each request classified by verb (`get`, `list`,
//! `watch`, `create`, `update`, `patch`, `delete`) and resource (`replicasets`,
//! `rollouts/status`, ...), logged at debug level under the target [`TARGET`] and counted.
//!
//! The log lets anyone check what a release costs (`ROLLOUT_RUNNER_LOG=rollout_runner::api=debug`);
//! the e2e tests count it to show that a pass reads only from its watches.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Uri};

/// The tracing target of the request log.
pub const TARGET: &str = "rollout_runner::api";

/// One request, as the API server's audit log would classify it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiRequest {
    pub verb: &'static str,
    /// The resource's plural name, with `/subresource` when there is one.
    pub resource: String,
    /// The object's name, "" for collections.
    pub name: String,
}

impl ApiRequest {
    /// A read that is not a watch: what the watch caches are there to avoid.
    pub fn is_non_watch_read(&self) -> bool {
        matches!(self.verb, "get" | "list")
    }
}

/// Classify a request to the Kubernetes API by its method and path.
pub fn classify(method: &Method, uri: &Uri) -> ApiRequest {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // `/api/v1/...` or `/apis/GROUP/VERSION/...`.
    let rest = match segments.first() {
        Some(&"api") => segments.get(2..).unwrap_or_default(),
        Some(&"apis") => segments.get(3..).unwrap_or_default(),
        _ => &[][..],
    };
    let rest = match rest {
        ["namespaces", _, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let resource = match rest {
        [] => uri.path().to_string(),
        [kind] | [kind, _] => (*kind).to_string(),
        [kind, _, sub, ..] => format!("{kind}/{sub}"),
    };
    let name = rest.get(1).copied().unwrap_or_default().to_string();
    let watch = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if name.is_empty() => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if name.is_empty() => "deletecollection",
        Method::DELETE => "delete",
        _ => "other",
    };
    ApiRequest {
        verb,
        resource,
        name,
    }
}

/// Requests counted by verb and resource.
#[derive(Debug, Clone, Default)]
pub struct RequestCounts(Arc<Mutex<BTreeMap<(&'static str, String), u64>>>);

impl RequestCounts {
    /// Log and count one request.
    pub fn record<B>(&self, request: &Request<B>) {
        let seen = classify(request.method(), request.uri());
        tracing::debug!(
            target: TARGET,
            verb = seen.verb,
            resource = %seen.resource,
            name = %seen.name,
            "request"
        );
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((seen.verb, seen.resource))
            .or_default() += 1;
    }

    /// The counts so far, by (verb, resource).
    pub fn snapshot(&self) -> BTreeMap<(&'static str, String), u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A client whose every request is logged and counted here, and whose throttled answers
    /// are held for the time the API server asks ([`crate::retry_after`]).
    pub fn client(&self, config: kube::Config) -> Result<kube::Client, kube::Error> {
        Ok(kube::client::ClientBuilder::try_from(config)?
            .with_layer(&crate::retry_after::RetryAfterLayer)
            .with_layer(&self.layer())
            .build())
    }

    /// The tower layer that logs and counts, for a client built elsewhere.
    pub fn layer<B>(
        &self,
    ) -> tower::util::MapRequestLayer<impl Fn(Request<B>) -> Request<B> + Clone + use<B>> {
        let counts = self.clone();
        tower::util::MapRequestLayer::new(move |request: Request<B>| {
            counts.record(&request);
            request
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(method: Method, uri: &str) -> (&'static str, String, String) {
        let r = classify(&method, &uri.parse().unwrap());
        (r.verb, r.resource, r.name)
    }

    #[test]
    fn requests_are_classified_like_the_audit_log() {
        let s = |v: &'static str, r: &str, n: &str| (v, r.to_string(), n.to_string());
        assert_eq!(
            seen(
                Method::GET,
                "/apis/apps/v1/namespaces/ns/replicasets?&watch=true&resourceVersion=5"
            ),
            s("watch", "replicasets", "")
        );
        assert_eq!(
            seen(Method::GET, "/apis/apps/v1/namespaces/ns/replicasets"),
            s("list", "replicasets", "")
        );
        assert_eq!(
            seen(
                Method::GET,
                "/apis/argoproj.io/v1alpha1/namespaces/ns/rollouts/web"
            ),
            s("get", "rollouts", "web")
        );
        assert_eq!(
            seen(
                Method::PATCH,
                "/apis/argoproj.io/v1alpha1/namespaces/ns/rollouts/web/status"
            ),
            s("patch", "rollouts/status", "web")
        );
        assert_eq!(
            seen(
                Method::GET,
                "/apis/argoproj.io/v1alpha1/clusteranalysistemplates"
            ),
            s("list", "clusteranalysistemplates", "")
        );
        assert_eq!(
            seen(
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases/rollout-runner-web"
            ),
            s("update", "leases", "rollout-runner-web")
        );
        assert_eq!(
            seen(Method::GET, "/api/v1/namespaces/ns"),
            s("get", "namespaces", "ns")
        );
        assert_eq!(
            seen(Method::POST, "/api/v1/namespaces/ns/events"),
            s("create", "events", "")
        );
        assert_eq!(
            seen(
                Method::DELETE,
                "/apis/apps/v1/namespaces/ns/replicasets/web-1"
            ),
            s("delete", "replicasets", "web-1")
        );
        assert_eq!(seen(Method::GET, "/version"), s("list", "/version", ""));
    }

    #[test]
    fn counts_add_up_by_verb_and_resource() {
        let counts = RequestCounts::default();
        for uri in [
            "/api/v1/namespaces/ns/services/a",
            "/api/v1/namespaces/ns/services/b",
        ] {
            counts.record(&Request::get(uri).body(()).unwrap());
        }
        counts.record(
            &Request::get("/api/v1/namespaces/ns/services?watch=true")
                .body(())
                .unwrap(),
        );
        let snapshot = counts.snapshot();
        assert_eq!(snapshot[&("get", "services".to_string())], 2);
        assert_eq!(snapshot[&("watch", "services".to_string())], 1);
        assert_eq!(snapshot.len(), 2);
    }
}
