//! `--data-dir`: contents and metadata survive a restart; nothing partial is ever visible.

mod common;

use b2_emulator::{Config, Emulator};
use bytes::Bytes;
use common::{T0, body_json, sha1_hex};
use http::Request;
use serde_json::{Value, json};

fn config() -> Config {
    Config::new()
        .with_master_key("masterid", "mastersecret")
        .with_min_part_size(4)
}

struct D {
    emu: Emulator,
    token: String,
}

impl D {
    fn open(dir: &std::path::Path) -> Self {
        let mut emu = Emulator::open(config(), dir).unwrap();
        let req = Request::get("/b2api/v4/b2_authorize_account")
            .header("Authorization", "Basic bWFzdGVyaWQ6bWFzdGVyc2VjcmV0")
            .body(Bytes::new())
            .unwrap();
        let v = body_json(&emu.handle(&req, T0));
        let token = v["authorizationToken"].as_str().unwrap().to_owned();
        Self { emu, token }
    }

    fn call(&mut self, name: &str, body: Value) -> Value {
        let req = Request::post(format!("/b2api/v4/{name}"))
            .header("Authorization", self.token.as_str())
            .body(Bytes::from(body.to_string()))
            .unwrap();
        let r = self.emu.handle(&req, T0);
        assert_eq!(r.status(), 200, "{name}: {}", body_json(&r));
        body_json(&r)
    }

    fn upload_req(&mut self, bucket: &str, name: &str, data: &[u8]) -> Request<Bytes> {
        let v = self.call("b2_get_upload_url", json!({"bucketId": bucket}));
        let url = v["uploadUrl"].as_str().unwrap();
        Request::post(&url[url.find("/b2api/").unwrap()..])
            .header("Authorization", v["authorizationToken"].as_str().unwrap())
            .header("X-Bz-File-Name", name)
            .header("Content-Type", "text/plain")
            .header("Content-Length", data.len().to_string())
            .header("X-Bz-Content-Sha1", sha1_hex(data))
            .body(Bytes::copy_from_slice(data))
            .unwrap()
    }

    fn get(&mut self, path: &str) -> Vec<u8> {
        let req = Request::get(path)
            .header("Authorization", self.token.as_str())
            .body(Bytes::new())
            .unwrap();
        let r = self.emu.handle(&req, T0);
        assert_eq!(r.status(), 200, "{path}");
        r.body().to_vec()
    }
}

