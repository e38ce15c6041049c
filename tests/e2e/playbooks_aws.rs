//! The shipped playbooks of seed 004 (math-visuals ElastiCache bootstrap), end to end against
//! a real `moto_server`. Each test asserts on what the user sees and on the world afterwards:
//! the stacks, the secret and the parameters in moto. (Seed 003, cloudradar, is in
//! playbooks_cloudradar.rs.)

use crate::common::moto::Moto;
use crate::common::{Flow, Outcome, read, read_tree};
use std::path::{Path, PathBuf};

pub(crate) fn playbook(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("playbooks")
        .join(path)
        .display()
        .to_string()
}

pub(crate) const TOKEN: &str = "Tok3n-For-Redis-9f8e7d6c";

pub(crate) fn infra(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("playbooks/math-visuals/infra")
        .join(path)
}

/// The team's own data template: exactly the runbook's three parameters, a VPC and the
/// endpoint it reports (`cidr` tells two versions of it apart).
fn team_data_template(cidr: &str) -> String {
    format!(
        "AWSTemplateFormatVersion: \"2010-09-09\"\n\
         Parameters:\n\
         \x20 EnvironmentName: {{ Type: String, AllowedValues: [dev, staging, prod] }}\n\
         \x20 SharedParametersStackName: {{ Type: String }}\n\
         \x20 RedisAuthToken: {{ Type: String, NoEcho: true }}\n\
         Resources:\n\
         \x20 Vpc:\n\
         \x20   Type: AWS::EC2::VPC\n\
         \x20   Properties: {{ CidrBlock: {cidr} }}\n\
         Outputs:\n\
         \x20 RedisEndpoint: {{ Value: !Sub \"master.math-visuals-${{EnvironmentName}}.cache.amazonaws.com\" }}\n\
         \x20 RedisPort: {{ Value: \"6379\" }}\n"
    )
}

/// The stacks as they would be after a first deploy, made with CreateStack (moto does not
/// compute the Outputs of a stack made through a change set; MOTO.md): shared, data (from
/// `data_template`, with `data_params`), the static site (in its own region, with its
/// CloudFront domain) and the API, whose log group has `api_says` in it.
pub(crate) fn math_visuals_world(
    moto: &Moto,
    data_template: &Path,
    data_params: &str,
    api_says: &str,
) {
    moto.boto(&format!(
        "shared = open('{shared}').read()\n\
         data = open('{data}').read()\n\
         api = open('{api}').read()\n\
         as_list = lambda d: [{{'ParameterKey': k, 'ParameterValue': v}} for k, v in d.items()]\n\
         cfn.create_stack(StackName='math-visuals-shared', TemplateBody=shared, Parameters=as_list(dict(EnvironmentName='prod')))\n\
         cfn.create_stack(StackName='math-visuals-data', TemplateBody=data, Parameters=as_list({data_params}))\n\
         cfn.create_stack(StackName='math-visuals-api', TemplateBody=api, Capabilities=['CAPABILITY_IAM'], Parameters=as_list(dict(EnvironmentName='prod', DataStackName='math-visuals-data', SharedParametersStackName='math-visuals-shared')))\n\
         static = 'Resources:\\n  Bucket:\\n    Type: AWS::S3::Bucket\\nOutputs:\\n  CloudFrontDistributionDomainName:\\n    Value: d1234abcd.cloudfront.net\\n'\n\
         boto3.client('cloudformation', **dict(kw, region_name='eu-west-1')).create_stack(StackName='math-visuals-static-site', TemplateBody=static)\n\
         logs.create_log_stream(logGroupName='/aws/lambda/math-visuals-api', logStreamName='2026/12/01/[$LATEST]abc')\n\
         logs.put_log_events(logGroupName='/aws/lambda/math-visuals-api', logStreamName='2026/12/01/[$LATEST]abc', logEvents=[{{'timestamp': int(time.time() * 1000) - 5000, 'message': '{api_says}'}}])",
        shared = infra("shared-parameters.yaml").display(),
        data = data_template.display(),
        api = infra("api/template.yaml").display(),
    ));
}

