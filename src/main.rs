use std::process::ExitCode;

/// Counts each thread's heap for the Rhai engine's memory limit; set here, by the
/// binary, so that other crates linking lure keep their own allocator.
#[global_allocator]
static GLOBAL: lure::CountingAllocator = lure::CountingAllocator;

fn main() -> ExitCode {
    lure::cli::main()
}
