//! A circuit breaker: after enough failures in a row, calls stop for a cool-down, so a
//! failing provider gets answered fast instead of piling up waiting requests.

use super::ProviderError;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Breaker {
    threshold: u32,
    cool_down: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cool_down,
            state: Mutex::default(),
        }
    }

    /// `Err(Paused)` while open. Once the cool-down is over one call goes through; if
    /// it fails too, the breaker opens again at once.
    pub fn check(&self) -> Result<(), ProviderError> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.open_until {
            Some(until) if Instant::now() < until => {
                let left = until - Instant::now();
                Err(ProviderError::Paused {
                    retry_after_secs: left.as_secs().max(1),
                })
            }
            Some(_) => {
                s.open_until = None;
                crate::metrics::metrics().provider_paused.set(0);
                s.failures = self.threshold - 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub fn record(&self, provider_ok: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if provider_ok {
            s.failures = 0;
            return;
        }
        s.failures += 1;
        if s.failures >= self.threshold && s.open_until.is_none() {
            s.open_until = Some(Instant::now() + self.cool_down);
            crate::metrics::metrics().provider_paused.set(1);
            tracing::warn!(
                failures = s.failures,
                pause_secs = self.cool_down.as_secs(),
                "provider keeps failing; pausing calls"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_half_opens_after_cool_down() {
        let b = Breaker::new(2, Duration::from_millis(30));
        b.record(false);
        assert!(b.check().is_ok());
        b.record(false);
        assert!(matches!(b.check(), Err(ProviderError::Paused { .. })));
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.check().is_ok(), "one trial after the cool-down");
        b.record(false);
        assert!(b.check().is_err(), "a failed trial opens it again");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.check().is_ok());
        b.record(true);
        b.record(false);
        assert!(b.check().is_ok(), "success resets the count");
    }
}
