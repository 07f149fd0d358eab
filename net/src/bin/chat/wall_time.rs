//! Wall-clock times as chat lines show them: `HH:MM:SS` in UTC, with the
//! date in front when it is not today's (history from another day, or an
//! author whose clock is far off).

use gossip_chat_net::wall_clock_millis;

const DAY_MS: u64 = 86_400_000;

/// `HH:MM:SS` (UTC) of now.
pub fn now_text() -> String {
    hms(wall_clock_millis())
}

/// The time a chat line shows for an author time `sent_ms` seen at `now_ms`
/// (both milliseconds since the Unix epoch, UTC): `HH:MM:SS`, after
/// `YYYY-MM-DD ` when the days differ; the time of `now_ms` when the author
/// time is unknown (0).
pub fn author_text(sent_ms: u64, now_ms: u64) -> String {
    if sent_ms == 0 {
        return hms(now_ms);
    }
    if sent_ms / DAY_MS == now_ms / DAY_MS {
        hms(sent_ms)
    } else {
        format!("{} {}", date(sent_ms), hms(sent_ms))
    }
}

fn hms(ms: u64) -> String {
    let secs = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// `YYYY-MM-DD` of a UTC time (the proleptic Gregorian calendar, by Howard
/// Hinnant's days-to-civil algorithm).
fn date(ms: u64) -> String {
    let days = i64::try_from(ms / DAY_MS).unwrap_or(i64::MAX / 2) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-11-14 22:13:20 UTC.
    const T: u64 = 1_700_000_000_000;

    #[test]
    fn the_same_day_shows_the_time_only() {
        assert_eq!(author_text(T, T + 60_000), "22:13:20");
        assert_eq!(author_text(T + 999, T), "22:13:20");
    }

    #[test]
    fn another_day_shows_the_date() {
        assert_eq!(author_text(T, T + DAY_MS), "2023-11-14 22:13:20");
        assert_eq!(author_text(951_782_400_000, T), "2000-02-29 00:00:00");
        assert_eq!(author_text(1, T), "1970-01-01 00:00:00");
        // A clock far off (or a forged time) still shows, without panic.
        assert!(author_text(u64::MAX, T).ends_with(" 14:25:51"));
    }

    #[test]
    fn an_unknown_author_time_shows_the_time_it_arrived() {
        assert_eq!(author_text(0, T), "22:13:20");
    }
}
