//! Cron expressions as people write them: the 5-field crontab form (`0 2 * * *`), the 6-
//! or 7-field form with seconds (and years) that the `cron` crate reads, and the `@yearly`,
//! `@monthly`, `@weekly`, `@daily` and `@hourly` shorthands, each evaluated in an IANA
//! time zone.
//!
//! The 5-field form keeps crontab's meaning where the `cron` crate differs:
//! - days of the week count from Sunday = 0 (7 is Sunday too), where the crate counts
//!   from Sunday = 1;
//! - when both day of month and day of week are restricted, a day matching either runs
//!   (Vixie cron), where the crate would need both.
//!
//! Around daylight-saving changes a local time that does not exist (02:30 on a
//! spring-forward day in Europe/Berlin) is skipped that day, and one that happens twice
//! (on a fall-back day) runs once, at its first occurrence.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// A parsed expression in its time zone.
#[derive(Clone, Debug)]
pub struct Cron {
    /// One schedule, or two for a crontab line whose day fields are both restricted.
    schedules: Vec<cron::Schedule>,
    timezone: Tz,
}

impl Cron {
    /// Parses `expression` for `timezone` (an IANA name such as `Europe/Berlin`). The
    /// error says what is wrong, for a start-up message that also names the schedule.
    pub fn parse(expression: &str, timezone: &str) -> Result<Self, String> {
        let timezone = Tz::from_str(timezone.trim()).map_err(|_| {
            format!("unknown time zone {timezone:?} (use an IANA name such as \"Europe/Berlin\")")
        })?;
        let trimmed = expression.trim();
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let sources = if trimmed.starts_with('@') {
            match trimmed {
                "@yearly" | "@annually" => vec!["0 0 0 1 1 *".to_owned()],
                "@monthly" => vec!["0 0 0 1 * *".to_owned()],
                "@weekly" => vec!["0 0 0 * * SUN".to_owned()],
                "@daily" | "@midnight" => vec!["0 0 0 * * *".to_owned()],
                "@hourly" => vec!["0 0 * * * *".to_owned()],
                other => {
                    return Err(format!(
                        "unknown shorthand {other:?} (use @yearly, @monthly, @weekly, @daily or @hourly)"
                    ));
                }
            }
        } else {
            match fields.len() {
                5 => crontab(&fields)?,
                6 | 7 => vec![fields.join(" ")],
                n => {
                    return Err(format!(
                        "{expression:?} has {n} fields; write 5 (minute hour day month weekday), 6 or 7 (with seconds first, years last)"
                    ));
                }
            }
        };
        let schedules = sources
            .iter()
            .map(|source| {
                cron::Schedule::from_str(source)
                    .map_err(|e| format!("{expression:?} is not a valid cron expression: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            schedules,
            timezone,
        })
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone);
        self.schedules
            .iter()
            .filter_map(|s| s.after(&local).next())
            .min()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The latest tick at or before `at`, looking back no further than `since`.
    pub fn latest_between(&self, since: DateTime<Utc>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut latest = None;
        let mut cursor = since;
        while let Some(tick) = self.next_after(cursor) {
            if tick > at {
                break;
            }
            latest = Some(tick);
            cursor = tick;
        }
        latest
    }

    /// The next `n` ticks after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = after;
        while out.len() < n {
            let Some(tick) = self.next_after(cursor) else {
                break;
            };
            out.push(tick);
            cursor = tick;
        }
        out
    }
}

/// Translates a crontab line into the crate's 6-field form (or two, see the module).
fn crontab(fields: &[&str]) -> Result<Vec<String>, String> {
    let [minute, hour, dom, month, dow] = [fields[0], fields[1], fields[2], fields[3], fields[4]];
    let dow = weekdays(dow)?;
    let restricted = |f: &str| f != "*" && f != "?";
    if restricted(dom) && restricted(&dow) {
        return Ok(vec![
            format!("0 {minute} {hour} {dom} {month} *"),
            format!("0 {minute} {hour} * {month} {dow}"),
        ]);
    }
    Ok(vec![format!("0 {minute} {hour} {dom} {month} {dow}")])
}

/// Rewrites crontab weekday numbers (0-7, Sunday 0 and 7) as the crate's (1-7, Sunday 1).
/// Names pass through; numeric items are expanded to explicit days.
fn weekdays(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_owned());
    }
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("bad step in weekday {item:?}"))?,
            ),
            None => (item, 1),
        };
        let numeric = |s: &str| s.parse::<u32>().ok();
        let bounds = if range == "*" {
            Some((0, 6))
        } else if let Some((a, b)) = range.split_once('-') {
            numeric(a).zip(numeric(b))
        } else {
            numeric(range).map(|n| (n, if step > 1 { 6 } else { n }))
        };
        match bounds {
            Some((a, b)) => {
                if a > 7 || b > 7 || a > b {
                    return Err(format!(
                        "weekday {item:?} is out of range (0-7, Sunday is 0 or 7)"
                    ));
                }
                for day in (a..=b).step_by(step as usize) {
                    out.push(((day % 7) + 1).to_string());
                }
            }
            // Names (MON, MON-FRI, SUN/2) are the same in both forms.
            None => out.push(item.to_owned()),
        }
    }
    out.dedup();
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next3(expression: &str, tz: &str, after: &str) -> Vec<String> {
        Cron::parse(expression, tz)
            .unwrap()
            .upcoming(at(after), 3)
            .iter()
            .map(|t| t.to_rfc3339())
            .collect()
    }

    #[test]
    fn five_field_six_field_and_shorthand_forms_agree_with_a_known_table() {
        let after = "2026-03-04T10:15:30Z"; // a Wednesday
        let daily_2am = [
            "2026-03-05T02:00:00+00:00",
            "2026-03-06T02:00:00+00:00",
            "2026-03-07T02:00:00+00:00",
        ];
        assert_eq!(next3("0 2 * * *", "UTC", after), daily_2am);
        assert_eq!(next3("0 0 2 * * *", "UTC", after), daily_2am);
        assert_eq!(next3("0 0 2 * * * *", "UTC", after), daily_2am);
        let midnight = [
            "2026-03-05T00:00:00+00:00",
            "2026-03-06T00:00:00+00:00",
            "2026-03-07T00:00:00+00:00",
        ];
        assert_eq!(next3("@daily", "UTC", after), midnight);
        assert_eq!(next3("0 0 * * *", "UTC", after), midnight);
        assert_eq!(
            next3("@hourly", "UTC", after),
            [
                "2026-03-04T11:00:00+00:00",
                "2026-03-04T12:00:00+00:00",
                "2026-03-04T13:00:00+00:00"
            ]
        );
        assert_eq!(
            next3("*/5 * * * *", "UTC", after),
            [
                "2026-03-04T10:20:00+00:00",
                "2026-03-04T10:25:00+00:00",
                "2026-03-04T10:30:00+00:00"
            ]
        );
        assert_eq!(
            next3("* * * * * *", "UTC", after),
            [
                "2026-03-04T10:15:31+00:00",
                "2026-03-04T10:15:32+00:00",
                "2026-03-04T10:15:33+00:00"
            ]
        );
    }

    #[test]
    fn crontab_weekdays_count_from_sunday_zero() {
        let after = "2026-03-04T10:15:30Z"; // a Wednesday
        let mondays = [
            "2026-03-09T09:00:00+00:00",
            "2026-03-16T09:00:00+00:00",
            "2026-03-23T09:00:00+00:00",
        ];
        assert_eq!(next3("0 9 * * 1", "UTC", after), mondays);
        assert_eq!(next3("0 9 * * MON", "UTC", after), mondays);
        let sundays = [
            "2026-03-08T09:00:00+00:00",
            "2026-03-15T09:00:00+00:00",
            "2026-03-22T09:00:00+00:00",
        ];
        assert_eq!(next3("0 9 * * 0", "UTC", after), sundays);
        assert_eq!(next3("0 9 * * 7", "UTC", after), sundays);
        assert_eq!(
            next3("0 9 * * 1-5", "UTC", after),
            [
                "2026-03-05T09:00:00+00:00",
                "2026-03-06T09:00:00+00:00",
                "2026-03-09T09:00:00+00:00"
            ]
        );
    }

    #[test]
    fn a_day_of_month_or_a_weekday_matches_as_in_crontab() {
        // The 13th, or any Friday.
        assert_eq!(
            next3("0 0 13 * 5", "UTC", "2026-03-01T00:00:00Z"),
            [
                "2026-03-06T00:00:00+00:00",
                "2026-03-13T00:00:00+00:00",
                "2026-03-20T00:00:00+00:00"
            ]
        );
    }

    #[test]
    fn a_time_zone_moves_the_ticks_and_a_missing_local_time_is_skipped() {
        assert_eq!(
            next3("0 9 * * *", "America/New_York", "2026-01-10T00:00:00Z"),
            [
                "2026-01-10T14:00:00+00:00",
                "2026-01-11T14:00:00+00:00",
                "2026-01-12T14:00:00+00:00"
            ]
        );
        // Europe/Berlin springs forward on 2026-03-29 at 02:00: 02:30 does not exist that day.
        assert_eq!(
            next3("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z"),
            [
                "2026-03-28T01:30:00+00:00",
                "2026-03-30T00:30:00+00:00",
                "2026-03-31T00:30:00+00:00"
            ]
        );
    }

    #[test]
    fn a_local_time_that_happens_twice_runs_once() {
        // Europe/Berlin falls back on 2026-10-25 at 03:00: 02:30 happens twice.
        assert_eq!(
            next3("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z"),
            [
                "2026-10-25T00:30:00+00:00",
                "2026-10-26T01:30:00+00:00",
                "2026-10-27T01:30:00+00:00"
            ]
        );
    }

    #[test]
    fn invalid_expressions_and_zones_say_what_is_wrong() {
        let error = |e: &str, tz: &str| Cron::parse(e, tz).unwrap_err();
        assert!(error("0 2 * *", "UTC").contains("4 fields"));
        assert!(error("61 2 * * *", "UTC").contains("not a valid cron expression"));
        assert!(error("0 2 * * 9", "UTC").contains("out of range"));
        assert!(error("@sometimes", "UTC").contains("unknown shorthand"));
        assert!(error("0 2 * * *", "Mars/Olympus").contains("unknown time zone"));
    }
}
