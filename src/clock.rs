//! The one clock and every time format, for pages, the API, emails and the CLI alike.
//! Times are Unix seconds (UTC) everywhere inside Doorman.

use time::OffsetDateTime;

/// Now, in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A stored time as a date-time (the API's RFC 3339 values); out-of-range values are
/// the epoch rather than a panic.
pub fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// "2026-11-23 08:15:00 UTC".
pub fn utc(t: i64) -> String {
    let dt = at(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        dt.year(),
        dt.month() as u8,
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Whether `name` is an IANA time zone this build knows ("Europe/Berlin").
pub fn is_time_zone(name: &str) -> bool {
    name.parse::<chrono_tz::Tz>().is_ok()
}

/// Every IANA time zone name this build knows, for a picker.
pub fn time_zones() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
}

/// What an email says for a time: UTC always, and the person's own time when their
/// time zone is known (SPEC §22): "2026-11-23 08:15:00 UTC · 09:15 CET in
/// Europe/Berlin", with the date again only when it differs.
pub fn utc_and_local(t: i64, zone: Option<&str>) -> String {
    use chrono::TimeZone;
    let utc_text = utc(t);
    let Some(tz) = zone
        .filter(|z| !z.is_empty() && *z != "UTC")
        .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
    else {
        return utc_text;
    };
    let Some(at) = tz.timestamp_opt(t, 0).single() else {
        return utc_text;
    };
    let same_day = at.format("%Y-%m-%d").to_string() == utc_text[..10];
    let local = if same_day {
        at.format("%H:%M %Z").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M %Z").to_string()
    };
    format!("{utc_text} · {local} in {}", tz.name())
}

/// "20261123T081500Z": ISO 8601 basic format, for file names (backups, kept copies).
pub fn compact_utc(t: i64) -> String {
    let dt = at(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        dt.month() as u8,
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// The Unix time of the start (00:00:00 UTC) of a day given as `YYYY-MM-DD` (an HTML
/// date field); None for anything else.
pub fn parse_day(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s.trim(), format).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

/// The Unix time of a [`compact_utc`] string; None for anything else.
pub fn parse_compact_utc(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let dt = time::PrimitiveDateTime::parse(s, &format).ok()?;
    Some(dt.assume_utc().unix_timestamp())
}

/// "just now", "5 minutes ago", "1 hour ago", "3 days ago".
pub fn relative(now: i64, t: i64) -> String {
    if now - t < 60 {
        return "just now".into();
    }
    format!("{} ago", span(now - t))
}

/// A length of time in words, in its largest whole unit: "5 minutes", "2 hours",
/// "3 days" ("less than a minute" below one).
pub fn span(secs: i64) -> String {
    let d = secs.max(0);
    let (n, unit) = match d {
        0..=59 => return "less than a minute".into(),
        60..=3599 => (d / 60, "minute"),
        3600..=86_399 => (d / 3600, "hour"),
        _ => (d / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_and_the_persons_time() {
        // 2026-11-23 08:15:00 UTC.
        let t = 1_795_421_700;
        assert_eq!(super::utc_and_local(t, None), "2026-11-23 08:15:00 UTC");
        assert_eq!(
            super::utc_and_local(t, Some("Europe/Berlin")),
            "2026-11-23 08:15:00 UTC · 09:15 CET in Europe/Berlin"
        );
        assert_eq!(
            super::utc_and_local(t + 15 * 3600, Some("Asia/Tokyo")),
            "2026-11-23 23:15:00 UTC · 2026-11-24 08:15 JST in Asia/Tokyo"
        );
        assert_eq!(super::utc_and_local(t, Some("Mars/Base")), super::utc(t));
        assert!(super::is_time_zone("America/New_York") && !super::is_time_zone("Berlin"));
    }

    use super::*;

    #[test]
    fn formats() {
        assert_eq!(relative(1000, 1000), "just now");
        assert_eq!(relative(1000 + 300, 1000), "5 minutes ago");
        assert_eq!(relative(3600, 0), "1 hour ago");
        assert_eq!(relative(3 * 86_400, 0), "3 days ago");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(at(i64::MAX), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(compact_utc(1_795_421_700), "20261123T081500Z");
        assert_eq!(parse_compact_utc("20261123T081500Z"), Some(1_795_421_700));
        assert_eq!(parse_compact_utc("20261123T0815Z"), None);
        assert_eq!(parse_compact_utc("x20261123T081500Z"), None);
    }
}
