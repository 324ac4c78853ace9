//! The `kube-bundle` binary: parses the command line, calls the library, prints
//! `error: …` with a hint and picks the exit code (0 ok, 1 failure, 2 bad input).

mod commands;

use std::io::Write;
use std::process::ExitCode;

use commands::cli;

fn main() -> ExitCode {
    let cli = cli::parse();
    let mut out = String::new();
    let result = commands::run(cli.command, &mut out);
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
