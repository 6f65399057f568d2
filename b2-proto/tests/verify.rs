//! The download SHA1 verifier and parallel download planning, with real SHA1s of real bytes.
//!
//! Every expected digest below was computed independently with Python's `hashlib.sha1`.
#![allow(clippy::disallowed_methods)]

mod common;

use b2_proto::download_plan::{DownloadPlan, FileDownload};
use b2_proto::ops::{ByteRange, DownloadCall, DownloadFileById, DownloadHead, Operation};
use b2_proto::verify::{Sha1Source, Sha1Verifier, Unverifiable, Verification};
use b2_proto::{ContentSha1, Error, FileId, IntegrityError, Sha1Digest};
use bytes::Bytes;
use common::*;
use proptest::prelude::*;

/// "The quick brown fox jumps over the lazy dog".
const FOX: &[u8] = b"The quick brown fox jumps over the lazy dog";
const FOX_SHA1: &str = "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12";
/// The empty input.
const EMPTY_SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
/// "0123456789" * 25, the body of the `large_file` fixture.
const BIG_SHA1: &str = "fce6f28abbc06c665c0a6dc59e47854b2fae2f53";
const FID3: &str =
    "4_ze73ede9c9c8412db49f60715_f300b4e93fbae6252_d20150824_m224353_c900_v8881000_t0003";

fn digest(hex: &str) -> Sha1Digest {
    Sha1Digest::from_hex(hex).unwrap()
}

/// A download head for `FID3` with these headers on top of the required ones.
fn head(
    status: u16,
    length: u64,
    extra: &[(&str, &str)],
    range: Option<ByteRange>,
) -> DownloadHead {
    let mut b = http::Response::builder()
        .status(status)
        .header("content-length", length.to_string())
        .header("x-bz-file-id", FID3)
        .header("x-bz-file-name", "big.bin");
    for (name, value) in extra {
        b = b.header(*name, *value);
    }
    let parts = b.body(()).unwrap().into_parts().0;
    let mut op = DownloadFileById::new(FileId::new(FID3));
    if let Some(range) = range {
        op = op.with_range(range);
    }
    op.parse_head(&parts).unwrap()
}

fn verify(head: &DownloadHead, whole: bool, chunks: &[&[u8]]) -> Result<Verification, Error> {
    let mut v = Sha1Verifier::new(head, whole);
    for chunk in chunks {
        v.update(chunk);
    }
    v.finish()
}

#[test]
fn verified_sha1_matches_in_any_chunking() {
    let h = head(
        200,
        FOX.len() as u64,
        &[("x-bz-content-sha1", FOX_SHA1)],
        None,
    );
    for split in [0, 1, 10, FOX.len()] {
        let (a, b) = FOX.split_at(split);
        let result = verify(&h, true, &[a, b]).unwrap();
        assert_eq!(
            result,
            Verification::Matched {
                sha1: digest(FOX_SHA1),
                source: Sha1Source::Verified
            }
        );
    }
}

