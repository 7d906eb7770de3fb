//! The controller's HTTP endpoints, served with hyper: `/metrics` (Prometheus text format),
//! `/healthz` (liveness: fails while a reconcile has been stuck longer than the limit) and
//! `/readyz` (the API server answered).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::stats::Stats;

/// How long one reconcile may run before `/healthz` says the controller is stuck.
pub const DEFAULT_STUCK_AFTER: Duration = Duration::from_secs(300);

/// What the endpoints report.
#[derive(Debug)]
pub struct Health {
    pub stats: Stats,
    /// Set once the API server answered: a replica that cannot reach it is not ready.
    pub ready: AtomicBool,
    /// A reconcile running longer than this fails the liveness check.
    pub stuck_after: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Self::new(DEFAULT_STUCK_AFTER)
    }
}

impl Health {
    pub fn new(stuck_after: Duration) -> Self {
        Self {
            stats: Stats::default(),
            ready: AtomicBool::new(false),
            stuck_after,
        }
    }
}

/// Bind `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serve the endpoints on `listener` forever.
pub async fn serve(listener: TcpListener, health: Arc<Health>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let health = Arc::clone(&health);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let health = Arc::clone(&health);
                async move { Ok::<_, Infallible>(route(&request, &health)) }
            });
            // Probes and scrapes are one request each: no keep-alive, and a slow or silent
            // client cannot hold a task forever.
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(30), connection).await;
        });
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

fn route<B>(request: &Request<B>, health: &Health) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "method not allowed\n".into(),
        );
    }
    match request.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            health.stats.render(),
        ),
        "/healthz" => match health.stats.stuck_reconcile(health.stuck_after) {
            None => text(StatusCode::OK, TEXT, "ok\n".into()),
            Some((rollout, running)) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                format!(
                    "stuck: the reconcile of {rollout} has been running for {}s (limit {}s)\n",
                    running.as_secs(),
                    health.stuck_after.as_secs()
                ),
            ),
        },
        "/readyz" if health.ready.load(Ordering::Relaxed) => {
            text(StatusCode::OK, TEXT, "ready\n".into())
        }
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            "the API server has not answered yet\n".into(),
        ),
        _ => text(StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        text
    }

    #[tokio::test]
    async fn serves_metrics_and_probes() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let health = Arc::new(Health::new(Duration::from_millis(50)));
        tokio::spawn(serve(listener, Arc::clone(&health)));
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200 OK"));
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        health.ready.store(true, Ordering::Relaxed);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200 OK"));
        let metrics = get(addr, "/metrics").await;
        assert!(
            metrics.contains("\r\n\r\n")
                && metrics.contains("\nrollout_runner_controller_leader 0\n"),
            "{metrics}"
        );
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));

        // A reconcile that does not come back fails the liveness check, naming the Rollout.
        let stuck = health.stats.begin_reconcile("shop/web".into());
        tokio::time::sleep(Duration::from_millis(80)).await;
        let answer = get(addr, "/healthz").await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("shop/web"), "{answer}");
        drop(stuck);
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200 OK"));
    }
}
