//! TIMER trigger schedules, in FunctionGraph's dialect: `Rate` (`Nm` 1–60, `Nh` 1–24, `Nd`
//! 1–30) and `Cron` — a standard expression with seconds (`sec min hour dom month [dow]`,
//! `, - * / ?`, month and weekday names, Sunday 0) or `@every <duration>` (`30m`, `1.5h`,
//! `2h30m`, units ns µs ms s m h). Times are UTC; a `CRON_TZ=` prefix other than UTC is refused.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Every `period`, counted from the moment the trigger became active.
    Every(Duration),
    Cron(Box<Cron>),
}

/// A standard cron expression: for each field, the values it allows.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    seconds: Vec<bool>,
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    /// Whether day-of-month and day-of-week were both restricted (then either may match).
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    /// Parses `schedule` of `schedule_type` (`Rate` or `Cron`); the error says what is wrong.
    pub fn parse(schedule_type: &str, schedule: &str) -> Result<Self, String> {
        match schedule_type {
            "Rate" => parse_rate(schedule.trim()),
            "Cron" => {
                let mut s = schedule.trim();
                if let Some(rest) = s.strip_prefix("CRON_TZ=").or_else(|| s.strip_prefix("TZ=")) {
                    let (zone, expr) = rest.split_once(' ').unwrap_or((rest, ""));
                    if !matches!(zone, "UTC" | "Etc/UTC" | "GMT") {
                        return Err(format!(
                            "time zone {zone:?}: fgs runs timers in UTC; write the expression in UTC"
                        ));
                    }
                    s = expr.trim();
                }
                match s.strip_prefix("@every") {
                    Some(d) => parse_go_duration(d.trim()).map(Schedule::Every),
                    None => Cron::parse(s).map(|c| Schedule::Cron(Box::new(c))),
                }
            }
            other => Err(format!("schedule_type {other:?}: Rate or Cron")),
        }
    }

    /// The first tick strictly after `after`; `anchor` is when an `Every` schedule started.
    pub fn next(&self, anchor: DateTime<Utc>, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(period) => {
                let elapsed = (after - anchor).num_milliseconds().max(0);
                let step = period.num_milliseconds().max(1);
                Some(anchor + Duration::milliseconds((elapsed / step + 1) * step))
            }
            Schedule::Cron(cron) => cron.next(after),
        }
    }
}

fn parse_rate(s: &str) -> Result<Schedule, String> {
    let invalid = || format!("Rate {s:?}: Nm (1-60), Nh (1-24) or Nd (1-30)");
    let (number, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| invalid())?;
    let (max, minutes) = match unit {
        "m" => (60, 1),
        "h" => (24, 60),
        "d" => (30, 24 * 60),
        _ => return Err(invalid()),
    };
    if !(1..=max).contains(&n) {
        return Err(invalid());
    }
    Ok(Schedule::Every(Duration::minutes(n * minutes)))
}

/// A Go duration (`1.5h`, `2h30m`, `500ms`), at least one second (a shorter timer would be a
/// busy loop).
fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("@every {s:?}: a duration such as 30m, 1.5h or 2h30m");
    let mut rest = s;
    let mut total_ns: f64 = 0.0;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let ns = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        total_ns += number * ns;
        rest = &rest[unit_len..];
    }
    if !(1e9..=366.0 * 86400e9).contains(&total_ns) {
        return Err(format!("@every {s:?}: from 1s to a year"));
    }
    Ok(Duration::nanoseconds(total_ns as i64))
}

impl Cron {
    pub fn parse(expr: &str) -> Result<Self, String> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if !(5..=6).contains(&fields.len()) {
            return Err(format!(
                "{expr:?}: seconds minutes hours day-of-month month [day-of-week]"
            ));
        }
        let field = |i: usize, name: &str, min: u32, max: u32, names: &[&str], question: bool| {
            parse_field(fields[i], min, max, names, question)
                .map_err(|why| format!("{name} field {:?}: {why}", fields[i]))
        };
        let (seconds, _) = field(0, "seconds", 0, 59, &[], false)?;
        let (minutes, _) = field(1, "minutes", 0, 59, &[], false)?;
        let (hours, _) = field(2, "hours", 0, 23, &[], false)?;
        let (days, days_restricted) = field(3, "day-of-month", 1, 31, &[], true)?;
        let (months, _) = field(4, "month", 1, 12, &MONTHS, false)?;
        let (weekdays, weekdays_restricted) = match fields.get(5) {
            Some(_) => field(5, "day-of-week", 0, 6, &WEEKDAYS, true)?,
            None => (vec![true; 7], false),
        };
        Ok(Cron {
            seconds,
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted,
            weekdays_restricted,
        })
    }

    fn day_matches(&self, t: &DateTime<Utc>) -> bool {
        let dom = self.days[t.day() as usize];
        let dow = self.weekdays[t.weekday().num_days_from_sunday() as usize];
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            _ => dom && dow,
        }
    }

    /// The first second strictly after `after` that the expression matches (within 5 years).
    pub fn next(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut t = after.with_nanosecond(0)? + Duration::seconds(1);
        let limit = after + Duration::days(5 * 366);
        while t <= limit {
            if !self.months[t.month() as usize] {
                // The first second of the next month.
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = t
                    .with_day(1)?
                    .with_hour(0)?
                    .with_minute(0)?
                    .with_second(0)?
                    .with_month(m)?
                    .with_year(y)?;
                continue;
            }
            if !self.day_matches(&t) {
                t = (t + Duration::days(1))
                    .with_hour(0)?
                    .with_minute(0)?
                    .with_second(0)?;
                continue;
            }
            if !self.hours[t.hour() as usize] {
                t = (t + Duration::hours(1)).with_minute(0)?.with_second(0)?;
                continue;
            }
            if !self.minutes[t.minute() as usize] {
                t = (t + Duration::minutes(1)).with_second(0)?;
                continue;
            }
            if !self.seconds[t.second() as usize] {
                t += Duration::seconds(1);
                continue;
            }
            return Some(t);
        }
        None
    }
}

