//! How long to wait before a retry: the server's `Retry-After`, else exponential backoff
//! with jitter drawn from a generator the caller owns.

use std::time::{Duration, SystemTime};

use http::HeaderValue;
use rand_core::Rng;
use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::fate::RetryCause;

/// Exponential backoff with jitter: before retry `attempt` (0 for the first retry) wait
/// `initial × 2^attempt − initial/2 + U[0, initial)`, where `initial × 2^attempt` is capped
/// at `max`. With the default one second that is [0.5, 1.5) s, then [1.5, 2.5) s,
/// [3.5, 4.5) s… as in the Python gcm-client, plus a cap.
///
/// When the server sent no `Retry-After`, a floor per cause comes on top of that window
/// ([`Outcome::delay`](crate::Outcome::delay)): FCM asks for at least 60 s before
/// retrying a quota error and 10 s after `UNAVAILABLE` or `INTERNAL`
/// ([`Backoff::fcm_v1`]). The legacy default has no floors, as the seed had none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Backoff {
    /// The base delay and the width of the jitter window.
    pub initial: Duration,
    /// The largest `initial × 2^attempt` before jitter.
    pub max: Duration,
    /// Added before a retry of a recipient that hit a rate limit or quota (429,
    /// `QUOTA_EXCEEDED`, `DeviceMessageRateExceeded`…) when no `Retry-After` came.
    #[serde(default)]
    pub rate_limited_floor: Duration,
    /// Added before a retry of a recipient that got a server error (`UNAVAILABLE`,
    /// `INTERNAL`, a 5xx) when no `Retry-After` came.
    #[serde(default)]
    pub server_error_floor: Duration,
}

impl Default for Backoff {
    /// One second, doubling up to 1024 seconds (17 minutes), no floors: the legacy
    /// protocol's rules.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(1024),
            rate_limited_floor: Duration::ZERO,
            server_error_floor: Duration::ZERO,
        }
    }
}

impl Backoff {
    /// FCM HTTP v1's rules: the default window, plus at least 60 s after a quota error and
    /// 10 s after `UNAVAILABLE`, `INTERNAL` or a 5xx without `Retry-After`.
    pub fn fcm_v1() -> Self {
        Self {
            rate_limited_floor: Duration::from_secs(60),
            server_error_floor: Duration::from_secs(10),
            ..Self::default()
        }
    }

    /// The delay before retry number `attempt` (0 for the first retry), without floors.
    /// The same generator state gives the same delay.
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let initial = self.initial.as_nanos();
        let doubled = initial.saturating_mul(1u128.checked_shl(attempt).unwrap_or(u128::MAX));
        let base = doubled.min(self.max.as_nanos().max(initial));
        let jitter = (u128::from(rng.next_u64()) * initial) >> 64;
        duration_from_nanos(base - initial / 2 + jitter)
    }

    /// The floor for a retry with this cause (zero when none applies).
    pub fn floor(&self, cause: &RetryCause) -> Duration {
        match cause {
            RetryCause::Error(code) if code.kind() == ErrorKind::RateLimited => self.rate_limited_floor,
            RetryCause::Error(_) => self.server_error_floor,
            RetryCause::Status(429) => self.rate_limited_floor,
            RetryCause::Status(_) => self.server_error_floor,
            RetryCause::Unanswered => Duration::ZERO,
        }
    }
}

fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits.
    Duration::new(secs, (nanos % NANOS_PER_SEC) as u32)
}

/// Reads a `Retry-After` value: delta-seconds (`120`) or an HTTP-date in any of its three
/// forms, taken relative to `now` and floored at zero. Empty, negative or unreadable values
/// give `None`.
pub fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time".
        return Some(Duration::from_secs(text.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// Returns the same word forever.
    struct Fixed(u64);

    impl rand_core::TryRng for Fixed {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok(self.0 as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            Ok(self.0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            dst.fill(self.0 as u8);
            Ok(())
        }
    }

    #[test]
    fn backoff_windows_double_and_are_capped() {
        let backoff = Backoff::default();
        let ms = |attempt, word| backoff.delay(attempt, &mut Fixed(word)).as_millis();
        assert_eq!(ms(0, 0), 500);
        assert_eq!(ms(0, u64::MAX), 1499);
        assert_eq!(ms(0, 1 << 63), 1000);
        assert_eq!(ms(1, 0), 1500);
        assert_eq!(ms(2, 0), 3500);
        assert_eq!(ms(3, 1 << 63), 8000);
        assert_eq!(ms(10, 0), 1_023_500);
        assert_eq!(ms(11, 0), 1_023_500);
        assert_eq!(ms(u32::MAX, 0), 1_023_500);
    }

    #[test]
    fn floors_follow_the_cause() {
        use crate::ErrorCode;
        let v1 = Backoff::fcm_v1();
        let floor = |cause| v1.floor(&cause).as_secs();
        assert_eq!(floor(RetryCause::Error(ErrorCode::QuotaExceeded)), 60);
        assert_eq!(floor(RetryCause::Error(ErrorCode::ResourceExhausted)), 60);
        assert_eq!(floor(RetryCause::Status(429)), 60);
        assert_eq!(floor(RetryCause::Error(ErrorCode::Unavailable)), 10);
        assert_eq!(floor(RetryCause::Error(ErrorCode::Internal)), 10);
        assert_eq!(floor(RetryCause::Status(503)), 10);
        assert_eq!(floor(RetryCause::Unanswered), 0);
        assert_eq!(Backoff::default().floor(&RetryCause::Error(ErrorCode::QuotaExceeded)), Duration::ZERO);
    }

    #[test]
    fn zero_backoff_is_zero() {
        let backoff = Backoff { initial: Duration::ZERO, max: Duration::ZERO, ..Backoff::default() };
        assert_eq!(backoff.delay(5, &mut Fixed(u64::MAX)), Duration::ZERO);
    }

    #[test]
    fn retry_after_reads_seconds_and_every_date_form() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:07 GMT").unwrap();
        let parse = |s: &'static str| parse_retry_after(&HeaderValue::from_static(s), now);
        assert_eq!(parse("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse("99999999999999999999999"), Some(Duration::from_secs(u64::MAX)));
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::from_secs(30)));
        assert_eq!(parse("Sunday, 06-Nov-94 08:49:37 GMT"), Some(Duration::from_secs(30)));
        assert_eq!(parse("Sun Nov  6 08:49:37 1994"), Some(Duration::from_secs(30)));
        assert_eq!(parse("Fri, 31 Dec 1993 23:59:59 GMT"), Some(Duration::ZERO));
        for bad in ["", "-5", "1.5", "soon", "0x10", "Sun, 06 Nov 1994 25:49:37 GMT"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        let latin1 = HeaderValue::from_bytes(b"12\xe90").unwrap();
        assert_eq!(parse_retry_after(&latin1, now), None);
    }
}
