use clap::Parser;
use dialtone::call::Outcome;
use dialtone::config::{Cli, Command, Settings};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A test's many calls would bury its progress and report under their logs.
    let level = if matches!(cli.command, Command::Test(_)) { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("DIALTONE_LOG").unwrap_or_else(|_| level.into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dialtone: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::Serve(args) => {
            let r = Settings::resolve(&args.common, Some(args.as_ref()), "0.0.0.0:5060".parse().expect("literal"))
                .and_then(|s| rt.block_on(dialtone::serve::run(s)));
            match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("dialtone: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        // Exit codes: 0 answered and ended cleanly; 1 could not place the call;
        // 3, 4, 5, 6 the class of the final SIP status (printed on stderr).
        Command::Call(args) => match rt.block_on(dialtone::call::run(*args)) {
            Ok(Outcome::Completed) => {
                eprintln!("call: completed");
                ExitCode::SUCCESS
            }
            Ok(Outcome::Failed(status, reason)) => {
                eprintln!("call: failed: SIP {status} {reason}");
                ExitCode::from((status / 100).clamp(3, 6) as u8)
            }
            Err(e) => {
                eprintln!("dialtone: {e:#}");
                ExitCode::from(1)
            }
        },
        // Exit codes: 0 every expectation held on every call; 1 one did not (or a call
        // failed); 2 the test could not run.
        Command::Test(args) => match rt.block_on(dialtone::tester::run(*args)) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("dialtone test: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}
