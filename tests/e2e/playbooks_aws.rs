//! The shipped playbooks of seed 004 (math-visuals ElastiCache bootstrap), end to end against
//! a real `moto_server`. Each test asserts on what the user sees and on the world afterwards:
//! the stacks, the secret and the parameters in moto. (Seed 003, cloudradar, is in
//! playbooks_cloudradar.rs.)

use crate::common::moto::Moto;
use crate::common::{Flow, read, read_tree};
use std::path::{Path, PathBuf};

fn playbook(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("playbooks")
        .join(path)
        .display()
        .to_string()
}

const TOKEN: &str = "Tok3n-For-Redis-9f8e7d6c";

/// The two stacks as they would be after a first deploy, made with CreateStack (moto does not
/// compute the Outputs of a stack made through a change set; MOTO.md), plus the API's logs.
fn math_visuals_world(moto: &Moto, api_says: &str) {
    let infra = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/math-visuals/infra");
    moto.boto(&format!(
        "shared = open('{}').read()\n\
         data = open('{}').read()\n\
         cfn.create_stack(StackName='math-visuals-shared', TemplateBody=shared, Parameters=[{{'ParameterKey': 'EnvironmentName', 'ParameterValue': 'prod'}}])\n\
         params = dict(EnvironmentName='prod', SharedParametersStackName='math-visuals-shared', RedisAuthToken='{{{{resolve:secretsmanager:math-visuals/prod/redis/auth}}}}', CreateReplicationGroup='false', ExistingRedisEndpoint='redis.prod.internal', ExistingRedisPort='6380')\n\
         cfn.create_stack(StackName='math-visuals-data', TemplateBody=data, Parameters=[{{'ParameterKey': k, 'ParameterValue': v}} for k, v in params.items()])\n\
         logs.create_log_group(logGroupName='/aws/lambda/math-visuals-api')\n\
         logs.create_log_stream(logGroupName='/aws/lambda/math-visuals-api', logStreamName='2026/12/01/[$LATEST]abc')\n\
         logs.put_log_events(logGroupName='/aws/lambda/math-visuals-api', logStreamName='2026/12/01/[$LATEST]abc', logEvents=[{{'timestamp': int(time.time() * 1000) - 5000, 'message': '{api_says}'}}])",
        infra.join("shared-parameters.yaml").display(),
        infra.join("data/template.yaml").display(),
    ));
}

fn math_visuals_params() -> Vec<&'static str> {
    vec![
        "region=us-east-1",
        "create_replication_group=false",
        "existing_redis_endpoint=redis.prod.internal",
        "existing_redis_port=6380",
    ]
}

