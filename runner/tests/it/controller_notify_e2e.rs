//! End to end: a controller-driven release notifies the services its Rollout subscribes to with
//! Argo's `notifications.argoproj.io/subscribe.<trigger>.<service>` annotations (a Slack-shaped
//! webhook from the built-in template, a CDEvents consumer over the CloudEvents HTTP binding) and
//! posts GitHub Deployment statuses for its commit; no secret reaches the log or the Events.
//! Also: Argo's metric families on `/metrics`.

use std::time::Duration;

use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::controller_e2e::{Controller, events, healthy_at, release};
use crate::drive_e2e::{FIVE_STEPS, canary};
use crate::support::cluster::{self, TestNamespace};

const SHA: &str = "5f1a0d3c9b7e4a2f8c6d1e0b3a5f7c9e2d4b6a8f";
const SLACK_TOKEN: &str = "s3cr3t-slack-token-T0001";
const BROKEN_TOKEN: &str = "s3cr3t-broken-token-X9";
const GITHUB_TOKEN: &str = "ghs_s3cr3tGithubToken42";

/// The canary Rollout with subscriptions and the commit annotations.
fn subscribed_canary(image: &str) -> String {
    canary(image, FIVE_STEPS, "", "").replace(
        "metadata: {name: web}",
        &format!(
            r#"metadata:
  name: web
  annotations:
    notifications.argoproj.io/subscribe.on-rollout-completed.slack: "deploys"
    notifications.argoproj.io/subscribe.on-rollout-step-completed.slack: ""
    notifications.argoproj.io/subscribe.on-rollout-completed.broken: ""
    notifications.argoproj.io/subscribe.on-rollout-updated.cdevents: ""
    notifications.argoproj.io/subscribe.on-rollout-step-completed.cdevents: ""
    notifications.argoproj.io/subscribe.on-rollout-completed.cdevents: ""
    rollout-runner.io/commit: "{SHA}"
    rollout-runner.io/repository: acme/shop"#
        ),
    )
}

async fn bodies(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap_or_default()
}

