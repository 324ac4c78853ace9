//! The `kube-bundle` binary: parses the command line, calls the library, prints
//! `error: …` with a hint and picks the exit code (0 ok, 1 failure, 2 bad input).

mod cli;
mod progress;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use kube_bundle::error::Error;
use kube_bundle::{bundle, init, BuildOptions};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
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

fn run(command: cli::Command) -> Result<(), Error> {
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
                std::io::stdout().write_all(text.as_bytes())?;
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
            Ok(())
        }
        cli::Command::Build {
            config,
            out,
            templates,
            output,
            quiet,
        } => {
            let line = progress::Line::new(!quiet && std::io::stderr().is_terminal());
            let opts = BuildOptions {
                config,
                out: out.clone(),
                templates,
                mtime: bundle::mtime_from_env(),
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
                cli::OutputFormat::Text => {
                    for b in &report.bundles {
                        println!("{}  {}", b.sha256, b.path.display());
                    }
                }
                cli::OutputFormat::Json => {
                    let summary = serde_json::json!({
                        "bundles": report.bundles,
                        "sha256sums": out.join("SHA256SUMS"),
                        "notes": report.notes,
                    });
                    let text = serde_json::to_string_pretty(&summary).expect("summary serializes");
                    println!("{text}");
                }
            }
            Ok(())
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}
