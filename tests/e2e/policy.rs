//! What `flow policy` prints: the statements each AWS step type declares, narrowed to what the
//! playbook knows before the run, `*` with a reason where it does not; the errors and exit
//! codes of `flow plan`; the README's policies equal to the command's output. (That the
//! printed policy is enough, and each action needed, is tests/e2e/policy_on_moto.rs.)

use crate::common::Flow;
use serde_json::{Value, json};
use std::path::Path;

/// `flow policy playbook.yaml ARGS` for this playbook (and files beside it).
fn policy(yaml: &str, files: &[(&str, &str)], args: &[&str]) -> crate::common::Outcome {
    let mut all = vec!["policy", "playbook.yaml"];
    all.extend(args);
    files
        .iter()
        .fold(Flow::new().playbook(yaml), |flow, (name, text)| {
            flow.file(name, text)
        })
        .args(&all)
        .run()
}

fn document(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// The statement with this Sid.
fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
    policy["Statement"]
        .as_array()
        .expect("Statement")
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid} in {policy:#}"))
}

fn sids(policy: &Value) -> Vec<String> {
    policy["Statement"]
        .as_array()
        .expect("Statement")
        .iter()
        .map(|s| s["Sid"].as_str().expect("Sid").to_string())
        .collect()
}

/// One step of every AWS step type, with literal params (Sid → what it must allow).
const EVERY_AWS_TYPE: &str = r#"flow: 1
defaults:
  aws: { region: eu-north-1 }
steps:
  list: { type: s3.list, with: { bucket: b, prefix: daily/ } }
  put: { type: s3.put, with: { bucket: b, key: up/a.txt, path: up.txt } }
  get: { type: s3.get, with: { bucket: b, key: daily/a.rdb, path: a.rdb } }
  delete: { type: s3.delete, with: { bucket: b, keys: [old/a.rdb] } }
  secret: { type: secrets.get, with: { name: app/db } }
  secret_put: { type: secrets.put, with: { name: app/new, value: v } }
  param: { type: ssm.get, with: { name: /app/endpoint } }
  param_put: { type: ssm.put, with: { name: /app/port, value: "6379" } }
  launch: { type: ec2.run, with: { image_id: ami-12345678, instance_type: t3.small, subnet_id: subnet-1, security_group_ids: [sg-1] } }
  attach: { type: ec2.attach_security_groups, with: { instance_ids: [i-1], security_group_ids: [sg-2] } }
  find: { type: ec2.find, with: { filters: { "tag:Role": redis } } }
  wait: { type: ec2.wait, with: { instance_ids: [i-1], state: running } }
  stop: { type: ec2.stop, with: { instance_ids: [i-1] } }
  terminate: { type: ec2.terminate, with: { instance_ids: [i-1] } }
  deploy: { type: cfn.deploy, with: { stack_name: app, template: stack.json } }
  outputs: { type: cfn.outputs, with: { stack_name: app } }
  search: { type: logs.search, with: { log_group: /app/api, filter_pattern: kv } }
"#;