/// Waits (up to 30 s) until `server` received a request that `found` accepts.
async fn received(
    server: &MockServer,
    what: &str,
    found: impl Fn(&wiremock::Request) -> bool,
) -> wiremock::Request {
    for _ in 0..300 {
        if let Some(request) = bodies(server).await.into_iter().find(&found) {
            return request;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen: Vec<String> = bodies(server)
        .await
        .iter()
        .map(|r| {
            format!(
                "{} {}\n{}",
                r.method,
                r.url,
                String::from_utf8_lossy(&r.body)
            )
        })
        .collect();
    panic!("never received {what}; received:\n{}", seen.join("\n---\n"));
}

fn json(request: &wiremock::Request) -> serde_json::Value {
    serde_json::from_slice(&request.body).unwrap_or_default()
}

#[tokio::test]
async fn e2e_a_controller_driven_release_notifies_slack_cdevents_and_github() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "ctl-notify").await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/services/T0001/B0001/{SLACK_TOKEN}")))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let sink = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&sink)
        .await;
    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/deployments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/shop/deployments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": 7})))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/repos/acme/shop/deployments/7/statuses$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": 1})))
        .mount(&github)
        .await;

    let slack_url = format!("{}/services/T0001/B0001/{SLACK_TOKEN}", slack.uri());
    // Nothing listens there: its failures are logged, and must not show the URL's token.
    let broken_url = format!("http://127.0.0.1:9/hooks/{BROKEN_TOKEN}");
    let sink_url = sink.uri();
    let github_url = github.uri();
    let mut controller = Controller::start_with(
        ns.name(),
        "controller-a",
        &[
            "--notify-webhook",
            "slack=slack",
            "--notify-webhook",
            "broken=teams",
            "--notify-cdevents",
            "--notify-cdevents-source",
            "/rollout-runner/e2e",
            "--notify-github",
            "--notify-github-api-url",
            &github_url,
            "--notify-github-environment",
            "staging",
        ],
        &[
            ("ROLLOUT_RUNNER_NOTIFY_SLACK_URL", &slack_url),
            ("ROLLOUT_RUNNER_NOTIFY_BROKEN_URL", &broken_url),
            ("ROLLOUT_RUNNER_NOTIFY_CDEVENTS_URL", &sink_url),
            ("ROLLOUT_RUNNER_NOTIFY_GITHUB_TOKEN", GITHUB_TOKEN),
        ],
    );
    assert!(
        controller.wait_for_leadership().await,
        "{:#?}",
        controller.running.stderr()
    );
    release(ns.name(), &subscribed_canary("web:1")).await;
    healthy_at(&client, ns.name(), "web:1").await;
    release(ns.name(), &subscribed_canary("web:2")).await;
    healthy_at(&client, ns.name(), "web:2").await;

    // Slack: the built-in template's body, to the subscribed channel.
    let completed = received(&slack, "a Slack message for RolloutCompleted", |r| {
        json(r)["text"]
            .as_str()
            .is_some_and(|t| t.contains("RolloutCompleted") && t.contains("revision 2"))
    })
    .await;
    let message = json(&completed);
    assert_eq!(message["channel"], "deploys", "{message:#}");
    let context = message["blocks"][1]["elements"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        context.contains("web:2") && context.contains(&SHA[..7]),
        "{message:#}"
    );
    received(&slack, "a Slack message for a completed step", |r| {
        json(r)["text"]
            .as_str()
            .is_some_and(|t| t.contains("RolloutStepCompleted"))
    })
    .await;

    // CDEvents over the CloudEvents HTTP binding (binary mode), read with the SDK.
    let upgraded = received(&sink, "a CloudEvent service.upgraded", |r| {
        r.headers
            .get("ce-type")
            .is_some_and(|t| t == "dev.cdevents.service.upgraded.0.2.0")
    })
    .await;
    let event = cloudevents::binding::http::to_event(&upgraded.headers, upgraded.body.clone())
        .expect("a valid CloudEvent");
    {
        use cloudevents::AttributesReader;
        assert_eq!(event.specversion().to_string(), "1.0");
        assert_eq!(event.source().as_str(), "/rollout-runner/e2e");
        assert_eq!(
            event.subject(),
            Some(format!("rollout/{}/web", ns.name()).as_str())
        );
        assert!(event.time().is_some());
        let data: serde_json::Value = match event.data() {
            Some(cloudevents::Data::Json(value)) => value.clone(),
            Some(cloudevents::Data::Binary(bytes)) => {
                assert_eq!(event.datacontenttype(), Some("application/json"));
                serde_json::from_slice(bytes).expect("JSON data")
            }
            other => panic!("JSON data expected: {other:?}"),
        };
        assert_eq!(
            data["context"]["type"],
            "dev.cdevents.service.upgraded.0.2.0"
        );
        assert_eq!(data["context"]["id"].as_str(), Some(event.id()));
        assert_eq!(data["subject"]["content"]["environment"]["id"], ns.name());
        assert_eq!(data["customData"]["commit"], SHA);
    }
    received(&sink, "a custom CDEvent for a completed step", |r| {
        r.headers
            .get("ce-type")
            .is_some_and(|t| t == "dev.cdeventsx.rolloutrunner-rollout.rolloutstepcompleted.0.1.0")
    })
    .await;

    // GitHub: a Deployment for the commit, in progress then successful.
    let created = received(&github, "a Deployment", |r| {
        r.method.as_str() == "POST" && r.url.path() == "/repos/acme/shop/deployments"
    })
    .await;
    assert_eq!(json(&created)["ref"], SHA);
    assert_eq!(json(&created)["environment"], "staging");
    for state in ["in_progress", "success"] {
        received(&github, &format!("a `{state}` Deployment status"), |r| {
            r.url.path().ends_with("/statuses") && json(r)["state"] == state
        })
        .await;
    }
    let authorized = bodies(&github).await.iter().all(|r| {
        r.headers
            .get("authorization")
            .is_some_and(|v| v == format!("Bearer {GITHUB_TOKEN}").as_str())
    });
    assert!(authorized, "every GitHub call carries the token");

    // Argo's metric families, from the controller's caches.
    let series = format!(
        "rollout_info{{namespace=\"{}\",name=\"web\",strategy=\"canary\",traffic_router=\"\",\
         phase=\"Completed\"}}",
        ns.name()
    );
    controller.wait_for_metric(&series, 1.0).await;
    controller
        .wait_for_metric(
            &format!(
                "rollout_info_replicas_available{{namespace=\"{}\",name=\"web\"}}",
                ns.name()
            ),
            5.0,
        )
        .await;
    let (_, metrics) = controller.get("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("controller_clientset_k8s_request_total{kind=\"rollouts\"")),
        "{metrics}"
    );

    // No secret in the log (the broken webhook's failures included) or in the Events.
    let log = controller.running.stderr().join("\n");
    assert!(
        log.contains("notifications"),
        "the broken webhook's failure is logged:\n{log}"
    );
    let recorded = format!("{:?}", events(&client, ns.name()).await);
    for secret in [SLACK_TOKEN, BROKEN_TOKEN, GITHUB_TOKEN] {
        assert!(!log.contains(secret), "`{secret}` in the log:\n{log}");
        assert!(!recorded.contains(secret), "`{secret}` in the Events");
    }
}
