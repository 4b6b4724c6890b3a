//! `plexe`: the local all-in-one server (`plexe serve`) and the operator tool (`plexe admin`).

/// mimalloc instead of glibc's malloc for the long-running server: a prediction makes a few
/// hundred small allocations, and glibc's allocator took about a tenth of its CPU
/// (`malloc_consolidate` among them). Not for the Lambda functions: there it nearly doubled
/// the inference function's peak RSS (35 → 65 MB) and slowed cold starts (bench-lambda).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    shared::cli::main()
}
