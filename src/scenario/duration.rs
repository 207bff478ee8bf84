//! Duration strings: `"250ms"`, `"2s"`, `"1.5s"`, `"2m"`, `"1h"`, `"500us"`, `"100ns"`, and
//! sums of them (`"1m30s"`). A number without a unit is refused: `30` could be seconds or
//! milliseconds, and guessing is how benchmarks end up 1000× off.

use std::time::Duration;

/// How to write a duration, for hints.
pub(crate) const SYNTAX: &str = "write a number followed by a unit, e.g. \"250ms\", \"2s\", \"1.5s\", \"2m\", \"1h\"; units are ns, us, ms, s, m, h, d";

/// Parses a duration string; the error is a complete sentence for the user.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.starts_with('-') {
        return Err(format!("must not be negative, got {text:?}"));
    }
    let mut rest = t;
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let tail = tail.trim_start();
        let unit_len = tail
            .find(|c: char| !c.is_alphabetic() && c != 'µ')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        if num.is_empty() {
            return Err(format!("{text:?} is not a duration"));
        }
        let value: f64 = num
            .parse()
            .map_err(|_| format!("{text:?} is not a duration"))?;
        let scale = match unit {
            "" => return Err(format!("missing unit in {text:?}")),
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(format!("unknown unit {unit:?} in {text:?}")),
        };
        total += value * scale;
        rest = tail.trim_start();
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("{text:?} is too long"))
}

/// A duration in the shortest readable form (`250ms`, `2s`, `1.5s`, `2m`), for messages.
pub(crate) fn show(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 86400.0 && s % 86400.0 == 0.0 {
        format!("{}d", s / 86400.0)
    } else if s >= 3600.0 && s % 3600.0 == 0.0 {
        format!("{}h", s / 3600.0)
    } else if s >= 60.0 && s % 60.0 == 0.0 {
        format!("{}m", s / 60.0)
    } else if s >= 1.0 {
        format!("{s}s")
    } else if s >= 1e-3 {
        format!("{}ms", s * 1e3)
    } else {
        format!("{}us", s * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_forms_parse_to_exact_durations() {
        let cases = [
            ("250ms", Duration::from_millis(250)),
            ("2s", Duration::from_secs(2)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("500us", Duration::from_micros(500)),
            ("100ns", Duration::from_nanos(100)),
            ("1m30s", Duration::from_secs(90)),
            ("7d", Duration::from_secs(7 * 86400)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_forms_are_refused_with_a_reason() {
        assert_eq!(
            parse("-2s"),
            Err("must not be negative, got \"-2s\"".into())
        );
        assert_eq!(parse("30"), Err("missing unit in \"30\"".into()));
        assert_eq!(parse("NaNs"), Err("\"NaNs\" is not a duration".into()));
        assert_eq!(
            parse("3 parsecs"),
            Err("unknown unit \"parsecs\" in \"3 parsecs\"".into())
        );
        assert_eq!(parse(""), Err("empty duration".into()));
        assert!(parse("1e400s").is_err());
    }

    #[test]
    fn show_picks_a_readable_unit() {
        assert_eq!(show(Duration::from_millis(250)), "250ms");
        assert_eq!(show(Duration::from_secs(120)), "2m");
        assert_eq!(show(Duration::from_millis(1500)), "1.5s");
    }
}
