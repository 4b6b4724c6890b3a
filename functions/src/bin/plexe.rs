//! `plexe`: the local all-in-one server (`plexe serve`) and the operator tool (`plexe admin`).

fn main() -> std::process::ExitCode {
    shared::cli::main()
}
