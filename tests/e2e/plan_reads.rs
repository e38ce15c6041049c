//! A read's plan line shows what it returned (DESIGN §4): a reply, the key figures, a small
//! table for a listing — masked like everything else.

use crate::common::Flow;
use crate::common::moto::Moto;
use crate::common::redis::RedisServer;

#[test]
fn a_redis_read_shows_its_reply_in_the_plan() {
    let redis = RedisServer::start();
    redis.cli(&["SET", "greeting", "hello from redis"]);
    let out = Flow::new()
        .playbook(&format!(
            "flow: 1\nsteps:\n  get:\n    type: redis.command\n    with: {{ url: \"{}\", command: [GET, greeting] }}\n",
            redis.url()
        ))
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0);
    assert!(
        out.stdout.contains("= get  (redis.command)  GET greeting")
            && out.stdout.contains("\n        reply: hello from redis\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_listing_is_a_table_in_the_plan_and_a_secret_read_stays_masked() {
    let moto = Moto::start();
    moto.create_bucket("backups");
    moto.boto(
        "for day in range(1, 13):\n\
         \x20   s3.put_object(Bucket='backups', Key=f'daily/2026-11-{day:02}.rdb', Body=b'x' * day)\n\
         boto3.client('secretsmanager', **kw).create_secret(Name='redis/auth', SecretString='s3cr3t-t0k3n-value')",
    );
    let out = moto
        .reach(Flow::new().playbook(
            "flow: 1\nsteps:\n  backups:\n    type: s3.list\n    with: { bucket: backups, prefix: daily/ }\n  token:\n    type: secrets.get\n    with: { name: redis/auth }\n",
        ))
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0)
        .stdout_has("        objects: 12 rows\n")
        .stdout_has("daily/2026-11-12.rdb  12")
        .stdout_has("          … and 2 more\n")
        .stdout_has("        count: 12\n")
        .stdout_has("        value: ***\n")
        .stdout_lacks("s3cr3t-t0k3n-value");
    // The saved plan stays small and masked too.
    let saved = moto
        .reach(Flow::new().playbook(
            "flow: 1\nsteps:\n  token:\n    type: secrets.get\n    with: { name: redis/auth }\n",
        ))
        .args(&["plan", "playbook.yaml", "--out", "plan.json"])
        .run();
    saved.code(0);
    assert!(!saved.file("plan.json").contains("s3cr3t-t0k3n-value"));
}

/// A templated value of the wrong shape is said in the user's terms, not serde's.
#[test]
fn a_templated_value_of_the_wrong_shape_says_what_the_field_takes() {
    let out = Flow::new()
        .playbook(
            "flow: 1\nsteps:\n  pick:\n    type: choose\n    with:\n      prompt: Which?\n      options: \"{{ [{'x': 2}] }}\"\n",
        )
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(1)
        .stdout_has("invalid `with.options[0]`: expected a mapping with `label` and `value`, or a text or a number or true or false; found a mapping with `x`")
        .stdout_lacks("untagged enum");
}
