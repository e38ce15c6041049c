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
    // What moto holds: the mapping as JSON, in one version.
    let stored = moto.boto(
        "sm = boto3.client('secretsmanager', **kw)\n\
         value = json.loads(sm.get_secret_value(SecretId='blot/production')['SecretString'])\n\
         versions = sm.list_secret_version_ids(SecretId='blot/production')['Versions']\n\
         print(value['DB_PASSWORD'], value['DB_USER'], len(versions))",
    );
    assert_eq!(stored, "pw-7h1s-1s-s3cret blot 1");
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
    let version = |name: &str| {
        moto.boto(&format!(
            "p = ssm.get_parameter(Name='{name}', WithDecryption=True)['Parameter']\n\
             print(p['Version'], p['Type'], p['Value'])"
        ))
    };
    assert_eq!(version("/blot/redis/endpoint"), "1 String 10.0.0.5");
    assert_eq!(version("/blot/token"), "1 SecureString t0k3n-v4lu3-9");
    let get = "flow: 1\nsteps:\n  plain:\n    type: ssm.get\n    with: { name: /blot/redis/endpoint }\n  hidden:\n    type: ssm.get\n    with: { name: /blot/token }\n";
    let (out, events) = run(&moto, get, 0);
    assert_eq!(outputs(&events, "plain")["value"], "10.0.0.5");
    assert_eq!(outputs(&events, "hidden")["type"], "SecureString");
    assert_eq!(outputs(&events, "hidden")["value"], "***");
    assert!(!out.both().contains("t0k3n-v4lu3-9"));
    run(&moto, &put.replace("10.0.0.5", "10.0.0.6"), 0);
    assert_eq!(version("/blot/redis/endpoint"), "2 String 10.0.0.6");
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

/// Writing a plain String over a SecureString is said in the plan and warned at apply; a
/// new parameter is planned as a create; a binary secret is one clear line.
#[test]
fn a_securestring_downgrade_is_warned_and_a_binary_secret_is_refused() {
    let moto = Moto::start();
    moto.boto(
        "ssm.put_parameter(Name='/app/token', Value='t0k3n-s3cr3t-1', Type='SecureString')\n\
         boto3.client('secretsmanager', **kw).create_secret(Name='blob', SecretBinary=b'\\x00\\x01')",
    );
    let playbook = "flow: 1\nsteps:\n  token:\n    type: ssm.put\n    with: { name: /app/token, value: plain-now, type: String }\n  fresh:\n    type: ssm.put\n    with: { name: /app/new, value: one }\n";
    let plan = moto
        .reach(Flow::new().playbook(playbook))
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(0)
        .stdout_has("replaces a SecureString with a plain String")
        .stdout_has("+ fresh  (ssm.put)  create parameter /app/new (String)")
        .stdout_lacks("t0k3n-s3cr3t-1");
    let (out, _) = run(&moto, playbook, 0);
    assert!(
        out.both()
            .contains("replaces a SecureString with a plain String"),
        "{}",
        out.both()
    );
    let (out, _) = run(
        &moto,
        "flow: 1\nsteps:\n  blob:\n    type: secrets.get\n    with: { name: blob }\n",
        1,
    );
    out.stdout_has("secret blob holds binary data (SecretBinary)");
}