/// The sample data template's parameters, without ElastiCache (moto has none).
pub(crate) const SAMPLE_DATA: &str = "dict(EnvironmentName='prod', SharedParametersStackName='math-visuals-shared', RedisAuthToken='{{resolve:secretsmanager:math-visuals/prod/redis/auth}}', CreateReplicationGroup='false', ExistingRedisEndpoint='redis.prod.internal', ExistingRedisPort='6380')";

/// The params that point the playbook at the sample templates and at moto's region.
pub(crate) fn math_visuals_params() -> Vec<String> {
    vec![
        "region=us-east-1".to_string(),
        format!(
            "shared_template={}",
            infra("shared-parameters.yaml").display()
        ),
        format!("data_template={}", infra("data/template.yaml").display()),
        format!("api_template={}", infra("api/template.yaml").display()),
        "create_replication_group=false".to_string(),
        "existing_redis_endpoint=redis.prod.internal".to_string(),
        "existing_redis_port=6380".to_string(),
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

/// `flow ARGS playbook -p …` against moto, with the token in its environment variable.
fn bootstrap(moto: &Moto, flow: Flow, command: &[&str], params: &[String]) -> Outcome {
    let book = playbook("math-visuals/elasticache-bootstrap.yaml");
    let mut args: Vec<&str> = command.to_vec();
    args.push(&book);
    for p in params {
        args.extend(["-p", p]);
    }
    moto.reach(flow)
        .env("REDIS_AUTH_TOKEN", TOKEN)
        .args(&args)
        .run()
}

#[test]
fn math_visuals_bootstrap_publishes_the_redis_settings_and_allow_lists_and_checks_kv_mode() {
    let moto = Moto::start();
    math_visuals_world(
        &moto,
        &infra("data/template.yaml"),
        SAMPLE_DATA,
        r#"INFO store ready {"mode": "kv", "redis": "redis.prod.internal:6380"}"#,
    );
    let tools = tempfile::tempdir().expect("tools");
    let bin = fake_gh(tools.path());
    let gh_log = tools.path().join("gh.log");
    let mut params = math_visuals_params();
    params.extend([
        "set_github_secrets=true".to_string(),
        "github_repo=math-visuals/app".to_string(),
    ]);
    let flow = Flow::new()
        .env(
            "PATH",
            &format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("GH_LOG", &gh_log.display().to_string())
        .env("GITHUB_STEP_SUMMARY", "summary.md");
    let out = bootstrap(
        &moto,
        flow,
        &["apply", "--yes", "--output", "json"],
        &params,
    );
    out.code(0);
    let events = out.events();
    let text = out.stdout.clone();
    for needle in [
        "REDIS_PASSWORD",
        "redis.prod.internal",
        "6380",
        r#""api_mode":"kv""#,
    ] {
        assert!(text.contains(needle), "lacks {needle}:\n{text}");
    }
    // The API stack is redeployed before its logs are read.
    let position = |event: &str, step: &str| {
        events
            .iter()
            .position(|e| e["event"] == event && e["step"] == step)
            .unwrap_or_else(|| panic!("no {event} of {step}"))
    };
    assert!(position("step_finished", "api") < position("step_started", "kv_mode"));
    for step in [
        "endpoint_parameter",
        "port_parameter",
        "password_secret",
        "examples_origins",
        "svg_origins",
    ] {
        assert!(
            position("step_finished", step) < position("step_started", "api"),
            "{step}"
        );
    }

    // The world: the auth secret, the data stack's dynamic reference as written, the
    // parameters, the API secret and the allow-lists under the names the shared stack exports.
    let state = moto.boto(
        "sm = boto3.client('secretsmanager', **kw)\n\
         out = {}\n\
         out['auth'] = json.loads(sm.get_secret_value(SecretId='math-visuals/prod/redis/auth')['SecretString'])\n\
         out['password'] = json.loads(sm.get_secret_value(SecretId='math-visuals/prod/redis/password')['SecretString'])\n\
         stack = cfn.describe_stacks(StackName='math-visuals-data')['Stacks'][0]\n\
         out['ref'] = [p['ParameterValue'] for p in stack['Parameters'] if p['ParameterKey'] == 'RedisAuthToken'][0]\n\
         get = lambda name: ssm.get_parameter(Name=name)['Parameter']['Value']\n\
         out['endpoint'] = get('/math-visuals/prod/redis/endpoint')\n\
         out['port'] = get('/math-visuals/prod/redis/port')\n\
         out['examples'] = get('/math-visuals/prod/api/examples-allowed-origins')\n\
         out['svg'] = get('/math-visuals/prod/api/svg-allowed-origins')\n\
         out['shared'] = cfn.describe_stacks(StackName='math-visuals-shared')['Stacks'][0]['StackStatus']\n\
         print(json.dumps(out, sort_keys=True))",
    );
    let state: serde_json::Value = serde_json::from_str(&state).expect("json");
    let origins =
        "https://d1234abcd.cloudfront.net,https://mathvisuals.no,https://app.mathvisuals.no";
    assert_eq!(
        state,
        serde_json::json!({
            "auth": { "authToken": TOKEN },
            "password": { "authToken": TOKEN },
            "ref": "{{resolve:secretsmanager:math-visuals/prod/redis/auth}}",
            "endpoint": "redis.prod.internal",
            "port": "6380",
            "examples": origins,
            "svg": origins,
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

/// The team's own data template declares only the runbook's three parameters: it deploys
/// (an update through a change set here), given exactly those, and the run goes on with its
/// endpoint.
#[test]
fn math_visuals_deploys_a_data_template_with_only_the_runbooks_three_parameters() {
    let moto = Moto::start();
    let team = tempfile::tempdir().expect("team repo");
    let template = team.path().join("template.yaml");
    std::fs::write(&template, team_data_template("10.50.0.0/16")).expect("w");
    math_visuals_world(
        &moto,
        &template,
        "dict(EnvironmentName='prod', SharedParametersStackName='math-visuals-shared', RedisAuthToken='x')",
        r#"INFO store ready {"mode": "kv"}"#,
    );
    // The version the team deploys now.
    std::fs::write(&template, team_data_template("10.60.0.0/16")).expect("w");
    let params: Vec<String> = math_visuals_params()
        .into_iter()
        .map(|p| {
            if p.starts_with("data_template=") {
                format!("data_template={}", template.display())
            } else {
                p
            }
        })
        .collect();
    let plan = bootstrap(&moto, Flow::new(), &["plan"], &params);
    plan.code(0).stdout_has(
        "not passed (the template does not declare them): CreateReplicationGroup, ExistingRedisEndpoint, ExistingRedisPort",
    );
    let out = bootstrap(&moto, Flow::new(), &["apply", "--yes"], &params);
    out.code(0);
    let state = moto.boto(
        "stack = cfn.describe_stacks(StackName='math-visuals-data')['Stacks'][0]\n\
         body = cfn.get_template(StackName='math-visuals-data')['TemplateBody']\n\
         print(json.dumps([stack['StackStatus'], sorted(p['ParameterKey'] for p in stack['Parameters']), '10.60.0.0/16' in str(body), ssm.get_parameter(Name='/math-visuals/prod/redis/endpoint')['Parameter']['Value']]))",
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&state).expect("json"),
        serde_json::json!([
            "UPDATE_COMPLETE",
            [
                "EnvironmentName",
                "RedisAuthToken",
                "SharedParametersStackName"
            ],
            true,
            "master.math-visuals-prod.cache.amazonaws.com"
        ])
    );
}

#[test]
fn math_visuals_bootstrap_fails_when_the_api_does_not_report_kv_mode() {
    let moto = Moto::start();
    math_visuals_world(
        &moto,
        &infra("data/template.yaml"),
        SAMPLE_DATA,
        r#"INFO store ready {"mode": "memory"}"#,
    );
    let book = playbook("math-visuals/elasticache-bootstrap.yaml");
    // No retries here: the playbook's retry (20 × 15 s) is for a Lambda still starting.
    let yaml = std::fs::read_to_string(&book)
        .expect("playbook")
        .replace("attempts: 20, delay: 15s", "attempts: 2, delay: 100ms");
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
        .stdout_has("the API stack had nothing to change")
        .stdout_has("✘ kv_mode")
        .stdout_has("is still false after 2 attempts")
        .stdout_has("kv_mode_seen        skipped");
    assert!(!out.both().contains(TOKEN));
}

/// `flow COMMAND` of the bootstrap with the sample templates (and prod's stand-in endpoint
/// left out) and `extra`, without credentials or the token: no HOME, no instance metadata.
fn without_credentials(command: &[&str], extra: &[&str]) -> Outcome {
    let home = tempfile::tempdir().expect("home");
    let mut args: Vec<String> = command.iter().map(|a| a.to_string()).collect();
    args.push(playbook("math-visuals/elasticache-bootstrap.yaml"));
    for p in math_visuals_params()
        .into_iter()
        .filter(|p| !p.starts_with("region=") && !p.starts_with("existing_redis_"))
    {
        args.extend(["-p".to_string(), p]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Flow::new()
        .env("HOME", &home.path().display().to_string())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(&args)
        .run()
}

#[test]
fn math_visuals_offline_plan_shows_every_step_without_credentials_or_the_token() {
    let out = without_credentials(&["plan", "--offline"], &[]);
    out.code(0)
        .stdout_has("create or update stack math-visuals-shared from ")
        .stdout_has("parameter EnvironmentName = prod")
        .stdout_has("create or update secret math-visuals/prod/redis/auth")
        .stdout_has("create or update stack math-visuals-data from ")
        .stdout_has(
            "parameter RedisAuthToken = {{resolve:secretsmanager:math-visuals/prod/redis/auth}}",
        )
        .stdout_has("parameter CreateReplicationGroup = false")
        .stdout_has(
            "write parameter (known after apply: steps.shared_names.outputs.RedisEndpointParameterName)",
        )
        .stdout_has("read the outputs of stack math-visuals-static-site")
        .stdout_has("GitHub secrets REDIS_PASSWORD, REDIS_ENDPOINT and REDIS_PORT to set by hand")
        .stdout_has("skipped (when: params.set_github_secrets)")
        .stdout_has("create or update stack math-visuals-api from ")
        .stdout_has("search /aws/lambda/math-visuals-api for mode kv in the last 10m00s");
    assert!(!out.both().contains(TOKEN));
    // Setting them: the plan names the commands.
    without_credentials(&["plan", "--offline"], &["-p", "set_github_secrets=true"])
        .code(0)
        .stdout_has("gh secret set REDIS_PASSWORD")
        .stdout_has("gh secret set REDIS_ENDPOINT")
        .stdout_has("gh secret set REDIS_PORT");
    // Apply needs the token: the usual error, before anything runs.
    without_credentials(&["apply"], &[])
        .code(2)
        .stderr_has("missing required param `redis_auth_token`")
        .stderr_has("or set `REDIS_AUTH_TOKEN` (on a terminal flow asks for it)");
}

/// `environment` drives every name: a dev plan names only dev stacks, secrets and logs.
#[test]
fn math_visuals_environment_dev_plans_only_dev_names() {
    let out = without_credentials(&["plan", "--offline"], &["-p", "environment=dev"]);
    out.code(0)
        .stdout_has("create or update stack math-visuals-shared-dev from ")
        .stdout_has("parameter EnvironmentName = dev")
        .stdout_has("create or update secret math-visuals/dev/redis/auth")
        .stdout_has("create or update stack math-visuals-data-dev from ")
        .stdout_has("parameter SharedParametersStackName = math-visuals-shared-dev")
        .stdout_has(
            "parameter RedisAuthToken = {{resolve:secretsmanager:math-visuals/dev/redis/auth}}",
        )
        .stdout_has("read the outputs of stack math-visuals-static-site-dev")
        .stdout_has("create or update stack math-visuals-api-dev from ")
        .stdout_has("parameter DataStackName = math-visuals-data-dev")
        .stdout_has("search /aws/lambda/math-visuals-api-dev for mode kv");
    // Nothing of prod but the sample templates' paths.
    let named: String = out
        .stdout
        .lines()
        .map(|l| l.replace(&infra("").display().to_string(), ""))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !named.contains("prod"),
        "a prod name in a dev plan:\n{named}"
    );
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
