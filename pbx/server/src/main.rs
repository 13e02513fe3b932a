//! The `pbx` binary: see [`pbx::cli`].

fn main() -> std::process::ExitCode {
    pbx::cli::main()
}
