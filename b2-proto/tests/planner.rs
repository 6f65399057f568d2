//! Property tests of the part planner and the part hasher.

mod common;

use b2_proto::PartNumber;
use b2_proto::Sha1Digest;
use b2_proto::planner::{LargeFileCutoff, PartHasher, PartPlan, StreamPlan};
use proptest::prelude::*;

const MB: u64 = 1_000_000;
const GB: u64 = 1_000 * MB;
const TB: u64 = 1_000 * GB;
const MAX_PART: u64 = 5 * GB;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Every plan covers the source exactly, in order, with 2 to 10,000 parts whose sizes B2
    /// accepts: all but the last between the minimum and 5 GB, the last at least 1 byte.
    #[test]
    fn plans_cover_the_source_within_b2_limits(
        total in prop_oneof![1u64..=20 * MB, 1u64..=10 * TB, (10 * TB - 1000)..=10 * TB],
        recommended in prop_oneof![Just(100 * MB), 1u64..=6 * GB],
        minimum in prop_oneof![Just(5 * MB), 1u64..=10 * MB],
    ) {
        match PartPlan::with_sizes(total, recommended, minimum) {
            Ok(plan) => {
                let parts: Vec<_> = plan.iter().collect();
                prop_assert_eq!(parts.len(), usize::from(plan.part_count()));
                prop_assert!((2..=10_000).contains(&parts.len()));
                let mut expected_start = 0;
                for (i, (n, range)) in parts.iter().enumerate() {
                    prop_assert_eq!(usize::from(n.get()), i + 1);
                    prop_assert_eq!(range.start, expected_start);
                    let len = range.end - range.start;
                    prop_assert!((1..=MAX_PART).contains(&len));
                    if i + 1 < parts.len() {
                        prop_assert_eq!(len, plan.part_size());
                        prop_assert!(len >= minimum.min(MAX_PART));
                    }
                    expected_start = range.end;
                }
                prop_assert_eq!(expected_start, total);
                prop_assert_eq!(plan.range(plan.last_part()), parts.last().map(|p| p.1.clone()));
                // The recommended size is kept whenever it works.
                let wanted = recommended.clamp(minimum.min(MAX_PART), MAX_PART);
                if total.div_ceil(wanted) <= 10_000 && wanted < total {
                    prop_assert_eq!(plan.part_size(), wanted);
                }
            }
            Err(_) => {
                // Only sources B2 cannot take as a large file are refused.
                prop_assert!(total > 10 * TB || total <= minimum.min(MAX_PART));
            }
        }
    }

    /// Any chunking of the source gives the same SHA1s as hashing each part directly.
    #[test]
    fn hasher_is_independent_of_chunking(
        data in proptest::collection::vec(any::<u8>(), 2..600),
        part_size in 1u64..100,
        chunks in proptest::collection::vec(1usize..80, 1..50),
    ) {
        let total = data.len() as u64;
        let mut hasher = PartHasher::with_part_size(part_size);
        let mut rest = &data[..];
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap()).min(rest.len());
            hasher.update(&rest[..n]);
            rest = &rest[n..];
        }
        prop_assert_eq!(hasher.len(), total);
        let hashed = hasher.finish().unwrap();
        let expected: Vec<_> = data.chunks(part_size as usize).map(Sha1Digest::of).collect();
        prop_assert_eq!(hashed.part_sha1s, expected);
        prop_assert_eq!(hashed.whole_sha1, Sha1Digest::of(&data));
        prop_assert_eq!(hashed.total_len, total);
    }

    /// The hasher for a plan yields one SHA1 per planned part.
    #[test]
    fn hasher_matches_its_plan(total in 11u64..5000, part_size in 10u64..200) {
        let Ok(plan) = PartPlan::with_part_size(total, part_size, 10) else {
            return Ok(());
        };
        let data: Vec<u8> = (0..total).map(|i| (i * 7 % 251) as u8).collect();
        let mut hasher = PartHasher::new(&plan);
        hasher.update(&data);
        let hashed = hasher.finish().unwrap();
        prop_assert_eq!(hashed.part_sha1s.len(), usize::from(plan.part_count()));
        for ((_, range), sha1) in plan.iter().zip(&hashed.part_sha1s) {
            prop_assert_eq!(*sha1, Sha1Digest::of(&data[range.start as usize..range.end as usize]));
        }
    }
}

#[test]
fn session_sizes_are_used() {
    let mut session = common::session();
    session.recommended_part_size = 50 * MB;
    session.absolute_minimum_part_size = 5 * MB;
    let plan = PartPlan::new(120 * MB, &session).unwrap();
    assert_eq!(
        plan.iter()
            .map(|(_, r)| r.end - r.start)
            .collect::<Vec<_>>(),
        [50 * MB, 50 * MB, 20 * MB]
    );
    // A recommended size below the minimum is raised to it.
    session.recommended_part_size = MB;
    assert_eq!(
        PartPlan::new(120 * MB, &session).unwrap().part_size(),
        5 * MB
    );
    // 10 TB + 1 byte is refused with a typed error.
    assert!(matches!(
        PartPlan::new(10 * TB + 1, &session),
        Err(b2_proto::InvalidInput::Size { .. })
    ));
}

#[test]
fn stream_plan_limits() {
    let session = common::session();
    let plan = StreamPlan::new(&session);
    assert_eq!(plan.part_size(), 100 * MB);
    assert_eq!(plan.max_total_len(), TB);
    assert_eq!(
        plan.range(PartNumber::new(10_000).unwrap()),
        9_999 * 100 * MB..TB
    );
    assert!(StreamPlan::with_part_size(4 * MB, 5 * MB).is_err());
    assert!(StreamPlan::with_part_size(5 * GB + 1, 5 * MB).is_err());
    assert!(StreamPlan::with_part_size(5 * GB, 5 * MB).is_ok());
}

#[test]
fn cutoff_defaults_to_200_mb() {
    let cutoff = LargeFileCutoff::default();
    assert_eq!(cutoff.get(), 200 * MB);
    assert!(!cutoff.use_large_file(0));
    assert!(!cutoff.use_large_file(200 * MB));
    assert!(cutoff.use_large_file(200 * MB + 1));
    assert!(!LargeFileCutoff::new(5 * GB).use_large_file(5 * GB));
    assert!(LargeFileCutoff::new(10 * GB).use_large_file(5 * GB + 1));
    assert!(LargeFileCutoff::new(10 * MB).use_large_file(10 * MB + 1));
}
