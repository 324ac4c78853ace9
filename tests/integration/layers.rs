//! The library's layers, as lib.rs's doc gives them, read from the source: the modules
//! under every stage import only each other; each stage imports those and the stages
//! before it; the crate root (`build`) may import everything. Test code (an item under
//! `#[cfg(test)]`) is not read: a test may build an inventory with `load` wherever it is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Under every stage; they may import each other (the row and the inventory refer to
/// each other), never a stage.
const BOTTOM: &[&str] = &[
    "model",
    "check",
    "component",
    "version",
    "manifest",
    "parallel",
    "digest",
    "fsx",
    "error",
];

/// The stages, bottom to top. `rollout` is beside the pipeline and only the binary uses
/// it, so it comes last.
const STAGES: &[&str] = &[
    "load", "plan", "pki", "render", "pack", "verify", "store", "rollout",
];

/// A module's layer: 0 for the bottom ones, then the stages in order, then the root.
fn layer(module: &str) -> Option<usize> {
    if BOTTOM.contains(&module) {
        return Some(0);
    }
    STAGES
        .iter()
        .position(|s| *s == module)
        .map(|i| i + 1)
        .or((module == ROOT).then_some(STAGES.len() + 1))
}

/// lib.rs's own items (`build`, `BuildOptions`), above every stage.
const ROOT: &str = "<crate root>";

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
}

/// `text` with comments, string and character literals blanked to spaces (newlines
/// kept, so offsets keep their line), leaving only code to search.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let end = if rest.starts_with(b"//") {
            i + rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"/*") {
            i + 2 + find(&rest[2..], b"*/").map_or(rest.len() - 2, |p| p + 2)
        } else if rest.starts_with(b"r\"") || rest.starts_with(b"r#") {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            if rest.get(1 + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let close = [b"\"".as_slice(), &vec![b'#'; hashes]].concat();
            let body = 2 + hashes;
            i + body + find(&rest[body..], &close).map_or(rest.len() - body, |p| p + close.len())
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            i + j + 1
        } else if rest[0] == b'\'' && char_literal(rest) {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'\'' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            i + j + 1
        } else {
            i += 1;
            continue;
        };
        let end = end.min(b.len());
        blank(&mut out, i, end);
        i = end;
    }
    String::from_utf8(out).unwrap()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether the `'` at the start of `rest` opens a character literal, not a lifetime.
fn char_literal(rest: &[u8]) -> bool {
    match rest.get(1) {
        Some(b'\\') => true,
        Some(_) => {
            let len = std::str::from_utf8(&rest[1..rest.len().min(5)])
                .map_or(1, |s| s.chars().next().map_or(1, char::len_utf8));
            rest.get(1 + len) == Some(&b'\'')
        }
        None => false,
    }
}

/// `code` with every item under `#[cfg(test)]` blanked: up to its `;` when that comes
/// before a `{` (`mod tests;`), else to the `}` closing its first `{`.
fn without_tests(code: &str) -> String {
    let mut out = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]").map(|p| p + from) {
        let b = code.as_bytes();
        let mut j = at;
        let mut depth = 0usize;
        while j < b.len() {
            match b[j] {
                b';' if depth == 0 => break,
                b'{' => depth += 1,
                b'}' if depth == 0 => break,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        let end = (j + 1).min(b.len());
        for c in &mut out[at..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    String::from_utf8(out).unwrap()
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level module each `crate::` path in `code` reaches (`use crate::{a, b::c}`
/// reaches `a` and `b`), with its byte offset. `super::` from a top-level module's own
/// file (src/x.rs, src/x/mod.rs) reaches the root too.
fn crate_paths(code: &str, top_file: bool) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut prefixes = vec!["crate::"];
    if top_file {
        prefixes.push("super::");
    }
    for prefix in prefixes {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue; // `$crate::`, `a::super::`
            }
            let rest = code[at + prefix.len()..].trim_start();
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 0usize;
                let mut start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => start = true,
                        c if start && !c.is_whitespace() => {
                            start = false;
                            found.push((at, ident(&group[i..]).to_string()));
                        }
                        _ => {}
                    }
                }
            } else {
                found.push((at, ident(rest).to_string()));
            }
        }
    }
    found
}

#[test]
fn no_layer_imports_one_above_it() {
    let src = src();
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let lib_code = without_tests(&code_only(&lib));
    // Every module lib.rs declares has its layer here, so a new one is placed on purpose.
    let declared: Vec<&str> = lib_code
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .filter_map(|l| l.strip_suffix(';'))
        .collect();
    assert!(declared.contains(&"pki"), "{declared:?}");
    for m in &declared {
        assert!(
            layer(m).is_some(),
            "src/lib.rs declares `{m}`, which has no layer here"
        );
    }

    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut checked = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        // The binary's own modules import the library as `kube_bundle::`, from the top.
        // `made_up` is a test (`#[cfg(test)] mod made_up;`).
        if module == "main" || module == "commands" || module == "made_up" {
            continue;
        }
        let (module, top_file) = match module.as_str() {
            "lib" => (ROOT.to_string(), false),
            _ => {
                let top = rel.components().count() == 1
                    || rel.ends_with("mod.rs") && rel.components().count() == 2;
                (module, top)
            }
        };
        let own = layer(&module).unwrap_or_else(|| {
            panic!(
                "src/{} belongs to `{module}`, which has no layer",
                rel.display()
            )
        });
        let text = std::fs::read_to_string(file).unwrap();
        let code = without_tests(&code_only(&text));
        for (at, target) in crate_paths(&code, top_file) {
            let to = layer(&target).unwrap_or(STAGES.len() + 1); // a root item
            *checked.entry(module.clone()).or_insert(0) += 1;
            let upwards = if own == 0 { to > 0 } else { to > own };
            if upwards {
                let line = code[..at].matches('\n').count();
                wrong.push(format!(
                    "src/{}:{}: `{module}` imports `{target}`: {}",
                    rel.display(),
                    line + 1,
                    text.lines().nth(line).unwrap_or_default().trim()
                ));
            }
        }
    }
    // The reading found the imports it must: every stage and the root import something.
    for m in STAGES.iter().chain(&[ROOT]) {
        assert!(
            checked.contains_key(*m),
            "no import read in `{m}`: {checked:?}"
        );
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_reading_sees_through_comments_strings_groups_and_tests() {
    let text = r##"//! [`crate::store`] in a doc comment
use crate::{error::{Error, Result}, load::config};
use crate::pki::Leaf; // crate::verify in a comment
fn f() -> &'static str { let _c = '{'; let _s = "crate::pack {"; let _r = r#"}"#; crate::render::x() }
#[cfg(test)]
mod tests { use crate::store::y; fn g() { if true { crate::verify::z() } } }
#[cfg(test)]
mod more;
const X: &str = crate::plan::NAME;
"##;
    let code = without_tests(&code_only(text));
    let got: Vec<String> = crate_paths(&code, false)
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(got, ["error", "load", "pki", "render", "plan"]);
    let lines: Vec<usize> = crate_paths(&code, false)
        .into_iter()
        .map(|(at, _)| code[..at].matches('\n').count() + 1)
        .collect();
    assert_eq!(lines, [2, 2, 3, 4, 9]);
    let supers: Vec<String> = crate_paths("use super::{BuildOptions, pki::Leaf};", true)
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(supers, ["BuildOptions", "pki"]);
}
