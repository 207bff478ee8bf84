//! Thin entry point: parse the command line, run, map the outcome to an exit code
//! (0 ok, 1 a declared check failed or `--fail-on` was met, 2 usage/scenario/run error or an
//! invalid comparison, 130 interrupted).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = exp::cli::Cli::parse();
    match exp::app::run(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
