//! The times a cron workflow runs at: its 5-field schedules read in its
//! time zone. Parsing and stepping are croner's (daylight saving included);
//! this module keeps to what Argo's parser (robfig/cron's standard one)
//! accepts, so a schedule Ferry takes also runs on a cluster.

use super::CronSpec;
use crate::problem::{Problem, problem};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// Argo's `@` shorthands (robfig/cron's descriptors, less `@every`).
const SHORTHANDS: [&str; 7] = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];

/// The schedules of one cron workflow, in its time zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    crons: Vec<Cron>,
    zone: TimeZone,
}

impl Schedule {
    /// Reads `schedule`/`schedules` and `timezone`; every problem at its path.
    pub fn parse(spec: &CronSpec) -> Result<Schedule, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut crons = Vec::new();
        let texts: Vec<(String, &str)> = if spec.schedules.is_empty() {
            vec![("spec.schedule".into(), spec.schedule.as_str())]
        } else if !spec.schedule.is_empty() {
            problems.push(problem("spec.schedule", "give either schedule or schedules, not both"));
            Vec::new()
        } else {
            spec.schedules.iter().enumerate().map(|(i, s)| (format!("spec.schedules[{i}]"), s.as_str())).collect()
        };
        for (path, text) in texts {
            match parse_one(text) {
                Ok(c) => crons.push(c),
                Err(message) => problems.push(problem(path, message)),
            }
        }
        let zone = if spec.timezone.is_empty() {
            TimeZone::system()
        } else {
            TimeZone::get(&spec.timezone).unwrap_or_else(|e| {
                problems
                    .push(problem("spec.timezone", format!("{:?} is not a known IANA time zone: {e}", spec.timezone)));
                TimeZone::UTC
            })
        };
        if problems.is_empty() { Ok(Schedule { crons, zone }) } else { Err(problems) }
    }

    /// The time zone the schedules are read in.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The first scheduled time strictly after `after`, if any schedule has one.
    pub fn next_after(&self, after: Timestamp) -> Option<Zoned> {
        let from = after.to_zoned(self.zone.clone());
        self.crons.iter().filter_map(|c| c.find_next_occurrence(&from, false).ok()).min()
    }

    /// The latest scheduled time in `(after, now]`, and whether earlier ones
    /// in that span were passed over (ferry was late, or not running).
    pub fn latest_due(&self, after: Timestamp, now: Timestamp) -> Option<Due> {
        let at = now.to_zoned(self.zone.clone());
        let latest = self.crons.iter().filter_map(|c| c.find_previous_occurrence(&at, true).ok()).max()?;
        if latest.timestamp() <= after {
            return None;
        }
        let first = self.next_after(after)?;
        Some(Due { passed_over: first.timestamp() < latest.timestamp(), tick: latest })
    }
}

/// A scheduled time that has come.
#[derive(Clone, Debug, PartialEq)]
pub struct Due {
    /// The tick.
    pub tick: Zoned,
    /// Earlier ticks came and went unrun (at most one run per wake-up, as Argo).
    pub passed_over: bool,
}

/// One schedule, refused unless Argo's standard parser takes it too.
fn parse_one(text: &str) -> Result<Cron, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is required: a 5-field cron schedule such as \"*/5 * * * *\"".into());
    }
    if text.starts_with('@') {
        if !SHORTHANDS.contains(&text.to_ascii_lowercase().as_str()) {
            return Err(format!("{text:?}: Ferry knows the shorthands {} (not @every)", SHORTHANDS.join(", ")));
        }
    } else {
        check_fields(text)?;
    }
    let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
    parser.parse(text).map_err(|e| format!("{text:?} is not a cron schedule: {e}"))
}

/// Five fields of numbers, ranges, steps, lists, `*`, `?` and month or
/// weekday names: croner's extensions (`L`, `W`, `#`, a seconds field) are
/// refused, since Argo would refuse them.
fn check_fields(text: &str) -> Result<(), String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 5 {
        let seconds = if fields.len() == 6 { " (Argo has no seconds field)" } else { "" };
        return Err(format!(
            "{text:?} has {} fields; a schedule has 5: minute hour day-of-month month day-of-week{seconds}",
            fields.len()
        ));
    }
    for (i, field) in fields.iter().enumerate() {
        for part in field.split([',', '-', '/']) {
            let number = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            let name = part.len() == 3 && part.bytes().all(|b| b.is_ascii_alphabetic()) && (i == 3 || i == 4);
            if !(number || name || part == "*" || part == "?") {
                return Err(format!("{text:?}: field {} ({field:?}) has {part:?}, not a number, name or *", i + 1));
            }
        }
    }
    Ok(())
}

