//! The `kube-bundle` binary: parses the command line, calls the library, prints
//! `error: …` with a hint and picks the exit code (0 ok, 1 failure, 2 bad input).

mod cli;
mod progress;
mod transfer;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use kube_bundle::error::Error;
use kube_bundle::{bundle, certs, config, init, pki, rollout, verify, BuildOptions};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
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
            eprintln!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
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

fn run(command: cli::Command, stdout_buf: &mut String) -> Result<ExitCode, Error> {
    match command {
        cli::Command::Init {
            from_env,
            output,
            kubernetes_version,
            force,
        } => {
            let imported = match &from_env {
                Some(path) => init::import_env(path)?,
                None => init::Imported::default(),
            };
            let text = init::inventory_text(&imported, &kubernetes_version);
            init::validate(&output, &text)?;
            if output.as_os_str() == "-" {
                stdout_buf.push_str(&text);
            } else {
                if output.exists() && !force {
                    return Err(
                        Error::input(format!("`{}`", output.display()), "already exists")
                            .with_hint("pass --force to overwrite it, or -o another file"),
                    );
                }
                fs_err::write(&output, &text)?;
                eprintln!("wrote `{}`", output.display());
            }
            if let Some(path) = from_env {
                eprintln!("from `{}`: used {}", path.display(), list(&imported.used));
                eprintln!(
                    "from `{}`: ignored {}",
                    path.display(),
                    list(&imported.ignored)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        cli::Command::Build {
            config,
            out,
            templates,
            renew,
            rotate_keys,
            sign,
            pin_signers,
            output,
            quiet,
        } => {
            let line = progress::Line::new(!quiet && std::io::stderr().is_terminal());
            let opts = BuildOptions {
                config,
                out: out.clone(),
                templates,
                mtime: bundle::mtime_from_env(),
                renew: pki::Renewal {
                    nodes: renew.map(|n| n.into_iter().collect()),
                    rotate_keys,
                },
                sign,
                pin_signers,
            };
            let report = kube_bundle::build(&opts, &|p| line.show(p));
            line.clear();
            let report = report?;
            for note in &report.notes {
                if !quiet || note.starts_with("warning:") {
                    eprintln!("{note}");
                }
            }
            match output {
                cli::Output::Text => {
                    for b in &report.bundles {
                        line!(stdout_buf, "{}  {}", b.sha256, b.path.display());
                    }
                }
                cli::Output::Json => {
                    let summary = serde_json::json!({
                        "bundles": report.bundles,
                        "sha256sums": out.join("SHA256SUMS"),
                        "notes": report.notes,
                    });
                    let text = serde_json::to_string_pretty(&summary).expect("summary serializes");
                    line!(stdout_buf, "{text}");
                }
            }
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
        cli::Command::Verify {
            bundles,
            warn_within,
            trust,
            output,
        } => {
            let warn_within = duration_arg("--warn-within", &warn_within)?;
            let report = verify::verify(&verify::VerifyOptions {
                bundles,
                warn_within,
                trust,
            })?;
            match output {
                cli::Output::Json => line!(
                    stdout_buf,
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serializes")
                ),
                cli::Output::Text => {
                    for f in &report.findings {
                        line!(stdout_buf, "{}: {}: {}", f.bundle, f.file, f.message);
                    }
                    let signed = report.bundles.iter().filter(|b| b.signed).count();
                    eprintln!(
                        "{} bundle(s) checked ({signed} signed), {} finding(s)",
                        report.bundles.len(),
                        report.findings.len()
                    );
                }
            }
            Ok(if report.findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        cli::Command::RolloutPlan {
            config,
            kubeconfig,
            output,
        } => {
            let inv = config::load(&config)?;
            let (leader, source) = match &kubeconfig {
                None => (
                    None,
                    rollout::LeaderSource::Unknown("no --kubeconfig given".into()),
                ),
                Some(kc) => match rollout::read_leader(&inv, kc) {
                    Ok((identity, source)) => {
                        match rollout::node_of_identity(&inv.nodes, &identity) {
                            Some(node) => (Some(node.to_string()), source),
                            None => (
                                None,
                                rollout::LeaderSource::Unknown(format!(
                                    "the leader `{identity}` is not in the inventory"
                                )),
                            ),
                        }
                    }
                    Err(e) => (None, rollout::LeaderSource::Unknown(e.to_string())),
                },
            };
            let steps = rollout::order(&inv.nodes, leader.as_deref());
            match output {
                cli::Output::Json => {
                    line!(
                        stdout_buf,
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "leader": leader, "source": source, "steps": steps })
                    )
                    .expect("plan serializes")
                )
                }
                cli::Output::Text => {
                    if let rollout::LeaderSource::Unknown(why) = &source {
                        eprintln!("cannot tell the leader ({why}): any order will do, one master at a time");
                    }
                    for (i, step) in steps.iter().enumerate() {
                        let mark = if step.leader { "  (leader: last)" } else { "" };
                        line!(stdout_buf, "{}. {} {}{mark}", i + 1, step.node, step.ip);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        cli::Command::Push(args) => transfer::push(args, stdout_buf),
        cli::Command::Pull(args) => transfer::pull(args, stdout_buf),
        cli::Command::Certs {
            config,
            warn_within,
            output,
        } => {
            let warn_within = duration_arg("--warn-within", &warn_within)?;
            let inv = config::load(&config)?;
            let rows = certs::list(&inv, warn_within)?;
            match output {
                cli::Output::Json => line!(
                    stdout_buf,
                    "{}",
                    serde_json::to_string_pretty(&rows).expect("rows serialize")
                ),
                cli::Output::Text => stdout_buf.push_str(&certs::table(&rows)),
            }
            let attention: Vec<&str> = rows
                .iter()
                .filter(|r| r.attention)
                .map(|r| r.path.as_str())
                .collect();
            if attention.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("expiring, expired or missing: {}", attention.join(", "));
                Ok(ExitCode::from(1))
            }
        }
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
