/// mimalloc instead of glibc's allocator: a cheap request allocates and frees a few dozen small
/// blocks, and glibc's malloc and free were a sixth of a banner request's own CPU time (issue
/// 12, docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    doorman::cli::run().await
}
