// glibc's allocator was a tenth of a status request (small allocations freed across
// threads, and their consolidation); mimalloc's per-thread heaps avoid that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    paycc::cli::run()
}
