mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}

// Vector runs VRL on jemalloc; so does the CLI, so its numbers say what Vector would do.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
