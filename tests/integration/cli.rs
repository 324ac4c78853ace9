//! The command line itself: help that lists what the code reads, one meaning per flag
//! name, hints for the common slips, completions driven in real shells, man page
//! synopses and what `build --output json` says changed.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;
use crate::registry::{assert_fails, Registry};

fn kube_bundle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kube-bundle"))
        .args(args)
        .output()
        .unwrap()
}

fn help(args: &[&str]) -> String {
    let out = kube_bundle(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// The words after `label` up to the end of its sentence or line, split at `, `.
fn listed_after(text: &str, label: &str) -> Vec<String> {
    let start = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
        + label.len();
    let rest = &text[start..];
    let end = [rest.find(". "), rest.find('\n')]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    rest[..end]
        .split(", ")
        .map(|w| w.trim().trim_matches('`').to_string())
        .collect()
}

/// The subcommands `kube-bundle --help` lists.
fn subcommands() -> Vec<String> {
    let text = help(&["--help"]);
    let commands = text.split("Commands:\n").nth(1).unwrap();
    commands
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn init_help_lists_exactly_the_variables_init_reads() {
    let text = help(&["init", "--help"]);
    let listed = listed_after(&text, "Variables read: ");
    assert_eq!(listed, kube_bundle::load::init::used());

    // What init reports using from a file that sets all of them and one more is the list.
    let project = Project::new("");
    project.write(
        "environment.sh",
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/environment-every.sh"),
        )
        .unwrap(),
    );
    let out = project.kube_bundle(&["init", "--from-env", "environment.sh", "-o", "new.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let used: BTreeSet<String> = listed_after(&err, ": used ").into_iter().collect();
    let want: BTreeSet<String> = listed.into_iter().collect();
    assert_eq!(used, want, "{err}");
    assert_eq!(listed_after(&err, ": ignored "), ["IFACE"], "{err}");
}

#[test]
fn one_list_of_overridable_templates_in_help_code_and_readme() {
    let code = kube_bundle::render::template_names();
    assert!(code.len() >= 9, "{code:?}");
    let with_hbs: Vec<String> = code.iter().map(|n| format!("{n}.hbs")).collect();

    let text = help(&["build", "--help"]);
    let in_help = listed_after(&text, "of the same name: ");
    assert_eq!(in_help, with_hbs);

    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let in_readme = listed_after(
        &readme.replace('\n', " "),
        "The templates `--templates DIR` overrides: ",
    );
    assert_eq!(in_readme, with_hbs);

    // And build refuses any other name, naming the same list.
    let project = Project::new(INVENTORY);
    project.write("templates/kube-proxy.service.hbs", "x");
    let out = project.build_with(&["--templates", "templates"]);
    assert_fails(&out, 2, "is not a known template");
    let hint = stderr(&out);
    for name in &with_hbs {
        assert!(hint.contains(&format!("`{name}`")), "{name}: {hint}");
    }
}

#[test]
fn flags_mean_one_thing_across_subcommands() {
    for sub in subcommands() {
        let text = help(&[&sub, "--help"]);
        for line in text.lines().map(str::trim_start) {
            if line.starts_with("-o,") {
                assert!(line.starts_with("-o, --out <"), "{sub}: {line}");
            }
            if line.contains("--output") {
                assert!(
                    line.starts_with("--output <FORMAT>"),
                    "{sub}: `--output` is the output format everywhere: {line}"
                );
            }
        }
    }
    // Output formats read the same everywhere.
    for sub in ["build", "verify", "rollout-plan", "certs", "push", "pull"] {
        let text = help(&[sub, "--help"]);
        assert!(
            text.contains("--output <FORMAT>") && text.contains("[possible values: text, json]"),
            "{sub}:\n{text}"
        );
    }

    // init's old spelling still writes the inventory; the new one too.
    let project = Project::new("");
    for (flag, file) in [
        ("--output", "old.toml"),
        ("--out", "new.toml"),
        ("-o", "short.toml"),
    ] {
        let out = project.kube_bundle(&["init", flag, file]);
        assert!(out.status.success(), "{flag}: {}", stderr(&out));
        let text = std::fs::read_to_string(project.path(file)).unwrap();
        assert!(text.contains("[[nodes]]"), "{flag}: {text}");
    }
    assert!(!help(&["init", "--help"]).contains("--output"));
}

#[test]
fn a_plain_http_registry_without_plain_http_gets_a_hint() {
    let reg = Registry::start_with(false);
    let project = Project::new(INVENTORY);
    project.build_ok();
    let hint = "the registry answered in plain http: a registry on this machine takes --plain-http";
    let push = project.kube_bundle(&[
        "push",
        "--allow-plain-secrets",
        "-o",
        "dist",
        &reg.reference("v1"),
    ]);
    assert_fails(&push, 1, hint);
    assert!(!stderr(&push).contains("--ca-file"), "{}", stderr(&push));
    let pull = project.kube_bundle(&["pull", "-o", "pulled", &reg.reference("v1")]);
    assert_fails(&pull, 1, hint);

    // With the flag the same push goes through.
    let push = project.kube_bundle(&[
        "push",
        "--plain-http",
        "--allow-plain-secrets",
        "-o",
        "dist",
        &reg.reference("v1"),
    ]);
    assert!(push.status.success(), "{}", stderr(&push));
}

#[test]
fn a_folder_where_a_bundle_goes_and_a_bundle_where_a_folder_goes() {
    let project = Project::new(INVENTORY);
    project.build_ok();

    let out = project.kube_bundle(&["verify", "dist"]);
    assert_fails(&out, 2, "error: `dist`: is a folder, not a bundle");
    assert_fails(
        &out,
        2,
        "hint: verify takes the bundles themselves: `kube-bundle verify dist/control-plane-*.tar.gz` (3 here)",
    );

    let unpacked = project.unpack("m1");
    let out = project.kube_bundle(&["verify", unpacked.to_str().unwrap()]);
    assert_fails(&out, 2, "looks like an unpacked bundle");

    let out = project.kube_bundle(&["verify", "--trust", "dist", "dist/control-plane-m1.tar.gz"]);
    assert_fails(&out, 2, "error: --trust: `dist` is a folder");

    let out = project.kube_bundle(&[
        "push",
        "--plain-http",
        "-o",
        "dist/control-plane-m1.tar.gz",
        "127.0.0.1:1/k8s/control-plane:v1",
    ]);
    assert_fails(&out, 2, "is a file, not an output folder");
    assert_fails(&out, 2, "push takes the whole folder `build` wrote");
}

/// COMPREPLY of the completion function bash registered for `kube-bundle`, for the words
/// of `line` (the cursor at its end).
fn bash_complete(script: &Path, line: &str) -> Vec<String> {
    let driver = r#"
set -u
source "$1"
spec=$(complete -p kube-bundle)
func=$(sed -n 's/.*-F \([^ ]*\) .*/\1/p' <<<"$spec")
[[ -n $func ]] || { echo "no function in: $spec" >&2; exit 3; }
read -ra COMP_WORDS <<<"$2"
[[ $2 == *' ' ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE=$2
COMP_POINT=${#COMP_LINE}
prev=""
(( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
"$func" kube-bundle "${COMP_WORDS[COMP_CWORD]}" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = Command::new(tool("bash"))
        .args(["--norc", "--noprofile", "-c", driver, "driver"])
        .arg(script)
        .arg(line)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn completions_complete_options_in_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    let mut scripts = Vec::new();
    for shell in ["bash", "zsh", "fish"] {
        let text = help(&["completions", shell]);
        let path = dir.path().join(format!("kube-bundle.{shell}"));
        std::fs::write(&path, text).unwrap();
        scripts.push(path);
    }

    // bash: subcommands, then each subcommand's own options.
    let words = bash_complete(&scripts[0], "kube-bundle ");
    for sub in ["build", "verify", "push", "rollout-plan"] {
        assert!(words.contains(&sub.to_string()), "{sub}: {words:?}");
    }
    let words = bash_complete(&scripts[0], "kube-bundle build --o");
    assert_eq!(words, ["--out", "--output"]);
    let words = bash_complete(&scripts[0], "kube-bundle rollout-plan --k");
    assert_eq!(words, ["--kubeconfig"]);
    let words = bash_complete(&scripts[0], "kube-bundle verify --output ");
    assert_eq!(words, ["text", "json"]);

    // zsh: the script loads under compinit and defines the function it registers.
    let out = Command::new(tool("zsh"))
        .args(["-f", "-c"])
        .arg(format!(
            "autoload -U compinit && compinit -u -d {}/zcompdump && source {} && whence -w _kube-bundle && print -r -- ${{_comps[kube-bundle]}}",
            dir.path().display(),
            scripts[1].display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "_kube-bundle: function\n_kube-bundle\n",
        "{}",
        stderr(&out)
    );

    // fish: its own completion engine, asked as the shell asks it.
    let out = Command::new(tool("fish"))
        .args(["--no-config", "-c"])
        .arg(format!(
            "source {} && complete -C 'kube-bundle build --o'",
            scripts[2].display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let answer = stdout(&out);
    let offered: Vec<&str> = answer
        .lines()
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert!(
        offered.contains(&"--out") && offered.contains(&"--output"),
        "{answer}"
    );
}

#[test]
fn man_page_synopses_read_as_typed() {
    let dir = tempfile::tempdir().unwrap();
    let out = kube_bundle(&["man", "-o", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for sub in subcommands() {
        let page = std::fs::read_to_string(dir.path().join(format!("kube-bundle-{sub}.1")))
            .unwrap_or_else(|e| panic!("{sub}: {e}"));
        let synopsis = page
            .split(".SH SYNOPSIS\n")
            .nth(1)
            .and_then(|s| s.lines().next())
            .unwrap();
        let typed = format!("\\fBkube\\-bundle {}\\fR", sub.replace('-', "\\-"));
        assert!(synopsis.starts_with(&typed), "{sub}: {synopsis}");
        // The page keeps man's name for it.
        assert!(
            page.contains(&format!(".TH kube-bundle-{sub} 1 ")),
            "{sub}: {page}"
        );
    }
}

fn build_files(project: &Project) -> Vec<(String, String)> {
    let out = project.build_with(&["--output", "json", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap().to_string();
            let change = f["change"].as_str().unwrap().to_string();
            // A removed file has no sha256; every other one has the file's own.
            match change.as_str() {
                "removed" => assert!(f["sha256"].is_null(), "{f}"),
                _ => assert_eq!(
                    f["sha256"].as_str().unwrap(),
                    sha256_file(&project.path(&path)),
                    "{path}"
                ),
            }
            (path, change)
        })
        .collect()
}

#[test]
fn build_json_lists_each_output_file_and_its_change() {
    let project = Project::new(INVENTORY);
    let first = build_files(&project);
    let on_disk = file_names(&project.path("dist"), &[]);
    let listed: Vec<String> = first
        .iter()
        .map(|(p, _)| p.strip_prefix("dist/").unwrap().to_string())
        .collect();
    assert_eq!(listed, on_disk);
    assert!(first.iter().all(|(_, c)| c == "added"), "{first:?}");

    let again = build_files(&project);
    assert!(again.iter().all(|(_, c)| c == "unchanged"), "{again:?}");

    // m3 leaves: its bundle is removed, the others stay as they were, and the files that
    // name every master change.
    project.write(
        "cluster.toml",
        &INVENTORY.replace("[[nodes]]\nname = \"m3\"\nip = \"127.0.1.3\"\n", ""),
    );
    let shrunk: std::collections::BTreeMap<String, String> =
        build_files(&project).into_iter().collect();
    let change = |name: &str| shrunk[&format!("dist/{name}")].as_str();
    assert_eq!(change("control-plane-m3.tar.gz"), "removed");
    assert_eq!(change("control-plane-m1.tar.gz"), "unchanged");
    assert_eq!(change("control-plane-m2.tar.gz"), "unchanged");
    assert_eq!(change("rollout.sh"), "changed");
    assert_eq!(change("SHA256SUMS"), "changed");
    assert_eq!(change("ca.pem"), "unchanged");
}