fn fake_gh(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let gh = bin.join("gh");
    std::fs::write(
        &gh,
        "#!/bin/sh\n# records its args, and what came on stdin, one call a line\necho \"$*\" >> \"$GH_LOG\"\nprintf '%s=%s\\n' \"$3\" \"$(cat)\" >> \"$GH_LOG.values\"\n",
    )
    .expect("gh");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

#[test]
fn math_visuals_bootstrap_publishes_the_redis_settings_and_checks_kv_mode() {
    let moto = Moto::start();
    math_visuals_world(
        &moto,
        r#"INFO store ready {"mode": "kv", "redis": "redis.prod.internal:6380"}"#,
    );
    let tools = tempfile::tempdir().expect("tools");
    let bin = fake_gh(tools.path());
    let gh_log = tools.path().join("gh.log");
    let mut args = vec!["apply", "--yes"];
    let book = playbook("math-visuals/elasticache-bootstrap.yaml");
    args.push(&book);
    let mut params = math_visuals_params();
    params.extend(["set_github_secrets=true", "github_repo=math-visuals/app"]);
    for p in &params {
        args.extend(["-p", p]);
    }
    let out = moto
        .reach(Flow::new())
        .env(
            "PATH",
            &format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("GH_LOG", &gh_log.display().to_string())
        .env("REDIS_AUTH_TOKEN", TOKEN)
        .env("GITHUB_STEP_SUMMARY", "summary.md")
        .args(&args)
        .run();
    out.code(0)
        .stdout_has("REDIS_PASSWORD  ***")
        .stdout_has("REDIS_ENDPOINT  redis.prod.internal")
        .stdout_has("REDIS_PORT      6380")
        .stdout_has("redis_endpoint      redis.prod.internal")
        .stdout_has("api_mode            kv");

    // The world: the auth secret, the data stack's dynamic reference as written, the
    // parameters and the API secret under the names the shared stack exports.
    let state = moto.boto(
        "sm = boto3.client('secretsmanager', **kw)\n\
         out = {}\n\
         out['auth'] = json.loads(sm.get_secret_value(SecretId='math-visuals/prod/redis/auth')['SecretString'])\n\
         out['api_auth'] = json.loads(sm.get_secret_value(SecretId='math-visuals/prod/redis/api-auth')['SecretString'])\n\
         stack = cfn.describe_stacks(StackName='math-visuals-data')['Stacks'][0]\n\
         out['ref'] = [p['ParameterValue'] for p in stack['Parameters'] if p['ParameterKey'] == 'RedisAuthToken'][0]\n\
         out['endpoint'] = ssm.get_parameter(Name='/math-visuals/prod/redis/endpoint')['Parameter']['Value']\n\
         out['port'] = ssm.get_parameter(Name='/math-visuals/prod/redis/port')['Parameter']['Value']\n\
         token = ssm.get_parameter(Name='/math-visuals/prod/redis/auth-token', WithDecryption=True)['Parameter']\n\
         out['token'] = [token['Type'], token['Value']]\n\
         out['shared'] = cfn.describe_stacks(StackName='math-visuals-shared')['Stacks'][0]['StackStatus']\n\
         print(json.dumps(out, sort_keys=True))",
    );
    let state: serde_json::Value = serde_json::from_str(&state).expect("json");
    assert_eq!(
        state,
        serde_json::json!({
            "auth": { "authToken": TOKEN },
            "api_auth": { "authToken": TOKEN },
            "ref": "{{resolve:secretsmanager:math-visuals/prod/redis/auth}}",
            "endpoint": "redis.prod.internal",
            "port": "6380",
            "token": ["SecureString", TOKEN],
            "shared": "CREATE_COMPLETE",
        })
    );

    // gh got the values on stdin, the token never in its arguments.
    assert_eq!(
        read(&gh_log),
        "secret set REDIS_PASSWORD --repo math-visuals/app\n\
         secret set REDIS_ENDPOINT --repo math-visuals/app\n\
         secret set REDIS_PORT --repo math-visuals/app\n"
    );
    assert_eq!(
        read(&tools.path().join("gh.log.values")),
        format!("REDIS_PASSWORD={TOKEN}\nREDIS_ENDPOINT=redis.prod.internal\nREDIS_PORT=6380\n")
    );

    // The token is in no output, journal or summary.
    let summary = read(&out.path("summary.md"));
    assert!(summary.contains("| api_mode | kv |"), "{summary}");
    assert!(
        !out.both().contains(TOKEN),
        "the token leaked:\n{}",
        out.both()
    );
    assert!(
        !summary.contains(TOKEN),
        "the token leaked into the summary"
    );
    assert!(
        !read_tree(&out.path(".flow")).contains(TOKEN),
        "the token leaked into the journal"
    );
}

#[test]
fn math_visuals_bootstrap_fails_when_the_api_does_not_report_kv_mode() {
    let moto = Moto::start();
    math_visuals_world(&moto, r#"INFO store ready {"mode": "memory"}"#);
    let book = playbook("math-visuals/elasticache-bootstrap.yaml");
    // No retries here: the playbook's retry (20 × 15 s) is for a Lambda still starting.
    let yaml = std::fs::read_to_string(&book)
        .expect("playbook")
        .replace("attempts: 20, delay: 15s", "attempts: 2, delay: 100ms")
        .replace(
            "run.playbook_dir ~ '/infra",
            &format!(
                "'{}/infra",
                Path::new(&book).parent().expect("dir").display()
            ),
        );
    let mut args = vec!["apply", "playbook.yaml", "--yes"];
    let params = math_visuals_params();
    for p in &params {
        args.extend(["-p", p]);
    }
    let out = moto
        .reach(Flow::new().playbook(&yaml))
        .env("REDIS_AUTH_TOKEN", TOKEN)
        .args(&args)
        .run();
    out.code(1)
        .stdout_has("✘ kv_mode")
        .stdout_has("is still false after 2 attempts")
        .stdout_has("kv_mode_seen        skipped");
    assert!(!out.both().contains(TOKEN));
}

#[test]
fn math_visuals_offline_plan_shows_every_step_without_credentials() {
    let home = tempfile::tempdir().expect("home");
    let out = Flow::new()
        .env("HOME", &home.path().display().to_string())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("REDIS_AUTH_TOKEN", TOKEN)
        .args(&[
            "plan",
            "--offline",
            &playbook("math-visuals/elasticache-bootstrap.yaml"),
        ])
        .run();
    out.code(0)
        .stdout_has("create or update stack math-visuals-shared from ")
        .stdout_has("parameter EnvironmentName = prod")
        .stdout_has("create or update secret math-visuals/prod/redis/auth")
        .stdout_has("create or update stack math-visuals-data from ")
        .stdout_has(
            "parameter RedisAuthToken = {{resolve:secretsmanager:math-visuals/prod/redis/auth}}",
        )
        .stdout_has(
            "write parameter (known after apply: steps.shared.outputs.RedisEndpointParameterName)",
        )
        .stdout_has("skipped (when: params.set_github_secrets)")
        .stdout_has("search /aws/lambda/math-visuals-api for mode kv in the last 10m00s");
    assert!(!out.both().contains(TOKEN));
}

// The engine features the two seeds needed, on their own.

#[test]
fn a_when_list_skips_with_the_reason_of_the_check_that_failed() {
    let yaml = "flow: 1
params:
  enabled: { type: boolean, default: true }
  count: { type: integer, default: 0 }
steps:
  work:
    type: log
    when:
      - { if: params.enabled, reason: disabled by the operator }
      - { if: params.count > 0, reason: \"nothing to do: {{ params.count }} items\" }
      - params.count < 10
    with: { message: working }
  verdict:
    type: log
    with: { message: \"{{ 'RUN' if steps.work.status == 'succeeded' else 'SKIPPED: ' ~ steps.work.reason }}\" }
";
    let run = |params: &[&str]| {
        let mut args = vec!["apply", "playbook.yaml"];
        for p in params {
            args.extend(["-p", p]);
        }
        Flow::new().playbook(yaml).args(&args).run()
    };
    run(&[])
        .code(0)
        .stdout_has("⊘ work")
        .stdout_has("verdict: SKIPPED: nothing to do: 0 items (when: params.count > 0)");
    run(&["enabled=false"])
        .code(0)
        .stdout_has("verdict: SKIPPED: disabled by the operator (when: params.enabled)");
    run(&["count=20"])
        .code(0)
        .stdout_has("verdict: SKIPPED: when: params.count < 10");
    run(&["count=2"]).code(0).stdout_has("verdict: RUN");
    Flow::new()
        .playbook(yaml)
        .args(&["plan", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("skipped (nothing to do: 0 items (when: params.count > 0))");
    Flow::new()
        .playbook("flow: 1\nsteps:\n  a:\n    type: log\n    when: [{ iff: true }]\n    with: { message: x }\n")
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has("unknown key `iff` in a `when` check")
        .stderr_has("playbook.yaml:5:14");
}

#[test]
fn a_cloudformation_dynamic_reference_is_written_as_itself_and_file_write_makes_folders() {
    let out = Flow::new()
        .playbook(
            "flow: 1
params:
  name: { type: string, default: app/prod/auth }
steps:
  w:
    type: file.write
    with:
      path: out/deep/params.txt
      content: \"{{resolve:secretsmanager:{{ params.name }}}} {{resolve:ssm:/fixed}} {{ params.name | upper }}\"
",
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(0);
    assert_eq!(
        read(&out.path("out/deep/params.txt")),
        "{{resolve:secretsmanager:app/prod/auth}} {{resolve:ssm:/fixed}} APP/PROD/AUTH"
    );
    Flow::new()
        .playbook("flow: 1\nsteps:\n  w:\n    type: file.write\n    with: { path: a/b/c.txt, content: x }\n")
        .args(&["plan", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("create a/b/c.txt (1 bytes, creating the folder a/b)");
}
