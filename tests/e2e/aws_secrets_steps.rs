//! Secrets Manager and SSM step types against a real `moto_server`: values land, a second
//! write of the same value changes nothing, and secret values never show.

use crate::common::Flow;
use crate::common::moto::{Moto, outputs};
use serde_json::Value;

fn run(moto: &Moto, playbook: &str, code: i32) -> (crate::common::Outcome, Vec<Value>) {
    moto.apply(Flow::new().playbook(playbook), code)
}

#[test]
fn a_secret_is_created_once_read_back_by_key_and_never_shown() {
    let moto = Moto::start();
    let put = "flow: 1\nsteps:\n  store:\n    type: secrets.put\n    with: { name: blot/production, value: { DB_PASSWORD: pw-7h1s-1s-s3cret, DB_USER: blot } }\n";
    let (out, events) = run(&moto, put, 0);
    assert_eq!(outputs(&events, "store")["changed"], true);
    assert!(!out.both().contains("pw-7h1s-1s-s3cret"), "{}", out.both());
    let (_, events) = run(&moto, put, 0);
    assert_eq!(
        outputs(&events, "store")["changed"],
        false,
        "the same value is no change"
    );
    let get = "flow: 1\nsteps:\n  pw:\n    type: secrets.get\n    with: { name: blot/production, json_key: DB_PASSWORD }\n  show:\n    type: log\n    with: { message: \"password is {{ steps.pw.value }}\" }\n  check:\n    type: assert\n    with: { that: \"steps.pw.value == 'pw-7h1s-1s-s3cret'\" }\n";
    let (out, events) = run(&moto, get, 0);
    assert_eq!(outputs(&events, "pw")["value"], "***");
    assert!(out.stdout.contains("password is ***"), "{}", out.stdout);
    assert!(!out.both().contains("pw-7h1s-1s-s3cret"), "{}", out.both());
    let journal = crate::common::read_tree(&out.path(".flow"));
    assert!(!journal.contains("pw-7h1s-1s-s3cret"));
}

#[test]
fn a_parameter_is_written_once_and_a_securestring_is_masked_when_read() {
    let moto = Moto::start();
    let put = "flow: 1\nsteps:\n  plain:\n    type: ssm.put\n    with: { name: /blot/redis/endpoint, value: 10.0.0.5 }\n  hidden:\n    type: ssm.put\n    with: { name: /blot/token, value: t0k3n-v4lu3-9, type: SecureString }\n";
    let (out, events) = run(&moto, put, 0);
    assert_eq!(outputs(&events, "plain")["changed"], true);
    assert!(!out.both().contains("t0k3n-v4lu3-9"), "{}", out.both());
    let (_, events) = run(&moto, put, 0);
    assert_eq!(outputs(&events, "plain")["changed"], false);
    let get = "flow: 1\nsteps:\n  plain:\n    type: ssm.get\n    with: { name: /blot/redis/endpoint }\n  hidden:\n    type: ssm.get\n    with: { name: /blot/token }\n";
    let (out, events) = run(&moto, get, 0);
    assert_eq!(outputs(&events, "plain")["value"], "10.0.0.5");
    assert_eq!(outputs(&events, "hidden")["type"], "SecureString");
    assert_eq!(outputs(&events, "hidden")["value"], "***");
    assert!(!out.both().contains("t0k3n-v4lu3-9"));
}

#[test]
fn a_missing_secret_is_one_clear_line() {
    let moto = Moto::start();
    let (out, _) = run(
        &moto,
        "flow: 1\nsteps:\n  pw:\n    type: secrets.get\n    with: { name: nope }\n",
        1,
    );
    out.stdout_has("secretsmanager GetSecretValue failed: ResourceNotFoundException");
}
