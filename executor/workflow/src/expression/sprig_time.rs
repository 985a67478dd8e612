//! sprig's `now`, `date` and `dateInZone`, with Go's layouts
//! (`2006-01-02T15:04:05Z07:00`). Ferry builds expr-lang without its time
//! values, so a time here is its RFC 3339 text (what Argo's JSON rendering
//! of a `time.Time` prints) or a number of Unix seconds.

use super::functions::{arity, fail, go_string};
use expr::{Environment, Value};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// Go's layout elements, longest first so `2006` is not read as `2` then `006`.
const ELEMENTS: [&str; 29] = [
    "January",
    "Monday",
    "Z07:00",
    "-07:00",
    "-0700",
    "2006",
    ".000000000",
    ".000000",
    ".000",
    "Jan",
    "Mon",
    "MST",
    "Z0700",
    "-07",
    "01",
    "02",
    "_2",
    "03",
    "04",
    "05",
    "06",
    "15",
    "PM",
    "pm",
    "1",
    "2",
    "3",
    "4",
    "5",
];

fn offset(z: &Zoned, colon: bool, zulu: bool) -> String {
    let seconds = z.offset().seconds();
    if zulu && seconds == 0 {
        return "Z".into();
    }
    let sign = if seconds < 0 { '-' } else { '+' };
    let (h, m) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
    if colon { format!("{sign}{h:02}:{m:02}") } else { format!("{sign}{h:02}{m:02}") }
}

fn element(z: &Zoned, e: &str) -> String {
    let hour12 = match z.hour() % 12 {
        0 => 12,
        h => h,
    };
    let name = |names: &[&str], i: usize| names.get(i).copied().unwrap_or("").to_string();
    match e {
        "January" => name(&MONTHS, z.month() as usize - 1),
        "Jan" => name(&MONTHS, z.month() as usize - 1)[..3].to_string(),
        "Monday" => name(&DAYS, z.weekday().to_monday_zero_offset() as usize),
        "Mon" => name(&DAYS, z.weekday().to_monday_zero_offset() as usize)[..3].to_string(),
        "2006" => format!("{:04}", z.year()),
        "06" => format!("{:02}", z.year().rem_euclid(100)),
        "01" => format!("{:02}", z.month()),
        "1" => z.month().to_string(),
        "02" => format!("{:02}", z.day()),
        "_2" => format!("{:>2}", z.day()),
        "2" => z.day().to_string(),
        "15" => format!("{:02}", z.hour()),
        "03" => format!("{hour12:02}"),
        "3" => hour12.to_string(),
        "04" => format!("{:02}", z.minute()),
        "4" => z.minute().to_string(),
        "05" => format!("{:02}", z.second()),
        "5" => z.second().to_string(),
        "PM" => if z.hour() < 12 { "AM" } else { "PM" }.into(),
        "pm" => if z.hour() < 12 { "am" } else { "pm" }.into(),
        "MST" => z.time_zone().to_offset_info(z.timestamp()).abbreviation().to_string(),
        "Z07:00" => offset(z, true, true),
        "Z0700" => offset(z, false, true),
        "-07:00" => offset(z, true, false),
        "-0700" => offset(z, false, false),
        "-07" => offset(z, false, false)[..3].to_string(),
        fraction => {
            let digits = fraction.len() - 1;
            let nanos = format!("{:09}", z.subsec_nanosecond());
            format!(".{}", &nanos[..digits])
        }
    }
}

/// `z` written with a Go layout.
pub(super) fn format_go(layout: &str, z: &Zoned) -> String {
    let mut out = String::new();
    let mut rest = layout;
    while let Some(c) = rest.chars().next() {
        match ELEMENTS.iter().find(|e| rest.starts_with(**e)) {
            Some(e) => {
                out.push_str(&element(z, e));
                rest = &rest[e.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// The time a value stands for: Unix seconds, or RFC 3339 text.
fn time_of(v: &Value) -> expr::Result<Timestamp> {
    match v {
        Value::Integer(secs) => Timestamp::from_second(*secs).map_err(|e| fail(format!("date: {e}"))),
        Value::String(text) => text.parse().map_err(|_| fail(format!("date: {text:?} is not an RFC 3339 time"))),
        other => Err(fail(format!("date: {} is not a time", go_string(other)))),
    }
}

fn zone(name: &str) -> expr::Result<TimeZone> {
    match name {
        "" | "UTC" => Ok(TimeZone::UTC),
        "Local" => Ok(TimeZone::system()),
        name => TimeZone::get(name).map_err(|e| fail(format!("dateInZone: unknown time zone {name:?}: {e}"))),
    }
}

/// Adds `now`, `date` and `dateInZone`.
pub(super) fn add_time_functions(env: &mut Environment<'_>) {
    env.add_function("sprig_now", |c| {
        arity("sprig.now", &c.args, 0)?;
        Ok(Zoned::now().timestamp().to_string().into())
    });
    env.add_function("sprig_date", |c| {
        arity("sprig.date", &c.args, 2)?;
        let z = time_of(&c.args[1])?.to_zoned(TimeZone::system());
        Ok(format_go(&go_string(&c.args[0]), &z).into())
    });
    env.add_function("sprig_dateInZone", |c| {
        arity("sprig.dateInZone", &c.args, 3)?;
        let z = time_of(&c.args[1])?.to_zoned(zone(&go_string(&c.args[2]))?);
        Ok(format_go(&go_string(&c.args[0]), &z).into())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_layouts_format_as_go_does() {
        let z: Zoned = "2024-03-05T07:08:09.123456789+00:00[UTC]".parse().unwrap();
        let table = [
            ("2006-01-02", "2024-03-05"),
            ("2006-01-02T15:04:05Z07:00", "2024-03-05T07:08:09Z"),
            ("Jan _2 3:4:5 PM", "Mar  5 7:8:9 AM"),
            ("Monday, January 2 06", "Tuesday, March 5 24"),
            ("15:04:05.000 -0700 MST", "07:08:09.123 +0000 UTC"),
            ("20060102", "20240305"),
        ];
        for (layout, want) in table {
            assert_eq!(format_go(layout, &z), want, "{layout}");
        }
    }
}
