//! The stub's log lines on stderr: a `tracing` subscriber that prints each event as
//! `LEVEL message key=value…`, filtered by level. Spans are not used by the stub.
//!
//! tracing-subscriber's `fmt` layer does this and much more; it would take a tenth of the
//! stub's size budget (docs/stub.md), so the stub has this one.

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Prints events at `max` and below to stderr, the level coloured on a terminal.
pub struct StderrLog {
    max: Level,
    ansi: bool,
}

impl StderrLog {
    pub fn new(max: Level, ansi: bool) -> StderrLog {
        StderrLog { max, ansi }
    }
}

impl Subscriber for StderrLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(self.max))
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let level = *event.metadata().level();
        let (name, colour) = match level {
            Level::ERROR => ("ERROR", "31"),
            Level::WARN => (" WARN", "33"),
            Level::INFO => (" INFO", "32"),
            Level::DEBUG => ("DEBUG", "34"),
            Level::TRACE => ("TRACE", "35"),
        };
        let mut line = if self.ansi {
            format!("\x1b[{colour}m{name}\x1b[0m ")
        } else {
            format!("{name} ")
        };
        // Every line escaped here, whatever text from an artifact or a release it quotes: a
        // control or bidirectional character shows as `\u{202e}`, never acts.
        let mut text = String::new();
        event.record(&mut Line(&mut text));
        line.push_str(&pysfx_format::escape_control(&text));
        line.push('\n');
        let mut stderr = std::io::stderr().lock();
        crate::progress::clear(&mut stderr);
        let _ = stderr.write_all(line.as_bytes());
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Writes the message, then every other field as ` key=value`.
struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}