fn blob_files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn state_and_contents_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (bucket, key_id, key_secret, token);
    {
        let mut d = D::open(dir.path());
        let acct = "e0a1b2c3d4e5";
        bucket = d.call(
            "b2_create_bucket",
            json!({"accountId": acct, "bucketName": "kept-bucket", "bucketType": "allPrivate"}),
        )["bucketId"]
            .as_str()
            .unwrap()
            .to_owned();
        let req = d.upload_req(&bucket, "small.txt", b"small contents");
        assert_eq!(d.emu.handle(&req, T0).status(), 200);
        let start = d.call(
            "b2_start_large_file",
            json!({"bucketId": bucket, "fileName": "large.bin", "contentType": "a/b"}),
        );
        let fid = start["fileId"].as_str().unwrap().to_owned();
        let mut shas = Vec::new();
        for (n, part) in [
            b"part-one".as_slice(),
            b"part-two".as_slice(),
            b"3".as_slice(),
        ]
        .iter()
        .enumerate()
        {
            let v = d.call("b2_get_upload_part_url", json!({"fileId": fid}));
            let url = v["uploadUrl"].as_str().unwrap();
            let req = Request::post(&url[url.find("/b2api/").unwrap()..])
                .header("Authorization", v["authorizationToken"].as_str().unwrap())
                .header("X-Bz-Part-Number", (n + 1).to_string())
                .header("Content-Length", part.len().to_string())
                .header("X-Bz-Content-Sha1", sha1_hex(part))
                .body(Bytes::copy_from_slice(part))
                .unwrap();
            assert_eq!(d.emu.handle(&req, T0).status(), 200);
            shas.push(sha1_hex(part));
        }
        d.call(
            "b2_finish_large_file",
            json!({"fileId": fid, "partSha1Array": shas}),
        );
        d.call(
            "b2_start_large_file",
            json!({"bucketId": bucket, "fileName": "unfinished", "contentType": "a/b"}),
        );
        d.call(
            "b2_hide_file",
            json!({"bucketId": bucket, "fileName": "small.txt"}),
        );
        let k = d.call(
            "b2_create_key",
            json!({"accountId": acct, "capabilities": ["readFiles"], "keyName": "kept"}),
        );
        key_id = k["applicationKeyId"].as_str().unwrap().to_owned();
        key_secret = k["applicationKey"].as_str().unwrap().to_owned();
        token = d.token.clone();
    }
    let mut d = D::open(dir.path());
    // The old account token still works.
    d.token = token;
    let v = d.call("b2_list_file_versions", json!({"bucketId": bucket}));
    let actions: Vec<_> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["fileName"].clone(), f["action"].clone()))
        .collect();
    assert_eq!(
        actions,
        vec![
            (json!("large.bin"), json!("upload")),
            (json!("small.txt"), json!("hide")),
            (json!("small.txt"), json!("upload")),
            (json!("unfinished"), json!("start")),
        ]
    );
    assert_eq!(d.get("/file/kept-bucket/large.bin"), b"part-onepart-two3");
    let small_id = v["files"][2]["fileId"].as_str().unwrap().to_owned();
    assert_eq!(
        d.get(&format!(
            "/b2api/v4/b2_download_file_by_id?fileId={small_id}"
        )),
        b"small contents"
    );
    // The created key authorizes after the restart.
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{key_id}:{key_secret}"));
    let req = Request::get("/b2api/v4/b2_authorize_account")
        .header("Authorization", format!("Basic {basic}"))
        .body(Bytes::new())
        .unwrap();
    assert_eq!(d.emu.handle(&req, T0).status(), 200);
    // New ids do not collide with old ones.
    let req = d.upload_req(&bucket, "after.txt", b"after");
    let v = body_json(&d.emu.handle(&req, T0));
    assert_ne!(v["fileId"], json!(small_id));
    assert_eq!(
        d.call("b2_list_file_names", json!({"bucketId": bucket}))["files"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn an_interrupted_upload_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = D::open(dir.path());
    let bucket = d.call("b2_create_bucket", json!({"accountId": "e0a1b2c3d4e5", "bucketName": "kept-bucket", "bucketType": "allPrivate"}))["bucketId"]
        .as_str()
        .unwrap()
        .to_owned();
    let req = d.upload_req(&bucket, "partial", b"0123456789");
    let (head, _) = req.into_parts();
    let mut up = d.emu.begin_upload(&head, T0).unwrap();
    up.write(b"01234").unwrap();
    // A temporary file exists while the body is arriving, under a name never loaded as a blob.
    assert!(blob_files(dir.path()).iter().all(|f| f.starts_with("tmp-")));
    d.emu.abort_upload(up);
    assert!(blob_files(dir.path()).is_empty());
    drop(d);
    let mut d = D::open(dir.path());
    assert!(
        d.call("b2_list_file_versions", json!({"bucketId": bucket}))["files"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn deleted_contents_are_removed_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = D::open(dir.path());
    let bucket = d.call("b2_create_bucket", json!({"accountId": "e0a1b2c3d4e5", "bucketName": "kept-bucket", "bucketType": "allPrivate"}))["bucketId"]
        .as_str()
        .unwrap()
        .to_owned();
    let req = d.upload_req(&bucket, "f", b"data");
    let v = body_json(&d.emu.handle(&req, T0));
    assert_eq!(blob_files(dir.path()).len(), 1);
    // A copy shares the blob: deleting the source keeps it.
    let c = d.call(
        "b2_copy_file",
        json!({"sourceFileId": v["fileId"], "fileName": "g"}),
    );
    d.call(
        "b2_delete_file_version",
        json!({"fileName": "f", "fileId": v["fileId"]}),
    );
    assert_eq!(blob_files(dir.path()).len(), 1);
    d.call(
        "b2_delete_file_version",
        json!({"fileName": "g", "fileId": c["fileId"]}),
    );
    assert!(blob_files(dir.path()).is_empty());
    // A stray blob left by a crash is removed on the next start.
    std::fs::write(dir.path().join("blobs").join("00000000000000ff"), b"junk").unwrap();
    std::fs::write(
        dir.path().join("blobs").join("tmp-0000000000000100"),
        b"junk",
    )
    .unwrap();
    drop(d);
    let _d = D::open(dir.path());
    assert!(blob_files(dir.path()).is_empty());
}

#[test]
fn unreadable_metadata_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("blobs")).unwrap();
    std::fs::write(dir.path().join("state.json"), b"{not json").unwrap();
    assert!(Emulator::open(config(), dir.path()).is_err());
    // Metadata naming a blob that is gone.
    let d2 = tempfile::tempdir().unwrap();
    {
        let mut d = D::open(d2.path());
        let bucket = d.call("b2_create_bucket", json!({"accountId": "e0a1b2c3d4e5", "bucketName": "kept-bucket", "bucketType": "allPrivate"}))["bucketId"]
            .as_str()
            .unwrap()
            .to_owned();
        let req = d.upload_req(&bucket, "f", b"data");
        assert_eq!(d.emu.handle(&req, T0).status(), 200);
    }
    for f in blob_files(d2.path()) {
        std::fs::remove_file(d2.path().join("blobs").join(f)).unwrap();
    }
    let e = Emulator::open(config(), d2.path()).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}

#[test]
fn a_kill_between_record_and_state_does_not_reuse_ids() {
    let dir = tempfile::tempdir().unwrap();
    let bucket;
    {
        let mut d = D::open(dir.path());
        bucket = d.call("b2_create_bucket", json!({"accountId": "e0a1b2c3d4e5", "bucketName": "kept-bucket", "bucketType": "allPrivate"}))["bucketId"]
            .as_str()
            .unwrap()
            .to_owned();
        let req = d.upload_req(&bucket, "one", b"1");
        assert_eq!(d.emu.handle(&req, T0).status(), 200);
    }
    // The state as it was before the upload's record was counted in it.
    let state = std::fs::read(dir.path().join("state.json")).unwrap();
    {
        let mut d = D::open(dir.path());
        let req = d.upload_req(&bucket, "two", b"2");
        assert_eq!(d.emu.handle(&req, T0).status(), 200);
    }
    let records = std::fs::read_dir(dir.path().join("files")).unwrap().count();
    assert_eq!(records, 2);
    std::fs::write(dir.path().join("state.json"), state).unwrap();
    let mut d = D::open(dir.path());
    let req = d.upload_req(&bucket, "three", b"3");
    assert_eq!(d.emu.handle(&req, T0).status(), 200);
    let v = d.call("b2_list_file_versions", json!({"bucketId": bucket}));
    let mut ids: Vec<_> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    assert_eq!(d.get("/file/kept-bucket/two"), b"2");
    // Random ids continue where they stopped: a new bucket does not take an old one's id.
    d.call("b2_create_bucket", json!({"accountId": "e0a1b2c3d4e5", "bucketName": "second-bucket", "bucketType": "allPrivate"}));
    let v = d.call("b2_list_buckets", json!({"accountId": "e0a1b2c3d4e5"}));
    assert_eq!(v["buckets"].as_array().unwrap().len(), 2);
}

#[test]
fn lifecycle_rules_act_on_files_from_before_a_restart() {
    const DAY: u64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let bucket = {
        let mut d = D::open(dir.path());
        let auth = Request::get("/b2api/v4/b2_authorize_account")
            .header("Authorization", "Basic bWFzdGVyaWQ6bWFzdGVyc2VjcmV0")
            .body(Bytes::new())
            .unwrap();
        let account_id = body_json(&d.emu.handle(&auth, T0))["accountId"]
            .as_str()
            .unwrap()
            .to_owned();
        let b = d.call(
            "b2_create_bucket",
            json!({"accountId": account_id, "bucketName": "lifecycle-kept", "bucketType": "allPrivate",
                   "lifecycleRules": [{"fileNamePrefix": "", "daysFromUploadingToHiding": 1,
                                       "daysFromHidingToDeleting": 1}]}),
        )["bucketId"]
            .as_str()
            .unwrap()
            .to_owned();
        let req = d.upload_req(&b, "a", b"data");
        assert_eq!(d.emu.handle(&req, T0).status(), 200);
        b
    };
    let versions = |d: &mut D, now: u64| -> Vec<(String, u64)> {
        let auth = Request::get("/b2api/v4/b2_authorize_account")
            .header("Authorization", "Basic bWFzdGVyaWQ6bWFzdGVyc2VjcmV0")
            .body(Bytes::new())
            .unwrap();
        let token = body_json(&d.emu.handle(&auth, now))["authorizationToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let req = Request::post("/b2api/v4/b2_list_file_versions")
            .header("Authorization", token)
            .body(Bytes::from(json!({"bucketId": bucket}).to_string()))
            .unwrap();
        let v = body_json(&d.emu.handle(&req, now));
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["action"].as_str().unwrap().to_owned(),
                    f["uploadTimestamp"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    // A restarted emulator knows when the file falls due.
    {
        let mut d = D::open(dir.path());
        assert_eq!(
            versions(&mut d, T0 + 2 * DAY - 1),
            [("hide".to_owned(), T0 + DAY), ("upload".to_owned(), T0)]
        );
        assert_eq!(
            versions(&mut d, T0 + 2 * DAY),
            [("hide".to_owned(), T0 + DAY)]
        );
    }
    // And what the rules did was written down.
    let mut d = D::open(dir.path());
    assert_eq!(versions(&mut d, T0), [("hide".to_owned(), T0 + DAY)]);
}
