//! Events per second at most, shared by every request of a run — events, aliases, person and
//! group updates alike: PostHog's migration guide asks to "keep the total below a few
//! thousand events per second across all workers and processes" (posthog.com, docs/migrate,
//! "Best practices for migrations").

use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::Mutex;

/// The total rate of a migration unless told otherwise, in events per second: within
/// PostHog's "few thousand events per second" for a cloud project.
pub const DEFAULT_RATE: u32 = 2000;

/// At most `rate` events per second. The bucket starts empty and holds one second's worth, so
/// no second ever carries more than that (a batch larger than a second's worth still goes,
/// and the next ones wait for it).
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(rate: u32) -> RateLimiter {
        let rate = f64::from(rate.max(1));
        RateLimiter {
            rate,
            bucket: Mutex::new((0.0, Instant::now())),
        }
    }

    /// Waits until `count` events may go.
    pub async fn acquire(&self, count: usize) {
        let count = count as f64;
        let wait = {
            let mut bucket = self.bucket.lock().await;
            let (tokens, last) = &mut *bucket;
            let now = Instant::now();
            *tokens =
                (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.rate);
            *last = now;
            *tokens -= count;
            // A debt is paid by waiting.
            (*tokens < 0.0).then(|| Duration::from_secs_f64(-*tokens / self.rate))
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A `--rate`: events per second at most, or unlimited (`None`, for a self-hosted PostHog
/// that takes more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub Option<u32>);

impl Rate {
    /// A limiter for this rate, to share between the clients of one migration.
    pub fn limiter(self) -> Option<std::sync::Arc<RateLimiter>> {
        self.0
            .map(|rate| std::sync::Arc::new(RateLimiter::new(rate)))
    }

    /// For people: `at most 2000 events/s`, or `unlimited`.
    pub fn describe(self) -> String {
        match self.0 {
            Some(rate) => format!("at most {rate} events/s"),
            None => "unlimited".to_owned(),
        }
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    /// Events per second (a whole number above 0), or `unlimited`.
    fn from_str(text: &str) -> Result<Rate, String> {
        if text.eq_ignore_ascii_case("unlimited") {
            return Ok(Rate(None));
        }
        match text.parse::<u32>() {
            Ok(rate) if rate > 0 => Ok(Rate(Some(rate))),
            _ => Err(format!(
                "{text:?} is not a rate: give events per second (a whole number above 0) or `unlimited`"
            )),
        }
    }
}

impl std::fmt::Display for Rate {
    /// As `--rate` takes it: `2000`, or `unlimited`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(rate) => write!(f, "{rate}"),
            None => f.write_str("unlimited"),
        }
    }
}

/// The identity sidecar's share of a total rate in a Vector pipeline, where it runs beside
/// Vector's own `http` sink and cannot share a limiter with it: a quarter (aliases and group
/// updates are far fewer than events); the events sink gets the rest.
pub const fn identity_share(total: u32) -> u32 {
    if total / 4 > 0 { total / 4 } else { 1 }
}

/// The identity sidecar's rate by default: its share of [`DEFAULT_RATE`].
pub const DEFAULT_IDENTITY_RATE: u32 = identity_share(DEFAULT_RATE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_a_positive_number_or_unlimited() {
        assert_eq!("2000".parse(), Ok(Rate(Some(2000))));
        assert_eq!("Unlimited".parse(), Ok(Rate(None)));
        assert!("0".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().unwrap_err().contains("`unlimited`"));
        assert_eq!(Rate(Some(2000)).describe(), "at most 2000 events/s");
        assert_eq!(Rate(None).to_string().parse(), Ok(Rate(None)));
        assert_eq!(DEFAULT_IDENTITY_RATE, 500);
    }

    #[tokio::test(start_paused = true)]
    async fn no_second_carries_more_than_the_rate() {
        let limiter = RateLimiter::new(2000);
        let started = tokio::time::Instant::now();
        for _ in 0..10 {
            limiter.acquire(1000).await;
        }
        // 10 000 events at 2 000 a second: 5 s, the first second included.
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
