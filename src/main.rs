//! The `kube-bundle` binary: parses the command line, calls the library, prints
//! `error: …` with a hint and picks the exit code (0 ok, 1 failure, 2 bad input).

mod commands;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use commands::{cli, progress, transfer};
use kube_bundle::error::Error;
use kube_bundle::load::{config, init};
use kube_bundle::pack::bundle;
use kube_bundle::pki::{self, certs};
use kube_bundle::{rollout, verify, BuildOptions};

fn main() -> ExitCode {
    let cli = cli::parse();
    let mut out = String::new();
    let result = run(cli.command, &mut out);
    // Standard output goes out in one piece at the end; a reader that closed early
    // (`| head`) is not an error.
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: writing to standard output: {e}");
            return ExitCode::from(1);
        }
    }
    match result {
        Ok(code) => code,
        Err(err) => {
            let mut said = err.to_string();
            eprintln!("error: {said}");
            // Messages often quote their cause (a TOML error, the operating system's
            // words); a cause already said is not said again.
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !said.contains(&text) {
                    eprintln!("  caused by: {text}");
                    said.push_str(&text);
                }
                source = cause.source();
            }
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(err.exit_code() as u8)
        }
    }
}

/// Appends one line to what `main` prints on standard output.
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// The one place that picks between text and JSON: JSON is `value`, pretty-printed;
/// text is whatever `text` appends.
fn emit<T: serde::Serialize>(
    out: &mut String,
    format: cli::Output,
    value: &T,
    text: impl FnOnce(&mut String),
) {
    match format {
        cli::Output::Json => line!(
            out,
            "{}",
            serde_json::to_string_pretty(value).expect("output serializes")
        ),
        cli::Output::Text => text(out),
    }
}

fn run(command: cli::Command, out: &mut String) -> Result<ExitCode, Error> {
    use cli::Command as C;
    match command {
        C::Init {
            from_env,
            out: file,
            kubernetes_version,
            force,
        } => init_cmd(from_env, &file, &kubernetes_version, force, out),
        C::Build {
            config,
            out: dir,
            templates,
            renew,
            component,
            rotate_keys,
            replace_csr_signer,
            drop_previous_csr_signer,
            sign,
            pin_signers,
            output,
            quiet,
            cache_dir,
            no_cache,
        } => {
            let opts = BuildOptions {
                config,
                out: dir,
                templates,
                mtime: bundle::mtime_from_env(),
                renew: pki::Renewal {
                    nodes: renew.map(|n| n.into_iter().collect()),
                    components: component.into_iter().collect(),
                    rotate_keys,
                    csr_signer: pki::SignerChange {
                        replace: replace_csr_signer,
                        drop_previous: drop_previous_csr_signer,
                    },
                },
                sign,
                pin_signers,
                cache: match no_cache {
                    true => None,
                    false => cache_dir.or_else(kube_bundle::pack::cache::default_dir),
                },
            };
            build_cmd(&opts, output, quiet, out)
        }
        C::Verify {
            bundles,
            warn_within,
            trust,
            seal_key,
            output,
        } => verify_cmd(
            verify::VerifyOptions {
                bundles,
                warn_within: duration_arg("--warn-within", &warn_within)?,
                trust,
                seal_key,
            },
            output,
            out,
        ),
        C::RolloutPlan {
            config,
            kubeconfig,
            output,
        } => rollout_plan_cmd(&config, kubeconfig.as_deref(), output, out),
        C::Push(args) => transfer::push(args, out),
        C::Pull(args) => transfer::pull(args, out),
        C::Certs {
            config,
            warn_within,
            output,
        } => certs_cmd(&config, &warn_within, output, out),
        C::Completions { shell } => {
            let shell = match shell {
                cli::Shell::Bash => clap_complete::Shell::Bash,
                cli::Shell::Zsh => clap_complete::Shell::Zsh,
                cli::Shell::Fish => clap_complete::Shell::Fish,
            };
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cli::command(), BIN, &mut buf);
            let script = String::from_utf8_lossy(&buf);
            match shell {
                clap_complete::Shell::Bash => out.push_str(&bash_case_labels(&script)),
                _ => out.push_str(&script),
            }
            Ok(ExitCode::SUCCESS)
        }
        C::Man { out: dir } => man_cmd(&dir),
    }
}

