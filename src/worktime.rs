//! Working time in Sweden: deadlines and alerts count working hours, deliveries go out at any
//! hour.
//!
//! A working day is a weekday that is neither a public holiday nor one of the eves treated as
//! days off (midsommarafton, julafton, nyårsafton). Working hours are local time in
//! Europe/Stockholm (08:00–17:00 by default); each day's window is converted to instants with
//! the time zone rules of that day, so daylight-saving changes are handled.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// The calendar and office hours deadlines are counted in.
#[derive(Debug, Clone)]
pub struct WorkingHours {
    tz: TimeZone,
    start: Time,
    end: Time,
}

/// Why a working-hours setting is unusable.
#[derive(Debug, thiserror::Error)]
pub enum WorkTimeError {
    /// The time zone is unknown.
    #[error("time zone {0:?}: {1}")]
    TimeZone(String, jiff::Error),
    /// A time of day does not parse or the day is empty.
    #[error("working hours {0:?}: {1}")]
    Hours(String, String),
}

impl WorkingHours {
    /// Office hours `start`–`end` (e.g. "08:00", "17:00") in `zone`.
    pub fn new(zone: &str, start: &str, end: &str) -> Result<WorkingHours, WorkTimeError> {
        let tz = TimeZone::get(zone).map_err(|e| WorkTimeError::TimeZone(zone.into(), e))?;
        let parse = |s: &str| {
            s.parse::<Time>()
                .map_err(|e| WorkTimeError::Hours(s.into(), e.to_string()))
        };
        let (start, end) = (parse(start)?, parse(end)?);
        if start >= end {
            return Err(WorkTimeError::Hours(
                format!("{start}–{end}"),
                "the day must start before it ends".into(),
            ));
        }
        Ok(WorkingHours { tz, start, end })
    }

    /// Swedish office hours: weekdays 08:00–17:00, Europe/Stockholm.
    pub fn swedish_default() -> Result<WorkingHours, WorkTimeError> {
        WorkingHours::new("Europe/Stockholm", "08:00", "17:00")
    }

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: Date) -> bool {
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) && !is_day_off(date)
    }

    /// The working window of `date` as instants, if it is a working day.
    fn window(&self, date: Date) -> Option<(Timestamp, Timestamp)> {
        if !self.is_working_day(date) {
            return None;
        }
        let from = date
            .to_datetime(self.start)
            .to_zoned(self.tz.clone())
            .ok()?;
        let to = date.to_datetime(self.end).to_zoned(self.tz.clone()).ok()?;
        Some((from.timestamp(), to.timestamp()))
    }

    fn local_date(&self, at: Timestamp) -> Date {
        at.to_zoned(self.tz.clone()).date()
    }

    /// The instant when `amount` of working time has passed after `from`.
    pub fn add(&self, from: Timestamp, amount: SignedDuration) -> Timestamp {
        let mut left = amount;
        let mut date = self.local_date(from);
        // Ten years of days is far beyond any deadline; it bounds the loop.
        for _ in 0..3660 {
            if let Some((start, end)) = self.window(date) {
                let begin = start.max(from);
                if begin < end {
                    let available = end.duration_since(begin);
                    if left <= available {
                        return begin + left;
                    }
                    left -= available;
                }
            }
            date = match date.tomorrow() {
                Ok(d) => d,
                Err(_) => break,
            };
        }
        from + amount
    }

    /// Working time between two instants (zero if `to` is not after `from`).
    pub fn between(&self, from: Timestamp, to: Timestamp) -> SignedDuration {
        let mut total = SignedDuration::ZERO;
        if to <= from {
            return total;
        }
        let mut date = self.local_date(from);
        let last = self.local_date(to);
        while date <= last {
            if let Some((start, end)) = self.window(date) {
                let a = start.max(from);
                let b = end.min(to);
                if a < b {
                    total += b.duration_since(a);
                }
            }
            date = match date.tomorrow() {
                Ok(d) => d,
                Err(_) => break,
            };
        }
        total
    }
}

/// Easter Sunday (Gregorian), by the anonymous Gregorian algorithm (Meeus/Jones/Butcher).
pub fn easter_sunday(year: i16) -> Date {
    let y = i32::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    Date::new(year, month as i8, day as i8).unwrap_or(Date::constant(2000, 4, 23))
}

/// The first `weekday` on or after `date`.
fn first_on_or_after(date: Date, weekday: Weekday) -> Date {
    let mut d = date;
    while d.weekday() != weekday {
        d = d.tomorrow().unwrap_or(d);
    }
    d
}

