//! Waiting out `Retry-After`: an API server that answers 429 (or 503) with `Retry-After: N`
//! asks its clients not to come back for N seconds. kube turns such an answer into an error
//! without the header, so every retry loop above it (the driver's back-off, the reads' own
//! retries, kube-runtime's watchers) would come back on its own schedule. This layer sits in
//! the client's HTTP stack and holds the answer until the server's time has passed, so that
//! no retry, whoever makes it, comes sooner.
//!
//! Written by hand because it is a dozen lines over tower's `Service`, and tower's own retry
//! middleware would retry requests itself (it needs cloneable bodies, and some of these
//! requests are not safe to repeat blindly).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The longest wait honoured: a longer `Retry-After` is cut to this, so that a runner keeps
/// its own deadlines.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The tower layer to add to a kube client (`ClientBuilder::with_layer`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryAfterLayer;

impl<S> tower::Layer<S> for RetryAfterLayer {
    type Service = RetryAfter<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryAfter { inner }
    }
}

/// See [`RetryAfterLayer`].
#[derive(Debug, Clone)]
pub struct RetryAfter<S> {
    inner: S,
}

impl<S, Request, Body> tower::Service<Request> for RetryAfter<S>
where
    S: tower::Service<Request, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    Body: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            if let Some(wait) = requested_wait(&response) {
                tracing::debug!(
                    status = response.status().as_u16(),
                    seconds = wait.as_secs(),
                    "the API server asked to retry later; waiting"
                );
                tokio::time::sleep(wait).await;
            }
            Ok(response)
        })
    }
}

/// The wait a 429 or 503 answer asks for in its `Retry-After` header (whole seconds, as the
/// Kubernetes API server writes it), at most [`MAX_RETRY_AFTER`].
pub fn requested_wait<B>(response: &http::Response<B>) -> Option<Duration> {
    let status = response.status().as_u16();
    if status != 429 && status != 503 {
        return None;
    }
    let seconds: u64 = response
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, retry_after: Option<&str>) -> http::Response<()> {
        let mut builder = http::Response::builder().status(status);
        if let Some(value) = retry_after {
            builder = builder.header("Retry-After", value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn only_throttling_answers_with_whole_seconds_ask_for_a_wait() {
        assert_eq!(
            requested_wait(&response(429, Some("2"))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            requested_wait(&response(503, Some(" 1 "))),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            requested_wait(&response(429, Some("3600"))),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(requested_wait(&response(429, None)), None);
        assert_eq!(requested_wait(&response(200, Some("2"))), None);
        assert_eq!(requested_wait(&response(500, Some("2"))), None);
        assert_eq!(
            requested_wait(&response(429, Some("Wed, 21 Oct 2026 07:28:00 GMT"))),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_answer_is_held_until_the_requested_time() {
        use tower::{Layer as _, Service as _, ServiceExt as _};
        let inner = tower::service_fn(|_: ()| async {
            Ok::<_, std::convert::Infallible>(response(429, Some("2")))
        });
        let mut service = RetryAfterLayer.layer(inner);
        let start = tokio::time::Instant::now();
        let answer = service.ready().await.unwrap().call(()).await.unwrap();
        assert_eq!(answer.status(), 429);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
