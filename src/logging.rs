//! Log output through `tracing`. On a terminal: coloured, with times. Under systemd
//! (`$JOURNAL_STREAM` set): no colour, no time (journald adds it), and each line starts
//! with a syslog priority `<N>` so `journalctl -p warning` works. Elsewhere (pipes, files):
//! plain text with times. `RUST_LOG` overrides the level (default `info`).

use std::io::IsTerminal;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, format};
use tracing_subscriber::registry::LookupSpan;

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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // try_init fails only if a subscriber is already installed (tests): keep that one.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        let _ = builder
            .with_ansi(false)
            .event_format(JournalPriority(format().without_time().with_target(false)))
            .try_init();
    } else if std::io::stderr().is_terminal() {
        let _ = builder.with_target(false).try_init();
    } else {
        let _ = builder.with_ansi(false).with_target(false).try_init();
    }
}
