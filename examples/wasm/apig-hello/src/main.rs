//! An APIG function: answers every request with `200 hello` in the shape an APIG trigger
//! expects (`statusCode`, `headers`, `body`, `isBase64Encoded`). The gateway benchmark runs it
//! through the gateway and through the invoke API.

struct Hello;

const ANSWER: &[u8] = br#"{"statusCode":200,"headers":{"Content-Type":"text/plain"},"body":"hello","isBase64Encoded":false}"#;

impl fgs_guest::Handler for Hello {
    fn handle(_event: Vec<u8>, _ctx: &fgs_guest::Context) -> Result<Vec<u8>, fgs_guest::FunctionError> {
        Ok(ANSWER.to_vec())
    }
}

fgs_guest::function!(Hello);

fn main() {}
