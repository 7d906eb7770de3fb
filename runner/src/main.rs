use std::process::ExitCode;

fn main() -> ExitCode {
    rollout_runner::cli::main()
}
