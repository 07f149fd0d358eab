//! Durations in scenario files: a decimal number and a unit, read exactly
//! (no floating point), to a whole number of milliseconds.

use gossip_chat::Duration;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::fmt;

/// The longest duration a scenario may name, in milliseconds.
const MAX_MS: u128 = 1_000_000_000_000_000;

/// Parses `"250ms"`, `"10s"`, `"1.5s"`, `"32.2s"`, `"2m"`, `"1h"`: digits,
/// an optional decimal point and more digits, then a unit. The value must be
/// a whole number of milliseconds (`"1.0005s"` is refused).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("duration {s:?} has no unit (use ms, s, m or h)"))?;
    let (num, unit) = s.split_at(split);
    let scale: u128 = match unit.trim() {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        u => {
            return Err(format!(
                "unknown duration unit {u:?} in {s:?} (use ms, s, m or h)"
            ))
        }
    };
    let not_a_number = || format!("{s:?} is not a duration like \"250ms\" or \"10s\"");
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(not_a_number());
    }
    // Trailing zeros of the fraction change nothing; past that, more than
    // a few digits cannot be whole milliseconds of any unit.
    let frac = frac.trim_end_matches('0');
    if int.len() > 20 || frac.len() > 9 {
        return Err(too_fine_or_long(s));
    }
    let digits = |d: &str| -> u128 { d.bytes().fold(0, |n, b| n * 10 + u128::from(b - b'0')) };
    let denom = 10u128.pow(frac.len() as u32);
    let scaled = (digits(int) * denom + digits(frac)) * scale;
    if scaled % denom != 0 || scaled / denom > MAX_MS {
        return Err(too_fine_or_long(s));
    }
    Ok(Duration::from_millis((scaled / denom) as u64))
}

fn too_fine_or_long(s: &str) -> String {
    format!("duration {s:?} is not a whole number of milliseconds")
}

/// A duration field of the raw scenario.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dur(pub(super) Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with a unit, like \"250ms\" or \"10s\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                parse_duration(s).map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> Result<u64, String> {
        parse_duration(s).map(|d| d.as_millis())
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(ms("250ms"), Ok(250));
        assert_eq!(ms("1.5s"), Ok(1500));
        assert_eq!(ms("2m"), Ok(120_000));
        assert_eq!(ms("1h"), Ok(3_600_000));
        assert!(ms("10").is_err());
        assert!(ms("10 parsecs").is_err());
    }

    #[test]
    fn decimals_are_read_exactly() {
        // Each of these is off by a rounding error as an f64 product.
        assert_eq!(ms("32.2s"), Ok(32_200));
        assert_eq!(ms("16.1s"), Ok(16_100));
        assert_eq!(ms("64.4s"), Ok(64_400));
        assert_eq!(ms("0.001s"), Ok(1));
        assert_eq!(ms("1.2500s"), Ok(1250));
        assert_eq!(ms("0.5m"), Ok(30_000));
        assert_eq!(ms("0.0001h"), Ok(360));
        assert_eq!(ms(".5s"), Ok(500));
        assert_eq!(ms("2.s"), Ok(2000));
        assert_eq!(ms("0ms"), Ok(0));
    }

    #[test]
    fn fractions_of_a_millisecond_and_malformed_numbers_are_refused() {
        for bad in [
            "1.0005s",
            "0.5ms",
            "0.0000001h",
            "1.2.3s",
            ".s",
            "s",
            "-1s",
            "1e3s",
        ] {
            assert!(ms(bad).is_err(), "{bad} accepted");
        }
        assert!(ms("1.0005s").unwrap_err().contains("whole number"));
        assert!(ms("99999999999999999999999s").is_err());
        assert!(ms("1000000000000001ms").is_err());
        assert_eq!(ms("1000000000000000ms"), Ok(1_000_000_000_000_000));
    }
}
