//! HTTP for the providers: clients with a timeout and optional `insecure` TLS, authentication
//! headers (custom headers, basic auth, OAuth2 client credentials), and error messages that
//! never show a header, a credential or a full URL.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use rollout_runner_api::crd::{Authentication, OAuth2Config, WebMetricHeader};

use super::common::Failure;

/// A client that gives up after `timeout`; `insecure` skips TLS certificate checks.
pub(crate) fn client(timeout: Duration, insecure: bool) -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(30)))
        .tls_danger_accept_invalid_certs(insecure)
        .user_agent(concat!("rollout-runner/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::new(format!("cannot build an HTTP client: {}", chain(&e))))
}

/// Parse an address, refusing anything that is not an absolute http(s) URL. The message names
/// the field, never the value (it may hold credentials).
pub(crate) fn parse_url(text: &str, what: &str) -> Result<Url, Failure> {
    let url = Url::parse(text.trim())
        .map_err(|e| Failure::new(format!("{what} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::new(format!(
            "{what} is not a valid URL: unsupported protocol scheme \"{}\"",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Failure::new(format!("{what} is not a valid URL: no host")));
    }
    Ok(url)
}

/// The URL as it may be shown: scheme, host, port and path; no user info, query or fragment.
pub(crate) fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// The error and its causes, without the URL reqwest would print.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// Argo-like words for a failed request: `POST http://host/path: connection refused`, or a
/// timeout. Never the query string, never credentials.
pub(crate) fn request_error(method: &str, url: &Url, error: reqwest::Error) -> Failure {
    let shown = display_url(url);
    if error.is_timeout() {
        return Failure::new(format!(
            "{method} \"{shown}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        ));
    }
    let error = error.without_url();
    Failure::new(format!("{method} \"{shown}\": {}", chain(&error)))
}

/// Headers from `{key, value}` pairs (Prometheus and web `headers`).
pub(crate) fn headers(pairs: &[WebMetricHeader]) -> Result<HeaderMap, Failure> {
    let mut map = HeaderMap::new();
    for (index, header) in pairs.iter().enumerate() {
        let name = HeaderName::from_bytes(header.key.trim().as_bytes())
            .map_err(|_| Failure::new(format!("headers[{index}]: invalid header name")))?;
        let value = HeaderValue::from_str(&header.value)
            .map_err(|_| Failure::new(format!("headers[{index}]: invalid header value")))?;
        // `Set`, as Go's `Header.Set`: the last one wins.
        map.insert(name, value);
    }
    Ok(map)
}

/// `Authorization` for `authentication.basicAuth` or `authentication.oauth2` (fetching a token
/// with the client-credentials grant). `None` when neither is set.
pub(crate) async fn authorization(
    authentication: Option<&Authentication>,
    timeout: Duration,
    insecure: bool,
) -> Result<Option<HeaderValue>, Failure> {
    let Some(auth) = authentication else {
        return Ok(None);
    };
    if let Some(oauth) = auth
        .oauth2
        .as_ref()
        .filter(|o| !o.token_url.is_empty() || !o.client_id.is_empty())
    {
        let token = oauth2_token(oauth, timeout, insecure).await?;
        return bearer(&token).map(Some);
    }
    if let Some(basic) = auth
        .basic_auth
        .as_ref()
        .filter(|b| !b.username.is_empty() || !b.password.is_empty())
    {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", basic.username, basic.password));
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
            .map_err(|_| Failure::new("basicAuth: invalid credentials"))?;
        value.set_sensitive(true);
        return Ok(Some(value));
    }
    Ok(None)
}

fn bearer(token: &str) -> Result<HeaderValue, Failure> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Failure::new("oauth2: the token endpoint returned an invalid token"))?;
    value.set_sensitive(true);
    Ok(value)
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: String,
}

/// RFC 6749 §4.4: POST `grant_type=client_credentials` (and `scope`) to the token URL, with the
/// client's id and secret as HTTP basic authentication (§2.3.1).
async fn oauth2_token(
    config: &OAuth2Config,
    timeout: Duration,
    insecure: bool,
) -> Result<String, Failure> {
    let url = parse_url(&config.token_url, "oauth2 tokenUrl")?;
    let client = client(timeout, insecure)?;
    let mut form = vec![("grant_type", "client_credentials".to_string())];
    if !config.scopes.is_empty() {
        form.push(("scope", config.scopes.join(" ")));
    }
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let response = client
        .post(url.clone())
        .basic_auth(
            encode(&config.client_id),
            Some(encode(&config.client_secret)),
        )
        .form(&form)
        .send()
        .await
        .map_err(|e| {
            Failure::new(format!(
                "oauth2: cannot fetch token: {}",
                request_error("POST", &url, e).0
            ))
        })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(Failure::new(format!(
            "oauth2: cannot fetch token: {status}\nResponse: {}",
            truncate(&body, 512)
        )));
    }
    let token: TokenResponse = serde_json::from_str(&body)
        .map_err(|e| Failure::new(format!("oauth2: cannot parse token response: {e}")))?;
    if token.access_token.is_empty() {
        return Err(Failure::new("oauth2: server response missing access_token"));
    }
    Ok(token.access_token)
}

/// At most `max` bytes of `text` (on a character boundary), marked when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Seconds from a metric's optional timeout, with Argo's default when absent (or, for web,
/// not positive).
pub(crate) fn seconds(value: Option<i64>, default: u64) -> Duration {
    match value {
        Some(s) if s > 0 => Duration::from_secs(s.unsigned_abs()),
        _ => Duration::from_secs(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        let url = parse_url("https://user:pa55@example.com:8443/a/b?token=t#x", "url").unwrap();
        assert_eq!(display_url(&url), "https://example.com:8443/a/b");
        assert!(parse_url("bad://url.com", "url").is_err());
        let message = parse_url(":invalid::url", "prometheus address")
            .unwrap_err()
            .0;
        assert!(message.starts_with("prometheus address is not a valid URL"));
    }

    #[test]
    fn headers_refuse_bad_names_without_echoing_values() {
        let bad = headers(&[WebMetricHeader {
            key: "X-Token".into(),
            value: "line\nbreak-secret".into(),
        }])
        .unwrap_err();
        assert!(!bad.0.contains("secret"));
    }
}