/// One field: the allowed values as a table indexed by value, and whether it restricts.
fn parse_field(
    field: &str,
    min: u32,
    max: u32,
    names: &[&str],
    question: bool,
) -> Result<(Vec<bool>, bool), String> {
    let mut allowed = vec![false; max as usize + 1];
    if question && field == "?" || field == "*" {
        for v in min..=max {
            allowed[v as usize] = true;
        }
        return Ok((allowed, false));
    }
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + min);
        }
        let v: u32 = s.parse().map_err(|_| format!("{s:?} is not a value"))?;
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{v} is outside {min}-{max}"))
        }
    };
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or(format!("step {s:?} is not a positive number"))?;
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = match range {
            "*" => (min, max),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                // `a/n` runs from a to the end of the range.
                None if step > 1 || part.contains('/') => (value(r)?, max),
                None => {
                    let v = value(r)?;
                    (v, v)
                }
            },
        };
        if lo > hi {
            return Err(format!("range {lo}-{hi} runs backwards"));
        }
        for v in (lo..=hi).step_by(step as usize) {
            allowed[v as usize] = true;
        }
    }
    Ok((allowed, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(schedule: &str, after: &str) -> String {
        Schedule::parse("Cron", schedule)
            .unwrap()
            .next(at(after), at(after))
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn rates() {
        assert_eq!(
            Schedule::parse("Rate", "3m").unwrap(),
            Schedule::Every(Duration::minutes(3))
        );
        assert_eq!(
            Schedule::parse("Rate", "24h").unwrap(),
            Schedule::Every(Duration::hours(24))
        );
        for bad in ["0m", "61m", "25h", "31d", "m", "5", "5s", "-1m", ""] {
            assert!(Schedule::parse("Rate", bad).is_err(), "{bad}");
        }
        let every = Schedule::parse("Rate", "1m").unwrap();
        let t0 = at("2026-01-01T00:00:10Z");
        assert_eq!(every.next(t0, t0), Some(at("2026-01-01T00:01:10Z")));
        assert_eq!(
            every.next(t0, at("2026-01-01T00:01:10Z")),
            Some(at("2026-01-01T00:02:10Z"))
        );
    }

    #[test]
    fn every() {
        for (s, d) in [
            ("@every 30m", Duration::minutes(30)),
            ("@every 1.5h", Duration::minutes(90)),
            ("@every 2h30m", Duration::minutes(150)),
            ("@every 5s", Duration::seconds(5)),
        ] {
            assert_eq!(
                Schedule::parse("Cron", s).unwrap(),
                Schedule::Every(d),
                "{s}"
            );
        }
        for bad in ["@every", "@every 10", "@every 5x", "@every 10ms"] {
            assert!(Schedule::parse("Cron", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn documented_examples() {
        // 12:00 every day.
        assert_eq!(
            next("0 0 12 * * *", "2026-03-01T12:00:00Z"),
            "2026-03-02T12:00:00+00:00"
        );
        // 26th, 29th and 33rd minutes of each hour.
        assert_eq!(
            next("0 26,29,33 * * * *", "2026-03-01T10:27:00Z"),
            "2026-03-01T10:29:00+00:00"
        );
        // 12:30 Monday to Friday (2026-03-07 is a Saturday).
        assert_eq!(
            next("0 30 12 ? * MON-FRI", "2026-03-06T13:00:00Z"),
            "2026-03-09T12:30:00+00:00"
        );
        // Every 5 minutes between 12:00 and 14:59, weekdays.
        assert_eq!(
            next("0 0/5 12-14 ? * MON-FRI", "2026-03-09T14:56:00Z"),
            "2026-03-10T12:00:00+00:00"
        );
        // January to April.
        assert_eq!(
            next("0 0 12 ? JAN,FEB,MAR,APR *", "2026-04-30T12:00:00Z"),
            "2027-01-01T12:00:00+00:00"
        );
        // Every 5 seconds; "1/3" minutes from :01.
        assert_eq!(
            next("*/5 * * * * *", "2026-03-01T00:00:03Z"),
            "2026-03-01T00:00:05+00:00"
        );
        assert_eq!(
            next("0 1/3 * * * *", "2026-03-01T00:02:00Z"),
            "2026-03-01T00:04:00+00:00"
        );
        // Sunday is 0; the five-field form has no day-of-week.
        assert_eq!(
            next("0 0 0 ? * 0", "2026-03-02T00:00:00Z"),
            "2026-03-08T00:00:00+00:00"
        );
        assert_eq!(
            next("30 0 0 1 *", "2026-03-02T00:00:00Z"),
            "2026-04-01T00:00:30+00:00"
        );
        assert_eq!(
            next("CRON_TZ=UTC 0 0 12 * * *", "2026-03-01T11:00:00Z"),
            "2026-03-01T12:00:00+00:00"
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "0 0 12 * *  * 2026 x",
            "60 * * * * *",
            "* 60 * * * *",
            "* * 24 * * *",
            "* * * 0 * *",
            "* * * * 13 *",
            "* * * * * 7",
            "* * * * FOO *",
            "*/0 * * * * *",
            "5-1 * * * * *",
            "? * * * * *",
            "CRON_TZ=Europe/Berlin 0 0 12 * * *",
            "",
        ] {
            assert!(Schedule::parse("Cron", bad).is_err(), "{bad:?}");
        }
        assert!(Schedule::parse("Daily", "1d").is_err());
    }
}
