//! The behaviour cases. Each takes a [`Harness`] and the [`Target`] it runs against, works in
//! buckets of its own with random names, and removes them on the way out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use b2_emulator::{FaultAction, FaultRule, FaultTarget};
use b2_proto::model::{Action, Bucket, BucketType, FileVersion, LifecycleRule};
use b2_proto::ops::{
    self, ByteRange, DownloadAuth, DownloadFileById, DownloadFileByName, MetadataDirective,
};
use b2_proto::progress::{Progress, ProgressFn};
use b2_proto::transfer::{NewFile, UploadStrategy};
use b2_proto::verify::Verification;
use b2_proto::{BucketName, Capability, ErrorCode, FileInfo, FileName, Sha1Digest};
use bytes::Bytes;

use crate::{Harness, Target};

/// Deterministic bytes that differ from seed to seed.
pub fn data(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

fn name(s: &str) -> FileName {
    FileName::new(s).expect("valid test name")
}

/// A bucket that empties and deletes itself when dropped.
pub struct TestBucket<'a, H: Harness> {
    h: &'a H,
    /// The bucket.
    pub bucket: Bucket,
}

impl<H: Harness> TestBucket<'_, H> {
    /// A new file in this bucket.
    pub fn file(&self, file_name: &str) -> NewFile {
        NewFile::new(self.bucket.bucket_id.clone(), name(file_name))
    }
}

impl<H: Harness> Drop for TestBucket<'_, H> {
    fn drop(&mut self) {
        let id = self.bucket.bucket_id.clone();
        if let Ok(unfinished) = self
            .h
            .list_unfinished_large_files(ops::ListUnfinishedLargeFiles::new(id.clone()))
        {
            for f in unfinished {
                if let Some(file_id) = &f.file_id {
                    let _ = self.h.cancel_large_file(file_id);
                }
            }
        }
        if let Ok(versions) = self
            .h
            .list_file_versions(ops::ListFileVersions::new(id.clone()))
        {
            for v in versions {
                if let Some(file_id) = &v.file_id {
                    let _ = self.h.delete_file_version(&v.file_name, file_id);
                }
            }
        }
        let _ = self.h.delete_bucket(&id);
    }
}

/// Creates a private bucket for one case.
pub fn new_bucket<'a, H: Harness>(h: &'a H, t: &Target) -> TestBucket<'a, H> {
    let bucket_name = BucketName::new(t.bucket_name()).expect("valid bucket name");
    let bucket = h
        .create_bucket(ops::CreateBucket::new(bucket_name, BucketType::AllPrivate))
        .expect("bucket created");
    TestBucket { h, bucket }
}

/// The smallest part the target accepts.
fn min_part<H: Harness>(h: &H) -> u64 {
    h.session().expect("session").absolute_minimum_part_size
}

/// A strategy that sends anything over two parts through the large-file API in parts of the
/// target's minimum size.
fn small_parts<H: Harness>(h: &H) -> UploadStrategy {
    let part = min_part(h);
    UploadStrategy::default()
        .with_cutoff(2 * part)
        .with_part_size(part)
        .with_max_in_flight(4)
}

fn expect_code<T: std::fmt::Debug>(result: Result<T, b2_proto::Error>, code: ErrorCode) {
    match result {
        Err(e) => assert_eq!(e.code(), Some(&code), "expected {code}, got {e}"),
        Ok(v) => panic!("expected {code}, got success: {v:?}"),
    }
}

fn assert_matched(v: &Verification) {
    assert!(v.is_matched(), "SHA1 not verified: {v:?}");
}

/// Authorizes and reports what the key may do, never showing secrets.
pub fn authorize_and_session<H: Harness>(h: &H, t: &Target) {
    let session = h.session().expect("authorized");
    assert!(!session.account_id.as_str().is_empty());
    assert!(session.api_url.starts_with("http"));
    assert!(session.download_url.starts_with("http"));
    assert!(session.absolute_minimum_part_size > 0);
    assert!(session.recommended_part_size >= session.absolute_minimum_part_size);
    assert!(
        session.allowed.has(&Capability::ListBuckets),
        "{:?}",
        session.allowed
    );
    let shown = format!("{session:?}");
    assert!(
        !shown.contains(session.authorization_token.expose_secret()),
        "token in Debug"
    );
    assert!(!shown.contains(&t.key), "key in Debug");
}

/// A wrong key is refused with `401 unauthorized`, and the key is not echoed.
pub fn bad_key_is_refused<H: Harness>(h: &H, t: &Target) {
    let wrong = h.with_key(&t.key_id, "K000notTheRightKeyAtAll0000000000000");
    let err = wrong.list_buckets().expect_err("a wrong key is refused");
    assert!(err.is_unauthorized(), "{err}");
    assert!(!format!("{err} {err:?}").contains("K000notTheRightKey"));
}

/// Create, find, list, update (with revisions), refuse duplicates and non-empty deletes, delete.
pub fn bucket_lifecycle<H: Harness>(h: &H, t: &Target) {
    let bucket_name = BucketName::new(t.bucket_name()).unwrap();
    let mut info = BTreeMap::new();
    info.insert("purpose".to_owned(), "behaviour-suite".to_owned());
    let created = h
        .create_bucket(
            ops::CreateBucket::new(bucket_name.clone(), BucketType::AllPrivate)
                .with_bucket_info(info.clone())
                .with_lifecycle_rules(vec![
                    LifecycleRule::new("logs/").with_days_from_hiding_to_deleting(7),
                ]),
        )
        .expect("created");
    let guard = TestBucket {
        h,
        bucket: created.clone(),
    };
    assert_eq!(created.bucket_name, bucket_name);
    assert_eq!(created.bucket_type, BucketType::AllPrivate);
    assert_eq!(created.bucket_info, info);
    assert_eq!(created.lifecycle_rules.len(), 1);
    let found = h
        .bucket_by_name(bucket_name.as_str())
        .unwrap()
        .expect("found by name");
    assert_eq!(found.bucket_id, created.bucket_id);
    assert!(
        h.list_buckets()
            .unwrap()
            .iter()
            .any(|b| b.bucket_id == created.bucket_id)
    );
    expect_code(
        h.create_bucket(ops::CreateBucket::new(
            bucket_name.clone(),
            BucketType::AllPrivate,
        )),
        ErrorCode::DuplicateBucketName,
    );
    let updated = h
        .update_bucket(
            ops::UpdateBucket::new(created.bucket_id.clone())
                .with_bucket_type(BucketType::AllPublic)
                .with_if_revision_is(created.revision),
        )
        .expect("updated");
    assert_eq!(updated.bucket_type, BucketType::AllPublic);
    assert!(updated.revision > created.revision);
    expect_code(
        h.update_bucket(
            ops::UpdateBucket::new(created.bucket_id.clone())
                .with_bucket_type(BucketType::AllPrivate)
                .with_if_revision_is(created.revision),
        ),
        ErrorCode::Conflict,
    );
    let file = h
        .upload_bytes(guard.file("keep.txt"), Bytes::from_static(b"x"))
        .unwrap();
    expect_code(
        h.delete_bucket(&created.bucket_id),
        ErrorCode::CannotDeleteNonEmptyBucket,
    );
    h.delete_file_version(&file.file_name, file.file_id.as_ref().unwrap())
        .unwrap();
    let deleted = h
        .delete_bucket(&created.bucket_id)
        .expect("an empty bucket is deleted");
    assert_eq!(deleted.bucket_id, created.bucket_id);
    assert!(h.bucket_by_name(bucket_name.as_str()).unwrap().is_none());
    std::mem::forget(guard);
}