#[test]
fn every_aws_step_type_declares_the_calls_it_makes_narrowed_to_its_resources() {
    // Every step type flow knows whose defaults are `defaults.aws` is in the playbook: a new
    // AWS step type without its permissions fails here.
    let catalogue = Flow::new().args(&["--output", "json", "steps"]).run();
    catalogue.code(0);
    let aws_types: Vec<String> = document(&catalogue.stdout)
        .as_array()
        .expect("types")
        .iter()
        .filter(|t| {
            t["defaults"]
                .as_array()
                .is_some_and(|d| d.contains(&json!("aws")))
        })
        .map(|t| t["type"].as_str().expect("type").to_string())
        .collect();
    assert!(aws_types.len() >= 17, "{aws_types:?}");
    for name in &aws_types {
        assert!(
            EVERY_AWS_TYPE.contains(&format!("type: {name},")),
            "{name} is not in EVERY_AWS_TYPE"
        );
    }

    let out = policy(
        EVERY_AWS_TYPE,
        &[
            (
                "stack.json",
                r#"{"Resources":{"Q":{"Type":"AWS::SQS::Queue"}}}"#,
            ),
            ("up.txt", "hi\n"),
        ],
        &["--account", "123456789012"],
    );
    out.code(0);
    let p = document(&out.stdout);
    assert_eq!(p["Version"], "2012-10-17");
    let allows = |sid: &str, actions: &[&str], resources: &[&str]| {
        let s = statement(&p, sid);
        assert_eq!(s["Effect"], "Allow", "{s:#}");
        assert_eq!(s["Action"], json!(actions), "{sid}");
        assert_eq!(s["Resource"], json!(resources), "{sid}");
    };
    let acct = "123456789012";
    allows("ListS3List", &["s3:ListBucket"], &["arn:aws:s3:::b"]);
    assert_eq!(
        statement(&p, "ListS3List")["Condition"],
        json!({ "StringEquals": { "s3:prefix": "daily/" } })
    );
    allows("PutS3Put", &["s3:PutObject"], &["arn:aws:s3:::b/up/a.txt"]);
    allows(
        "GetS3Get",
        &["s3:GetObject"],
        &["arn:aws:s3:::b/daily/a.rdb"],
    );
    allows(
        "DeleteS3Delete",
        &["s3:DeleteObject"],
        &["arn:aws:s3:::b/old/a.rdb"],
    );
    allows(
        "SecretSecretsGet",
        &["secretsmanager:GetSecretValue"],
        &[&format!(
            "arn:aws:secretsmanager:eu-north-1:{acct}:secret:app/db-??????"
        )],
    );
    allows(
        "SecretPutSecretsPut",
        &[
            "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue",
            "secretsmanager:CreateSecret",
        ],
        &[&format!(
            "arn:aws:secretsmanager:eu-north-1:{acct}:secret:app/new-??????"
        )],
    );
    allows(
        "ParamSsmGet",
        &["ssm:GetParameter"],
        &[&format!(
            "arn:aws:ssm:eu-north-1:{acct}:parameter/app/endpoint"
        )],
    );
    allows(
        "ParamPutSsmPut",
        &["ssm:GetParameter", "ssm:PutParameter"],
        &[&format!("arn:aws:ssm:eu-north-1:{acct}:parameter/app/port")],
    );
    let ec2 = |r: &str| format!("arn:aws:ec2:eu-north-1:{acct}:{r}");
    allows(
        "LaunchEc2Run",
        &["ec2:RunInstances"],
        &[
            &ec2("instance/*"),
            &ec2("volume/*"),
            &ec2("network-interface/*"),
            &ec2("subnet/subnet-1"),
            "arn:aws:ec2:eu-north-1::image/ami-12345678",
            &ec2("key-pair/*"),
            &ec2("security-group/sg-1"),
        ],
    );
    allows(
        "LaunchEc2Run2",
        &["ec2:CreateTags"],
        &[&ec2("instance/*"), &ec2("volume/*")],
    );
    allows(
        "AttachEc2AttachSecurityGroups",
        &["ec2:ModifyInstanceAttribute"],
        &[&ec2("instance/i-1"), &ec2("security-group/*")],
    );
    allows(
        "AttachEc2AttachSecurityGroups2",
        &["ec2:DescribeInstances"],
        &["*"],
    );
    allows("FindEc2Find", &["ec2:DescribeInstances"], &["*"]);
    allows("WaitEc2Wait", &["ec2:DescribeInstances"], &["*"]);
    allows(
        "StopEc2Stop",
        &["ec2:StopInstances"],
        &[&ec2("instance/i-1")],
    );
    allows(
        "TerminateEc2Terminate",
        &["ec2:TerminateInstances"],
        &[&ec2("instance/i-1")],
    );
    allows(
        "DeployCfnDeploy",
        &[
            "cloudformation:DescribeStacks",
            "cloudformation:GetTemplate",
            "cloudformation:CreateChangeSet",
            "cloudformation:DescribeChangeSet",
            "cloudformation:ExecuteChangeSet",
            "cloudformation:DeleteChangeSet",
            "cloudformation:DescribeStackEvents",
        ],
        &[&format!(
            "arn:aws:cloudformation:eu-north-1:{acct}:stack/app/*"
        )],
    );
    allows(
        "OutputsCfnOutputs",
        &["cloudformation:DescribeStacks"],
        &[&format!(
            "arn:aws:cloudformation:eu-north-1:{acct}:stack/app/*"
        )],
    );
    allows(
        "SearchLogsSearch",
        &["logs:FilterLogEvents"],
        &[&format!(
            "arn:aws:logs:eu-north-1:{acct}:log-group:/app/api:*"
        )],
    );
    // Why each `*` is there, and what flow cannot see, on stderr.
    out.stderr_has(
        "note: AttachEc2AttachSecurityGroups: the groups sent are each instance's own (known only when it is read)",
    )
    .stderr_has("note: FindEc2Find: EC2's Describe calls take no resource ARN")
    .stderr_has("grant the actions of AWS::SQS::Queue too");
}

