//! `flow policy` kept honest: each AWS step type runs on moto with IAM enforced, as a user
//! whose only policy is the one `flow policy` printed for the playbook — `flow plan` and
//! `flow apply` pass — and then without each of its actions in turn — the run fails (or, for
//! a call flow makes only as a courtesy, warns), naming the action it needed.
//!
//! What moto cannot check is said where it applies (`UNSEEN`, and common/moto_iam.rs): its
//! IAM checks actions, S3 resources, and nothing of conditions; it does not check the actions
//! a call implies nor the calls AWS makes on the caller's behalf.

use crate::common::cfn_stub::{self, Answer};
use crate::common::moto::Moto;
use crate::common::moto_iam::{actions, in_motos_terms, without};
use crate::common::{Flow, Ran};
use serde_json::Value;

/// Actions a run on moto passes without, and why: the test pins that it does, so that a
/// moto which starts checking one turns this list into a failure to fix.
const UNSEEN: &[(&str, &str)] = &[
    (
        "ec2:CreateTags",
        "implied by RunInstances' tag specifications: moto checks only the call's own action",
    ),
    (
        "cloudformation:DescribeStackEvents",
        "read only when a deploy fails, and moto never fails a stack (a stub does, below)",
    ),
    (
        "cloudformation:DeleteChangeSet",
        "called for a change set that failed, and moto refuses an empty change set at once instead (a stub fails one, below)",
    ),
    (
        "ssm:GetParameters",
        "CloudFormation resolving `{{resolve:ssm:…}}`: moto never resolves them",
    ),
];

/// Actions whose removal warns instead of failing the run: flow calls them only to show
/// more (the plan's template differences), and goes on without them.
const WARNS: &[&str] = &["cloudformation:GetTemplate"];

/// One step type's case: a world made as moto's admin (its script's stdout is handed to
/// the playbook, which may name what it made), the playbook, files beside it.
struct Case {
    setup: &'static str,
    playbook: fn(&str) -> String,
    files: &'static [(&'static str, &'static str)],
}

const HEAD: &str = "flow: 1\ndefaults:\n  aws: { region: us-east-1 }\nsteps:\n";

fn playbook(steps: &str) -> String {
    format!("{HEAD}{steps}")
}

/// `flow policy` of the playbook (no AWS needed), as the document.
fn printed_policy(playbook: &str, files: &[(&str, &str)]) -> Value {
    let flow = files
        .iter()
        .fold(Flow::new().playbook(playbook), |flow, (name, text)| {
            flow.file(name, text)
        });
    let out = flow
        .args(&["policy", "playbook.yaml", "--account", "123456789012"])
        .run();
    out.code(0);
    serde_json::from_str(&out.stdout).expect("the policy is JSON")
}

/// A run of `flow plan` then `flow apply` on a fresh moto world, as a user holding `policy`
/// (in moto's terms): both outcomes, and the policy that was printed for it.
fn run_under(moto: &mut Moto, case: &Case, policy: impl Fn(&Value) -> Value) -> (Vec<Ran>, Value) {
    moto.reset_enforcing();
    let made = moto.boto(case.setup);
    let text = (case.playbook)(&made);
    let printed = printed_policy(&text, case.files);
    let keys = moto.user("runner", &in_motos_terms(&policy(&printed)));
    moto.run_flow_as(&keys);
    let mut runs = Vec::new();
    for command in [
        &["plan", "playbook.yaml"][..],
        &["apply", "playbook.yaml", "--yes"],
    ] {
        let flow = case
            .files
            .iter()
            .fold(Flow::new().playbook(&text), |flow, (name, text)| {
                flow.file(name, text)
            });
        let out = moto.reach(flow).args(command).run();
        runs.push(out.ran.clone());
        if out.code != 0 {
            break;
        }
    }
    (runs, printed)
}

fn context(runs: &[Ran]) -> String {
    runs.iter().map(Ran::context).collect::<Vec<_>>().join("\n")
}

