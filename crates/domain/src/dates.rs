//! The dates and times the service accepts from outside: days
//! (`YYYY-MM-DD`) and instants (RFC 3339 with an offset), with a four-digit
//! year from 2000 to 9999 ([`EARLIEST_DAY`] ..= [`LATEST_DAY`]).
//!
//! Every query parameter, form field, JSON field and CSV cell that carries a
//! date goes through [`parse_day`] or [`parse_instant`], so that no request
//! can push date arithmetic towards chrono's limits (years ±262,143), where
//! adding a day or a month fails. Arithmetic on dates inside the range is
//! still checked ([`crate::analytics::models::Period::next`]).

use chrono::{DateTime, NaiveDate, Utc};

/// The first day accepted: 2000-01-01.
pub const EARLIEST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(day) => day,
    None => NaiveDate::MIN,
};

/// The last day accepted: 9999-12-31.
pub const LATEST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(day) => day,
    None => NaiveDate::MAX,
};

/// A date or time refused: malformed, or outside 2000-01-01 ..= 9999-12-31.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be {expected} between 2000-01-01 and 9999-12-31")]
pub struct DateError {
    /// The field or parameter at fault, e.g. `to`.
    pub field: String,
    expected: &'static str,
}

impl DateError {
    /// A day (`YYYY-MM-DD`) refused for `field`.
    pub fn day(field: &str) -> Self {
        Self { field: field.to_owned(), expected: "a date like 2026-11-28" }
    }

    /// An instant (RFC 3339) refused for `field`.
    pub fn instant(field: &str) -> Self {
        Self { field: field.to_owned(), expected: "a time like 2026-11-28T09:30:00Z" }
    }
}

/// Whether `day` lies in the accepted range.
pub fn day_in_range(day: NaiveDate) -> bool {
    (EARLIEST_DAY..=LATEST_DAY).contains(&day)
}

/// Parses a day written exactly `YYYY-MM-DD` (four-digit year, no sign, no
/// spaces) inside the accepted range.
///
/// # Errors
/// [`DateError`] naming `field`.
pub fn parse_day(text: &str, field: &str) -> Result<NaiveDate, DateError> {
    let shape = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    shape
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
        .filter(|day| day_in_range(*day))
        .ok_or_else(|| DateError::day(field))
}

/// Parses an RFC 3339 instant (`2026-11-28T09:30:00Z`, `…+02:00`, at most
/// 64 characters) whose UTC day lies inside the accepted range.
///
/// # Errors
/// [`DateError`] naming `field`.
pub fn parse_instant(text: &str, field: &str) -> Result<DateTime<Utc>, DateError> {
    (text.len() <= 64 && text.as_bytes().first().is_some_and(u8::is_ascii_digit))
        .then(|| DateTime::parse_from_rfc3339(text).ok())
        .flatten()
        .map(|at| at.with_timezone(&Utc))
        .filter(|at| day_in_range(at.date_naive()))
        .ok_or_else(|| DateError::instant(field))
}

/// A link's lifetime as pages and emails say it: whole hours ("72 hours",
/// "1 hour"), else minutes ("90 minutes"). The lifetimes come from the
/// configuration, so no text hard-codes them.
pub fn lifetime_in_words(lifetime: chrono::Duration) -> String {
    let minutes = lifetime.num_minutes().max(0);
    let (count, unit) =
        if minutes % 60 == 0 { (minutes / 60, "hour") } else { (minutes, "minute") };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    #[test]
    fn lifetimes_read_in_hours_or_minutes() {
        use chrono::Duration;
        assert_eq!(super::lifetime_in_words(Duration::hours(72)), "72 hours");
        assert_eq!(super::lifetime_in_words(Duration::hours(1)), "1 hour");
        assert_eq!(super::lifetime_in_words(Duration::minutes(90)), "90 minutes");
    }

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn days_inside_the_range_parse_and_the_edges_are_included() {
        assert_eq!(
            parse_day("2026-11-28", "to"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 28).unwrap())
        );
        assert_eq!(parse_day("2000-01-01", "to"), Ok(EARLIEST_DAY));
        assert_eq!(parse_day("9999-12-31", "to"), Ok(LATEST_DAY));
    }

    #[test]
    fn days_outside_the_range_or_oddly_written_are_refused_naming_the_field() {
        for text in [
            "+262142-12-31",
            "-262143-01-01",
            "1999-12-31",
            "0000-01-01",
            "10000-01-01",
            "2026-2-3",
            " 2026-11-28",
            "2026-11-28 ",
            "2026-02-30",
            "2026-11-28T00:00:00Z",
            "",
            "２０２６-11-28",
        ] {
            let error = parse_day(text, "from").unwrap_err();
            assert_eq!(error.field, "from", "{text}");
        }
    }

    #[test]
    fn instants_need_rfc3339_inside_the_range() {
        let at = parse_instant("2026-11-28T09:30:00+02:00", "from").unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-28T07:30:00+00:00");
        for text in [
            "+262142-12-31T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "2000-01-01T00:30:00+01:00",
            "2026-11-28",
            "2026-11-28T09:30:00",
            "-2026-11-28T09:30:00Z",
        ] {
            assert_eq!(
                parse_instant(text, "occurred_at").unwrap_err().field,
                "occurred_at",
                "{text}"
            );
        }
        assert!(parse_instant("9999-12-31T23:59:59Z", "to").is_ok());
        assert!(parse_instant("9999-12-31T23:59:59-01:00", "to").is_err());
    }

    proptest! {
        #[test]
        fn any_text_parses_to_a_day_in_range_or_is_refused(text in "\\PC{0,24}") {
            if let Ok(day) = parse_day(&text, "d") {
                prop_assert!(day_in_range(day));
            }
            if let Ok(at) = parse_instant(&text, "t") {
                prop_assert!(day_in_range(at.date_naive()));
            }
        }

        #[test]
        fn every_year_outside_2000_to_9999_is_refused(year in -300_000i32..300_000, month in 1u32..=12) {
            let text = format!("{year:04}-{month:02}-01");
            prop_assert_eq!(parse_day(&text, "d").is_ok(), (2000..=9999).contains(&year));
        }
    }
}