#[test]
fn values_known_only_at_run_time_become_wildcards_with_the_reason() {
    let yaml = r#"flow: 1
params:
  bucket: { type: string, required: true }
  names: { type: list, default: [a, b] }
steps:
  pick: { type: choose, with: { prompt: which, options: [x, y] } }
  list: { type: s3.list, with: { bucket: "{{ steps.pick.value }}-backups", prefix: "{{ now() | strftime('%Y') }}/" } }
  put:
    type: s3.put
    for_each: "{{ params.names }}"
    with: { bucket: "{{ params.bucket }}", key: "up/{{ item }}", path: x }
  gets:
    type: s3.get
    for_each: "{{ steps.list.objects | map(attribute='key') | list }}"
    with: { bucket: b, key: "{{ item }}", path: x }
  never:
    type: s3.get
    when: "{{ false }}"
    with: { bucket: b, key: k, path: x }
finally:
  tidy:
    type: s3.delete
    with: { bucket: b, prefix: "tmp/{{ run.id }}/" }
"#;
    let out = policy(yaml, &[], &[]);
    out.code(0)
        .stderr_has("note: ListS3List: `bucket` depends on `steps.pick.value`: `*` in its place")
        .stderr_has("note: GetsS3Get: `key` depends on `item`: `*` in its place")
        .stderr_has("note: TidyS3Delete2: `prefix` depends on `now() or run.id`: `*` in its place")
        .stderr_has("step `never` is left out: it is skipped")
        .stderr_has("no value for `bucket`: the policy holds for any");
    let p = document(&out.stdout);
    assert_eq!(
        statement(&p, "ListS3List")["Resource"],
        json!(["arn:aws:s3:::*-backups"])
    );
    assert_eq!(
        statement(&p, "ListS3List")["Condition"],
        json!({ "StringLike": { "s3:prefix": "*/" } })
    );
    // A required param not given: any bucket; each element of a known list its own key.
    assert_eq!(
        statement(&p, "PutS3Put")["Resource"],
        json!(["arn:aws:s3:::*/up/a", "arn:aws:s3:::*/up/b"])
    );
    assert_eq!(
        statement(&p, "GetsS3Get")["Resource"],
        json!(["arn:aws:s3:::b/*"])
    );
    // `finally` steps are in, last; the step whose `when` is false is not.
    assert_eq!(
        sids(&p),
        [
            "ListS3List",
            "PutS3Put",
            "GetsS3Get",
            "TidyS3Delete",
            "TidyS3Delete2"
        ]
    );
    assert_eq!(
        statement(&p, "TidyS3Delete2")["Resource"],
        json!(["arn:aws:s3:::b/tmp/*/*"])
    );

    // Given, the param narrows the statement.
    let out = policy(yaml, &[], &["-p", "bucket=uploads"]);
    out.code(0).stderr_lacks("no value for");
    assert_eq!(
        statement(&document(&out.stdout), "PutS3Put")["Resource"],
        json!(["arn:aws:s3:::uploads/up/a", "arn:aws:s3:::uploads/up/b"])
    );
}

#[test]
fn an_undo_is_in_the_policy_under_its_own_sid() {
    let yaml = r#"flow: 1
defaults:
  aws: { region: us-east-1 }
steps:
  launch:
    type: ec2.run
    with: { launch_template: { id: lt-0123 } }
    undo:
      type: ec2.terminate
      with: { instance_ids: ["{{ steps.launch.instance_id }}"] }
"#;
    let out = policy(yaml, &[], &[]);
    out.code(0).stderr_has(
        "note: LaunchUndoEc2Terminate: `instance_ids` depends on `steps.launch.instance_id`: `*` in its place",
    );
    let p = document(&out.stdout);
    assert_eq!(
        sids(&p),
        [
            "LaunchEc2Run",
            "LaunchEc2Run2",
            "LaunchEc2Run3",
            "LaunchUndoEc2Terminate",
            "LaunchUndoEc2Terminate2"
        ]
    );
    assert_eq!(
        statement(&p, "LaunchUndoEc2Terminate")["Action"],
        json!(["ec2:TerminateInstances"])
    );
    assert_eq!(
        statement(&p, "LaunchUndoEc2Terminate")["Resource"],
        json!(["arn:aws:ec2:us-east-1:*:instance/*"])
    );
}

#[test]
fn a_playbook_without_aws_steps_needs_no_permissions() {
    let out = policy(
        "flow: 1\nsteps:\n  hello: { type: log, with: { message: hi } }\n",
        &[],
        &[],
    );
    out.code(0)
        .stderr_has("no step of this playbook calls AWS: it needs no IAM permissions");
    assert_eq!(
        document(&out.stdout),
        json!({ "Version": "2012-10-17", "Statement": [] })
    );
}