/// The case passes under exactly its printed policy, and fails (or warns) without each of
/// its actions, naming it. Returns the actions it checked.
fn honest(case: Case) -> Vec<String> {
    let mut moto = Moto::start_enforcing();
    let (runs, printed) = run_under(&mut moto, &case, Value::clone);
    assert!(
        runs.len() == 2 && runs.iter().all(|r| r.code == 0),
        "the printed policy is not enough:\n{printed:#}\n{}",
        context(&runs)
    );
    let text: String = runs.iter().map(Ran::both).collect();
    assert!(
        !text.contains("needs IAM permission"),
        "something was refused under the printed policy:\n{}",
        context(&runs)
    );
    let mut checked = Vec::new();
    for action in actions(&printed) {
        let (runs, _) = run_under(&mut moto, &case, |p| without(p, &action));
        let text: String = runs.iter().map(Ran::both).collect();
        if let Some((_, why)) = UNSEEN.iter().find(|(a, _)| *a == action) {
            assert!(
                runs.iter().all(|r| r.code == 0),
                "moto now checks {action} ({why}): move it out of UNSEEN\n{}",
                context(&runs)
            );
            continue;
        }
        assert!(
            text.contains(&format!("needs IAM permission `{action}`")),
            "without {action}, no refusal names it:\n{}",
            context(&runs)
        );
        let failed = runs.iter().any(|r| r.code != 0);
        assert_eq!(
            failed,
            !WARNS.contains(&action.as_str()),
            "without {action}: the run {}\n{}",
            if failed { "failed" } else { "passed" },
            context(&runs)
        );
        checked.push(action);
    }
    checked
}

const BUCKET: &str = "s3.create_bucket(Bucket='policy-bucket')\n\
    for k in ['daily/a.rdb', 'daily/b.rdb', 'old/x.rdb']:\n\
    \x20   s3.put_object(Bucket='policy-bucket', Key=k, Body=b'x')";

#[test]
fn s3_list_needs_what_flow_policy_prints() {
    let checked = honest(Case {
        setup: BUCKET,
        playbook: |_| {
            playbook(
                "  backups:\n    type: s3.list\n    with: { bucket: policy-bucket, prefix: daily/ }\n",
            )
        },
        files: &[],
    });
    assert_eq!(checked, ["s3:ListBucket"]);
    // HeadBucket first: s3:ListBucket again, without the prefix.
    let checked = honest(Case {
        setup: BUCKET,
        playbook: |_| {
            playbook(
                "  backups:\n    type: s3.list\n    with: { bucket: policy-bucket, prefix: daily/, allow_missing_bucket: true }\n",
            )
        },
        files: &[],
    });
    assert_eq!(checked, ["s3:ListBucket"]);
}

#[test]
fn s3_get_put_and_delete_need_what_flow_policy_prints() {
    let get = honest(Case {
        setup: BUCKET,
        playbook: |_| {
            playbook(
                "  fetch:\n    type: s3.get\n    with: { bucket: policy-bucket, key: daily/a.rdb, path: a.rdb }\n",
            )
        },
        files: &[],
    });
    let put = honest(Case {
        setup: BUCKET,
        playbook: |_| {
            playbook(
                "  upload:\n    type: s3.put\n    with: { bucket: policy-bucket, key: up/new.txt, path: new.txt }\n",
            )
        },
        files: &[("new.txt", "new\n")],
    });
    let delete_keys = honest(Case {
        setup: BUCKET,
        playbook: |_| {
            playbook(
                "  drop:\n    type: s3.delete\n    with: { bucket: policy-bucket, keys: [old/x.rdb] }\n",
            )
        },
        files: &[],
    });
    let delete_prefix = honest(Case {
        setup: BUCKET,
        playbook: |_| {
            playbook(
                "  retention:\n    type: s3.delete\n    with: { bucket: policy-bucket, prefix: daily/, keep_latest: 1 }\n",
            )
        },
        files: &[],
    });
    assert_eq!(
        [get, put, delete_keys, delete_prefix],
        [
            vec!["s3:GetObject"],
            vec!["s3:PutObject"],
            vec!["s3:DeleteObject"],
            vec!["s3:ListBucket", "s3:DeleteObject"],
        ]
    );
}

#[test]
fn secrets_steps_need_what_flow_policy_prints() {
    let get = honest(Case {
        setup: "boto3.client('secretsmanager', **kw).create_secret(Name='app/db', SecretString='pw')",
        playbook: |_| playbook("  pw:\n    type: secrets.get\n    with: { name: app/db }\n"),
        files: &[],
    });
    // Created by the first step, given a new value by the second.
    let put = honest(Case {
        setup: "",
        playbook: |_| {
            playbook(
                "  create:\n    type: secrets.put\n    with: { name: app/new, value: one }\n  change:\n    type: secrets.put\n    with: { name: app/new, value: two }\n",
            )
        },
        files: &[],
    });
    assert_eq!(get, ["secretsmanager:GetSecretValue"]);
    assert_eq!(
        put,
        [
            "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue",
            "secretsmanager:CreateSecret"
        ]
    );
}

