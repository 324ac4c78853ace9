//! Man pages and shell completions, from the same command definitions as `--help`.

use std::path::Path;
use std::process::ExitCode;

use kube_bundle::error::Error;

use super::cli;

/// Man pages from the same clap definitions as `--help`: `kube-bundle.1` and
/// `kube-bundle-<subcommand>.1`.
pub(super) fn man_cmd(dir: &Path) -> Result<ExitCode, Error> {
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

/// The completion script for `shell`, with bash's case labels mended (see
/// [`bash_case_labels`]).
pub(super) fn completions_cmd(shell: cli::Shell, out: &mut String) -> Result<ExitCode, Error> {
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
