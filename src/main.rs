//! Thin entry point: parse the command line, run, map the outcome to an exit code
//! (0 ok, 1 a declared check failed or `--fail-on` was met, 2 usage/scenario/run error or an
//! invalid comparison, 130 interrupted).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    ignore_file_size_signal();
    let cli = exp::cli::Cli::parse();
    // `exp report --stdout | head`: a closed pipe ends a filter-like command quietly instead
    // of panicking in println!. Commands that hold network connections keep SIGPIPE ignored,
    // so a peer closing a socket is an error to record, never a signal that kills the run.
    use exp::cli::Command;
    if !matches!(cli.command, Command::Run(_) | Command::Serve(_)) {
        // SAFETY: called before any other thread exists; SIG_DFL is always a valid action.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match exp::app::run(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            eprintln!("error: {}", exp::secrets::scrub(&error_text(&err)));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes joined by `: `, skipping a cause whose text the message before
/// it already contains: many of the library's errors show their source in their own message
/// (`{path}: {source}`), and `{:#}` would print each such cause twice.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let message = cause.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

/// Under a file-size limit (`ulimit -f`) a write past it raises SIGXFSZ, whose default action
/// kills the process without a word; ignored, the write fails with EFBIG instead, and the run
/// stops with an error that names the file and keeps the repetitions already complete.
fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread starts has no
    // other effect.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
