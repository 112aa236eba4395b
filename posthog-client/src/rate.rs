//! Events per second at most, shared by every request of a run.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// At most `rate` events per second, in a bucket that holds one second's worth.
pub struct RateLimiter {
    rate: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(rate: u32) -> RateLimiter {
        let rate = f64::from(rate.max(1));
        RateLimiter {
            rate,
            bucket: Mutex::new((rate, Instant::now())),
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
            // A debt is paid by waiting; batches larger than a second's worth still go.
            (*tokens < 0.0).then(|| Duration::from_secs_f64(-*tokens / self.rate))
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}
