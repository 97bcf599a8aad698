//! Never returns: stopped at the function's timeout.

struct Busy;

impl fgs_guest::Handler for Busy {
    fn handle(_event: Vec<u8>, _ctx: &fgs_guest::Context) -> Result<Vec<u8>, fgs_guest::FunctionError> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

fgs_guest::function!(Busy);

fn main() {}
