//! Answers every request with `hello`: the `wasmtime serve` counterpart of the echo function
//! in BENCHMARKS.md.

use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Hello;

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("body");
        ResponseOutparam::set(out, Ok(response));
        let stream = body.write().expect("stream");
        stream.blocking_write_and_flush(b"hello").expect("write");
        drop(stream);
        OutgoingBody::finish(body, None).expect("finish");
    }
}

wasi::http::proxy::export!(Hello);
