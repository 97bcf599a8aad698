//! Allocates (and touches) the number of MB given as the event.

struct Hog;

impl fgs_guest::Handler for Hog {
    fn handle(event: Vec<u8>, _ctx: &fgs_guest::Context) -> Result<Vec<u8>, fgs_guest::FunctionError> {
        let mb: usize = String::from_utf8_lossy(&event).trim().parse().unwrap_or(1);
        let mut chunks = Vec::new();
        for i in 0..mb {
            chunks.push(vec![i as u8; 1024 * 1024]);
        }
        Ok(format!("allocated {} MB", chunks.len()).into_bytes())
    }
}

fgs_guest::function!(Hog);

fn main() {}