fn init_cmd(
    from_env: Option<PathBuf>,
    output: &Path,
    kubernetes_version: &str,
    force: bool,
    out: &mut String,
) -> Result<ExitCode, Error> {
    let imported = match &from_env {
        Some(path) => init::import_env(path)?,
        None => init::Imported::default(),
    };
    let text = init::inventory_text(&imported, kubernetes_version);
    init::validate(output, &text)?;
    // A literal ENCRYPTION_KEY goes where `build` keeps the key: pki/ beside the inventory.
    let key_file = match (&imported.encryption_key, output.as_os_str() == "-") {
        (Some(key), false) => {
            let inv = kube_bundle::load::config::parse(output, &text)?;
            let path = inv.pki.dir.join("encryption-key");
            match fs_err::read_to_string(&path) {
                Ok(saved) if saved.trim() == key => None,
                Ok(_) => {
                    return Err(Error::input(
                        format!("`{}`", path.display()),
                        "holds another encryption key than ENCRYPTION_KEY",
                    )
                    .with_hint("keep the key Secrets are encrypted with: remove ENCRYPTION_KEY from environment.sh, or restore that key into the file"))
                }
                Err(_) => Some((inv.pki.dir, path, key.clone())),
            }
        }
        (Some(_), true) => {
            eprintln!("ENCRYPTION_KEY: not written with `-o -`; put it in pki/encryption-key beside the inventory");
            None
        }
        (None, _) => None,
    };
    if output.as_os_str() == "-" {
        out.push_str(&text);
    } else {
        if output.exists() && !force {
            return Err(
                Error::input(format!("`{}`", output.display()), "already exists")
                    .with_hint("pass --force to overwrite it, or -o another file"),
            );
        }
        fs_err::write(output, &text)?;
        eprintln!("wrote `{}`", output.display());
    }
    if let Some((dir, path, key)) = key_file {
        kube_bundle::fsx::ensure_dir(&dir)?;
        kube_bundle::fsx::write_private(&path, format!("{key}\n").as_bytes())?;
        eprintln!("wrote ENCRYPTION_KEY into `{}` (0600)", path.display());
    }
    if let Some(path) = from_env {
        eprintln!("from `{}`: used {}", path.display(), list(&imported.used));
        eprintln!(
            "from `{}`: ignored {}",
            path.display(),
            list(&imported.ignored)
        );
        for note in &imported.notes {
            eprintln!("from `{}`: {note}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn build_cmd(
    opts: &BuildOptions,
    output: cli::Output,
    quiet: bool,
    out: &mut String,
) -> Result<ExitCode, Error> {
    let line = progress::Line::new(!quiet && std::io::stderr().is_terminal());
    let report = kube_bundle::build(opts, &|p| line.show(p));
    line.clear();
    let report = report?;
    for note in &report.notes {
        if !quiet || note.starts_with("warning:") {
            eprintln!("{note}");
        }
    }
    let summary = serde_json::json!({
        "bundles": report.bundles,
        "sha256sums": opts.out.join("SHA256SUMS"),
        "files": report.files,
        "notes": report.notes,
    });
    emit(out, output, &summary, |out| {
        for b in &report.bundles {
            line!(out, "{}  {}", b.sha256, b.path.display());
        }
    });
    if !quiet {
        for name in &report.changed {
            eprintln!("changed: {name}");
        }
        if report.changed.is_empty() {
            eprintln!("no bundle changed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify_cmd(
    opts: verify::VerifyOptions,
    output: cli::Output,
    out: &mut String,
) -> Result<ExitCode, Error> {
    let report = verify::verify(&opts)?;
    emit(out, output, &report, |out| {
        for f in &report.findings {
            line!(out, "{}: {}: {}", f.bundle, f.file, f.message);
        }
        for w in &report.warnings {
            eprintln!("warning: {}: {}: {}", w.bundle, w.file, w.message);
        }
        for b in &report.bundles {
            if let (Some(sealed), Some(false)) = (b.sealed, b.unsealed) {
                eprintln!(
                    "note: {}: {sealed} sealed private file(s) checked by their sums only; pass --seal-key (pki/ or the node's seal.key) to open and check them",
                    b.path
                );
            }
        }
        let signed = report.bundles.iter().filter(|b| b.signed).count();
        eprintln!(
            "{} bundle(s) checked ({signed} signed), {} finding(s)",
            report.bundles.len(),
            report.findings.len()
        );
    });
    Ok(exit_if(!report.findings.is_empty()))
}

fn rollout_plan_cmd(
    config: &Path,
    kubeconfig: Option<&Path>,
    output: cli::Output,
    out: &mut String,
) -> Result<ExitCode, Error> {
    let inv = config::load(config)?;
    // Per component: the node holding its lease, or why that is not known.
    let mut leaders: Vec<(&str, Option<String>, rollout::LeaderSource)> = Vec::new();
    for c in inv.components.iter().map(|s| s.component) {
        if c.lease.is_none() {
            continue;
        }
        let (leader, source) = match kubeconfig {
            None => (
                None,
                rollout::LeaderSource::Unknown("no --kubeconfig given".into()),
            ),
            Some(kc) => match rollout::read_leader(&inv, c, kc) {
                Ok((identity, source)) => match rollout::node_of_identity(&inv.nodes, &identity) {
                    Some(node) => (Some(node.to_string()), source),
                    None => (
                        None,
                        rollout::LeaderSource::Unknown(format!(
                            "the leader `{identity}` is not in the inventory"
                        )),
                    ),
                },
                Err(e) => (None, rollout::LeaderSource::Unknown(e.to_string())),
            },
        };
        leaders.push((c.name, leader, source));
    }
    let pairs: Vec<(&str, Option<&str>)> = leaders
        .iter()
        .map(|(c, node, _)| (*c, node.as_deref()))
        .collect();
    let steps = rollout::order(&inv.nodes, &pairs);
    let first = &leaders[0];
    let value = serde_json::json!({
        "leader": first.1,
        "source": first.2,
        "leaders": leaders
            .iter()
            .map(|(c, node, source)| serde_json::json!({ "component": c, "node": node, "source": source }))
            .collect::<Vec<_>>(),
        "steps": steps,
    });
    emit(out, output, &value, |out| {
        for (c, _, source) in &leaders {
            if let rollout::LeaderSource::Unknown(why) = source {
                eprintln!("cannot tell the {c} leader ({why})");
            }
        }
        if leaders.iter().all(|(_, node, _)| node.is_none()) {
            eprintln!("any order will do, one master at a time");
        }
        for (i, step) in steps.iter().enumerate() {
            let mark = if step.leads.is_empty() {
                String::new()
            } else {
                format!("  (leads {}: later)", step.leads.join(", "))
            };
            line!(out, "{}. {} {}{mark}", i + 1, step.node, step.ip);
        }
    });
    Ok(ExitCode::SUCCESS)
}

fn certs_cmd(
    config: &Path,
    warn_within: &str,
    output: cli::Output,
    out: &mut String,
) -> Result<ExitCode, Error> {
    let warn_within = duration_arg("--warn-within", warn_within)?;
    let inv = config::load(config)?;
    let rows = certs::list(&inv, warn_within)?;
    emit(out, output, &rows, |out| out.push_str(&certs::table(&rows)));
    let attention: Vec<&str> = rows
        .iter()
        .filter(|r| r.attention)
        .map(|r| r.path.as_str())
        .collect();
    if !attention.is_empty() {
        eprintln!("expiring, expired or missing: {}", attention.join(", "));
    }
    Ok(exit_if(!attention.is_empty()))
}

/// Man pages from the same clap definitions as `--help`: `kube-bundle.1` and
/// `kube-bundle-<subcommand>.1`.
fn man_cmd(dir: &Path) -> Result<ExitCode, Error> {
    fs_err::create_dir_all(dir)?;
    let root = cli::command();
    let mut pages = vec![(BIN.to_string(), root.clone())];
    // A page is named `kube-bundle-init`, as man wants; its synopsis reads as typed,
    // `kube-bundle init`.
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{BIN}-{}", sub.get_name());
        pages.push((
            name.clone(),
            sub.clone()
                .version(env!("CARGO_PKG_VERSION"))
                .display_name(name)
                .bin_name(format!("{BIN} {}", sub.get_name())),
        ));
    }
    for (name, command) in pages {
        let mut buf = Vec::new();
        clap_mangen::Man::new(command).render(&mut buf)?;
        let path = dir.join(format!("{name}.1"));
        fs_err::write(&path, buf)?;
        eprintln!("wrote `{}`", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

const BIN: &str = "kube-bundle";

/// clap_complete's bash script for a hyphenated binary name spells its function names
/// two ways: the word loop sets `cmd="kube__bundle__subcmd__build"` while the `case`
/// that offers the options tests `kube__subcmd__bundle__subcmd__build)`, so no
/// subcommand's options ever complete. The labels are put back to the loop's spelling.
fn bash_case_labels(script: &str) -> String {
    script.replace(&BIN.replace('-', "__subcmd__"), &BIN.replace('-', "__"))
}

fn exit_if(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn duration_arg(flag: &str, text: &str) -> Result<std::time::Duration, Error> {
    config::parse_duration(text).map_err(|m| Error::input(flag, m))
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}
