//! Large files: when to use them, how a source is cut and hashed, how each kind of source is
//! uploaded, how an interrupted upload is resumed, what memory it takes and what a failure
//! leaves behind.
//!
//! Backblaze's guide: <https://www.backblaze.com/docs/cloud-storage-create-large-files-with-the-native-api>.
//! The rules that shape everything below: parts are 5 MB (the session's
//! `absoluteMinimumPartSize`) to 5 GB, except the last, which may be a single byte; a large file
//! has 2 to 10,000 parts and at most 10 TB; each part in flight needs its own upload-part URL;
//! `b2_finish_large_file` takes the parts' SHA1s in part order.
//!
//! # Simple or large?
//!
//! [`LargeFileCutoff`] decides by size. Its default, 200 MB, is the integration checklist's
//! (<https://www.backblaze.com/docs/cloud-storage-integration-checklist>); over 5 GB
//! `b2_upload_file` is not allowed, whatever the cutoff. At or below the cutoff, use
//! [`SimpleUpload`] (one request, with its own retries and upload-URL renewal).
//!
//! ```
//! use b2_proto::planner::LargeFileCutoff;
//!
//! let cutoff = LargeFileCutoff::default();
//! for (len, large) in [(10_000_000, false), (200_000_000, false), (200_000_001, true)] {
//!     assert_eq!(cutoff.use_large_file(len), large);
//! }
//! // A smaller cutoff sends more in parallel; none can keep a 6 GB file simple.
//! assert!(LargeFileCutoff::new(u64::MAX).use_large_file(6_000_000_000));
//! ```
//!
//! # Cutting and hashing a seekable source
//!
//! [`PartPlan::new`] cuts a source of known length with the session's part sizes: parts of
//! `recommendedPartSize` (100 MB), grown so that 10,000 parts hold the file, and shrunk so
//! that there are at least two. [`PartHasher`] then reads the source once, in any chunk sizes,
//! and gives every part's SHA1 and the whole file's (recorded as `large_file_sha1`), in memory
//! that does not grow with the source.
//!
//! ```
//! use b2_proto::planner::{PartHasher, PartPlan};
//! use b2_proto::{AccountId, AuthToken, Session, Sha1Digest};
//!
//! let session = Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api", "https://f");
//! let plan = PartPlan::new(250_000_000, &session).unwrap();
//! assert_eq!((plan.part_count(), plan.part_size()), (3, 100_000_000));
//!
//! // Small sizes, so that the example hashes a few bytes.
//! let source = vec![1u8; 25];
//! let plan = PartPlan::with_sizes(25, 10, 5).unwrap();
//! let mut hasher = PartHasher::new(&plan);
//! for chunk in source.chunks(4) {
//!     hasher.update(chunk);
//! }
//! let hashed = hasher.finish().unwrap();
//! assert_eq!(hashed.part_sha1s.len(), 3);
//! assert_eq!(hashed.whole_sha1, Sha1Digest::of(&source));
//! ```
//!
//! `finish` refuses a source whose length changed since it was planned. Hashing first and
//! uploading second reads the file twice; in exchange no part is ever held in memory, and a
//! part that must be sent again is read again from the file.
//!
//! # Uploading
//!
//! A [`LargeUpload`] is a [`Machine`]: drive it with the loop in [`crate::machine`]. It sends
//! `b2_start_large_file`, then up to `max_in_flight` parts at once (4 by default,
//! [`LargeUpload::with_max_in_flight`]), each on its own upload-part URL, then
//! `b2_finish_large_file`. Where the parts come from decides the constructor.
//!
//! ## From a file: [`LargeUpload::from_source`]
//!
//! Parts are [`Body::Source`] ranges: the driver streams each range from the file, and reads
//! it again if the part is retried.
//!
//! ```
//! # #![allow(clippy::disallowed_methods)]
//! use std::sync::Arc;
//! use std::time::Instant;
//! use b2_proto::large_upload::LargeUpload;
//! use b2_proto::ops::StartLargeFile;
//! use b2_proto::planner::{PartHasher, PartPlan};
//! use b2_proto::{AccountId, AuthToken, Body, BucketId, FileName, Machine, RetryPolicy, Session, Step};
//!
//! let mut session = Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api", "https://f");
//! session.absolute_minimum_part_size = 5;
//! session.recommended_part_size = 10;
//! let session = Arc::new(session);
//!
//! let file = vec![9u8; 25];
//! let plan = PartPlan::new(file.len() as u64, &session).unwrap();
//! let mut hasher = PartHasher::new(&plan);
//! hasher.update(&file);
//! let hashed = hasher.finish().unwrap();
//!
//! let start = StartLargeFile::new(BucketId::new("b1"), FileName::new("backup.tar").unwrap());
//! let mut upload = LargeUpload::from_source(start, &plan, &hashed, session, &RetryPolicy::default());
//! let Step::Send(_, request) = upload.poll_step(Instant::now()) else { panic!() };
//! assert!(request.uri().path().ends_with("/b2_start_large_file"));
//! // Later `b2_upload_part` requests carry `Body::Source(range)`: stream `range` of the file.
//! # fn send_part(body: &Body) { if let Body::Source(range) = body { let _ = range; } }
//! # send_part(request.body());
//! ```
//!
//! ## From a reader of known length: [`LargeUpload::from_reader`]
//!
//! For a source that can be read only once but whose length is known (a download being
//! re-uploaded, a decompressor with a known output size). The machine asks for each part in
//! order with [`Step::NeedPart`]; the driver reads exactly that many bytes and hands them to
//! [`Machine::provide_part`]; the machine hashes them and keeps them until the part is stored.
//! Supplying more or fewer bytes than asked ends the upload with [`InvalidInput::Size`].
//!
//! ```
//! # #![allow(clippy::disallowed_methods)]
//! # use std::sync::Arc;
//! # use std::time::Instant;
//! # use b2_proto::large_upload::LargeUpload;
//! # use b2_proto::ops::StartLargeFile;
//! # use b2_proto::planner::PartPlan;
//! # use b2_proto::{AccountId, AuthToken, BucketId, FileName, Machine, RetryPolicy, Session, Step};
//! # let mut session = Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api", "https://f");
//! # session.absolute_minimum_part_size = 5;
//! # session.recommended_part_size = 10;
//! # let session = Arc::new(session);
//! # let start = StartLargeFile::new(BucketId::new("b1"), FileName::new("backup.tar").unwrap());
//! let plan = PartPlan::new(25, &session).unwrap();
//! let mut upload = LargeUpload::from_reader(start, &plan, session, &RetryPolicy::default());
//! let now = Instant::now();
//! let Step::Send(id, _start) = upload.poll_step(now) else { panic!() };
//! # let reply = r#"{"accountId":"a","action":"start","bucketId":"b1","contentLength":0,
//! #   "contentSha1":"none","contentType":"b2/x-auto","fileId":"4_zlarge","fileInfo":{},
//! #   "fileName":"backup.tar","uploadTimestamp":1}"#;
//! # let reply = http::Response::new(bytes::Bytes::from(reply));
//! upload.handle_response(id, Ok(reply), now);
//! let Step::NeedPart { id, part, range } = upload.poll_step(now) else { panic!() };
//! assert_eq!((part.get(), range), (1, 0..10));
//! upload.provide_part(id, bytes::Bytes::from(vec![0u8; 10]), now);
//! ```
//!
//! ## From a pipe: [`LargeUpload::from_unsized_reader`]
//!
//! For a source of unknown length (stdin, a socket, a compressor's output): parts of
//! [`StreamPlan`]'s size are asked for until the driver supplies fewer bytes than asked (or
//! none), which marks the end. B2 refuses a large file of one part, so the first part is held
//! back until the second one is read; a source that ends within the first part is cut in two
//! if it is longer than the minimum part size, and refused otherwise (send it with
//! `b2_upload_file`). 10,000 parts of the plan's size is the most a pipe can carry:
//! [`StreamPlan::max_total_len`] (1 TB with the default 100 MB parts).
//!
//! ```
//! # use b2_proto::planner::StreamPlan;
//! # use b2_proto::{AccountId, AuthToken, Session};
//! # let session = Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api", "https://f");
//! let plan = StreamPlan::new(&session);
//! assert_eq!(plan.max_total_len(), 1_000_000_000_000);
//! // Larger parts for a pipe that may carry more:
//! let plan = StreamPlan::with_part_size(500_000_000, session.absolute_minimum_part_size).unwrap();
//! assert_eq!(plan.max_total_len(), 5_000_000_000_000);
//! ```
//!
//! ## Copying a file over 5 GB: [`LargeUpload::copy_file`]
//!
//! `b2_copy_file` refuses sources over 5 GB (`source_too_large`). `copy_file` plans the copy
//! with the session's part sizes and copies each range with `b2_copy_part`, server-side: no
//! bytes pass through the client. [`PartSpec::Copy`] parts may also be mixed with uploaded
//! ones in [`LargeUpload::new`] (to splice new bytes onto an existing file).
//!
//! ```
//! # #![allow(clippy::disallowed_methods)]
//! # use std::sync::Arc;
//! # use std::time::Instant;
//! use b2_proto::large_upload::LargeUpload;
//! use b2_proto::ops::StartLargeFile;
//! use b2_proto::{AccountId, AuthToken, BucketId, FileId, FileName, Machine, RetryPolicy, Session, Step};
//!
//! let session = Arc::new(Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api", "https://f"));
//! let start = StartLargeFile::new(BucketId::new("b1"), FileName::new("copy-of-video.mkv").unwrap());
//! let mut copy = LargeUpload::copy_file(start, FileId::new("4_zsource"), 6_000_000_000, session, &RetryPolicy::default());
//! assert!(matches!(copy.poll_step(Instant::now()), Step::Send(..)));
//! ```
//!
//! # Resuming an unfinished large file
//!
//! An upload interrupted by a crash leaves an unfinished large file whose stored parts still
//! count. To continue it: find its id ([`LargeUpload::large_file_id`], persisted when the
//! upload started, or `b2_list_unfinished_large_files` by name), list its parts with a
//! [`Pager`] over [`ListParts`](crate::ops::ListParts) (all pages), plan and hash the source
//! as before, and call [`LargeUpload::resume`]. A planned part whose number, length and SHA1
//! match a listed part is not sent again; a part that differs is uploaded over it. A listed
//! part beyond the plan means the source changed: the resume is refused before anything is
//! sent, and the file is left alone (cancel it and start again). Parts read with `NeedPart`
//! are still read, to compare their SHA1s; copied parts are always copied again.
//!
//! ```
//! # #![allow(clippy::disallowed_methods)]
//! # use std::sync::Arc;
//! # use std::time::Instant;
//! use b2_proto::large_upload::LargeUpload;
//! use b2_proto::model::Part;
//! use b2_proto::ops::{ListParts, Operation, StartLargeFile};
//! use b2_proto::planner::{PartHasher, PartPlan};
//! use b2_proto::{AccountId, AuthToken, BucketId, FileId, FileName, Machine, Pager, RetryPolicy, Session, Step};
//!
//! # let mut session = Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api", "https://f");
//! # session.absolute_minimum_part_size = 5;
//! # session.recommended_part_size = 10;
//! # let session = Arc::new(session);
//! let file_id = FileId::new("4_zunfinished");
//! let source = vec![3u8; 25];
//! let plan = PartPlan::new(25, &session).unwrap();
//! let mut hasher = PartHasher::new(&plan);
//! hasher.update(&source);
//! let hashed = hasher.finish().unwrap();
//!
//! // Every page of b2_list_parts, here one page listing part 1 as stored.
//! let mut pager = Pager::new(ListParts::new(file_id.clone()));
//! let mut listed: Vec<Part> = Vec::new();
//! while let Some(op) = pager.next_operation() {
//!     // A driver runs `pager.next_call(..)`; here the reply is made up.
//!     # let reply = serde_json::json!({"parts": [{"fileId": "4_zunfinished", "partNumber": 1,
//!     #     "contentLength": 10, "contentSha1": hashed.part_sha1s[0].to_hex(), "uploadTimestamp": 1}],
//!     #     "nextPartNumber": null});
//!     # let reply = http::Response::new(bytes::Bytes::from(reply.to_string()));
//!     let page = op.parse(reply).unwrap();
//!     listed.extend(pager.advance(page).unwrap());
//! }
//!
//! let start = StartLargeFile::new(BucketId::new("b1"), FileName::new("backup.tar").unwrap());
//! let mut upload = LargeUpload::from_source(start, &plan, &hashed, session, &RetryPolicy::default())
//!     .resume(file_id, listed);
//! // No b2_start_large_file: straight to the parts still missing (2 and 3).
//! let Step::Send(_, request) = upload.poll_step(Instant::now()) else { panic!() };
//! assert!(request.uri().path().ends_with("/b2_get_upload_part_url"));
//! assert_eq!(upload.parts_done(), 1);
//! ```
//!
//! # Memory
//!
//! | Source | Part bytes held by the machine |
//! |---|---|
//! | [`from_source`](crate::large_upload::LargeUpload::from_source), [`PartSpec::Source`] | none: the driver streams ranges from the file |
//! | [`copy_file`](crate::large_upload::LargeUpload::copy_file), [`PartSpec::Copy`] | none: B2 copies server-side |
//! | [`from_reader`](crate::large_upload::LargeUpload::from_reader) | at most `max_in_flight` parts (read, in flight or waiting to be retried) |
//! | [`from_unsized_reader`](crate::large_upload::LargeUpload::from_unsized_reader) | at most `max(max_in_flight, 2)` parts (the first is held until the second is read) |
//!
//! With the default 100 MB parts and 4 in flight, a reader upload holds up to 400 MB;
//! [`LargeUpload::parts_in_memory`] reports the current count. Lower `max_in_flight` or the
//! part size ([`PartPlan::with_part_size`], [`StreamPlan::with_part_size`]) to hold less;
//! the part size also bounds the largest file (10,000 parts). The driver's own buffers come on
//! top: a [`Body::Source`] part should be streamed from the file, not read into memory.
//!
//! # Failure
//!
//! Each request is retried under the [`RetryPolicy`] ([`crate::manual::retries`]): a part that
//! fails with a broken connection, 408, 5xx or a refused upload token gets a new upload-part
//! URL, and a part read into memory whose SHA1 B2 did not match (damaged in transit) is sent
//! again; for a part streamed from a file, a SHA1 mismatch means the file changed since it was
//! hashed, which no retry can mend. When a part, the start or the finish fails for good:
//!
//! - by default the machine sends `b2_cancel_large_file`, so that no unfinished file (whose
//!   parts take up storage) is left behind, and then ends with the original error
//!   (not the cancel's outcome);
//! - with [`LargeUpload::keep_unfinished_on_error`]`(true)` it ends at once and leaves the
//!   large file for a [resume](#resuming-an-unfinished-large-file): persist
//!   [`LargeUpload::large_file_id`] as soon as it is known. An unfinished large file that is
//!   never resumed should be cancelled later (`b2_list_unfinished_large_files` finds them).
//!
//! A finish whose reply was lost (a timeout after B2 acted) is not mistaken for a failure: when
//! the repeated `b2_finish_large_file` is refused because the file is no longer unfinished, the
//! machine reads the file with `b2_get_file_info` and succeeds if it was finished. The finished
//! file's id and length are checked against the upload in every case.
//!
//! Input that B2 would refuse is refused before anything is sent: a plan of one part or more
//! than 10,000, a part below the session's minimum or above 5 GB, hashes that do not match the
//! plan, a resume onto a file with parts beyond the plan.
//!
//! [`LargeFileCutoff`]: crate::planner::LargeFileCutoff
//! [`PartPlan::new`]: crate::planner::PartPlan::new
//! [`PartPlan::with_part_size`]: crate::planner::PartPlan::with_part_size
//! [`PartHasher`]: crate::planner::PartHasher
//! [`StreamPlan`]: crate::planner::StreamPlan
//! [`StreamPlan::max_total_len`]: crate::planner::StreamPlan::max_total_len
//! [`StreamPlan::with_part_size`]: crate::planner::StreamPlan::with_part_size
//! [`SimpleUpload`]: crate::upload::SimpleUpload
//! [`LargeUpload`]: crate::large_upload::LargeUpload
//! [`LargeUpload::from_source`]: crate::large_upload::LargeUpload::from_source
//! [`LargeUpload::from_reader`]: crate::large_upload::LargeUpload::from_reader
//! [`LargeUpload::from_unsized_reader`]: crate::large_upload::LargeUpload::from_unsized_reader
//! [`LargeUpload::copy_file`]: crate::large_upload::LargeUpload::copy_file
//! [`LargeUpload::new`]: crate::large_upload::LargeUpload::new
//! [`LargeUpload::resume`]: crate::large_upload::LargeUpload::resume
//! [`LargeUpload::with_max_in_flight`]: crate::large_upload::LargeUpload::with_max_in_flight
//! [`LargeUpload::keep_unfinished_on_error`]: crate::large_upload::LargeUpload::keep_unfinished_on_error
//! [`LargeUpload::large_file_id`]: crate::large_upload::LargeUpload::large_file_id
//! [`LargeUpload::parts_in_memory`]: crate::large_upload::LargeUpload::parts_in_memory
//! [`PartSpec::Source`]: crate::large_upload::PartSpec::Source
//! [`PartSpec::Copy`]: crate::large_upload::PartSpec::Copy
//! [`Machine`]: crate::Machine
//! [`Machine::provide_part`]: crate::Machine::provide_part
//! [`Step::NeedPart`]: crate::Step::NeedPart
//! [`Body::Source`]: crate::Body::Source
//! [`Pager`]: crate::Pager
//! [`RetryPolicy`]: crate::RetryPolicy
//! [`InvalidInput::Size`]: crate::InvalidInput::Size
