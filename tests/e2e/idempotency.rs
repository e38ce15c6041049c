//! Idempotency tokens (DESIGN §5): derived from (run id, step id, element index), the same for
//! every retry and resume of that step element, different for anything else, and acceptable
//! to the AWS APIs that take one (EC2 ClientToken ≤ 64 ASCII; CloudFormation
//! ClientRequestToken `[a-zA-Z0-9][-a-zA-Z0-9]*` ≤ 128; Secrets Manager ClientRequestToken
//! 32–64 characters).

use flow_engine::run::idempotency_token;
use std::collections::HashSet;

const RUN: &str = "20261123-021758-4f2a";

#[test]
fn the_same_inputs_give_the_same_token() {
    assert_eq!(
        idempotency_token(RUN, "launch", None),
        idempotency_token(RUN, "launch", None)
    );
    assert_eq!(
        idempotency_token(RUN, "launch", Some(3)),
        idempotency_token(RUN, "launch", Some(3))
    );
}

#[test]
fn a_different_run_step_or_element_gives_a_different_token() {
    let tokens = [
        idempotency_token(RUN, "launch", None),
        idempotency_token(RUN, "launch", Some(0)),
        idempotency_token(RUN, "launch", Some(1)),
        idempotency_token(RUN, "launch", Some(10)),
        idempotency_token(RUN, "launch2", None),
        idempotency_token(RUN, "deploy", None),
        idempotency_token(RUN, "deploy", Some(0)),
        idempotency_token("20261123-021758-4f2b", "launch", None),
        idempotency_token("20261123-021758-4f2b", "launch", Some(0)),
        idempotency_token("20261124-000000-0000", "deploy", Some(1)),
    ];
    let distinct: HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), tokens.len(), "{tokens:#?}");
}

#[test]
fn element_index_and_step_id_cannot_be_confused() {
    // `step` + element 1 vs `step1` without an element, and similar concatenations.
    assert_ne!(
        idempotency_token(RUN, "step", Some(1)),
        idempotency_token(RUN, "step1", None)
    );
    assert_ne!(
        idempotency_token(RUN, "step", Some(12)),
        idempotency_token(RUN, "step1", Some(2))
    );
}

#[test]
fn tokens_fit_what_the_aws_apis_accept() {
    let shape = regex::Regex::new(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$").unwrap();
    for (run, step, element) in [
        (RUN, "launch", None),
        (
            RUN,
            "a_very_long_step_id_that_goes_on_and_on_and_on_and_on_and_on_and_on",
            Some(123_456),
        ),
        ("20991231-235959-ffff", "x", Some(0)),
    ] {
        let token = idempotency_token(run, step, element);
        assert!(
            shape.is_match(&token),
            "{token:?} is not a valid ClientRequestToken"
        );
        assert!(
            (32..=64).contains(&token.len()),
            "{token:?} has {} characters; Secrets Manager wants 32 to 64",
            token.len()
        );
    }
}
