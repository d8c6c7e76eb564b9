//! The container log driver as a program of its own, for this crate's tests (the `titus` binary
//! runs the same code as `titus agent --log-driver=DIR`): `titus-log-driver <any> --log-driver=DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args().find_map(|a| a.strip_prefix("--log-driver=").map(PathBuf::from));
    let Some(dir) = dir else {
        eprintln!("usage: titus-log-driver <subcommand> --log-driver=DIR");
        return ExitCode::FAILURE;
    };
    match titus_agent_shim::logs::driver::run(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("titus-log-driver: {error}");
            ExitCode::FAILURE
        }
    }
}
