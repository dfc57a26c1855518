#[tokio::main]
async fn main() -> std::process::ExitCode {
    doorman::cli::run().await
}