/// Bytes up, bytes down, by id and by name, with info and SHA1 checked.
pub fn small_upload_download_round_trip<H: Harness>(h: &H, t: &Target) {
    let b = new_bucket(h, t);
    let body = data(1000, 1);
    let mut info = FileInfo::new();
    info.insert("author", "Ada Lovelace").unwrap();
    let up = h
        .upload_bytes(
            b.file("notes/hello.txt")
                .with_content_type("text/plain")
                .with_file_info(info)
                .with_last_modified_millis(1_700_000_000_000),
            body.clone(),
        )
        .expect("uploaded");
    assert_eq!(up.action, Action::Upload);
    assert_eq!(up.content_length, 1000);
    assert_eq!(up.content_sha1.digest(), Some(Sha1Digest::of(&body)));
    assert_eq!(up.file_info.get("author"), Some("Ada Lovelace"));
    assert_eq!(
        up.file_info.get("src_last_modified_millis"),
        Some("1700000000000")
    );
    let id = up.file_id.clone().unwrap();
    let info = h.file_info(&id).unwrap();
    assert_eq!(info.file_name, up.file_name);
    assert_eq!(info.content_type.as_deref(), Some("text/plain"));
    let (head, bytes, v) = h.download_bytes(DownloadFileById::new(id.clone())).unwrap();
    assert_eq!(bytes, body);
    assert_matched(&v);
    assert_eq!(head.file_info.get("author"), Some("Ada Lovelace"));
    let (head, bytes, v) = h
        .download_bytes(DownloadFileByName::new(
            b.bucket.bucket_name.clone(),
            up.file_name.clone(),
        ))
        .unwrap();
    assert_eq!(bytes, body);
    assert_matched(&v);
    assert_eq!(head.file_id, id);
    let head = h
        .file_info_by_name(&b.bucket.bucket_name, &up.file_name)
        .unwrap();
    assert_eq!(head.content_length, 1000);
    assert_eq!(head.content_type.as_deref(), Some("text/plain"));
    let empty = h.upload_bytes(b.file("empty"), Bytes::new()).unwrap();
    let (_, bytes, v) = h
        .download_bytes(DownloadFileById::new(empty.file_id.unwrap()))
        .unwrap();
    assert!(bytes.is_empty());
    assert_matched(&v);
}

/// Names and info values that need percent-encoding survive the round trip exactly.
pub fn awkward_names_and_info_round_trip<H: Harness>(h: &H, t: &Target) {
    let b = new_bucket(h, t);
    let names = [
        "with space.txt",
        "plus+sign.txt",
        "percent%41.txt",
        "dir/sub dir/ünïcødé 自由.txt",
        "emoji 🦀.bin",
        "quote\"apos'amp&eq=semi;.txt",
        "tilde~star*paren(1).txt",
    ];
    for (i, n) in names.iter().enumerate() {
        let mut info = FileInfo::new();
        info.insert("label", format!("värde {n} +%")).unwrap();
        let body = data(10 + i, i as u64);
        let up = h
            .upload_bytes(b.file(n).with_file_info(info), body.clone())
            .expect(n);
        assert_eq!(up.file_name.as_str(), *n);
        let (head, bytes, _) = h
            .download_bytes(DownloadFileByName::new(
                b.bucket.bucket_name.clone(),
                name(n),
            ))
            .expect(n);
        assert_eq!(head.file_name.as_str(), *n);
        assert_eq!(
            head.file_info.get("label"),
            Some(format!("värde {n} +%").as_str())
        );
        assert_eq!(bytes, body);
    }
    let listed: Vec<String> = h
        .list_file_names(ops::ListFileNames::new(b.bucket.bucket_id.clone()), None)
        .unwrap()
        .into_iter()
        .map(|f| f.file_name.as_str().to_owned())
        .collect();
    let mut expected: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(listed, expected, "listed in UTF-8 byte order");
}

/// Bytes over the cutoff go in parallel parts; the whole SHA1 is recorded and verified.
pub fn large_upload_from_bytes_in_parallel_parts<H: Harness>(h: &H, t: &Target) {
    let b = new_bucket(h, t);
    let h2 = h.with_upload_strategy(small_parts(h));
    let part = usize::try_from(min_part(h)).unwrap();
    let body = data(part * 3 + part / 2, 7);
    let up = h2
        .upload_bytes(b.file("big.bin"), body.clone())
        .expect("large upload");
    assert_eq!(up.content_length, body.len() as u64);
    assert_eq!(
        up.file_info.get("large_file_sha1"),
        Some(Sha1Digest::of(&body).to_hex().as_str())
    );
    let (_, bytes, v) = h
        .download_bytes(DownloadFileById::new(up.file_id.unwrap()))
        .unwrap();
    assert_eq!(bytes, body);
    assert_matched(&v);
    assert!(
        h.list_unfinished_large_files(ops::ListUnfinishedLargeFiles::new(
            b.bucket.bucket_id.clone()
        ))
        .unwrap()
        .is_empty()
    );
}