#[test]
fn ssm_steps_need_what_flow_policy_prints() {
    let get = honest(Case {
        setup: "ssm.put_parameter(Name='/app/endpoint', Value='redis.internal', Type='String')",
        playbook: |_| {
            playbook("  endpoint:\n    type: ssm.get\n    with: { name: /app/endpoint }\n")
        },
        files: &[],
    });
    let put = honest(Case {
        setup: "",
        playbook: |_| {
            playbook(
                "  create:\n    type: ssm.put\n    with: { name: /app/port, value: '6379' }\n  change:\n    type: ssm.put\n    with: { name: /app/port, value: '6380' }\n",
            )
        },
        files: &[],
    });
    assert_eq!(get, ["ssm:GetParameter"]);
    assert_eq!(put, ["ssm:GetParameter", "ssm:PutParameter"]);
}

/// An instance of moto's first AMI, tagged Role=redis: its id.
const INSTANCE: &str = "image = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
    i = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[{'ResourceType': 'instance', 'Tags': [{'Key': 'Role', 'Value': 'redis'}]}])\n\
    print(i['Instances'][0]['InstanceId'])";

#[test]
fn ec2_steps_need_what_flow_policy_prints() {
    let run = honest(Case {
        setup: "image = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
            lt = ec2.create_launch_template(LaunchTemplateName='redis', LaunchTemplateData={'ImageId': image, 'InstanceType': 't3.small'})\n\
            sg = ec2.create_security_group(GroupName='redis', Description='redis')\n\
            print(lt['LaunchTemplate']['LaunchTemplateId'], sg['GroupId'])",
        playbook: |made| {
            let (template, group) = made.split_once(' ').expect("template and group");
            playbook(&format!(
                "  launch:\n    type: ec2.run\n    with:\n      launch_template: {{ id: {template} }}\n      security_group_ids: [{group}]\n      tags: {{ Role: redis }}\n"
            ))
        },
        files: &[],
    });
    let find = honest(Case {
        setup: INSTANCE,
        playbook: |_| {
            playbook(
                "  found:\n    type: ec2.find\n    with: { filters: { \"tag:Role\": redis } }\n",
            )
        },
        files: &[],
    });
    let wait = honest(Case {
        setup: INSTANCE,
        playbook: |id| {
            playbook(&format!(
                "  up:\n    type: ec2.wait\n    with: {{ instance_ids: [{id}], state: running }}\n"
            ))
        },
        files: &[],
    });
    let stop = honest(Case {
        setup: INSTANCE,
        playbook: |id| {
            playbook(&format!(
                "  stop:\n    type: ec2.stop\n    with: {{ instance_ids: [{id}] }}\n"
            ))
        },
        files: &[],
    });
    let terminate = honest(Case {
        setup: INSTANCE,
        playbook: |id| {
            playbook(&format!(
                "  gone:\n    type: ec2.terminate\n    with: {{ instance_ids: [{id}] }}\n"
            ))
        },
        files: &[],
    });
    // A group beside the instance's own: ModifyInstanceAttribute with both.
    let attach = honest(Case {
        setup: "image = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
            i = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)['Instances'][0]['InstanceId']\n\
            sg = ec2.create_security_group(GroupName='redis', Description='redis')['GroupId']\n\
            print(i, sg)",
        playbook: |made| {
            let (id, group) = made.split_once(' ').expect("instance and group");
            playbook(&format!(
                "  redis_group:\n    type: ec2.attach_security_groups\n    with: {{ instance_ids: [{id}], security_group_ids: [{group}] }}\n"
            ))
        },
        files: &[],
    });
    assert_eq!(run, ["ec2:RunInstances", "ec2:DescribeInstances"]);
    assert_eq!(
        attach,
        ["ec2:ModifyInstanceAttribute", "ec2:DescribeInstances"]
    );
    assert_eq!(find, ["ec2:DescribeInstances"]);
    assert_eq!(wait, ["ec2:DescribeInstances"]);
    assert_eq!(stop, ["ec2:StopInstances", "ec2:DescribeInstances"]);
    assert_eq!(
        terminate,
        ["ec2:TerminateInstances", "ec2:DescribeInstances"]
    );
}

