//! Stored time: unix milliseconds, the one unit the store keeps and the rules compare.

use std::time::Duration;
use time::OffsetDateTime;

/// An instant as stored, in unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMs(pub i64);

impl UnixMs {
    pub fn of(at: OffsetDateTime) -> Self {
        Self((at.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn plus(self, span: Duration) -> Self {
        Self(self.0.saturating_add(millis(span)))
    }

    pub fn minus(self, span: Duration) -> Self {
        Self(self.0.saturating_sub(millis(span)))
    }

    /// How long after `earlier` this is; zero when it is not after.
    pub fn since(self, earlier: UnixMs) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// As operators read it (RFC 3339, UTC).
    pub fn rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| self.0.to_string())
    }
}

fn millis(span: Duration) -> i64 {
    span.as_millis().min(i64::MAX as u128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_never_goes_negative() {
        let t = UnixMs(1_000);
        assert_eq!(t.plus(Duration::from_millis(500)), UnixMs(1_500));
        assert_eq!(t.minus(Duration::from_secs(2)), UnixMs(-1_000));
        assert_eq!(t.since(UnixMs(400)), Duration::from_millis(600));
        assert_eq!(t.since(UnixMs(4_000)), Duration::ZERO);
        assert_eq!(UnixMs(i64::MAX).plus(Duration::MAX), UnixMs(i64::MAX));
        assert_eq!(UnixMs(0).rfc3339(), "1970-01-01T00:00:00Z");
    }
}
