//! A receiver for measuring the client's side of an upload benchmark.
//!
//! Listens on `127.0.0.1:0`, prints the port, and answers each HTTP/1.1 request (one per
//! connection) after reading its `Content-Length` body, on one thread. It does only what is
//! asked, so that the benchmark can compare the emulator with the least any server must do:
//!
//! - no flag: read the body into one reused 1 MiB buffer and discard it;
//! - `--sha1`: also compute its SHA1, as any server that verifies uploads must;
//! - `--keep`: read it into fresh 1 MiB buffers kept until the reply is sent, as any server that
//!   stores uploads in memory must (the memory is freed after the reply).
//!
//! The reply is `200` with the byte count and the SHA1 (or `none`), so the benchmark can check
//! that every byte arrived.
//!
//! `cargo run --release -p b2-emulator --example bench_sink -- [--sha1] [--keep]`

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use sha1::{Digest, Sha1};

fn main() -> io::Result<()> {
    let hash = std::env::args().any(|a| a == "--sha1");
    let keep = std::env::args().any(|a| a == "--keep");
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?.port());
    io::stdout().flush()?;
    for stream in listener.incoming() {
        let stream = stream?;
        if let Err(e) = serve(&stream, hash, keep) {
            eprintln!("bench_sink: {e}");
        }
    }
    Ok(())
}

fn serve(stream: &std::net::TcpStream, hash: bool, keep: bool) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let mut len: u64 = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "no request head",
            ));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                len = value.trim().parse().map_err(io::Error::other)?;
            }
        }
    }
    let mut sha = Sha1::new();
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0;
    let mut left = len;
    while left > 0 {
        if filled == buf.len() {
            if keep {
                kept.push(std::mem::replace(&mut buf, vec![0u8; 1 << 20]));
            }
            filled = 0;
        }
        let room = buf.len() - filled;
        let want = usize::try_from(left.min(room as u64)).unwrap_or(room);
        let n = reader.read(&mut buf[filled..filled + want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "body cut short",
            ));
        }
        if hash {
            sha.update(&buf[filled..filled + n]);
        }
        filled += n;
        left -= n as u64;
    }
    kept.push(buf);
    let digest = if hash {
        sha.finalize().iter().map(|b| format!("{b:02x}")).collect()
    } else {
        "none".to_string()
    };
    let body = format!("{{\"contentLength\":{len},\"contentSha1\":\"{digest}\"}}");
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}
