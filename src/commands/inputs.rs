//! `init` and `build`: the inventory written, and the bundles built from it.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kube_bundle::error::Error;
use kube_bundle::load::init;
use kube_bundle::BuildOptions;

use super::{cli, emit, list, progress};

pub(super) fn init_cmd(
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
    let text = init::inventory_text(&imported, kubernetes_version)?;
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

pub(super) fn build_cmd(
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