/// RFC 3339 with the zone's offset (`Z` in UTC), as Go prints a time.
pub fn rfc3339_zoned(at: &Zoned) -> String {
    if at.offset().seconds() == 0 {
        at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(text: &str, zone: &str) -> Schedule {
        let spec = CronSpec { schedule: text.into(), timezone: zone.into(), ..Default::default() };
        Schedule::parse(&spec).unwrap()
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn refused(text: &str) -> String {
        let spec = CronSpec { schedule: text.into(), timezone: "UTC".into(), ..Default::default() };
        Schedule::parse(&spec).unwrap_err().remove(0).to_string()
    }

    #[test]
    fn next_ticks_follow_the_schedule() {
        let every_5 = schedule("*/5 * * * *", "UTC");
        let next = every_5.next_after(ts("2026-01-01T10:02:30Z")).unwrap();
        assert_eq!(next.timestamp(), ts("2026-01-01T10:05:00Z"));
        // Strictly after: a tick is never scheduled twice.
        assert_eq!(every_5.next_after(ts("2026-01-01T10:05:00Z")).unwrap().timestamp(), ts("2026-01-01T10:10:00Z"));
        let weekdays = schedule("30 9 * * MON-FRI", "UTC");
        // 2026-01-02 is a Friday: the next is Monday the 5th.
        assert_eq!(weekdays.next_after(ts("2026-01-02T09:30:00Z")).unwrap().timestamp(), ts("2026-01-05T09:30:00Z"));
        assert_eq!(
            schedule("@daily", "UTC").next_after(ts("2026-01-01T00:00:00Z")).unwrap().timestamp(),
            ts("2026-01-02T00:00:00Z")
        );
    }

    #[test]
    fn schedules_are_read_in_their_time_zone_across_daylight_saving() {
        let paris = schedule("0 3 * * *", "Europe/Paris");
        // Winter: 03:00 in Paris is 02:00 UTC.
        assert_eq!(paris.next_after(ts("2026-01-10T00:00:00Z")).unwrap().timestamp(), ts("2026-01-10T02:00:00Z"));
        // Summer: 01:00 UTC.
        assert_eq!(paris.next_after(ts("2026-07-10T00:00:00Z")).unwrap().timestamp(), ts("2026-07-10T01:00:00Z"));
        let tokyo = schedule("0 9 * * *", "Asia/Tokyo").next_after(ts("2025-12-31T23:00:00Z")).unwrap();
        assert_eq!(rfc3339_zoned(&tokyo), "2026-01-01T09:00:00+09:00");
    }

    #[test]
    fn several_schedules_give_the_earliest_next_tick() {
        let spec = CronSpec {
            schedules: vec!["0 12 * * *".into(), "15 * * * *".into()],
            timezone: "UTC".into(),
            ..Default::default()
        };
        let s = Schedule::parse(&spec).unwrap();
        assert_eq!(s.next_after(ts("2026-01-01T11:20:00Z")).unwrap().timestamp(), ts("2026-01-01T12:00:00Z"));
        assert_eq!(s.next_after(ts("2026-01-01T12:00:00Z")).unwrap().timestamp(), ts("2026-01-01T12:15:00Z"));
    }

    #[test]
    fn the_latest_due_tick_is_run_and_earlier_ones_are_passed_over() {
        let s = schedule("* * * * *", "UTC");
        assert_eq!(s.latest_due(ts("2026-01-01T10:00:00Z"), ts("2026-01-01T10:00:59Z")), None);
        let on_time = s.latest_due(ts("2026-01-01T10:00:00Z"), ts("2026-01-01T10:01:00.2Z")).unwrap();
        assert_eq!((on_time.tick.timestamp(), on_time.passed_over), (ts("2026-01-01T10:01:00Z"), false));
        let late = s.latest_due(ts("2026-01-01T10:00:00Z"), ts("2026-01-01T10:03:10Z")).unwrap();
        assert_eq!((late.tick.timestamp(), late.passed_over), (ts("2026-01-01T10:03:00Z"), true));
    }

    #[test]
    fn what_argo_refuses_is_refused() {
        assert!(refused("* * * * * *").contains("no seconds field"), "{}", refused("* * * * * *"));
        assert!(refused("* * *").contains("has 3 fields"));
        assert!(refused("0 0 L * *").contains("\"L\""));
        assert!(refused("0 0 * * 5#3").contains("5#3"));
        assert!(refused("@every 5m").contains("not @every"));
        assert!(refused("61 * * * *").starts_with("spec.schedule: "));
        assert!(refused("").contains("is required"));
        let both = CronSpec { schedule: "* * * * *".into(), schedules: vec!["* * * * *".into()], ..Default::default() };
        assert!(Schedule::parse(&both).is_err());
    }
}
