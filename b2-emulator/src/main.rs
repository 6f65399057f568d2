//! `b2-emulator`: serves a local Backblaze B2 Native API until stopped.
//!
//! ```text
//! cargo run -p b2-emulator -- --port 0 [--host 127.0.0.1] [--data-dir DIR] [--key-id ID]
//!     [--key KEY] [--account-id ID] [--min-part-size N] [--recommended-part-size N] [--seed N]
//!     [--fault '{"action": "status", "status": 503, "target": "uploads", "percent": 10}']...
//! ```

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use b2_emulator::{Config, FaultRule, Server};

const USAGE: &str = "usage: b2-emulator [--port N] [--host ADDR] [--data-dir DIR] [--key-id ID] \
[--key KEY] [--account-id ID] [--min-part-size N] [--recommended-part-size N] [--seed N] [--fault JSON]...";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("b2-emulator: {e}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut port: u16 = 0;
    let mut host: IpAddr = IpAddr::from([127, 0, 0, 1]);
    let mut config = Config::new();
    let mut data_dir = None;
    let mut faults = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            return Ok(());
        }
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => port = value()?.parse().map_err(|_| "invalid --port".to_owned())?,
            "--host" => host = value()?.parse().map_err(|_| "invalid --host".to_owned())?,
            "--data-dir" => data_dir = Some(value()?),
            "--key-id" => {
                let id = value()?;
                config = config.clone().with_master_key(id, config.key.clone());
            }
            "--key" => {
                let key = value()?;
                config = config.clone().with_master_key(config.key_id.clone(), key);
            }
            "--account-id" => config = config.with_account_id(value()?),
            "--min-part-size" => {
                let n = value()?
                    .parse()
                    .map_err(|_| "invalid --min-part-size".to_owned())?;
                config = config.with_min_part_size(n);
            }
            "--recommended-part-size" => {
                let n = value()?
                    .parse()
                    .map_err(|_| "invalid --recommended-part-size".to_owned())?;
                config = config.with_recommended_part_size(n);
            }
            "--fault" => {
                let v: serde_json::Value = serde_json::from_str(&value()?)
                    .map_err(|e| format!("--fault takes a JSON rule: {e}"))?;
                faults.push(FaultRule::from_json(&v).map_err(|e| format!("--fault: {e}"))?);
            }
            "--seed" => {
                let n = value()?.parse().map_err(|_| "invalid --seed".to_owned())?;
                config = config.with_seed(n);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let mut builder = Server::builder()
        .with_addr(SocketAddr::new(host, port))
        .with_config(config);
    if let Some(dir) = data_dir {
        builder = builder.with_data_dir(dir);
    }
    let server = builder.start().map_err(|e| format!("cannot start: {e}"))?;
    for rule in faults {
        server.add_fault(rule);
    }
    println!("b2-emulator listening on {}", server.url());
    println!("B2_ENVIRONMENT={}", server.url());
    println!("B2_APPLICATION_KEY_ID={}", server.key_id());
    println!("B2_APPLICATION_KEY={}", server.application_key());
    server.wait();
    Ok(())
}
