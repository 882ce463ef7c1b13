//! A protobuf `Duration` in JSON: seconds with up to nine fractional digits and an `s`,
//! written as protobuf's JSON printer writes it (0, 3, 6 or 9 fractional digits: `"3600s"`,
//! `"3.500s"`), read in any of the spellings the mapping allows (`"3.5s"`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de};

/// The largest duration protobuf allows: 10 000 years.
const MAX_SECONDS: u64 = 315_576_000_000;

/// `duration` as protobuf's JSON printer writes it.
pub fn text(duration: Duration) -> String {
    let (seconds, nanos) = (duration.as_secs(), duration.subsec_nanos());
    if nanos == 0 {
        format!("{seconds}s")
    } else if nanos % 1_000_000 == 0 {
        format!("{seconds}.{:03}s", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{seconds}.{:06}s", nanos / 1_000)
    } else {
        format!("{seconds}.{nanos:09}s")
    }
}

/// Reads `"3.5s"`; `None` for anything else (a sign, no `s`, ten fractional digits, more
/// than 10 000 years).
pub fn parse(text: &str) -> Option<Duration> {
    let number = text.strip_suffix('s')?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 9 {
        return None;
    }
    if number.ends_with('.') {
        return None;
    }
    let seconds: u64 = whole.parse().ok().filter(|s| *s <= MAX_SECONDS)?;
    let nanos = if fraction.is_empty() { 0 } else { format!("{fraction:0<9}").parse().ok()? };
    Some(Duration::new(seconds, nanos))
}

fn invalid<E: de::Error>(text: &str) -> E {
    E::custom(format_args!("expected a duration like \"3600s\" or \"3.5s\", got {text:?}"))
}

/// `Option<Duration>` as a protobuf duration.
pub(super) mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_str(&text(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(text) => parse(&text).map(Some).ok_or_else(|| invalid(&text)),
        }
    }
}

/// `Option<Vec<Duration>>` as a list of protobuf durations (`vibrate_timings`).
pub(super) mod list {
    use serde::ser::SerializeSeq;

    use super::*;

    pub(crate) fn serialize<S: Serializer>(value: &Option<Vec<Duration>>, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(durations) = value else {
            return serializer.serialize_none();
        };
        let mut seq = serializer.serialize_seq(Some(durations.len()))?;
        for duration in durations {
            seq.serialize_element(&text(*duration))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<Duration>>, D::Error> {
        let Some(texts) = Option::<Vec<String>>::deserialize(deserializer)? else {
            return Ok(None);
        };
        texts.iter().map(|text| parse(text).ok_or_else(|| invalid(text))).collect::<Result<_, _>>().map(Some)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test may fail loudly
    use super::*;

    #[test]
    fn written_as_protobuf_writes_and_read_in_every_allowed_spelling() {
        let cases = [
            ("3600s", Duration::from_secs(3600), "3600s"),
            ("3.5s", Duration::from_millis(3500), "3.500s"),
            ("0.000001s", Duration::from_micros(1), "0.000001s"),
            ("1.000000001s", Duration::new(1, 1), "1.000000001s"),
            ("2419200s", Duration::from_secs(2_419_200), "2419200s"),
        ];
        for (read, duration, written) in cases {
            assert_eq!(parse(read), Some(duration), "{read}");
            assert_eq!(text(duration), written);
        }
        for bad in ["", "s", "3600", "-1s", "1.s", ".5s", "1.0000000001s", "1e3s", " 1s", "315576000001s"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
