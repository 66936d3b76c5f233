//! Rate limits as token buckets: `per_second` tokens flow in, at most `burst` are kept,
//! and each request takes one. Pure arithmetic on the times it is given.

use std::time::Duration;

/// A limit: `per_second` requests on average, `burst` at once. Zero means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimit {
    pub const UNLIMITED: RateLimit = RateLimit {
        per_second: 0,
        burst: 0,
    };

    pub fn is_unlimited(self) -> bool {
        self.per_second == 0
    }

    /// `200/s` (a burst of twice the rate) or `200/s,burst=400`; `0` or `0/s` for none.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (rate, burst) = match raw.split_once(',') {
            Some((rate, burst)) => (rate.trim(), Some(burst.trim())),
            None => (raw, None),
        };
        let per_second: u32 = rate
            .strip_suffix("/s")
            .unwrap_or(rate)
            .trim()
            .parse()
            .map_err(|_| format!("expected a rate like 200/s or 200/s,burst=400, got {raw:?}"))?;
        let burst = match burst {
            None => per_second.saturating_mul(2),
            Some(b) => b
                .strip_prefix("burst=")
                .and_then(|n| n.trim().parse().ok())
                .ok_or_else(|| format!("expected burst=N after the rate, got {b:?}"))?,
        };
        if per_second > 0 && burst == 0 {
            return Err("a limited rate needs a burst of at least 1".into());
        }
        Ok(Self { per_second, burst })
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_unlimited() {
            f.write_str("unlimited")
        } else {
            write!(f, "{}/s,burst={}", self.per_second, self.burst)
        }
    }
}

/// One caller's bucket. Times are offsets from any fixed instant the owner chooses.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    at: Duration,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn full(limit: RateLimit, now: Duration) -> Self {
        Self {
            tokens: f64::from(limit.burst),
            at: now,
        }
    }

    /// Takes one token at `now`; when there is none, how long until there is.
    pub fn take(&mut self, limit: RateLimit, now: Duration) -> Result<(), Duration> {
        if limit.is_unlimited() {
            return Ok(());
        }
        let rate = f64::from(limit.per_second);
        let elapsed = now.saturating_sub(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(limit.burst));
        self.at = now.max(self.at);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }

    /// Whether the bucket has refilled completely by `now` (and can be forgotten).
    pub fn is_full(&self, limit: RateLimit, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.at).as_secs_f64();
        limit.is_unlimited()
            || self.tokens + elapsed * f64::from(limit.per_second) >= f64::from(limit.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_as_written() {
        let limit = |p, b| RateLimit {
            per_second: p,
            burst: b,
        };
        assert_eq!(RateLimit::parse("1000/s,burst=2000"), Ok(limit(1000, 2000)));
        assert_eq!(RateLimit::parse(" 200/s , burst=400 "), Ok(limit(200, 400)));
        assert_eq!(RateLimit::parse("50/s"), Ok(limit(50, 100)));
        assert_eq!(RateLimit::parse("0"), Ok(RateLimit::UNLIMITED));
        for bad in [
            "",
            "fast",
            "10/m",
            "10/s,400",
            "10/s,burst=x",
            "10/s,burst=0",
        ] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(limit(200, 400).to_string(), "200/s,burst=400");
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limit = RateLimit {
            per_second: 10,
            burst: 3,
        };
        let t = Duration::from_millis;
        let mut bucket = Bucket::full(limit, t(0));
        for _ in 0..3 {
            assert_eq!(bucket.take(limit, t(0)), Ok(()));
        }
        assert_eq!(bucket.take(limit, t(0)), Err(t(100)));
        assert_eq!(bucket.take(limit, t(50)), Err(t(50)));
        assert_eq!(bucket.take(limit, t(100)), Ok(()));
        assert!(!bucket.is_full(limit, t(200)));
        assert!(bucket.is_full(limit, t(400)));
        let mut free = Bucket::full(RateLimit::UNLIMITED, t(0));
        assert_eq!(free.take(RateLimit::UNLIMITED, t(0)), Ok(()));
    }
}
