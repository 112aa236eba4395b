//! What PostHog's answer to a `/batch/` request means, decided in one place for every client
//! of this project (the capture service's own habit: one error enum, one mapping to a
//! response): deliver, retry, split, isolate a refused event, or stop.

use std::time::Duration;

/// What to do after a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// 200: mark the batch sent.
    Accepted,
    /// 408, 429, 5xx or a network error: try the same batch again later.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// 413: the request is too large; send halves (a single event too large is isolated).
    Split,
    /// 400: some event is refused; bisect to find it and mark it failed with this reason.
    Isolate { reason: String },
    /// 401 or 403: the key is wrong; stop sending and keep everything pending.
    Credentials { status: u16 },
    /// 404, 405 or a redirect: the request did not reach PostHog's capture endpoint (a typo in
    /// the host, the app host instead of the capture host, `http` for `https`). Stop sending,
    /// keep everything pending, and never follow the redirect (it would carry the key
    /// elsewhere). `advice` says which host to use.
    WrongHost { status: u16, advice: String },
}

/// The capture hosts of PostHog's clouds, for advice.
const CLOUD_HOSTS: &str = "US cloud https://us.i.posthog.com, EU cloud https://eu.i.posthog.com, self-hosted: your instance's address";

impl Delivery {
    /// Classifies an HTTP answer; `location` is its `Location` header, if any.
    pub fn from_status(
        status: u16,
        retry_after: Option<&str>,
        location: Option<&str>,
        body: &str,
    ) -> Delivery {
        match status {
            200..=299 => Delivery::Accepted,
            401 | 403 => Delivery::Credentials { status },
            300..=399 => Delivery::WrongHost {
                status,
                advice: match location.and_then(origin) {
                    Some(origin) => format!(
                        "it redirects to {origin}: give that as the host if it is yours ({CLOUD_HOSTS})"
                    ),
                    None => format!(
                        "it redirects elsewhere: give PostHog's capture host ({CLOUD_HOSTS})"
                    ),
                },
            },
            404 | 405 => Delivery::WrongHost {
                status,
                advice: format!(
                    "there is no PostHog /batch/ endpoint there: give PostHog's capture host, without a path ({CLOUD_HOSTS})"
                ),
            },
            413 => Delivery::Split,
            408 | 429 | 500..=599 => Delivery::Retry {
                after: retry_after
                    .and_then(|value| value.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
                reason: format!("PostHog answered {status}"),
            },
            _ => Delivery::Isolate {
                reason: format!(
                    "PostHog refused the batch ({status}): {}",
                    body.chars().take(300).collect::<String>()
                ),
            },
        }
    }
}

/// `scheme://host[:port]` of a redirect's target.
fn origin(location: &str) -> Option<String> {
    let url = reqwest::Url::parse(location).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_place_decides_what_each_status_means() {
        assert_eq!(
            Delivery::from_status(200, None, None, ""),
            Delivery::Accepted
        );
        assert_eq!(Delivery::from_status(413, None, None, ""), Delivery::Split);
        assert_eq!(
            Delivery::from_status(401, None, None, ""),
            Delivery::Credentials { status: 401 }
        );
        assert_eq!(
            Delivery::from_status(403, None, None, ""),
            Delivery::Credentials { status: 403 }
        );
        assert!(
            matches!(Delivery::from_status(429, Some("7"), None, ""), Delivery::Retry { after: Some(after), .. } if after == Duration::from_secs(7))
        );
        assert!(matches!(
            Delivery::from_status(503, None, None, ""),
            Delivery::Retry { after: None, .. }
        ));
        assert!(matches!(
            Delivery::from_status(408, None, None, ""),
            Delivery::Retry { .. }
        ));
        assert!(
            matches!(Delivery::from_status(400, None, None, "bad uuid"), Delivery::Isolate { reason } if reason.contains("bad uuid"))
        );
        for status in [404, 405] {
            assert!(
                matches!(Delivery::from_status(status, None, None, "<html>"), Delivery::WrongHost { status: got, advice } if got == status && advice.contains("https://us.i.posthog.com"))
            );
        }
        assert_eq!(
            Delivery::from_status(301, None, Some("https://eu.i.posthog.com/batch/"), ""),
            Delivery::WrongHost {
                status: 301,
                advice: format!(
                    "it redirects to https://eu.i.posthog.com: give that as the host if it is yours ({CLOUD_HOSTS})"
                )
            }
        );
        assert!(matches!(
            Delivery::from_status(307, None, None, ""),
            Delivery::WrongHost { status: 307, .. }
        ));
    }
}
