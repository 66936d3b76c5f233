fn main() -> std::process::ExitCode {
    paycc::cli::run()
}
