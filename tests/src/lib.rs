//! The behaviour suite: every case written once, run against every adapter.
//!
//! Each adapter's test file implements [`Harness`] (a blocking-shaped view of its client) and
//! expands [`behaviour_suite!`], which makes one `#[test]` per case. A case runs against the
//! [`Target`] the environment names: a `b2-emulator` started in-process by default, or any
//! B2-compatible endpoint when `B2_TEST_REALM`, `B2_APPLICATION_KEY_ID` and
//! `B2_APPLICATION_KEY` are set (real Backblaze with the two key variables alone). Cases that
//! need the emulator's fault controls say they are skipped elsewhere.

pub mod harness;
pub mod suite;
pub mod target;

pub use harness::Harness;
pub use target::Target;

/// Expands one `#[test]` per behaviour case for an adapter.
///
/// `$make` is a function `fn(&Target) -> H` building the adapter's harness for a target.
#[macro_export]
macro_rules! behaviour_suite {
    ($make:path) => {
        $crate::behaviour_suite!(@cases $make;
            authorize_and_session,
            bad_key_is_refused,
            bucket_lifecycle,
            small_upload_download_round_trip,
            awkward_names_and_info_round_trip,
            large_upload_from_bytes_in_parallel_parts,
            upload_from_path_small_and_large,
            upload_from_readers_known_and_unknown_length,
            downloads_stream_read_and_range,
            download_to_path_in_parallel_ranges,
            listing_names_versions_prefix_delimiter_and_limit,
            hide_unhide_and_delete_versions,
            copy_small_and_large,
            keys_and_restricted_access,
            download_authorization_and_share_url,
            unfinished_large_file_resume_and_cancel,
            invalid_input_is_refused_before_sending,
            upload_progress_is_reported,
            notification_rules_round_trip,
            server_side_encryption_sse_b2_and_sse_c,
            object_lock_retention_and_legal_hold,
            faults_503_on_uploads_are_survived,
            faults_expired_tokens_reauthorize,
            faults_429_with_retry_after_is_honoured,
            faults_connection_resets_mid_body,
            faults_mixed_200_transfers_are_byte_identical,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let target = $crate::Target::from_env();
                let harness = $make(&target);
                $crate::suite::$case(&harness, &target);
            }
        )*
    };
}

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
