//! Drives the sans-IO emulator in tests: authorize, JSON calls, uploads, downloads.
#![allow(dead_code, unreachable_pub)]

use b2_emulator::{Config, Emulator};
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response};
use serde_json::{Value, json};
use sha1::Digest as _;

pub const T0: u64 = 1_700_000_000_000;

pub struct H {
    pub emu: Emulator,
    pub now: u64,
    pub token: String,
    pub account_id: String,
}

pub fn sha1_hex(data: &[u8]) -> String {
    sha1::Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn body_json(r: &Response<Bytes>) -> Value {
    serde_json::from_slice(r.body()).unwrap_or(Value::Null)
}

/// Asserts an error reply: status, code, and the `{"status","code","message"}` body shape.
#[track_caller]
pub fn assert_err(r: &(u16, Value), status: u16, code: &str) {
    assert_eq!(r.0, status, "reply: {}", r.1);
    assert_eq!(r.1["code"], code, "reply: {}", r.1);
    assert_eq!(r.1["status"], status);
    assert!(r.1["message"].is_string());
}

impl H {
    pub fn new() -> Self {
        Self::with_config(
            Config::new()
                .with_master_key("masterid", "mastersecret")
                .with_min_part_size(10),
        )
    }

    pub fn with_config(config: Config) -> Self {
        let mut h = Self {
            emu: Emulator::new(config),
            now: T0,
            token: String::new(),
            account_id: String::new(),
        };
        let v = h.authorize("masterid", "mastersecret", 4);
        assert_eq!(v.0, 200, "{}", v.1);
        h.token = v.1["authorizationToken"].as_str().unwrap().to_owned();
        h.account_id = v.1["accountId"].as_str().unwrap().to_owned();
        h
    }

    pub fn authorize(&mut self, id: &str, key: &str, version: u8) -> (u16, Value) {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{key}"));
        let req = Request::get(format!("/b2api/v{version}/b2_authorize_account"))
            .header("Authorization", format!("Basic {basic}"))
            .body(Bytes::new())
            .unwrap();
        let r = self.emu.handle(&req, self.now);
        (r.status().as_u16(), body_json(&r))
    }

    pub fn raw(&mut self, req: Request<Bytes>) -> Response<Bytes> {
        self.emu.handle(&req, self.now)
    }

    /// POSTs a JSON call with the master token.
    pub fn call(&mut self, name: &str, body: Value) -> (u16, Value) {
        let token = self.token.clone();
        self.call_as(&token, name, body)
    }

    pub fn call_as(&mut self, token: &str, name: &str, body: Value) -> (u16, Value) {
        let req = Request::post(format!("/b2api/v4/{name}"))
            .header("Authorization", token)
            .header("Content-Type", "application/json")
            .body(Bytes::from(body.to_string()))
            .unwrap();
        let r = self.emu.handle(&req, self.now);
        (r.status().as_u16(), body_json(&r))
    }

    /// GETs a call with query parameters.
    pub fn get(&mut self, name: &str, query: &str) -> (u16, Value) {
        let req = Request::get(format!("/b2api/v4/{name}?{query}"))
            .header("Authorization", self.token.clone())
            .body(Bytes::new())
            .unwrap();
        let r = self.emu.handle(&req, self.now);
        (r.status().as_u16(), body_json(&r))
    }

    pub fn ok(&mut self, name: &str, body: Value) -> Value {
        let r = self.call(name, body);
        assert_eq!(r.0, 200, "{name}: {}", r.1);
        r.1
    }

    pub fn bucket(&mut self, name: &str) -> String {
        let acct = self.account_id.clone();
        let v = self.ok(
            "b2_create_bucket",
            json!({"accountId": acct, "bucketName": name, "bucketType": "allPrivate"}),
        );
        v["bucketId"].as_str().unwrap().to_owned()
    }

    pub fn upload_url(&mut self, bucket_id: &str) -> (String, String) {
        let v = self.ok("b2_get_upload_url", json!({"bucketId": bucket_id}));
        let url = v["uploadUrl"].as_str().unwrap();
        let path = url.find("/b2api/").map(|i| url[i..].to_owned()).unwrap();
        (path, v["authorizationToken"].as_str().unwrap().to_owned())
    }

    /// Uploads with extra headers; returns status and JSON.
    pub fn upload_with(
        &mut self,
        bucket_id: &str,
        name: &str,
        data: &[u8],
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let (path, token) = self.upload_url(bucket_id);
        let sha = sha1_hex(data);
        let mut b = Request::post(path)
            .header("Authorization", token)
            .header("X-Bz-File-Name", b2_proto::encoding::encode(name))
            .header("Content-Type", "text/plain")
            .header("Content-Length", data.len().to_string());
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("x-bz-content-sha1"))
        {
            b = b.header("X-Bz-Content-Sha1", sha);
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let r = self
            .emu
            .handle(&b.body(Bytes::copy_from_slice(data)).unwrap(), self.now);
        (r.status().as_u16(), body_json(&r))
    }

    pub fn upload(&mut self, bucket_id: &str, name: &str, data: &[u8]) -> Value {
        let r = self.upload_with(bucket_id, name, data, &[]);
        assert_eq!(r.0, 200, "upload: {}", r.1);
        r.1
    }

    pub fn download(&mut self, path_and_query: &str, headers: &[(&str, &str)]) -> Response<Bytes> {
        let mut b = Request::get(path_and_query);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.emu.handle(&b.body(Bytes::new()).unwrap(), self.now)
    }

    /// Starts a large file and uploads `parts`; returns the file id and the part SHA1s.
    pub fn large(&mut self, bucket_id: &str, name: &str, parts: &[&[u8]]) -> (String, Vec<String>) {
        let v = self.ok(
            "b2_start_large_file",
            json!({"bucketId": bucket_id, "fileName": name, "contentType": "b2/x-auto"}),
        );
        let id = v["fileId"].as_str().unwrap().to_owned();
        let mut shas = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let r = self.upload_part(&id, (i + 1) as u32, p);
            assert_eq!(r.0, 200, "part: {}", r.1);
            shas.push(sha1_hex(p));
        }
        (id, shas)
    }

    pub fn upload_part(&mut self, file_id: &str, n: u32, data: &[u8]) -> (u16, Value) {
        let v = self.ok("b2_get_upload_part_url", json!({"fileId": file_id}));
        let url = v["uploadUrl"].as_str().unwrap();
        let path = &url[url.find("/b2api/").unwrap()..];
        let req = Request::post(path)
            .header("Authorization", v["authorizationToken"].as_str().unwrap())
            .header("X-Bz-Part-Number", n.to_string())
            .header("Content-Length", data.len().to_string())
            .header("X-Bz-Content-Sha1", sha1_hex(data))
            .body(Bytes::copy_from_slice(data))
            .unwrap();
        let r = self.emu.handle(&req, self.now);
        (r.status().as_u16(), body_json(&r))
    }
}
