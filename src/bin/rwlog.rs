//! The `rwlog` command-line tool: see `rwlog --help` and the `rwlog::cli`
//! module's documentation.

fn main() -> std::process::ExitCode {
    rwlog::cli::main()
}