#[test]
fn bad_input_gets_the_errors_and_exit_codes_of_flow_plan() {
    // Invalid YAML: file:line:col, exit 2, nothing on stdout.
    let out = policy(
        "flow: 1\nsteps:\n  a: { type: s3.list, with: { bucket: [ }\n",
        &[],
        &[],
    );
    out.code(2)
        .stderr_has("invalid YAML")
        .stderr_has("playbook.yaml:3:");
    assert_eq!(out.stdout, "");
    // An unknown field, an unknown param, a bad account id, a missing file.
    let list = "flow: 1\nsteps:\n  a: { type: s3.list, with: { bucket: b, prefx: x } }\n";
    policy(list, &[], &[])
        .code(2)
        .stderr_has("unknown field `with.prefx`");
    let list = "flow: 1\nsteps:\n  a: { type: s3.list, with: { bucket: b } }\n";
    policy(list, &[], &["-p", "nope=1"])
        .code(2)
        .stderr_has("unknown param `nope`");
    policy(list, &[], &["--account", "12"])
        .code(2)
        .stderr_has("`--account 12`: an AWS account id is 12 digits");
    Flow::new()
        .args(&["policy", "missing.yaml"])
        .run()
        .code(2)
        .stderr_has("cannot read playbook missing.yaml");
}

#[test]
fn hostile_values_give_a_policy_or_a_clear_error_never_a_panic() {
    // Each runs under the harness's check that flow never panicked.
    let cases = [
        // A number where a list is wanted, known only after apply: left out, said so.
        "steps:\n  pick: { type: choose, with: { prompt: p, options: [a] } }\n  s: { type: ec2.stop, with: { instance_ids: \"{{ steps.pick.value }}\" } }\n",
        // ARN-breaking text in names.
        "steps:\n  s: { type: s3.get, with: { bucket: \"a*b?c\", key: \"../../\\u0000\", path: x } }\n",
        "steps:\n  s: { type: secrets.get, with: { name: \"arn:aws:secretsmanager:x\" } }\n",
        "steps:\n  s: { type: ssm.get, with: { name: \"\" } }\n",
        "steps:\n  s: { type: cfn.deploy, with: { stack_name: \"\", template: /dev/null } }\n",
        "steps:\n  s: { type: cfn.deploy, with: { stack_name: a, template: no-such.yaml } }\n",
        // A template that never ends: not read past CloudFormation's limit.
        "steps:\n  s: { type: cfn.deploy, with: { stack_name: a, template: /dev/zero } }\n",
        // A for_each over something that is not a list.
        "steps:\n  s: { type: s3.get, for_each: \"{{ 3 }}\", with: { bucket: b, key: k, path: x } }\n",
        // A huge for_each.
        "steps:\n  s: { type: s3.get, for_each: \"{{ range(2000) | list }}\", with: { bucket: b, key: \"k{{ item }}\", path: x } }\n",
    ];
    for case in cases {
        let out = policy(&format!("flow: 1\n{case}"), &[], &[]);
        assert!([0, 1, 2].contains(&out.code), "{case}\n{}", out.context());
        if out.code == 0 {
            document(&out.stdout);
        } else {
            assert!(out.stderr.contains("error"), "{case}\n{}", out.context());
        }
    }
}

#[test]
fn policy_help_teaches_with_an_example() {
    Flow::new()
        .args(&["policy", "--help"])
        .run()
        .code(0)
        .stdout_has("flow policy playbooks/blot/provision-and-restore.yaml")
        .stdout_has("\"Sid\": \"BackupsS3List\"")
        .stdout_has("--params-file");
}

/// The README shows, beside the shipped AWS playbooks, the policy each needs: each ```sh
/// block holding one `flow policy …` line (maybe after `cd DIR &&`) is followed by the
/// ```json block that command prints, word for word.
#[test]
fn the_readmes_policies_are_what_flow_policy_prints() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let blocks: Vec<(&str, String)> = readme
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|block| {
            let (lang, body) = block.split_once('\n').unwrap_or((block, ""));
            (lang.trim(), body.to_string())
        })
        .collect();
    let mut checked = Vec::new();
    for pair in blocks.windows(2) {
        let [(lang, command), (next, printed)] = pair else {
            continue;
        };
        let line = command.trim();
        let (dir, line) = match line.strip_prefix("cd ").and_then(|l| l.split_once(" && ")) {
            Some((dir, rest)) => (root.join(dir), rest),
            None => (root.to_path_buf(), line),
        };
        if *lang != "sh" || !line.starts_with("flow policy ") || line.contains('\n') {
            continue;
        }
        assert_eq!(*next, "json", "`{line}` is not followed by its policy");
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let ran = crate::common::run::flow(&dir, &args, &[]);
        assert_eq!(ran.code, 0, "{line}\n{}", ran.context());
        assert_eq!(
            printed.trim_end(),
            ran.stdout.trim_end(),
            "README's policy for `{line}` is stale: paste what the command prints"
        );
        checked.push(line.to_string());
    }
    for playbook in [
        "provision-and-restore.yaml",
        "cleanup.yaml",
        "elasticache-bootstrap.yaml",
    ] {
        assert!(
            checked.iter().any(|c| c.contains(playbook)),
            "README shows no policy for {playbook}: {checked:?}"
        );
    }
}