/// Files from disk, small and large, streamed.
pub fn upload_from_path_small_and_large<H: Harness>(h: &H, t: &Target) {
    let b = new_bucket(h, t);
    let h2 = h.with_upload_strategy(small_parts(h));
    let dir = tempdir();
    let part = usize::try_from(min_part(h)).unwrap();
    for (i, len) in [1234, part * 4 + 17].into_iter().enumerate() {
        let body = data(len, 20 + i as u64);
        let path = dir.join(format!("f{i}"));
        std::fs::write(&path, &body).unwrap();
        let up = h2
            .upload_path(b.file(&format!("from-disk-{i}")), &path)
            .expect("uploaded from disk");
        assert_eq!(up.content_length, len as u64);
        let (_, bytes, v) = h
            .download_bytes(DownloadFileById::new(up.file_id.unwrap()))
            .unwrap();
        assert_eq!(bytes, body);
        assert_matched(&v);
    }
    let missing = h2.upload_path(b.file("missing"), &dir.join("does-not-exist"));
    assert!(
        matches!(missing, Err(b2_proto::Error::Io { .. })),
        "{missing:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Readers that cannot seek, with and without a known length, small and large.
pub fn upload_from_readers_known_and_unknown_length<H: Harness>(h: &H, t: &Target) {
    let b = new_bucket(h, t);
    let h2 = h.with_upload_strategy(small_parts(h));
    let part = usize::try_from(min_part(h)).unwrap();
    let mut n = 0;
    for len in [500, part * 3 + 99] {
        for announce in [true, false] {
            n += 1;
            let body = data(len, 40 + n);
            let up = h2
                .upload_reader(b.file(&format!("reader-{n}")), body.clone(), announce)
                .unwrap_or_else(|e| panic!("{len} bytes, length announced: {announce}: {e}"));
            assert_eq!(up.content_length, len as u64);
            let (_, bytes, v) = h
                .download_bytes(DownloadFileById::new(up.file_id.unwrap()))
                .unwrap();
            assert_eq!(bytes, body, "{len} bytes, announced: {announce}");
            if len < part * 2 {
                assert_matched(&v);
            } else {
                // A large file is started before a reader's bytes are seen, so no whole-file
                // SHA1 can be recorded; B2 checked each part's SHA1 on upload.
                assert!(
                    matches!(
                        v,
                        Verification::Unverifiable(b2_proto::verify::Unverifiable::NoSha1)
                    ),
                    "{v:?}"
                );
            }
        }
    }
}

/// Chunked streams, readers, ranges, and the errors for missing files and bad ranges.
pub fn downloads_stream_read_and_range<H: Harness>(h: &H, t: &Target) {
    let b = new_bucket(h, t);
    let body = data(10_000, 3);
    let up = h.upload_bytes(b.file("stream.bin"), body.clone()).unwrap();
    let id = up.file_id.unwrap();
    let (_, chunks, v) = h
        .download_chunks(DownloadFileById::new(id.clone()), 1000)
        .unwrap();
    assert_eq!(chunks.len(), 10);
    assert!(chunks.iter().all(|c| c.len() == 1000));
    assert_eq!(chunks.concat(), body.to_vec());
    assert_matched(v.as_ref().expect("verified at the end"));
    assert_eq!(
        h.download_read_to_end(DownloadFileById::new(id.clone()))
            .unwrap(),
        body.to_vec()
    );
    let (head, bytes, v) = h
        .download_bytes(
            DownloadFileById::new(id.clone()).with_range(ByteRange::new(100, 199).unwrap()),
        )
        .unwrap();
    assert_eq!(&bytes[..], &body[100..200]);
    assert_eq!(head.status, 206);
    assert!(
        !v.is_matched(),
        "a range cannot be checked against the whole file's SHA1"
    );
    let (_, bytes, _) = h
        .download_bytes(
            DownloadFileById::new(id.clone()).with_range(ByteRange::suffix(10).unwrap()),
        )
        .unwrap();
    assert_eq!(&bytes[..], &body[9990..]);
    expect_code(
        h.download_bytes(DownloadFileById::new(id).with_range(ByteRange::starting_at(20_000))),
        ErrorCode::RangeNotSatisfiable,
    );
    let missing = h.download_bytes(DownloadFileByName::new(
        b.bucket.bucket_name.clone(),
        name("no-such-file"),
    ));
    assert!(
        missing
            .as_ref()
            .err()
            .is_some_and(b2_proto::Error::is_not_found),
        "{missing:?}"
    );
}

/// A file fetched in parallel ranges into a path, verified whole, nothing partial on failure.
pub fn download_to_path_in_parallel_ranges<H: Harness>(h: &H, t: &Target) {
    let b = new_bucket(h, t);
    let body = data(33_333, 5);
    let up = h
        .upload_bytes(b.file("parallel.bin"), body.clone())
        .unwrap();
    let dir = tempdir();
    let path = dir.join("out.bin");
    let (head, v) = h
        .download_to_path(
            DownloadFileById::new(up.file_id.clone().unwrap()),
            &path,
            4096,
            4,
        )
        .unwrap();
    assert_eq!(head.file_size(), 33_333);
    assert_matched(&v);
    assert_eq!(std::fs::read(&path).unwrap(), body.to_vec());
    let small = dir.join("small.bin");
    let (_, v) = h
        .download_to_path(
            DownloadFileById::new(up.file_id.clone().unwrap()),
            &small,
            1 << 20,
            4,
        )
        .unwrap();
    assert_matched(&v);
    assert_eq!(std::fs::read(&small).unwrap(), body.to_vec());
    let bad = dir.join("no-such-dir").join("out.bin");
    assert!(
        h.download_to_path(DownloadFileById::new(up.file_id.unwrap()), &bad, 4096, 4)
            .is_err()
    );
    assert!(!bad.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "no temporary files left behind: {leftovers:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Names in byte order, prefixes, folders with a delimiter, limits, and versions newest first.
pub fn listing_names_versions_prefix_delimiter_and_limit<H: Harness>(h: &H, t: &Target) {
    let b = new_bucket(h, t);
    for n in ["a.txt", "b/1.txt", "b/2.txt", "b/deep/3.txt", "c.txt"] {
        h.upload_bytes(b.file(n), Bytes::from(n.as_bytes().to_vec()))
            .unwrap();
    }
    let second = h
        .upload_bytes(b.file("a.txt"), Bytes::from_static(b"second"))
        .unwrap();
    let id = b.bucket.bucket_id.clone();
    let names = |files: Vec<FileVersion>| {
        files
            .into_iter()
            .map(|f| f.file_name.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            h.list_file_names(ops::ListFileNames::new(id.clone()), None)
                .unwrap()
        ),
        ["a.txt", "b/1.txt", "b/2.txt", "b/deep/3.txt", "c.txt"]
    );
    assert_eq!(
        names(
            h.list_file_names(ops::ListFileNames::new(id.clone()).with_prefix("b/"), None)
                .unwrap()
        ),
        ["b/1.txt", "b/2.txt", "b/deep/3.txt"]
    );
    let folders = h
        .list_file_names(
            ops::ListFileNames::new(id.clone()).with_delimiter("/"),
            None,
        )
        .unwrap();
    assert_eq!(names(folders.clone()), ["a.txt", "b/", "c.txt"]);
    assert_eq!(folders[1].action, Action::Folder);
    // Pages of two: the stream follows the cursor across pages.
    let paged = h
        .list_file_names(
            ops::ListFileNames::new(id.clone()).with_max_file_count(2),
            None,
        )
        .unwrap();
    assert_eq!(paged.len(), 5);
    assert_eq!(
        h.list_file_names(
            ops::ListFileNames::new(id.clone()).with_max_file_count(2),
            Some(3)
        )
        .unwrap()
        .len(),
        3
    );
    let versions = h
        .list_file_versions(ops::ListFileVersions::new(id.clone()).with_prefix("a.txt"))
        .unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].file_id, second.file_id, "newest first");
    let start = h
        .list_file_names(
            ops::ListFileNames::new(id).with_start_file_name(name("b/2.txt")),
            None,
        )
        .unwrap();
    assert_eq!(names(start), ["b/2.txt", "b/deep/3.txt", "c.txt"]);
}

/// Hide, unhide, delete one version, delete all versions.
pub fn hide_unhide_and_delete_versions<H: Harness>(h: &H, t: &Target) {
    let b = new_bucket(h, t);
    let id = b.bucket.bucket_id.clone();
    let n = name("secret.txt");
    let v1 = h
        .upload_bytes(b.file("secret.txt"), Bytes::from_static(b"one"))
        .unwrap();
    let v2 = h
        .upload_bytes(b.file("secret.txt"), Bytes::from_static(b"two"))
        .unwrap();
    let marker = h.hide_file(&id, &n).unwrap();
    assert_eq!(marker.action, Action::Hide);
    assert!(
        h.list_file_names(ops::ListFileNames::new(id.clone()), None)
            .unwrap()
            .is_empty()
    );
    let hidden = h.download_bytes(DownloadFileByName::new(
        b.bucket.bucket_name.clone(),
        n.clone(),
    ));
    assert!(
        hidden
            .as_ref()
            .err()
            .is_some_and(b2_proto::Error::is_not_found),
        "{hidden:?}"
    );
    expect_code(h.hide_file(&id, &n), ErrorCode::AlreadyHidden);
    let unhidden = h
        .unhide_file(&id, &n)
        .unwrap()
        .expect("a hide marker was removed");
    assert_eq!(unhidden.file_id, marker.file_id);
    assert!(
        h.unhide_file(&id, &n).unwrap().is_none(),
        "nothing left to unhide"
    );
    let (_, bytes, _) = h
        .download_bytes(DownloadFileByName::new(
            b.bucket.bucket_name.clone(),
            n.clone(),
        ))
        .unwrap();
    assert_eq!(&bytes[..], b"two");
    h.delete_file_version(&n, v2.file_id.as_ref().unwrap())
        .unwrap();
    let (_, bytes, _) = h
        .download_bytes(DownloadFileByName::new(
            b.bucket.bucket_name.clone(),
            n.clone(),
        ))
        .unwrap();
    assert_eq!(&bytes[..], b"one", "the older version is current again");
    expect_code(
        h.delete_file_version(&n, v2.file_id.as_ref().unwrap()),
        ErrorCode::FileNotPresent,
    );
    h.upload_bytes(b.file("secret.txt.bak"), Bytes::from_static(b"other name"))
        .unwrap();
    h.hide_file(&id, &n).unwrap();
    assert_eq!(
        h.delete_all_versions(&id, &n).unwrap(),
        2,
        "v1 and the hide marker, not the .bak"
    );
    assert!(h.file_info(v1.file_id.as_ref().unwrap()).is_err());
    assert_eq!(
        h.list_file_versions(ops::ListFileVersions::new(id.clone()))
            .unwrap()
            .len(),
        1
    );
    expect_code(
        h.hide_file(&id, &name("never-uploaded")),
        ErrorCode::NoSuchFile,
    );
}

/// Server-side copies: whole, ranged, with new metadata, and by parts.
pub fn copy_small_and_large<H: Harness>(h: &H, t: &Target) {
    let b = new_bucket(h, t);
    let body = data(5000, 9);
    let mut info = FileInfo::new();
    info.insert("origin", "source").unwrap();
    let src = h
        .upload_bytes(
            b.file("src.bin")
                .with_content_type("application/x-test")
                .with_file_info(info),
            body.clone(),
        )
        .unwrap();
    let src_id = src.file_id.clone().unwrap();
    let copy = h
        .copy_file(ops::CopyFile::new(src_id.clone(), name("copy.bin")))
        .unwrap();
    assert_eq!(copy.content_type.as_deref(), Some("application/x-test"));
    assert_eq!(copy.file_info.get("origin"), Some("source"));
    let (_, bytes, v) = h
        .download_bytes(DownloadFileById::new(copy.file_id.clone().unwrap()))
        .unwrap();
    assert_eq!(bytes, body);
    assert_matched(&v);
    let ranged = h
        .copy_file(
            ops::CopyFile::new(src_id.clone(), name("range.bin"))
                .with_range(ByteRange::new(1000, 1999).unwrap())
                .with_metadata(MetadataDirective::replace("text/plain", FileInfo::new())),
        )
        .unwrap();
    assert_eq!(ranged.content_length, 1000);
    assert_eq!(ranged.content_type.as_deref(), Some("text/plain"));
    let (_, bytes, _) = h
        .download_bytes(DownloadFileById::new(ranged.file_id.unwrap()))
        .unwrap();
    assert_eq!(&bytes[..], &body[1000..2000]);
    let other = new_bucket(h, t);
    let part = usize::try_from(min_part(h)).unwrap();
    let big = data(part * 3 + 5, 10);
    let big_src = h.upload_bytes(b.file("big-src.bin"), big.clone()).unwrap();
    let h2 = h.with_upload_strategy(small_parts(h));
    let big_copy = h2
        .copy_large_file(
            big_src.file_id.as_ref().unwrap(),
            other.file("big-copy.bin"),
        )
        .unwrap();
    assert_eq!(big_copy.content_length, big.len() as u64);
    let (_, bytes, _) = h
        .download_bytes(DownloadFileById::new(big_copy.file_id.unwrap()))
        .unwrap();
    assert_eq!(bytes, big);
    let missing = h.copy_file(ops::CopyFile::new(
        b2_proto::FileId::new("4_zdoes_not_exist"),
        name("x"),
    ));
    assert!(missing.is_err());
}

/// A key restricted to one bucket works there and is refused elsewhere; keys list and delete.
pub fn keys_and_restricted_access<H: Harness>(h: &H, t: &Target) {
    let mine = new_bucket(h, t);
    let theirs = new_bucket(h, t);
    h.upload_bytes(theirs.file("private.txt"), Bytes::from_static(b"not yours"))
        .unwrap();
    let created = h
        .create_key(
            ops::CreateKey::new(
                format!("suite-{}", &t.bucket_name()[4..]),
                [
                    Capability::ListBuckets,
                    Capability::ListFiles,
                    Capability::ReadFiles,
                    Capability::WriteFiles,
                ],
            )
            .with_bucket_ids([mine.bucket.bucket_id.clone()]),
        )
        .expect("key created");
    let secret = created.application_key.expose_secret().to_owned();
    assert!(
        !format!("{created:?}").contains(&secret),
        "the secret is never in Debug"
    );
    let key_id = created.key.application_key_id.clone();
    assert!(
        h.list_keys()
            .unwrap()
            .iter()
            .any(|k| k.application_key_id == key_id)
    );
    let restricted = h.with_key(key_id.as_str(), &secret);
    let session = restricted.session().unwrap();
    let allowed: Vec<_> = session
        .allowed
        .buckets
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(allowed, std::slice::from_ref(&mine.bucket.bucket_id));
    let up = restricted
        .upload_bytes(mine.file("mine.txt"), Bytes::from_static(b"ok"))
        .expect("allowed in its bucket");
    assert_eq!(up.content_length, 2);
    let denied = restricted.list_file_names(
        ops::ListFileNames::new(theirs.bucket.bucket_id.clone()),
        None,
    );
    assert!(
        denied
            .as_ref()
            .err()
            .is_some_and(b2_proto::Error::is_unauthorized),
        "{denied:?}"
    );
    let denied = restricted.upload_bytes(theirs.file("intruder.txt"), Bytes::from_static(b"no"));
    assert!(
        denied
            .as_ref()
            .err()
            .is_some_and(b2_proto::Error::is_unauthorized),
        "{denied:?}"
    );
    h.delete_key(&key_id).unwrap();
    assert!(
        !h.list_keys()
            .unwrap()
            .iter()
            .any(|k| k.application_key_id == key_id)
    );
    let gone = h.with_key(key_id.as_str(), &secret).session();
    assert!(
        gone.as_ref()
            .err()
            .is_some_and(b2_proto::Error::is_unauthorized),
        "{gone:?}"
    );
}

/// Download authorizations open one prefix of a private bucket, and share URLs carry them.
pub fn download_authorization_and_share_url<H: Harness>(h: &H, t: &Target) {
    let b = new_bucket(h, t);
    h.upload_bytes(b.file("shared/a.txt"), Bytes::from_static(b"shared"))
        .unwrap();
    h.upload_bytes(b.file("other.txt"), Bytes::from_static(b"private"))
        .unwrap();
    let auth = h
        .download_authorization(ops::GetDownloadAuthorization::new(
            b.bucket.bucket_id.clone(),
            "shared/",
            3600,
        ))
        .unwrap();
    assert!(!format!("{auth:?}").contains(auth.authorization_token.expose_secret()));
    let by_token = |file: &str| {
        DownloadFileByName::new(b.bucket.bucket_name.clone(), name(file))
            .with_auth(DownloadAuth::Header(auth.authorization_token.clone()))
    };
    let (_, bytes, _) = h.download_bytes(by_token("shared/a.txt")).unwrap();
    assert_eq!(&bytes[..], b"shared");
    let refused = h.download_bytes(by_token("other.txt"));
    assert!(refused.is_err(), "the token covers only its prefix");
    let anonymous = h.download_bytes(
        DownloadFileByName::new(b.bucket.bucket_name.clone(), name("other.txt"))
            .with_auth(DownloadAuth::None),
    );
    assert!(
        anonymous.is_err(),
        "a private bucket refuses anonymous downloads"
    );
    let url = h.share_url(&b.bucket, &name("shared/a.txt"), 600).unwrap();
    assert!(url.contains("Authorization="), "{url}");
    assert!(
        url.contains(&format!("/file/{}/shared/a.txt", b.bucket.bucket_name)),
        "{url}"
    );
    if url.starts_with("http://") {
        assert_eq!(
            http_get(&url),
            (200, b"shared".to_vec()),
            "the URL alone downloads the file"
        );
    }
}

/// An unfinished large file is listed, resumed from its parts, finished; another is cancelled.
pub fn unfinished_large_file_resume_and_cancel<H: Harness>(h: &H, t: &Target) {
    let b = new_bucket(h, t);
    let part = min_part(h);
    let body = data(usize::try_from(part * 3 + 11).unwrap(), 12);
    let dir = tempdir();
    let path = dir.join("resume.bin");
    std::fs::write(&path, &body).unwrap();
    // A source holding the file's first part, to put part 1 in place server-side.
    let first = h
        .upload_bytes(
            b.file("first-part.bin"),
            body.slice(..usize::try_from(part).unwrap()),
        )
        .unwrap();
    let file = b.file("resumed.bin");
    let started = h
        .run(
            file.start_large_file()
                .clone()
                .with_large_file_sha1(Sha1Digest::of(&body)),
        )
        .expect("large file started");
    let large_id = started.file_id.clone().unwrap();
    h.run(
        ops::CopyPart::new(
            first.file_id.clone().unwrap(),
            large_id.clone(),
            b2_proto::PartNumber::FIRST,
        )
        .with_range(0..part),
    )
    .expect("part 1 copied");
    let unfinished = h
        .list_unfinished_large_files(ops::ListUnfinishedLargeFiles::new(
            b.bucket.bucket_id.clone(),
        ))
        .unwrap();
    assert_eq!(
        unfinished
            .iter()
            .filter_map(|f| f.file_id.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&large_id)
    );
    let parts = h.list_parts(&large_id).unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].content_length, part);
    let done = h
        .resume_upload_path(&large_id, file, &path)
        .expect("resumed");
    assert_eq!(done.file_id.as_ref(), Some(&large_id));
    let (_, bytes, v) = h.download_bytes(DownloadFileById::new(large_id)).unwrap();
    assert_eq!(bytes, body);
    assert_matched(&v);
    let abandoned = h
        .run(b.file("abandoned.bin").start_large_file().clone())
        .unwrap();
    let abandoned_id = abandoned.file_id.unwrap();
    let cancelled = h.cancel_large_file(&abandoned_id).unwrap();
    assert_eq!(cancelled.file_id, abandoned_id);
    assert!(
        h.list_unfinished_large_files(ops::ListUnfinishedLargeFiles::new(
            b.bucket.bucket_id.clone()
        ))
        .unwrap()
        .is_empty()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad names, info and sizes are refused with typed errors before any request.
pub fn invalid_input_is_refused_before_sending<H: Harness>(h: &H, t: &Target) {
    use b2_proto::{Error, InvalidInput};
    assert!(matches!(
        FileName::new("bad\nname"),
        Err(InvalidInput::FileName { .. })
    ));
    assert!(matches!(
        FileName::new("x".repeat(1025)),
        Err(InvalidInput::FileName { .. })
    ));
    assert!(matches!(
        BucketName::new("ab"),
        Err(InvalidInput::BucketName { .. })
    ));
    let mut info = FileInfo::new();
    for i in 0..10 {
        info.insert(format!("k{i}"), "v").unwrap();
    }
    assert!(matches!(
        info.clone().insert("k10", "v"),
        Err(InvalidInput::FileInfo { .. })
    ));
    let b = new_bucket(h, t);
    let mut big = FileInfo::new();
    big.insert("big", "x".repeat(3000)).unwrap();
    let refused = h.upload_bytes(
        b.file("encrypted.txt")
            .with_file_info(big)
            .with_encryption(b2_proto::model::Encryption::SseB2),
        Bytes::from_static(b"x"),
    );
    assert!(
        matches!(
            refused,
            Err(Error::InvalidInput(InvalidInput::FileInfoTooLarge {
                limit: 2048,
                ..
            }))
        ),
        "{refused:?}"
    );
    let refused = h.create_key(ops::CreateKey::new("has spaces", [Capability::ListFiles]));
    assert!(
        matches!(refused, Err(Error::InvalidInput(_))),
        "{refused:?}"
    );
    let refused = h.download_authorization(ops::GetDownloadAuthorization::new(
        b.bucket.bucket_id.clone(),
        "",
        0,
    ));
    assert!(
        matches!(refused, Err(Error::InvalidInput(_))),
        "{refused:?}"
    );
    assert!(
        h.list_file_names(ops::ListFileNames::new(b.bucket.bucket_id.clone()), None)
            .unwrap()
            .is_empty()
    );
}

/// Progress reports rise to the total.
pub fn upload_progress_is_reported<H: Harness>(h: &H, t: &Target) {
    let b = new_bucket(h, t);
    let h2 = h.with_upload_strategy(small_parts(h));
    let part = usize::try_from(min_part(h)).unwrap();
    let body = data(part * 4 + 1, 13);
    let reports = Arc::new(std::sync::Mutex::new(Vec::<Progress>::new()));
    let sink = reports.clone();
    let progress = ProgressFn::new(move |p| sink.lock().unwrap().push(p));
    h2.upload_bytes_with_progress(b.file("progress.bin"), body.clone(), progress)
        .unwrap();
    let reports = reports.lock().unwrap();
    assert!(reports.len() >= 2, "{reports:?}");
    assert!(
        reports.windows(2).all(|w| w[0].done <= w[1].done),
        "monotonic: {reports:?}"
    );
    assert_eq!(
        reports.last().map(|p| (p.done, p.total)),
        Some((body.len() as u64, Some(body.len() as u64)))
    );
}

/// Notification rules are stored, returned, replaced and cleared; the signing secret is never
/// printed.
pub fn notification_rules_round_trip<H: Harness>(h: &H, t: &Target) {
    use b2_proto::model::{EventType, NotificationRule, TargetConfiguration};
    let b = new_bucket(h, t);
    let id = b.bucket.bucket_id.clone();
    let secret = "0123456789abcdefghijABCDEFGHIJ01";
    let rule = NotificationRule::new(
        "uploads",
        [EventType::ObjectCreatedAll],
        TargetConfiguration::webhook("https://hooks.example.com/b2")
            .with_signing_secret(b2_proto::SigningSecret::new(secret))
            .with_custom_header("X-Tenant", "suite"),
    )
    .with_object_name_prefix("incoming/");
    let set = h
        .set_notification_rules(&id, vec![rule])
        .expect("rules set");
    assert!(
        !format!("{set:?}").contains(secret),
        "the signing secret is never in Debug"
    );
    let got = h.notification_rules(&id).unwrap();
    assert_eq!(got.event_notification_rules.len(), 1);
    let stored = &got.event_notification_rules[0];
    assert_eq!(stored.name, "uploads");
    assert_eq!(stored.event_types, [EventType::ObjectCreatedAll]);
    assert_eq!(stored.object_name_prefix, "incoming/");
    let cleared = h.set_notification_rules(&id, Vec::new()).unwrap();
    assert!(cleared.event_notification_rules.is_empty());
    assert!(
        h.notification_rules(&id)
            .unwrap()
            .event_notification_rules
            .is_empty()
    );
}

/// SSE-B2 and SSE-C: encrypted files round-trip; SSE-C needs the same key to read.
pub fn server_side_encryption_sse_b2_and_sse_c<H: Harness>(h: &H, t: &Target) {
    use b2_proto::model::{CustomerKey, Encryption, EncryptionMode};
    let b = new_bucket(h, t);
    let body = data(3000, 31);
    let sse_b2 = h
        .upload_bytes(
            b.file("sse-b2.bin").with_encryption(Encryption::SseB2),
            body.clone(),
        )
        .unwrap();
    assert_eq!(
        sse_b2
            .server_side_encryption
            .as_ref()
            .and_then(|e| e.mode.clone()),
        Some(EncryptionMode::SseB2)
    );
    let (head, bytes, _) = h
        .download_bytes(DownloadFileById::new(sse_b2.file_id.unwrap()))
        .unwrap();
    assert_eq!(bytes, body);
    assert_eq!(
        head.server_side_encryption.and_then(|e| e.mode),
        Some(EncryptionMode::SseB2)
    );
    let key = CustomerKey::new([42u8; 32]);
    let sse_c = h
        .upload_bytes(
            b.file("sse-c.bin")
                .with_encryption(Encryption::SseC(key.clone())),
            body.clone(),
        )
        .unwrap();
    assert_eq!(
        sse_c
            .server_side_encryption
            .as_ref()
            .and_then(|e| e.mode.clone()),
        Some(EncryptionMode::SseC)
    );
    let id = sse_c.file_id.unwrap();
    let (_, bytes, v) = h
        .download_bytes(DownloadFileById::new(id.clone()).with_customer_key(key.clone()))
        .unwrap();
    assert_eq!(bytes, body);
    assert_matched(&v);
    let without = h.download_bytes(DownloadFileById::new(id.clone()));
    assert!(
        without.is_err(),
        "an SSE-C file cannot be read without its key"
    );
    expect_code(
        h.download_bytes(DownloadFileById::new(id).with_customer_key(CustomerKey::new([7u8; 32]))),
        ErrorCode::AccessDenied,
    );
}

/// Object Lock: retention and legal hold are set, read back, and protect the file.
pub fn object_lock_retention_and_legal_hold<H: Harness>(h: &H, t: &Target) {
    use b2_proto::model::{FileRetention, LegalHold, RetentionMode};
    let bucket_name = BucketName::new(t.bucket_name()).unwrap();
    let bucket = h
        .create_bucket(
            ops::CreateBucket::new(bucket_name, BucketType::AllPrivate)
                .with_file_lock_enabled(true),
        )
        .expect("lock-enabled bucket");
    let b = TestBucket { h, bucket };
    assert_eq!(b.bucket.is_file_lock_enabled(), Some(true));
    let up = h
        .upload_bytes(
            b.file("locked.txt").with_lock_enabled_bucket(true),
            Bytes::from_static(b"keep me"),
        )
        .unwrap();
    let id = up.file_id.clone().unwrap();
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 86_400_000;
    let set = h
        .run(ops::UpdateFileRetention::new(
            up.file_name.clone(),
            id.clone(),
            FileRetention::new(RetentionMode::Governance, until),
        ))
        .expect("retention set");
    assert_eq!(set.file_retention.mode, Some(RetentionMode::Governance));
    let held = h
        .run(ops::UpdateFileLegalHold::new(
            up.file_name.clone(),
            id.clone(),
            LegalHold::On,
        ))
        .expect("hold set");
    assert_eq!(held.legal_hold, Some(LegalHold::On));
    let info = h.file_info(&id).unwrap();
    assert_eq!(
        info.file_retention
            .and_then(|r| r.value)
            .and_then(|r| r.mode),
        Some(RetentionMode::Governance)
    );
    assert_eq!(info.legal_hold.and_then(|l| l.value), Some(LegalHold::On));
    let head = h
        .file_info_by_name(&b.bucket.bucket_name, &up.file_name)
        .unwrap();
    assert_eq!(head.legal_hold.value, Some(LegalHold::On));
    assert!(
        h.delete_file_version(&up.file_name, &id).is_err(),
        "a held file cannot be deleted"
    );
    h.run(ops::UpdateFileLegalHold::new(
        up.file_name.clone(),
        id.clone(),
        LegalHold::Off,
    ))
    .unwrap();
    assert!(
        h.delete_file_version(&up.file_name, &id).is_err(),
        "governance retention still protects it"
    );
    h.run(
        ops::UpdateFileRetention::new(up.file_name.clone(), id.clone(), FileRetention::none())
            .with_bypass_governance(true),
    )
    .expect("governance retention lifted with bypassGovernance");
    h.delete_file_version(&up.file_name, &id)
        .expect("deletable once unprotected");
}

/// 20% of uploads answered 503: every upload still lands, on new upload URLs.
pub fn faults_503_on_uploads_are_survived<H: Harness>(h: &H, t: &Target) {
    if t.skip_without_emulator("faults_503_on_uploads_are_survived") {
        return;
    }
    let b = new_bucket(h, t);
    let emu = t.emulator().unwrap();
    emu.add_fault(
        FaultRule::new(
            FaultAction::Status {
                status: 503,
                retry_after: None,
            },
            FaultTarget::Uploads,
        )
        .with_percent(20),
    );
    let h2 = h.with_upload_strategy(small_parts(h));
    let part = usize::try_from(min_part(h)).unwrap();
    for i in 0..30u64 {
        let len = if i % 10 == 9 {
            part * 3
        } else {
            100 + i as usize * 37
        };
        let body = data(len, 100 + i);
        let up = h2
            .upload_bytes(b.file(&format!("busy-{i}")), body.clone())
            .expect("survives 503s");
        emu.clear_faults();
        let (_, bytes, _) = h
            .download_bytes(DownloadFileById::new(up.file_id.unwrap()))
            .unwrap();
        assert_eq!(bytes, body);
        emu.add_fault(
            FaultRule::new(
                FaultAction::Status {
                    status: 503,
                    retry_after: None,
                },
                FaultTarget::Uploads,
            )
            .with_percent(20),
        );
    }
    emu.clear_faults();
}

/// Expired account tokens lead to one re-authorization and the call goes through.
pub fn faults_expired_tokens_reauthorize<H: Harness>(h: &H, t: &Target) {
    if t.skip_without_emulator("faults_expired_tokens_reauthorize") {
        return;
    }
    let b = new_bucket(h, t);
    let emu = t.emulator().unwrap();
    let before = h.session().unwrap();
    emu.expire_account_tokens();
    let up = h
        .upload_bytes(
            b.file("after-expiry.txt"),
            Bytes::from_static(b"still works"),
        )
        .expect("re-authorized");
    let after = h.session().unwrap();
    assert_ne!(
        before.authorization_token, after.authorization_token,
        "a new token was obtained"
    );
    emu.advance_clock(Duration::from_secs(25 * 3600));
    let (_, bytes, _) = h
        .download_bytes(DownloadFileById::new(up.file_id.unwrap()))
        .expect("works a day later");
    assert_eq!(&bytes[..], b"still works");
    assert!(!h.list_buckets().unwrap().is_empty());
}

/// A 429 with `Retry-After: 1` is waited out, then the call succeeds.
pub fn faults_429_with_retry_after_is_honoured<H: Harness>(h: &H, t: &Target) {
    if t.skip_without_emulator("faults_429_with_retry_after_is_honoured") {
        return;
    }
    let emu = t.emulator().unwrap();
    h.session().unwrap();
    emu.add_fault(
        FaultRule::new(
            FaultAction::Status {
                status: 429,
                retry_after: Some(1),
            },
            FaultTarget::Call("b2_list_buckets".into()),
        )
        .with_count(1),
    );
    let started = Instant::now();
    h.list_buckets().expect("retried after the wait");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
}

/// Connections reset mid-body (request and reply) and truncated replies are recovered from.
pub fn faults_connection_resets_mid_body<H: Harness>(h: &H, t: &Target) {
    if t.skip_without_emulator("faults_connection_resets_mid_body") {
        return;
    }
    let b = new_bucket(h, t);
    let emu = t.emulator().unwrap();
    let body = data(200_000, 21);
    emu.add_fault(
        FaultRule::new(FaultAction::ResetRequestBody, FaultTarget::Uploads).with_count(2),
    );
    let up = h
        .upload_bytes(b.file("reset-up.bin"), body.clone())
        .expect("upload survives resets");
    let id = up.file_id.unwrap();
    emu.add_fault(
        FaultRule::new(FaultAction::ResetResponseBody, FaultTarget::Downloads).with_count(2),
    );
    let (_, bytes, v) = h
        .download_bytes(DownloadFileById::new(id.clone()))
        .expect("download resumes");
    assert_eq!(bytes, body);
    assert_matched(&v);
    emu.add_fault(
        FaultRule::new(FaultAction::TruncateResponse, FaultTarget::Downloads).with_count(1),
    );
    let (_, chunks, v) = h
        .download_chunks(DownloadFileById::new(id), 65_536)
        .expect("truncation recovered");
    assert_eq!(chunks.concat(), body.to_vec());
    assert_matched(v.as_ref().unwrap());
    emu.clear_faults();
}

/// 200 uploads and downloads of mixed sizes under 503s, resets, 429s and expiring tokens all
/// complete byte-identical.
pub fn faults_mixed_200_transfers_are_byte_identical<H: Harness>(h: &H, t: &Target) {
    if t.skip_without_emulator("faults_mixed_200_transfers_are_byte_identical") {
        return;
    }
    let b = new_bucket(h, t);
    let emu = t.emulator().unwrap();
    let h2 = h.with_upload_strategy(small_parts(h));
    let part = usize::try_from(min_part(h)).unwrap();
    emu.add_fault(
        FaultRule::new(
            FaultAction::Status {
                status: 503,
                retry_after: None,
            },
            FaultTarget::Uploads,
        )
        .with_percent(20),
    );
    emu.add_fault(
        FaultRule::new(FaultAction::ResetResponseBody, FaultTarget::Downloads).with_percent(10),
    );
    emu.add_fault(
        FaultRule::new(FaultAction::ResetRequestBody, FaultTarget::Uploads).with_percent(5),
    );
    emu.add_fault(
        FaultRule::new(
            FaultAction::Status {
                status: 429,
                retry_after: Some(0),
            },
            FaultTarget::Calls,
        )
        .with_percent(5),
    );
    let transfers = AtomicU64::new(0);
    let mut uploaded = Vec::new();
    for i in 0..100u64 {
        if i % 25 == 0 {
            emu.expire_account_tokens();
        }
        let len = match i % 5 {
            0 => 0,
            1 => 1,
            2 => 4096,
            3 => 20_000,
            _ => part * 2 + 1 + i as usize,
        };
        let body = data(len, 1000 + i);
        let up = h2
            .upload_bytes(b.file(&format!("mixed/{i:03}")), body.clone())
            .unwrap_or_else(|e| panic!("upload {i}: {e}"));
        transfers.fetch_add(1, Ordering::Relaxed);
        uploaded.push((up.file_id.unwrap(), body));
    }
    for (i, (id, body)) in uploaded.iter().enumerate() {
        let (_, bytes, v) = h
            .download_bytes(DownloadFileById::new(id.clone()))
            .unwrap_or_else(|e| panic!("download {i}: {e}"));
        assert_eq!(&bytes, body, "download {i}");
        assert_matched(&v);
        transfers.fetch_add(1, Ordering::Relaxed);
    }
    emu.clear_faults();
    assert_eq!(transfers.load(Ordering::Relaxed), 200);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("b2-suite-{}", crate::target::unique()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A plain-HTTP GET over a TcpStream: a client that is not ours, for share URLs.
fn http_get(url: &str) -> (u16, Vec<u8>) {
    use std::io::{Read as _, Write as _};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&reply[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = reply[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 4 + size..];
    }
    out
}
