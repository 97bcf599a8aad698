//! Returns the event it is given.

struct Echo;

impl fgs_guest::Handler for Echo {
    fn handle(event: Vec<u8>, _ctx: &fgs_guest::Context) -> Result<Vec<u8>, fgs_guest::FunctionError> {
        Ok(event)
    }
}

fgs_guest::function!(Echo);

fn main() {}
