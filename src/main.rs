//! The `app` binary; everything lives in the `switchyard` library.

fn main() -> std::process::ExitCode {
    switchyard::cli::main()
}
