//! Client-side rate limiting per AWS service: a token bucket in front of each service
//! client's HTTP connector, so a large fleet stays under account API limits. (The SDK's
//! retries handle throttling once it happens; this keeps it from happening.) Urgent work
//! (see [`crate::urgency`]) goes first: one token is kept back from the rest for it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A token bucket: `rate` tokens per second, at most `burst` saved up. When the burst
/// allows, one token is kept back for urgent requests: the others take a token only when
/// two are saved, so that under a steady load (the bucket never fuller than that) an
/// urgent request finds one at once instead of queueing behind them. The rate is the same.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    /// Tokens the requests that are not urgent leave in the bucket.
    reserve: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64) -> Self {
        let rate = rate.max(0.001);
        let burst = burst.max(1.0);
        Self {
            rate,
            burst,
            reserve: if burst >= 2.0 { 1.0 } else { 0.0 },
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// How long to wait for a token given `tokens` saved; takes it when none is needed.
    fn take(&self, state: &mut (f64, Instant), now: Instant, urgent: bool) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(state.1).as_secs_f64();
        state.0 = (state.0 + elapsed * self.rate).min(self.burst);
        state.1 = now;
        let needed = if urgent { 1.0 } else { 1.0 + self.reserve };
        if state.0 >= needed {
            state.0 -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((needed - state.0) / self.rate))
        }
    }

    /// Wait until a token is available and take it (urgent work first: see the type).
    pub async fn acquire(&self) {
        let urgent = crate::urgency::is_urgent();
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                self.take(&mut state, Instant::now(), urgent)
            };
            match wait {
                None => return,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }
}

/// Requests per second per service (by the SDK's service name, e.g. `iam`,
/// `cognito-idp`), with a default for the others.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    pub default: f64,
    pub per_service: BTreeMap<String, f64>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            default: 20.0,
            per_service: BTreeMap::new(),
        }
    }
}

impl RateLimits {
    /// Parse `20` or `iam=5,cognito-idp=10,default=20`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut limits = Self::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (service, value) = part.split_once('=').unwrap_or(("default", part));
            let rate: f64 = value
                .trim()
                .parse()
                .map_err(|_| format!("`{value}` is not a number of requests per second"))?;
            if rate.is_nan() || rate <= 0.0 {
                return Err(format!("rate for {service} must be positive"));
            }
            if service.trim() == "default" {
                limits.default = rate;
            } else {
                limits.per_service.insert(service.trim().to_string(), rate);
            }
        }
        Ok(limits)
    }

    pub fn rate(&self, service: &str) -> f64 {
        self.per_service
            .get(service)
            .copied()
            .unwrap_or(self.default)
    }

    /// An HTTP client for `service` that waits for its bucket before every request.
    pub fn client(&self, service: &str, inner: SharedHttpClient) -> SharedHttpClient {
        let rate = self.rate(service);
        SharedHttpClient::new(RateLimitedClient {
            inner,
            bucket: Arc::new(TokenBucket::new(rate, rate.max(1.0))),
        })
    }
}

#[derive(Debug, Clone)]
struct RateLimitedClient {
    inner: SharedHttpClient,
    bucket: Arc<TokenBucket>,
}

impl HttpClient for RateLimitedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RateLimitedConnector {
            inner: self.inner.http_connector(settings, components),
            bucket: self.bucket.clone(),
        })
    }
}

struct RateLimitedConnector {
    inner: SharedHttpConnector,
    bucket: Arc<TokenBucket>,
}

impl fmt::Debug for RateLimitedConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitedConnector")
            .finish_non_exhaustive()
    }
}

impl HttpConnector for RateLimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let bucket = self.bucket.clone();
        HttpConnectorFuture::new(async move {
            bucket.acquire().await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases = [
            ("", Ok((20.0, vec![]))),
            ("5", Ok((5.0, vec![]))),
            (
                "iam=2, cognito-idp=10",
                Ok((20.0, vec![("cognito-idp", 10.0), ("iam", 2.0)])),
            ),
            ("default=3,ssm=1.5", Ok((3.0, vec![("ssm", 1.5)]))),
            ("iam=fast", Err(())),
            ("iam=0", Err(())),
        ];
        for (text, want) in cases {
            let got = RateLimits::parse(text);
            match (got, want) {
                (Ok(l), Ok((default, per))) => {
                    assert_eq!(l.default, default, "{text}");
                    let per: BTreeMap<String, f64> =
                        per.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                    assert_eq!(l.per_service, per, "{text}");
                }
                (Err(_), Err(())) => {}
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
    }

    #[test]
    fn bucket_allows_a_burst_then_paces() {
        let bucket = TokenBucket::new(2.0, 1.0);
        let t0 = Instant::now();
        let mut state = (1.0, t0);
        assert_eq!(bucket.take(&mut state, t0, false), None);
        assert_eq!(
            bucket.take(&mut state, t0, false),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            bucket.take(&mut state, t0 + Duration::from_millis(500), false),
            None
        );
        // Long idle refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(bucket.take(&mut state, later, false), None);
        assert!(bucket.take(&mut state, later, false).is_some());
    }

    #[test]
    fn urgent_requests_find_the_token_kept_back_for_them() {
        let bucket = TokenBucket::new(2.0, 4.0);
        let t0 = Instant::now();
        let mut state = (4.0, t0);
        // Others take the burst but one token.
        for _ in 0..3 {
            assert_eq!(bucket.take(&mut state, t0, false), None);
        }
        assert_eq!(
            bucket.take(&mut state, t0, false),
            Some(Duration::from_millis(500))
        );
        // An urgent request does not wait for them.
        assert_eq!(bucket.take(&mut state, t0, true), None);
        assert_eq!(
            bucket.take(&mut state, t0, true),
            Some(Duration::from_millis(500))
        );
        // Under a steady load of others the reserve stays for the next urgent one, and
        // the others still get the whole rate: 2 a second.
        let mut t = t0 + Duration::from_secs(1);
        let mut served = 0;
        while t < t0 + Duration::from_secs(11) {
            if bucket.take(&mut state, t, false).is_none() {
                served += 1;
            }
            t += Duration::from_millis(10);
        }
        assert!((19..=21).contains(&served), "{served}");
        assert_eq!(bucket.take(&mut state, t, true), None);
    }
}
