//! Tries the network from inside a WebAssembly function: a TCP connection to the address in
//! the event (`host:port`), a name lookup and a UDP socket; reports what each gave. fgs gives
//! components no sockets at all, so each must fail.

use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

struct NetProbe;

fn outcome<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("error: {e}").replace('"', "'"),
    }
}

impl fgs_guest::Handler for NetProbe {
    fn handle(event: Vec<u8>, _ctx: &fgs_guest::Context) -> Result<Vec<u8>, fgs_guest::FunctionError> {
        let target = String::from_utf8_lossy(&event).trim().trim_matches('"').to_string();
        let tcp = outcome(target.parse().map_err(std::io::Error::other).and_then(|addr| {
            TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        }));
        let lookup = outcome(("localhost", 80).to_socket_addrs());
        let udp = outcome(UdpSocket::bind("0.0.0.0:0"));
        let body = format!(r#"{{"tcp":"{tcp}","lookup":"{lookup}","udp":"{udp}"}}"#);
        Ok(body.into_bytes())
    }
}

fgs_guest::function!(NetProbe);

fn main() {}
