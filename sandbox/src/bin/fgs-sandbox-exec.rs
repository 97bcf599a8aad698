//! The sandbox helper the host starts for every instance; see `fgs_sandbox::namespace`.

fn main() {
    fgs_sandbox::namespace::exec_main()
}
