//! The README against the code: the first hour's walk is run as written and its lists
//! compared with what it produced; the tables and lists that name files, packages and
//! components are compared with the build output, scripts/deps.sh and the component rows.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::common::*;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The text from heading `from` (a whole line) to the next heading of `to`'s line.
fn section<'a>(text: &'a str, from: &str, to: &str) -> &'a str {
    let start = text
        .find(&format!("\n{from}\n"))
        .unwrap_or_else(|| panic!("no heading {from:?}"));
    let rest = &text[start + 1..];
    let end = rest
        .find(&format!("\n{to}\n"))
        .unwrap_or_else(|| panic!("no heading {to:?} after {from:?}"));
    &rest[..end]
}

/// The fenced blocks of `text` whose info string is `lang`, in order.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line) {
            (None, l) if l == format!("```{lang}") => current = Some(String::new()),
            (Some(_), "```") => out.push(current.take().unwrap()),
            (Some(block), l) => {
                block.push_str(l);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

/// The files the walk says a bundle holds beside `rootfs/`: the names in backticks of
/// its sentence "The bundle holds `a`, `b` ... and, under `rootfs/`, ...".
fn top_level_files(walk: &str) -> Vec<String> {
    let text = walk.replace('\n', " ");
    let sentence = text
        .split("The bundle holds ")
        .nth(1)
        .and_then(|rest| rest.split(" under `rootfs/`").next())
        .unwrap_or_else(|| panic!("no sentence \"The bundle holds ... under `rootfs/`\": {walk}"));
    sentence
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn lines(block: &str) -> Vec<String> {
    block.lines().map(str::to_string).collect()
}

#[test]
fn the_first_hour_walk_runs_as_written_and_its_lists_are_what_it_makes() {
    let text = readme();
    let walk = section(
        &text,
        "### Ten minutes: from environment.sh to an installed master",
        "## Make targets",
    );
    let commands = blocks(walk, "sh").join("");
    let listings = blocks(walk, "text");
    assert_eq!(listings.len(), 2, "{walk}");
    assert!(commands.contains("kube-bundle init --from-env environment.sh"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/environment.sh"),
        dir.path().join("environment.sh"),
    )
    .unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_kube-bundle"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(tool("bash"))
        .args(["--norc", "--noprofile", "-euo", "pipefail", "-c", &commands])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("KUBE_BUNDLE_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the walk failed:\n{commands}\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    // What the walk says verify prints, it prints.
    let said = "3 bundle(s) checked (0 signed), 0 finding(s)";
    assert!(walk.replace('\n', " ").contains(said), "{walk}");
    assert!(stderr(&out).contains(said), "{}", stderr(&out));

    // dist/, as listed.
    assert_eq!(
        lines(&listings[0]),
        file_names(&dir.path().join("dist"), &[])
    );

    // The installed files, as listed; the release install.sh keeps is said apart.
    let look = dir.path().join("look");
    let installed: Vec<String> = snapshot(&look)
        .into_iter()
        .filter(|(rel, sha, _)| !sha.is_empty() && !rel.starts_with("var/backups/kube-bundle/"))
        .map(|(rel, _, _)| rel)
        .collect();
    assert_eq!(lines(&listings[1]), installed);
    assert!(look.join("var/backups/kube-bundle").is_dir());

    // And the bundle holds those files under rootfs/, beside the ones the sentence
    // before the list names.
    let listing = run_ok(
        Command::new(tool("tar"))
            .arg("-tzf")
            .arg(dir.path().join("dist/control-plane-k8s-master-01.tar.gz")),
    );
    let in_tarball: Vec<String> = listing
        .lines()
        .filter(|l| !l.ends_with('/'))
        .map(|l| {
            l.strip_prefix("control-plane-k8s-master-01/")
                .unwrap()
                .to_string()
        })
        .collect();
    let top = top_level_files(walk);
    assert!(top.contains(&"install.sh".to_string()), "{top:?}");
    let mut want: Vec<String> = top
        .into_iter()
        .chain(installed.iter().map(|f| format!("rootfs/{f}")))
        .collect();
    want.sort();
    let mut got = in_tarball;
    got.sort();
    assert_eq!(got, want);
}

#[test]
fn the_first_screen_names_what_the_repository_holds() {
    let text = readme();
    let first = section(
        &text,
        "## First hour",
        "### Ten minutes: from environment.sh to an installed master",
    );
    // The Rust release is Cargo.toml's, and nothing pins another.
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap();
    assert!(
        first.contains(&format!("Rust {version} or newer")),
        "{first}"
    );
    for pin in ["rust-toolchain", "rust-toolchain.toml"] {
        assert!(!Path::new(env!("CARGO_MANIFEST_DIR")).join(pin).exists());
    }
    // The commands it gives parse: make knows both targets, cargo the install.
    let commands = blocks(first, "sh").join("");
    for target in ["make bundle", "make test"] {
        assert!(commands.contains(target), "{commands}");
    }
    let make = Command::new(tool("make"))
        .args(["-n", "bundle", "test"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(make.status.success(), "{}", stderr(&make));
    assert!(stdout(&make).contains("build -c examples/cluster.toml -o dist"));
    assert!(
        commands.contains("cargo install --locked --path ."),
        "{commands}"
    );
    assert!(commands.contains("target/release"), "{commands}");
    let install = Command::new(tool("cargo"))
        .args(["install", "--help"])
        .output()
        .unwrap();
    for flag in ["--locked", "--path"] {
        assert!(stdout(&install).contains(flag), "{flag}");
    }
}

#[test]
fn the_dist_table_names_every_file_a_build_writes() {
    let text = readme();
    let table: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| `dist/"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    // A build with every component writes exactly the files the table names.
    let project = Project::new(&format!(
        "{INVENTORY}\n[kube-apiserver]\n[kube-scheduler]\n[etcd]\nversion = \"3.4\"\n"
    ));
    project.build_ok();
    let written = file_names(&project.path("dist"), &[]);
    let mut named = BTreeSet::new();
    for file in &written {
        let row = match file.strip_prefix("control-plane-") {
            Some(_) if file.ends_with(".tar.gz") => "control-plane-<node>.tar.gz",
            _ => file.as_str(),
        };
        assert!(
            table.iter().any(|t| t == row),
            "`dist/{file}` is not in the table"
        );
        named.insert(row.to_string());
    }
    let table: BTreeSet<String> = table.into_iter().collect();
    assert_eq!(named, table, "the table names files no build writes");
}

#[test]
fn the_package_list_is_what_deps_sh_installs() {
    let deps =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/deps.sh"))
            .unwrap();
    // `make test`'s packages: the first NEEDED table (the second is e2e's), and kubectl's.
    let table = deps
        .split("declare -A NEEDED=(\n")
        .nth(1)
        .and_then(|t| t.split("\n)\n").next())
        .unwrap();
    let mut packages: BTreeSet<String> = table
        .lines()
        .filter(|l| l.trim_start().starts_with('['))
        .filter_map(|l| l.split('=').nth(1))
        .map(|p| p.trim().to_string())
        .collect();
    assert!(deps.contains("missing+=(kubernetes-client)"));
    packages.insert("kubernetes-client".into());

    let text = readme();
    let listed: BTreeSet<String> = text
        .replace('\n', " ")
        .split("whichever of these Debian packages are missing: ")
        .nth(1)
        .and_then(|rest| rest.split(". ").next())
        .unwrap()
        .split(", ")
        .map(|p| p.trim_matches('`').to_string())
        .collect();
    assert_eq!(listed, packages);
}

#[test]
fn the_components_table_has_one_row_per_component() {
    let text = readme();
    let rows: Vec<Vec<String>> = section(&text, "## Components", "## Reproducible bundles")
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| component"))
        .map(|l| {
            l.split(" | ")
                .map(|c| c.trim_matches(['|', ' ']).to_string())
                .collect()
        })
        .collect();
    let code = kube_bundle::component::ALL;
    assert_eq!(rows.len(), code.len());
    for (row, c) in rows.iter().zip(code) {
        assert_eq!(row[0], c.name);
        assert!(
            row[3].starts_with(&c.default_secure_port.to_string()),
            "{}: {}",
            c.name,
            row[3]
        );
        match c.lease {
            Some(lease) => assert_eq!(row[4], format!("`{lease}`")),
            None => assert!(row[4].starts_with("none"), "{}: {}", c.name, row[4]),
        }
    }
}
