//! Log output through `tracing`. On a terminal: coloured, with times. Under systemd
//! (`$JOURNAL_STREAM` set): no colour, no time (journald adds it), and each line starts
//! with a syslog priority `<N>` so `journalctl -p warning` works. Elsewhere (pipes, files):
//! plain text with times. `RUST_LOG` overrides the level (default `info`), in env_logger's
//! syntax: `debug`, or `warn,sentrix::ingest=debug`. An unreadable `RUST_LOG` is reported
//! and logging stays at `info`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, format};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Prefixes each event with its sd-daemon priority (`<3>` error … `<7>` debug).
struct JournalPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for JournalPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}

/// Installs the global subscriber; call once at start.
pub fn init() {
    let (filter, rejected) = filter_from(std::env::var("RUST_LOG").ok().as_deref());
    // The builder's own level (info by default) would sit under `filter`: open it fully.
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_writer(std::io::stderr);
    // try_init fails only if a subscriber is already installed (tests): keep that one.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        let journal = builder
            .with_ansi(false)
            .event_format(JournalPriority(format().without_time().with_target(false)));
        let _ = journal.finish().with(filter).try_init();
    } else if std::io::stderr().is_terminal() {
        let _ = builder.with_target(false).finish().with(filter).try_init();
    } else {
        let plain = builder.with_ansi(false).with_target(false);
        let _ = plain.finish().with(filter).try_init();
    }
    if let Some(reason) = rejected {
        tracing::warn!("RUST_LOG is not a log filter ({reason}); logging at info");
    }
}

/// The filter `RUST_LOG` asks for (target prefixes and levels, as env_logger reads them),
/// or `info` for everything when it is unset or empty. Some(reason) when it was set but
/// could not be read; the filter is then `info`.
fn filter_from(rust_log: Option<&str>) -> (Targets, Option<String>) {
    let info = Targets::new().with_default(LevelFilter::INFO);
    match rust_log.map(str::trim) {
        None | Some("") => (info, None),
        Some(spec) => match spec.parse::<Targets>() {
            Ok(targets) => (targets, None),
            Err(e) => (info, Some(bounded(&e.to_string(), 200))),
        },
    }
}

/// At most one line per period for a repeating warning; the next line says how many were
/// held back ("and 512 more in the last 10 s"). Used where an attacker or a failing
/// resource could otherwise repeat a line thousands of times a second.
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            held_back: 0,
        }
    }

    /// Some(suffix) when a line may be written now (the suffix counts those held back
    /// since the last one, or is empty); None when this one is held back.
    pub fn admit(&mut self) -> Option<String> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        let held = std::mem::take(&mut self.held_back);
        Some(if held == 0 {
            String::new()
        } else {
            format!(" (and {held} more in the last {} s)", self.every.as_secs())
        })
    }

    /// Logs `line(suffix)` as a warning unless held back.
    pub fn warn(&mut self, line: impl FnOnce(String) -> String) {
        if let Some(suffix) = self.admit() {
            tracing::warn!("{}", line(suffix));
        }
    }
}

/// Routes GLib and GStreamer `g_log` messages (criticals such as
/// `gst_bus_timed_pop_filtered: assertion failed`) through `tracing`, at most one line per
/// domain and level every 10 s, instead of straight to stderr without limit.
pub fn route_glib_log() {
    use gstreamer::glib;
    static THROTTLES: Mutex<Option<HashMap<(String, u8), Throttle>>> = Mutex::new(None);
    glib::log_set_default_handler(|domain, level, message| {
        let rank = match level {
            glib::LogLevel::Error | glib::LogLevel::Critical => 0,
            glib::LogLevel::Warning => 1,
            glib::LogLevel::Message | glib::LogLevel::Info => 2,
            glib::LogLevel::Debug => return,
        };
        let domain = domain.unwrap_or("GLib").to_string();
        let mut map = THROTTLES.lock().unwrap_or_else(|p| p.into_inner());
        let throttle = map
            .get_or_insert_with(HashMap::new)
            .entry((domain.clone(), rank))
            .or_insert_with(|| Throttle::new(Duration::from_secs(10)));
        let Some(suffix) = throttle.admit() else {
            return;
        };
        match rank {
            0 => tracing::error!("{domain}: {message}{suffix}"),
            1 => tracing::warn!("{domain}: {message}{suffix}"),
            _ => tracing::info!("{domain}: {message}{suffix}"),
        }
    });
}

/// `text` made safe for one log or audit line: control characters, quotes and backslashes
/// escaped, and cut to at most `max_bytes` of the original (marked with `…(N bytes)`).
pub fn bounded(text: &str, max_bytes: usize) -> String {
    let mut cut = text.len().min(max_bytes);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out: String = text[..cut].escape_debug().collect();
    if cut < text.len() {
        out.push_str(&format!("…({} bytes)", text.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_escapes_and_cuts() {
        assert_eq!(bounded("admin", 64), "admin");
        assert_eq!(bounded("a\nb\"c", 64), "a\\nb\\\"c");
        let long = "é".repeat(100);
        let b = bounded(&long, 7);
        assert_eq!(b, "ééé…(200 bytes)");
        assert_eq!(bounded("\u{1b}[2J", 64), "\\u{1b}[2J");
    }

    /// Counts the events a subscriber sees.
    struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl tracing::Subscriber for Count {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn a_storm_of_gstreamer_criticals_becomes_one_line() {
        route_glib_log();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        tracing::subscriber::with_default(Count(seen.clone()), || {
            for _ in 0..10_000 {
                // A domain of its own: the throttle is per domain, shared by the process.
                gstreamer::glib::g_critical!(
                    "GStreamer-test",
                    "gst_bus_timed_pop_filtered: assertion 'timeout == 0 || bus->priv->poll != NULL' failed"
                );
            }
        });
        assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn rust_log_sets_levels_per_target_and_a_bad_one_falls_back_to_info() {
        use tracing::Level;
        let (unset, none) = filter_from(None);
        assert!(none.is_none());
        assert!(unset.would_enable("sentrix::ingest", &Level::INFO));
        assert!(!unset.would_enable("sentrix::ingest", &Level::DEBUG));
        let (per_target, none) = filter_from(Some("warn,sentrix::ingest=debug"));
        assert!(none.is_none());
        assert!(per_target.would_enable("sentrix::ingest::rtsp", &Level::DEBUG));
        assert!(!per_target.would_enable("sentrix::web", &Level::INFO));
        assert!(per_target.would_enable("sentrix::web", &Level::WARN));
        let (fallback, reason) = filter_from(Some("sentrix=loud"));
        assert!(reason.is_some());
        assert!(fallback.would_enable("sentrix", &Level::INFO));
        assert!(!fallback.would_enable("sentrix", &Level::DEBUG));
    }

    #[test]
    fn throttle_counts_what_it_held_back() {
        let mut t = Throttle::new(Duration::from_secs(3600));
        assert_eq!(t.admit().as_deref(), Some(""));
        assert_eq!(t.admit(), None);
        assert_eq!(t.admit(), None);
        t.last = Some(Instant::now() - Duration::from_secs(3601));
        assert_eq!(
            t.admit().as_deref(),
            Some(" (and 2 more in the last 3600 s)")
        );
    }
}