/// A template without a space: moto checks the signature of a form-encoded request (EC2's,
/// CloudFormation's) on the body as it encodes it again, with `+` for a space where the Rust
/// SDK sent `%20` — so a request with a space in it fails there as a bad signature.
const TEMPLATE: &str = r#"{"Parameters":{"Token":{"Type":"String","Default":"none"}},"Resources":{"Queue":{"Type":"AWS::SQS::Queue"}},"Outputs":{"Name":{"Value":{"Fn::GetAtt":["Queue","QueueName"]}}}}"#;

/// A CloudFormation template (YAML, short tags) as JSON without a space (see `TEMPLATE`):
/// the spaces inside its texts written `\u0020`, which CloudFormation reads as spaces.
fn spaceless_template(moto: &Moto, source: &std::path::Path, destination: &std::path::Path) {
    moto.boto(&format!(
        "import yaml\n\
         def tag(loader, suffix, node):\n\
         \x20   if isinstance(node, yaml.ScalarNode): value = loader.construct_scalar(node)\n\
         \x20   elif isinstance(node, yaml.SequenceNode): value = loader.construct_sequence(node, deep=True)\n\
         \x20   else: value = loader.construct_mapping(node, deep=True)\n\
         \x20   if suffix == 'GetAtt' and isinstance(value, str): value = value.split('.', 1)\n\
         \x20   return {{'Ref' if suffix == 'Ref' else 'Fn::' + suffix: value}}\n\
         yaml.SafeLoader.add_multi_constructor('!', tag)\n\
         template = yaml.safe_load(open('{}'))\n\
         open('{}', 'w').write(json.dumps(template, separators=(',', ':')).replace(' ', '\\\\u0020'))",
        source.display(),
        destination.display()
    ));
}

#[test]
fn cloudformation_steps_need_what_flow_policy_prints() {
    // The stack exists (the plan shows the template's differences); the first step updates
    // it, the second finds nothing to change (its change set fails and is removed).
    let deploy = honest(Case {
        setup: "cfn.create_stack(StackName='app', TemplateBody='Resources:\\n  Queue: { Type: AWS::SQS::Queue }\\n')",
        playbook: |_| {
            playbook(
                "  deploy:\n    type: cfn.deploy\n    with: { stack_name: app, template: stack.yaml, parameters: { Token: '{{resolve:ssm:/app/token}}' } }\n  again:\n    type: cfn.deploy\n    with: { stack_name: app, template: stack.yaml, parameters: { Token: '{{resolve:ssm:/app/token}}' } }\n",
            )
        },
        files: &[("stack.yaml", TEMPLATE)],
    });
    let outputs = honest(Case {
        setup: "cfn.create_stack(StackName='app', TemplateBody='Resources:\\n  Queue: { Type: AWS::SQS::Queue }\\n')",
        playbook: |_| playbook("  app:\n    type: cfn.outputs\n    with: { stack_name: app }\n"),
        files: &[],
    });
    assert_eq!(
        deploy,
        [
            "cloudformation:DescribeStacks",
            "cloudformation:GetTemplate",
            "cloudformation:CreateChangeSet",
            "cloudformation:DescribeChangeSet",
            "cloudformation:ExecuteChangeSet",
        ]
    );
    assert_eq!(outputs, ["cloudformation:DescribeStacks"]);
}

#[test]
fn logs_search_needs_what_flow_policy_prints() {
    let search = honest(Case {
        setup: "logs.create_log_group(logGroupName='/app/api')\n\
            logs.create_log_stream(logGroupName='/app/api', logStreamName='s')\n\
            logs.put_log_events(logGroupName='/app/api', logStreamName='s', logEvents=[{'timestamp': int(time.time() * 1000) - 1000, 'message': 'mode kv'}])",
        playbook: |_| {
            playbook(
                "  kv:\n    type: logs.search\n    with: { log_group: /app/api, filter_pattern: kv, since: 10m }\n",
            )
        },
        files: &[],
    });
    assert_eq!(search, ["logs:FilterLogEvents"]);
}

