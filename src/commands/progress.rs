//! The progress line of a long build on a terminal: one line on standard error, redrawn
//! in place, shown only once a build has run for a moment and erased when it ends. It
//! prints nothing when disabled (`--quiet`, or standard error is not a terminal).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube_bundle::Progress;

/// Builds shorter than this never show a line.
const SHOW_AFTER: Duration = Duration::from_millis(300);
/// Redraws no more often than this.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

pub struct Line {
    enabled: bool,
    start: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last_draw: Option<Instant>,
    drawn: bool,
}

impl Line {
    pub fn new(enabled: bool) -> Self {
        Line {
            enabled,
            start: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    pub fn show(&self, progress: Progress) {
        self.show_text(|| describe(progress));
    }

    /// Shows the line `text` makes, when it is time to redraw.
    pub fn show_text(&self, text: impl FnOnce() -> String) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let mut state = self.state.lock().expect("progress line");
        let recent = state
            .last_draw
            .is_some_and(|t| now.duration_since(t) < REDRAW_EVERY);
        if now.duration_since(self.start) < SHOW_AFTER || recent {
            return;
        }
        state.last_draw = Some(now);
        state.drawn = true;
        eprint!("\r\x1b[2K{}", text());
    }

    pub fn clear(&self) {
        if self.state.lock().expect("progress line").drawn {
            eprint!("\r\x1b[2K");
        }
    }
}

fn describe(progress: Progress) -> String {
    const MIB: u64 = 1 << 20;
    match progress {
        Progress::Compressing { done, total } => format!(
            "compressing the binary once for every bundle: {}% ({} of {} MiB)",
            (done * 100).checked_div(total).unwrap_or(100),
            done / MIB,
            total / MIB
        ),
        Progress::Packing { done, total } => format!("writing bundles: {done} of {total}"),
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    #[test]
    fn lines_say_how_far_the_build_is() {
        let p = Progress::Compressing {
            done: 50 << 20,
            total: 100 << 20,
        };
        assert_eq!(
            describe(p),
            "compressing the binary once for every bundle: 50% (50 of 100 MiB)"
        );
        assert_eq!(
            describe(Progress::Packing { done: 3, total: 30 }),
            "writing bundles: 3 of 30"
        );
        assert!(describe(Progress::Compressing { done: 0, total: 0 }).contains("100%"));
    }
}
