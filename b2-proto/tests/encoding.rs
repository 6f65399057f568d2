//! Backblaze's 98 official string-encoding cases, both ways, and round-trip properties.

use b2_proto::encoding::{decode, encode, encode_query};
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    fully_encoded: String,
    minimally_encoded: String,
    string: String,
}

#[derive(Deserialize)]
struct Fixture {
    count: usize,
    cases: Vec<Case>,
}

fn cases() -> Vec<Case> {
    let text = include_str!("fixtures/b2_string_encoding_cases.json");
    let fixture: Fixture = serde_json::from_str(text).expect("fixture parses");
    assert_eq!(fixture.cases.len(), fixture.count);
    assert_eq!(fixture.count, 98);
    fixture.cases
}

#[test]
fn encoder_matches_an_official_form_for_every_case() {
    for case in cases() {
        let ours = encode(&case.string);
        assert!(
            ours == case.fully_encoded || ours == case.minimally_encoded,
            "{:?}: got {ours:?}, want {:?} or {:?}",
            case.string,
            case.minimally_encoded,
            case.fully_encoded
        );
    }
}

#[test]
fn decoder_reads_both_official_forms_for_every_case() {
    for case in cases() {
        assert_eq!(
            decode(&case.fully_encoded).unwrap(),
            case.string,
            "{}",
            case.fully_encoded
        );
        assert_eq!(
            decode(&case.minimally_encoded).unwrap(),
            case.string,
            "{}",
            case.minimally_encoded
        );
    }
}

#[test]
fn query_encoder_output_decodes_for_every_case() {
    for case in cases() {
        let q = encode_query(&case.string);
        assert!(
            q.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"%.-_~".contains(&b)),
            "{q}"
        );
        assert_eq!(decode(&q).unwrap(), case.string);
    }
}

proptest! {
    #[test]
    fn any_string_round_trips(s in "\\PC*") {
        prop_assert_eq!(decode(&encode(&s)).unwrap(), s.clone());
        prop_assert_eq!(decode(&encode_query(&s)).unwrap(), s);
    }

    #[test]
    fn encoded_output_is_header_safe(s in any::<String>()) {
        let e = encode(&s);
        prop_assert!(http::HeaderValue::from_str(&e).is_ok());
        prop_assert!(!e.contains(' ') && !e.contains('+'));
    }
}