/// `flow policy` of a shipped playbook with these params.
fn shipped_policy(playbook: &str, params: &[String]) -> Value {
    let mut args = vec!["policy".to_string(), playbook.to_string()];
    for p in params {
        args.extend(["-p".to_string(), p.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = Flow::new().args(&args).run();
    out.code(0);
    serde_json::from_str(&out.stdout).expect("the policy is JSON")
}

#[test]
fn blot_provision_and_restore_runs_under_exactly_its_printed_policy() {
    use crate::playbooks_blot::{SNAPSHOT, World, playbook};
    let world = World::on(Moto::start_enforcing());
    let mut params = world.params();
    params.push(format!("snapshot={SNAPSHOT}"));
    let policy = shipped_policy(&playbook("provision-and-restore.yaml"), &params);
    let keys = world.moto.user("blot-operator", &in_motos_terms(&policy));
    world.moto.run_flow_as(&keys);
    let out = world.provision(&["apply", "--yes"], &[&format!("snapshot={SNAPSHOT}")]);
    out.code(0).stdout_lacks("needs IAM permission");
    let instances = world.moto.instances();
    assert_eq!(instances[0]["state"], "running", "{instances:#}");
    assert!(
        !world.env_file().contains("old-redis.internal"),
        "the main host was switched"
    );
}

/// Seed 000's own policy, word for word: listing and EC2, but no s3:GetObject — which the
/// playbook needs, since flow fetches the snapshot itself.
#[test]
fn the_seeds_hand_written_policy_lacks_the_get_object_the_playbook_needs() {
    use crate::playbooks_blot::{SNAPSHOT, World};
    let world = World::on(Moto::start_enforcing());
    let seeds = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Sid": "RedisBackupListing", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": "arn:aws:s3:::blot-redis-backups", "Condition": { "StringLike": { "s3:prefix": ["daily/*"] } } },
            { "Sid": "RedisProvisioning", "Effect": "Allow", "Action": ["ec2:RunInstances", "ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:CreateTags", "ec2:ModifyInstanceAttribute", "ec2:StopInstances", "ec2:TerminateInstances"], "Resource": "*" }
        ]
    });
    let keys = world.moto.user("seed-operator", &in_motos_terms(&seeds));
    world.moto.run_flow_as(&keys);
    let out = world.provision(&["apply", "--yes"], &[&format!("snapshot={SNAPSHOT}")]);
    out.code(1)
        .stdout_has("s3 GetObject failed")
        .stdout_has("needs IAM permission `s3:GetObject`");
    assert!(
        world
            .env_file()
            .contains("BLOT_REDIS_HOST=old-redis.internal\n")
    );
    let instances = world.moto.instances();
    assert_eq!(instances[0]["state"], "terminated", "undo: {instances:#}");
    // What flow policy prints for it has the permission.
    let policy = shipped_policy(
        &crate::playbooks_blot::playbook("provision-and-restore.yaml"),
        &world.params(),
    );
    assert!(
        actions(&policy).contains(&"s3:GetObject".to_string()),
        "{policy:#}"
    );
}

#[test]
fn blot_cleanup_runs_under_exactly_its_printed_policy() {
    use crate::playbooks_blot::{cleanup, playbook, tagged_instances};
    let moto = Moto::start_enforcing();
    let (running, stopped) = tagged_instances(&moto);
    let params = [
        "region=us-east-1".to_string(),
        format!("instance={stopped}"),
    ];
    let policy = shipped_policy(&playbook("cleanup.yaml"), &params);
    let keys = moto.user("blot-operator", &in_motos_terms(&policy));
    moto.run_flow_as(&keys);
    let out = cleanup(&moto, &["apply", "--yes"], &[&params[1]], "");
    out.code(0).stdout_lacks("needs IAM permission");
    let all = moto.instances();
    let state = |id: &str| {
        all.as_array()
            .and_then(|a| a.iter().find(|i| i["id"] == id))
            .map(|i| i["state"].clone())
    };
    assert_eq!(state(&stopped), Some("terminated".into()));
    assert_eq!(state(&running), Some("running".into()));
}

