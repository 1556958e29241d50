//! The box's local time, for schedules and the times written in messages: the C
//! library's `localtime_r`, which follows the system time zone (`/etc/localtime`, `TZ`).

/// A moment in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl LocalTime {
    pub fn of_ms(ms: i64) -> Self {
        let secs = ms.div_euclid(1000) as libc::time_t;
        // SAFETY: localtime_r writes into the zeroed struct we own and reads `secs`.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        unsafe { libc::localtime_r(&secs, &mut tm) };
        Self {
            year: tm.tm_year + 1900,
            month: (tm.tm_mon + 1) as u32,
            day: tm.tm_mday as u32,
            weekday: ((tm.tm_wday + 6) % 7) as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec as u32,
        }
    }

    pub fn minutes(&self) -> u32 {
        self.hour * 60 + self.minute
    }

    /// "2026-11-29 08:12:03", through chrono like every other date (base/clock.rs).
    pub fn text(&self) -> String {
        chrono::NaiveDate::from_ymd_opt(self.year, self.month, self.day)
            .and_then(|d| d.and_hms_opt(self.hour, self.minute, self.second.min(59)))
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default()
    }
}

/// The UTC ms at which the local day holding `ms` began (for "events today").
pub fn local_midnight_ms(ms: i64) -> i64 {
    let t = LocalTime::of_ms(ms);
    ms - ms.rem_euclid(1000)
        - (t.hour as i64 * 3600 + t.minute as i64 * 60 + t.second as i64) * 1000
}