#[test]
fn a_wrong_byte_is_a_sha1_mismatch() {
    let h = head(
        200,
        FOX.len() as u64,
        &[("x-bz-content-sha1", FOX_SHA1)],
        None,
    );
    let mut bad = FOX.to_vec();
    bad[4] ^= 1;
    match verify(&h, true, &[&bad]).unwrap_err() {
        Error::Integrity(IntegrityError::Sha1Mismatch { expected, actual }) => {
            assert_eq!(expected, digest(FOX_SHA1));
            assert_eq!(actual, Sha1Digest::of(&bad));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_or_overlong_bodies_are_length_mismatches() {
    let h = head(
        200,
        FOX.len() as u64,
        &[("x-bz-content-sha1", FOX_SHA1)],
        None,
    );
    assert_eq!(
        verify(&h, true, &[&FOX[..20]]).unwrap_err().to_string(),
        "length mismatch: expected 43 bytes, got 20"
    );
    assert!(matches!(
        verify(&h, true, &[FOX, b"!"]),
        Err(Error::Integrity(IntegrityError::LengthMismatch {
            expected: 43,
            actual: 44
        }))
    ));
    // Length is checked even when no SHA1 can be.
    let none = head(200, 10, &[("x-bz-content-sha1", "none")], None);
    assert!(matches!(
        verify(&none, true, &[b"12345"]),
        Err(Error::Integrity(IntegrityError::LengthMismatch { .. }))
    ));
}

#[test]
fn unverified_sha1_is_checked_and_labelled() {
    let value = format!("unverified:{FOX_SHA1}");
    let h = head(
        200,
        FOX.len() as u64,
        &[("x-bz-content-sha1", &value)],
        None,
    );
    assert_eq!(h.content_sha1, ContentSha1::Unverified(digest(FOX_SHA1)));
    assert_eq!(
        verify(&h, true, &[FOX]).unwrap(),
        Verification::Matched {
            sha1: digest(FOX_SHA1),
            source: Sha1Source::UnverifiedAtUpload
        }
    );
    assert!(matches!(
        verify(&h, true, &[&FOX[1..], b"x"]),
        Err(Error::Integrity(IntegrityError::Sha1Mismatch { .. }))
    ));
}

#[test]
fn large_files_use_large_file_sha1() {
    let big = b"0123456789".repeat(25);
    let h = head(
        200,
        250,
        &[
            ("x-bz-content-sha1", "none"),
            ("x-bz-info-large_file_sha1", BIG_SHA1),
        ],
        None,
    );
    assert_eq!(
        verify(&h, true, &[&big[..100], &big[100..]]).unwrap(),
        Verification::Matched {
            sha1: digest(BIG_SHA1),
            source: Sha1Source::LargeFileInfo
        }
    );
    let mut wrong = big.clone();
    wrong[249] = b'x';
    assert!(matches!(
        verify(&h, true, &[&wrong]),
        Err(Error::Integrity(IntegrityError::Sha1Mismatch { .. }))
    ));
    let garbled = head(
        200,
        250,
        &[
            ("x-bz-content-sha1", "none"),
            ("x-bz-info-large_file_sha1", "not-a-sha1"),
        ],
        None,
    );
    assert_eq!(
        verify(&garbled, true, &[&big]).unwrap(),
        Verification::Unverifiable(Unverifiable::InvalidLargeFileSha1("not-a-sha1".into()))
    );
}

#[test]
fn files_without_a_sha1_are_plainly_unverifiable() {
    let none = head(200, 3, &[("x-bz-content-sha1", "none")], None);
    assert_eq!(
        verify(&none, true, &[b"abc"]).unwrap(),
        Verification::Unverifiable(Unverifiable::NoSha1)
    );
    let missing = head(200, 3, &[], None);
    assert_eq!(
        verify(&missing, true, &[b"abc"]).unwrap(),
        Verification::Unverifiable(Unverifiable::NoSha1)
    );
    let odd = head(200, 3, &[("x-bz-content-sha1", "md5:abc")], None);
    let result = verify(&odd, true, &[b"abc"]).unwrap();
    assert_eq!(
        result,
        Verification::Unverifiable(Unverifiable::UnrecognizedSha1("md5:abc".into()))
    );
    assert!(!result.is_matched());
}

#[test]
fn ranged_reads_check_length_only() {
    let range = ByteRange::new(4, 8).unwrap();
    let h = head(
        206,
        5,
        &[
            ("x-bz-content-sha1", FOX_SHA1),
            ("content-range", "bytes 4-8/43"),
        ],
        Some(range),
    );
    assert_eq!(
        verify(&h, false, &[&FOX[4..9]]).unwrap(),
        Verification::Unverifiable(Unverifiable::RangedRead)
    );
    assert!(matches!(
        verify(&h, false, &[&FOX[4..8]]),
        Err(Error::Integrity(IntegrityError::LengthMismatch { .. }))
    ));
    // A range for a whole-file request contradicts it.
    assert!(matches!(
        verify(&h, true, &[&FOX[4..9]]),
        Err(Error::InvalidResponse { .. })
    ));
    // B2 may answer a range with the whole file (200): then the SHA1 is checked.
    let whole = head(200, 43, &[("x-bz-content-sha1", FOX_SHA1)], Some(range));
    assert!(verify(&whole, false, &[FOX]).unwrap().is_matched());
}

#[test]
fn empty_files_verify() {
    let h = head(200, 0, &[("x-bz-content-sha1", EMPTY_SHA1)], None);
    assert!(verify(&h, true, &[]).unwrap().is_matched());
}

// ---- download planning -----------------------------------------------------------------

/// The head of the `large_file` fixture: 250 bytes, `large_file_sha1` = BIG_SHA1.
fn big_head() -> DownloadHead {
    DownloadFileById::new(FileId::new(FID3))
        .head_only()
        .parse(response("b2_download_file_by_id/large_file"))
        .unwrap()
        .head
}

#[test]
fn plan_from_a_head_fetches_parts_by_id_and_verifies_the_whole() {
    let head = big_head();
    let plan = DownloadPlan::for_head(&head, 100, 2).unwrap();
    assert_eq!(plan.file_size(), 250);
    assert_eq!(plan.part_count(), 3);
    assert_eq!(plan.concurrency(), 2);
    assert_eq!(plan.file_id().unwrap().as_str(), FID3);
    let requests: Vec<_> = (0..3)
        .map(|i| plan.part_request(i).unwrap().request(&session()).unwrap())
        .collect();
    let ranges: Vec<_> = requests
        .iter()
        .map(|r| r.headers()["range"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ranges, ["bytes=0-99", "bytes=100-199", "bytes=200-249"]);
    assert!(requests[0].uri().to_string().contains(FID3));
    assert!(plan.part_request(3).is_none());

    // The parts' heads are checked against the plan.
    let part_head = |i: u64, cr: &str, id: &str| {
        let r = plan.range(i).unwrap();
        let mut b = http::Response::builder()
            .status(206)
            .header("content-length", (r.end - r.start).to_string())
            .header("x-bz-file-id", id)
            .header("x-bz-file-name", "big.bin")
            .header("x-bz-content-sha1", "none")
            .header("content-range", cr);
        b = b.header("x-bz-info-large_file_sha1", BIG_SHA1);
        let parts = b.body(()).unwrap().into_parts().0;
        DownloadFileById::new(FileId::new(id))
            .with_range(ByteRange::from_range(r).unwrap())
            .parse_head(&parts)
    };
    let ok = part_head(1, "bytes 100-199/250", FID3).unwrap();
    plan.check_part(1, &ok).unwrap();
    assert!(plan.check_part(0, &ok).is_err(), "bytes of another part");
    assert!(plan.check_part(7, &ok).is_err(), "no such part");
    let other_version = part_head(1, "bytes 100-199/250", "4_other").unwrap();
    assert!(matches!(
        plan.check_part(1, &other_version),
        Err(Error::InvalidResponse { .. })
    ));
    let grown = part_head(1, "bytes 100-199/300", FID3).unwrap();
    assert!(plan.check_part(1, &grown).is_err(), "the file changed size");

    // Assembled in order, the file matches; out of order, it does not.
    let big = b"0123456789".repeat(25);
    let mut v = plan.verifier();
    for r in plan.ranges() {
        v.update(&big[r.start as usize..r.end as usize]);
    }
    assert_eq!(
        v.finish().unwrap(),
        Verification::Matched {
            sha1: digest(BIG_SHA1),
            source: Sha1Source::LargeFileInfo
        }
    );
    let mut shuffled = plan.verifier();
    for r in [100..200, 0..100, 200..250] {
        // Parts of equal content would hash alike; make the order matter.
        let mut chunk = big[r.start..r.end].to_vec();
        chunk.reverse();
        shuffled.update(&chunk);
    }
    assert!(matches!(
        shuffled.finish(),
        Err(Error::Integrity(IntegrityError::Sha1Mismatch { .. }))
    ));
    let mut short = plan.verifier();
    short.update(&big[..200]);
    assert!(matches!(
        short.finish(),
        Err(Error::Integrity(IntegrityError::LengthMismatch {
            expected: 250,
            actual: 200
        }))
    ));
}

#[test]
fn plan_edge_cases() {
    assert!(DownloadPlan::new(10, 0, 1).is_err());
    assert!(DownloadPlan::new(10, 1, 0).is_err());
    let empty = DownloadPlan::new(0, 100, 4).unwrap();
    assert_eq!(empty.part_count(), 0);
    assert_eq!(empty.ranges().count(), 0);
    assert_eq!(empty.concurrency(), 0);
    assert!(empty.part_request(0).is_none(), "no head, no file id");
    let one = DownloadPlan::new(100, 100, 4).unwrap();
    assert_eq!(one.range(0), Some(0..100));
    assert_eq!(one.part_count(), 1);
    let huge = DownloadPlan::new(u64::MAX, u64::MAX / 2, 8).unwrap();
    assert_eq!(
        huge.ranges().collect::<Vec<_>>(),
        [
            0..u64::MAX / 2,
            u64::MAX / 2..u64::MAX - 1,
            u64::MAX - 1..u64::MAX
        ]
    );
    // An empty file still verifies: the SHA1 of no bytes.
    let mut head = big_head();
    head.content_sha1 = ContentSha1::Verified(digest(EMPTY_SHA1));
    head.content_length = 0;
    let plan = DownloadPlan::for_head(&head, 100, 4).unwrap();
    assert_eq!(plan.part_count(), 0);
    assert!(plan.verifier().finish().unwrap().is_matched());
}

proptest! {
    #[test]
    fn plan_ranges_cover_the_file_once_in_order(
        size in 0u64..2_000_000_000_000,
        parts_hint in 1u64..3000,
        extra in 0u64..1000,
        max_concurrency in 1usize..64,
    ) {
        let part_size = (size / parts_hint).max(1) + extra;
        let plan = DownloadPlan::new(size, part_size, max_concurrency).unwrap();
        let ranges: Vec<_> = plan.ranges().collect();
        prop_assert_eq!(ranges.len() as u64, plan.part_count());
        let mut next = 0;
        for (i, r) in ranges.iter().enumerate() {
            prop_assert_eq!(r.start, next, "contiguous, in order");
            prop_assert!(r.end > r.start, "never empty");
            prop_assert!(r.end - r.start <= part_size);
            if i + 1 < ranges.len() {
                prop_assert_eq!(r.end - r.start, part_size, "only the last part is short");
            }
            prop_assert_eq!(plan.range(i as u64), Some(r.clone()));
            next = r.end;
        }
        prop_assert_eq!(next, size, "the whole file");
        prop_assert_eq!(plan.range(ranges.len() as u64), None);
        prop_assert!(plan.concurrency() <= max_concurrency);
        prop_assert!(plan.concurrency() as u64 <= plan.part_count());
        prop_assert!(plan.concurrency() >= 1 || size == 0);
    }

    #[test]
    fn verifier_is_independent_of_chunking(data in proptest::collection::vec(any::<u8>(), 0..2000), cuts in proptest::collection::vec(0usize..2000, 0..8)) {
        let expected = ContentSha1::Verified(Sha1Digest::of(&data));
        let mut v = Sha1Verifier::expecting(expected, None, data.len() as u64);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.sort_unstable();
        let mut at = 0;
        for c in cuts.into_iter().chain([data.len()]) {
            v.update(&data[at..c]);
            at = c;
        }
        prop_assert!(v.finish().unwrap().is_matched());
    }
}

#[test]
fn body_bytes_type_is_usable_with_the_verifier() {
    // Adapters hand `Bytes` chunks straight to the verifier.
    let chunks = [Bytes::from_static(&FOX[..9]), Bytes::from_static(&FOX[9..])];
    let mut v = Sha1Verifier::expecting(ContentSha1::Verified(digest(FOX_SHA1)), None, 43);
    for c in &chunks {
        v.update(c);
    }
    assert_eq!(v.bytes_seen(), 43);
    assert!(v.finish().unwrap().is_matched());
}

/// The head of a 206 reply with `content_range`, to a request for that range of the 250-byte file.
fn first_part_head(start: u64, end: u64) -> DownloadHead {
    let content_range = format!("bytes {start}-{end}/250");
    head(
        206,
        end - start + 1,
        &[
            ("content-range", &content_range),
            ("x-bz-content-sha1", "none"),
            ("x-bz-info-large_file_sha1", BIG_SHA1),
        ],
        Some(ByteRange::new(start, end).unwrap()),
    )
}

#[test]
fn a_file_download_probes_with_its_first_part_and_plans_the_rest() {
    let op = DownloadFileById::new(FileId::new(FID3));
    let (download, first) = FileDownload::start(op, 100, 4).unwrap();
    let request = first.request(&session()).unwrap();
    assert_eq!(request.headers()["range"], "bytes=0-99");

    let h = first_part_head(0, 99);
    assert_eq!(download.total_len(&h), 250);
    let plan = download.rest(&h).unwrap().expect("two parts are left");
    assert_eq!(plan.part_count(), 3);
    let rest: Vec<_> = (1..plan.part_count())
        .map(|i| {
            plan.part_request(i)
                .unwrap()
                .byte_range()
                .unwrap()
                .header_value()
        })
        .collect();
    assert_eq!(rest, ["bytes=100-199", "bytes=200-249"]);
    // The whole file's SHA1 covers the first part's bytes too.
    let mut v = plan.verifier();
    v.update(&b"0123456789".repeat(25));
    assert!(v.finish().is_ok());

    // A first reply holding other bytes than the first part is refused.
    let odd = first_part_head(10, 109);
    assert!(matches!(
        download.rest(&odd),
        Err(Error::InvalidResponse { .. })
    ));
}

#[test]
fn a_file_download_needs_nothing_more_after_a_whole_reply_or_a_range() {
    // A file no larger than one part comes back whole (200): nothing is left.
    let op = DownloadFileById::new(FileId::new(FID3));
    let (download, _) = FileDownload::start(op.clone(), 1000, 4).unwrap();
    let whole = head(200, 43, &[("x-bz-content-sha1", FOX_SHA1)], None);
    assert_eq!(download.total_len(&whole), 43);
    assert_eq!(download.rest(&whole).unwrap(), None);

    // A 206 that covers the whole file is still checked as a whole file.
    let (download, _) = FileDownload::start(op.clone(), 250, 4).unwrap();
    let all = first_part_head(0, 249);
    let plan = download
        .rest(&all)
        .unwrap()
        .expect("checked through a plan");
    assert_eq!(plan.part_count(), 1);

    // A call with a range of its own is fetched as asked, in one request.
    let ranged = op.with_range(ByteRange::new(10, 19).unwrap());
    let (download, first) = FileDownload::start(ranged, 4, 4).unwrap();
    assert_eq!(first.byte_range().unwrap().header_value(), "bytes=10-19");
    let h = head(
        206,
        10,
        &[
            ("content-range", "bytes 10-19/250"),
            ("x-bz-content-sha1", "none"),
        ],
        Some(ByteRange::new(10, 19).unwrap()),
    );
    assert_eq!(download.total_len(&h), 10);
    assert_eq!(download.rest(&h).unwrap(), None);

    // Zero part size or concurrency is refused before any request.
    assert!(FileDownload::start(DownloadFileById::new(FileId::new(FID3)), 0, 4).is_err());
    assert!(FileDownload::start(DownloadFileById::new(FileId::new(FID3)), 100, 0).is_err());
}