#[test]
fn math_visuals_bootstrap_runs_under_exactly_its_printed_policy() {
    use crate::playbooks_aws::{
        SAMPLE_DATA, TOKEN, infra, math_visuals_params, math_visuals_world, playbook,
    };
    let moto = Moto::start_enforcing();
    math_visuals_world(
        &moto,
        &infra("data/template.yaml"),
        SAMPLE_DATA,
        r#"INFO store ready {"mode": "kv"}"#,
    );
    // The shipped templates, without a space (see `spaceless_template`).
    let templates = tempfile::tempdir().expect("templates");
    let mut params: Vec<String> = math_visuals_params()
        .into_iter()
        .filter(|p| !p.contains("_template="))
        .collect();
    for (source, name, param) in [
        ("shared-parameters.yaml", "shared.json", "shared_template"),
        ("data/template.yaml", "data.json", "data_template"),
        ("api/template.yaml", "api.json", "api_template"),
    ] {
        let destination = templates.path().join(name);
        spaceless_template(&moto, &infra(source), &destination);
        params.push(format!("{param}={}", destination.display()));
    }
    let book = playbook("math-visuals/elasticache-bootstrap.yaml");
    let policy = shipped_policy(&book, &params);
    let keys = moto.user("math-visuals-ci", &in_motos_terms(&policy));
    moto.run_flow_as(&keys);
    let mut args = vec!["apply".to_string(), book, "--yes".to_string()];
    for p in &params {
        args.extend(["-p".to_string(), p.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = moto
        .reach(Flow::new())
        .env("REDIS_AUTH_TOKEN", TOKEN)
        .args(&args)
        .run();
    out.code(0)
        .stdout_lacks("needs IAM permission")
        .stdout_has("api_mode            kv");
}

/// What moto cannot stage — a change set that fails, a stack that rolls back — a stub of
/// CloudFormation does, refusing the call the case is about: the run names the action.
fn deploy_on_stub(answer: impl Fn(&str, bool) -> Answer + Send + 'static) -> Ran {
    let port = cfn_stub::serve(answer);
    Flow::new()
        .file("stack.json", "{ \"Resources\": {} }")
        .playbook(&format!(
            "flow: 1\ndefaults:\n  aws: {{ region: us-east-1, endpoint_url: \"http://127.0.0.1:{port}\" }}\nsteps:\n  data:\n    type: cfn.deploy\n    with: {{ stack_name: app, template: stack.json }}\n"
        ))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(&["apply", "playbook.yaml", "--yes"])
        .run()
        .ran
}

const STUB_STACK: fn(&str) -> String = |status| {
    format!(
        "<Stacks><member>{}<StackStatus>{status}</StackStatus></member></Stacks>",
        cfn_stub::STACK
    )
};

#[test]
fn a_refused_delete_change_set_is_a_warning_naming_the_action() {
    let ran = deploy_on_stub(|action, _| {
        match action {
        "DescribeStacks" => Answer::Result(STUB_STACK("UPDATE_COMPLETE")),
        "CreateChangeSet" => Answer::Result("<Id>c</Id>".into()),
        "DescribeChangeSet" => Answer::Result("<Status>FAILED</Status><StatusReason>The submitted information didn't contain changes.</StatusReason>".into()),
        "DeleteChangeSet" => Answer::Denied,
        _ => Answer::Result(String::new()),
    }
    });
    ran.code(0)
        .stdout_has("stays on stack app")
        .stdout_has("needs IAM permission `cloudformation:DeleteChangeSet`");
}

#[test]
fn a_refused_describe_stack_events_is_said_when_a_deploy_fails() {
    let ran = deploy_on_stub(|action, executed| match action {
        "DescribeStacks" if executed => Answer::Result(STUB_STACK("UPDATE_ROLLBACK_COMPLETE")),
        "DescribeStacks" => Answer::Result(STUB_STACK("UPDATE_COMPLETE")),
        "CreateChangeSet" => Answer::Result("<Id>c</Id>".into()),
        "DescribeChangeSet" => {
            Answer::Result("<Status>CREATE_COMPLETE</Status><Changes></Changes>".into())
        }
        "DescribeStackEvents" => Answer::Denied,
        _ => Answer::Result(String::new()),
    });
    ran.code(1).stdout_has(
        "stack app ended UPDATE_ROLLBACK_COMPLETE: its events cannot be read: cloudformation DescribeStackEvents failed: AccessDenied",
    )
    .stdout_has("needs IAM permission `cloudformation:DescribeStackEvents`");
}
