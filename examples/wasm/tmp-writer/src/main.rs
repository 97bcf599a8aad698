//! Writes the number of MB given as the event to /tmp/fill until done or the disk is full;
//! reports what it wrote and what /tmp held before.

use std::io::Write;

struct TmpWriter;

impl fgs_guest::Handler for TmpWriter {
    fn handle(event: Vec<u8>, _ctx: &fgs_guest::Context) -> Result<Vec<u8>, fgs_guest::FunctionError> {
        let mb: usize = String::from_utf8_lossy(&event).trim().parse().unwrap_or(0);
        let before: Vec<String> = std::fs::read_dir("/tmp")
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let mut written = 0;
        let mut error = String::new();
        if mb > 0 {
            let chunk = vec![b'x'; 1024 * 1024];
            match std::fs::File::create("/tmp/fill") {
                Ok(mut file) => {
                    for _ in 0..mb {
                        if let Err(e) = file.write_all(&chunk).and_then(|_| file.flush()) {
                            error = e.to_string();
                            break;
                        }
                        written += 1;
                    }
                }
                Err(e) => error = e.to_string(),
            }
        }
        let body = format!(r#"{{"before":{before:?},"written_mb":{written},"error":"{error}"}}"#);
        Ok(body.into_bytes())
    }
}

fgs_guest::function!(TmpWriter);

fn main() {}
