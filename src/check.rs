//! What a component's own checks in `verify` (the hooks of its row's `verify`) may read
//! of a bundle and how they report: `verify` implements these traits and the component
//! modules call them, so neither imports the other. Also the reading of a unit's command
//! line that both sides share. Interfaces and pure text functions only; no I/O.

use std::any::Any;

/// One bundle as a component's checks see it. Paths are the bundle's own, such as
/// `rootfs/etc/kubernetes/cert/ca.pem`.
pub trait Bundle {
    /// Whether the bundle has a file at `path`.
    fn has(&self, path: &str) -> bool;
    /// Every file's path, sorted.
    fn paths(&self) -> Vec<String>;
    /// A file's text, or `None` when it is absent or cannot be read; never a finding.
    fn peek(&self, path: &str) -> Option<String>;
    /// A file's text, or `None` when it is absent or too large to keep (which is a
    /// finding, so it is never mistaken for a missing file).
    fn text(&mut self, path: &str) -> Option<String>;
    /// [`Bundle::text`] of a file the bundle must have: a finding when it is missing.
    fn required(&mut self, path: &str) -> Option<String>;
    /// A finding on `file` of this bundle.
    fn find(&mut self, file: &str, message: String);
}

/// What a component's checks across the bundles given together report, naming the
/// bundle and its file.
pub trait Report {
    fn find(&mut self, bundle: &str, file: &str, message: String);
    /// A risk that does not make the bundle wrong.
    fn warn(&mut self, bundle: &str, file: &str, message: String);
}

/// One bundle given, for a component's check across bundles: its tarball's name and what
/// the component's unit check returned for it (`None` when that did not run).
pub struct Seen<'a> {
    pub bundle: &'a str,
    pub record: Option<&'a dyn Any>,
}

/// The value a command line gives `--<name>`: the last `--<name>=value` or `--<name>`
/// (`true`, a boolean flag set bare), as Go's flag packages take it.
pub fn flag_value<'a>(words: &'a [String], name: &str) -> Option<&'a str> {
    words.iter().rev().find_map(|w| {
        let rest = w.strip_prefix("--")?.strip_prefix(name)?;
        match rest.strip_prefix('=') {
            Some(value) => Some(value),
            None => rest.is_empty().then_some("true"),
        }
    })
}

/// The ExecStart command line of a unit, split into words (continuations joined,
/// double quotes removed).
pub fn exec_start_words(unit: &str) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    let Some(line) = joined
        .lines()
        .find_map(|l| l.trim().strip_prefix("ExecStart="))
    else {
        return Vec::new();
    };
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => word.extend(chars.next()),
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// A node path as it sits in a bundle.
pub fn in_bundle(node_path: &str) -> String {
    format!("rootfs{node_path}")
}
