use std::process::ExitCode;

fn main() -> ExitCode {
    lure::cli::main()
}