/// Swedish public holidays and the eves treated as days off, named; `None` on other days.
pub fn holiday_name(date: Date) -> Option<&'static str> {
    let year = date.year();
    let md = (date.month(), date.day());
    let fixed = match md {
        (1, 1) => Some("nyårsdagen"),
        (1, 6) => Some("trettondedag jul"),
        (5, 1) => Some("första maj"),
        (6, 6) => Some("Sveriges nationaldag"),
        (12, 24) => Some("julafton"),
        (12, 25) => Some("juldagen"),
        (12, 26) => Some("annandag jul"),
        (12, 31) => Some("nyårsafton"),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    let easter = easter_sunday(year);
    let offset = |days: i64| easter.checked_add(jiff::Span::new().days(days)).ok();
    let movable = [
        (offset(-2), "långfredagen"),
        (Some(easter), "påskdagen"),
        (offset(1), "annandag påsk"),
        (offset(39), "Kristi himmelsfärdsdag"),
        (offset(49), "pingstdagen"),
    ];
    for (day, name) in movable {
        if day == Some(date) {
            return Some(name);
        }
    }
    let midsommardagen = first_on_or_after(Date::new(year, 6, 20).ok()?, Weekday::Saturday);
    if date == midsommardagen {
        return Some("midsommardagen");
    }
    if Some(date) == midsommardagen.yesterday().ok() {
        return Some("midsommarafton");
    }
    let alla_helgon = first_on_or_after(Date::new(year, 10, 31).ok()?, Weekday::Saturday);
    if date == alla_helgon {
        return Some("alla helgons dag");
    }
    None
}

fn is_day_off(date: Date) -> bool {
    holiday_name(date).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn at(s: &str) -> Timestamp {
        // Local Stockholm time "YYYY-MM-DD HH:MM".
        let dt: jiff::civil::DateTime = s.parse().expect("datetime");
        dt.to_zoned(TimeZone::get("Europe/Stockholm").expect("tz"))
            .expect("zoned")
            .timestamp()
    }

    #[test]
    fn easter_dates_are_right() {
        assert_eq!(easter_sunday(2024), date(2024, 3, 31));
        assert_eq!(easter_sunday(2025), date(2025, 4, 20));
        assert_eq!(easter_sunday(2026), date(2026, 4, 5));
        assert_eq!(easter_sunday(2027), date(2027, 3, 28));
    }

    #[test]
    fn swedish_holidays_and_eves_are_days_off() {
        let w = WorkingHours::swedish_default().expect("hours");
        for (d, name) in [
            (date(2026, 4, 3), "långfredagen"),
            (date(2026, 4, 6), "annandag påsk"),
            (date(2026, 5, 14), "Kristi himmelsfärdsdag"),
            (date(2026, 6, 19), "midsommarafton"),
            (date(2026, 6, 20), "midsommardagen"),
            (date(2026, 10, 31), "alla helgons dag"),
            (date(2026, 12, 24), "julafton"),
            (date(2026, 12, 31), "nyårsafton"),
            (date(2027, 1, 6), "trettondedag jul"),
        ] {
            assert_eq!(holiday_name(d), Some(name), "{d}");
        }
        assert!(!w.is_working_day(date(2026, 12, 24)));
        assert!(!w.is_working_day(date(2026, 11, 21)), "a Saturday");
        assert!(w.is_working_day(date(2026, 11, 23)), "an ordinary Monday");
        assert!(
            w.is_working_day(date(2026, 6, 18)),
            "the day before midsommarafton"
        );
    }

    #[test]
    fn four_working_hours_from_friday_afternoon_end_on_monday_morning() {
        let w = WorkingHours::swedish_default().expect("hours");
        // Friday 20 Nov 2026 15:00 → 2 h left on Friday, 2 h on Monday → Monday 10:00.
        assert_eq!(
            w.add(at("2026-11-20 15:00"), SignedDuration::from_hours(4)),
            at("2026-11-23 10:00")
        );
        // Dropped on a Saturday night: the clock starts Monday 08:00.
        assert_eq!(
            w.add(at("2026-11-21 23:00"), SignedDuration::from_mins(15)),
            at("2026-11-23 08:15")
        );
    }

    #[test]
    fn working_time_skips_a_holiday_weekend() {
        let w = WorkingHours::swedish_default().expect("hours");
        // Thursday 2 April 2026 16:00; Friday is långfredagen, Monday annandag påsk.
        assert_eq!(
            w.add(at("2026-04-02 16:00"), SignedDuration::from_hours(4)),
            at("2026-04-07 11:00")
        );
        assert_eq!(
            w.between(at("2026-04-02 16:00"), at("2026-04-07 11:00")),
            SignedDuration::from_hours(4)
        );
    }

    #[test]
    fn daylight_saving_changes_do_not_bend_office_hours() {
        let w = WorkingHours::swedish_default().expect("hours");
        // Clocks go forward on Sunday 29 March 2026; Friday 16:00 + 2 h = Monday 09:00 local.
        let end = w.add(at("2026-03-27 16:00"), SignedDuration::from_hours(2));
        assert_eq!(end, at("2026-03-30 09:00"));
        // And back on Sunday 25 October 2026.
        let end = w.add(at("2026-10-23 16:00"), SignedDuration::from_hours(2));
        assert_eq!(end, at("2026-10-26 09:00"));
        assert_eq!(
            w.between(at("2026-10-26 08:00"), at("2026-10-26 17:00")),
            SignedDuration::from_hours(9)
        );
    }
}
