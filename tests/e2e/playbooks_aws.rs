//! The shipped playbooks of seeds 003 (cloudradar Redis volume backup and restore through S3)
//! and 004 (math-visuals ElastiCache bootstrap), end to end against a real `moto_server` and,
//! for the cluster, tests/fixtures/k8s/kubectl, whose `exec` runs the command here with the
//! pod's /data being a local folder. Each test asserts on what the user sees and on the
//! world afterwards: the objects in the bucket, the restored files, the stacks, the secret
//! and the parameters in moto.

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

/// The files under `dir` with their contents, sorted: what a volume holds.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = crate::common::run::walk(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p
                .strip_prefix(dir)
                .expect("under dir")
                .display()
                .to_string();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect();
    out.sort();
    out
}

/// A cluster for seed 003: the kubectl stand-in, its state folder and the pod's /data.
struct Cluster {
    state: tempfile::TempDir,
    data: tempfile::TempDir,
}

impl Cluster {
    fn new() -> Self {
        Cluster {
            state: tempfile::tempdir().expect("state"),
            data: tempfile::tempdir().expect("data"),
        }
    }

    /// Redis's volume as the runbook describes it: an RDB and the AOF folder.
    fn with_redis_files(self) -> Self {
        let data = self.data.path();
        std::fs::create_dir_all(data.join("appendonlydir")).expect("mkdir");
        std::fs::write(
            data.join("dump.rdb"),
            b"REDIS0011\xfa\x09redis-ver\x057.2.4",
        )
        .expect("w");
        std::fs::write(
            data.join("appendonlydir/appendonly.aof.1.incr.aof"),
            "*3\r\n$3\r\nSET\r\n$25\r\ncloudradar:photo:v1:4242\r\n$2\r\n{}\r\n",
        )
        .expect("w");
        self
    }

    fn flow(&self, flow: Flow) -> Flow {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/k8s");
        let path = format!(
            "{}:{}",
            fixtures.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        flow.env("PATH", &path)
            .env("FAKE_K8S", &self.state.path().display().to_string())
            .env("REDIS_DIR", &self.data.path().display().to_string())
    }

    fn calls(&self) -> String {
        read(&self.state.path().join("calls.log"))
    }
}

fn cloudradar(moto: &Moto, cluster: &Cluster, which: &str, params: &[&str]) -> Outcome {
    let mut args = vec!["apply".to_string(), playbook(which), "--yes".to_string()];
    for p in params {
        args.push("-p".into());
        args.push(p.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let flow = cluster
        .flow(moto.reach(Flow::new()))
        .env("GITHUB_STEP_SUMMARY", "summary.md")
        .args(&args);
    flow.run()
}

/// An old backup folder as the script left it: the archive and its checksum.
fn old_backup(moto: &Moto, bucket: &str, ts: &str) {
    moto.boto(&format!(
        "for k in ['cloudradar-redis-data-{ts}.tgz', 'cloudradar-redis-data-{ts}.tgz.sha256']:\n\
         \x20   s3.put_object(Bucket='{bucket}', Key='redis-backups/{ts}/' + k, Body=b'old')"
    ));
}

fn folders(keys: &[String]) -> Vec<String> {
    let mut folders: Vec<String> = keys
        .iter()
        .filter_map(|k| k.strip_prefix("redis-backups/"))
        .filter_map(|k| k.split_once('/').map(|(f, _)| f.to_string()))
        .collect();
    folders.dedup();
    folders
}

#[test]
fn cloudradar_backup_uploads_the_archive_and_its_checksum_and_keeps_the_last_3_backups() {
    let moto = Moto::start();
    moto.create_bucket("radar-backups");
    for ts in ["20250101T000000Z", "20250102T000000Z", "20250103T000000Z"] {
        old_backup(&moto, "radar-backups", ts);
    }
    let cluster = Cluster::new().with_redis_files();
    let out = cloudradar(
        &moto,
        &cluster,
        "cloudradar/redis-backup.yaml",
        &["bucket=radar-backups", "work_dir=work"],
    );
    out.code(0)
        .stdout_has("verdict          RUN")
        .stdout_has("removed_backups  [\"redis-backups/20250101T000000Z\"]");
    assert!(
        cluster
            .calls()
            .contains("-n data exec redis-0 -- tar czf - -C /data ."),
        "{}",
        cluster.calls()
    );

    let keys = moto.keys("radar-backups");
    let kept = folders(&keys);
    assert_eq!(kept.len(), 3, "three backups (folders) kept: {keys:?}");
    assert_eq!(&kept[..2], ["20250102T000000Z", "20250103T000000Z"]);
    let new = &kept[2];
    let archive = format!("redis-backups/{new}/cloudradar-redis-data-{new}.tgz");
    assert!(keys.contains(&archive), "{keys:?}");
    assert!(keys.contains(&format!("{archive}.sha256")), "{keys:?}");

    // The checksum in the bucket is the archive's, in sha256sum's format, and the archive
    // holds Redis's /data.
    let checked = moto.boto(&format!(
        "import hashlib, tarfile, io\n\
         body = s3.get_object(Bucket='radar-backups', Key='{archive}')['Body'].read()\n\
         line = s3.get_object(Bucket='radar-backups', Key='{archive}.sha256')['Body'].read().decode()\n\
         names = sorted(m.name for m in tarfile.open(fileobj=io.BytesIO(body)).getmembers() if m.isfile())\n\
         print(line.split()[0] == hashlib.sha256(body).hexdigest(), line.split()[1], names)"
    ));
    assert_eq!(
        checked,
        format!(
            "True cloudradar-redis-data-{new}.tgz ['./appendonlydir/appendonly.aof.1.incr.aof', './dump.rdb']"
        )
    );
    let summary = read(&out.path("summary.md"));
    assert!(summary.contains("| verdict | RUN |"), "{summary}");
}

#[test]
fn cloudradar_backup_is_skipped_with_its_reason_when_disabled_or_the_bucket_is_missing() {
    let moto = Moto::start();
    moto.create_bucket("radar-backups");
    let cluster = Cluster::new().with_redis_files();

    let out = cloudradar(
        &moto,
        &cluster,
        "cloudradar/redis-backup.yaml",
        &["bucket=radar-backups", "redis_backup_restore=false"],
    );
    out.code(0).stdout_has(
        "verdict          SKIPPED: backup disabled (redis_backup_restore=false) (when: params.redis_backup_restore)",
    );
    let summary = read(&out.path("summary.md"));
    assert!(
        summary.contains("| verdict | SKIPPED: backup disabled (redis_backup_restore=false)"),
        "{summary}"
    );

    let out = cloudradar(
        &moto,
        &cluster,
        "cloudradar/redis-backup.yaml",
        &["bucket=no-such-bucket"],
    );
    out.code(0)
        .stdout_has("verdict          SKIPPED: bucket s3://no-such-bucket does not exist");
    assert_eq!(cluster.calls(), "", "nothing was asked of the cluster");
    assert!(moto.keys("radar-backups").is_empty());
}

#[test]
fn cloudradar_restore_of_the_latest_backup_gives_back_the_data_of_the_backup() {
    let moto = Moto::start();
    moto.create_bucket("radar-backups");
    let source = Cluster::new().with_redis_files();
    cloudradar(
        &moto,
        &source,
        "cloudradar/redis-backup.yaml",
        &["bucket=radar-backups", "work_dir=work"],
    )
    .code(0);

    // A fresh cluster: /data is empty. Without force, nothing is touched.
    let target = Cluster::new();
    let out = cloudradar(
        &moto,
        &target,
        "cloudradar/redis-restore.yaml",
        &["bucket=radar-backups", "work_dir=work"],
    );
    out.code(1).stdout_has(
        "the restore wipes Redis /data: pass -p force=true to acknowledge the data loss",
    );
    assert!(files(target.data.path()).is_empty());

    let out = cloudradar(
        &moto,
        &target,
        "cloudradar/redis-restore.yaml",
        &["bucket=radar-backups", "work_dir=work", "force=true"],
    );
    out.code(0)
        .stdout_has("verdict         RUN")
        .stdout_has("restoring s3://radar-backups/redis-backups/");
    assert_eq!(files(target.data.path()), files(source.data.path()));
    assert!(target.calls().contains("delete pod redis-0"));
    let summary = read(&out.path("summary.md"));
    assert!(summary.contains("| verdict | RUN |"), "{summary}");

    // From an S3 URI, over a /data that is not empty: skipped, nothing changed.
    let key = moto
        .keys("radar-backups")
        .into_iter()
        .find(|k| k.ends_with(".tgz"))
        .expect("an archive");
    std::fs::write(target.data.path().join("dump.rdb"), "newer data").expect("w");
    let before = files(target.data.path());
    let out = cloudradar(
        &moto,
        &target,
        "cloudradar/redis-restore.yaml",
        &[&format!("s3_uri=s3://radar-backups/{key}"), "force=true"],
    );
    out.code(0).stdout_has(
        "verdict         SKIPPED: Redis /data is not empty (appendonlydir, dump.rdb): nothing restored",
    );
    assert_eq!(files(target.data.path()), before);
}

#[test]
fn cloudradar_restore_is_skipped_when_no_backup_is_found() {
    let moto = Moto::start();
    moto.create_bucket("radar-backups");
    let cluster = Cluster::new();
    let out = cloudradar(
        &moto,
        &cluster,
        "cloudradar/redis-restore.yaml",
        &["bucket=radar-backups", "force=true"],
    );
    out.code(0).stdout_has(
        "verdict         SKIPPED: no backup found under s3://radar-backups/redis-backups/",
    );
    let summary = read(&out.path("summary.md"));
    assert!(
        summary.contains("SKIPPED: no backup found under s3://radar-backups/redis-backups/"),
        "{summary}"
    );
    assert!(!cluster.calls().contains("tar"), "{}", cluster.calls());
}

#[test]
fn cloudradar_restore_from_a_local_archive_verifies_its_checksum_before_touching_data() {
    let moto = Moto::start();
    let source = Cluster::new().with_redis_files();
    let target = Cluster::new();
    let work = tempfile::tempdir().expect("work");
    let archive = work
        .path()
        .join("cloudradar-redis-data-20250101T000000Z.tgz");
    let made = std::process::Command::new("tar")
        .arg("czf")
        .arg(&archive)
        .arg("-C")
        .arg(source.data.path())
        .arg(".")
        .status()
        .expect("tar");
    assert!(made.success());
    let sha = PathBuf::from(format!("{}.sha256", archive.display()));
    std::fs::write(
        &sha,
        format!(
            "{}  cloudradar-redis-data-20250101T000000Z.tgz\n",
            "0".repeat(64)
        ),
    )
    .expect("w");
    let params = [
        format!("archive={}", archive.display()),
        format!("sha256={}", sha.display()),
        "force=true".to_string(),
    ];
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    let out = cloudradar(&moto, &target, "cloudradar/redis-restore.yaml", &params);
    out.code(1).stdout_has("checksum mismatch: the archive is ");
    assert!(files(target.data.path()).is_empty());
    assert!(!target.calls().contains("tar"), "{}", target.calls());

    std::fs::write(
        &sha,
        format!(
            "{}  cloudradar-redis-data-20250101T000000Z.tgz\n",
            crate::common::run::sha256_of(&archive)
        ),
    )
    .expect("w");
    let out = cloudradar(&moto, &target, "cloudradar/redis-restore.yaml", &params);
    out.code(0).stdout_has("verdict         RUN");
    assert_eq!(files(target.data.path()), files(source.data.path()));
}

pub(crate) const TOKEN: &str = "Tok3n-For-Redis-9f8e7d6c";

/// The two stacks as they would be after a first deploy, made with CreateStack (moto does not
/// compute the Outputs of a stack made through a change set; MOTO.md), plus the API's logs.
pub(crate) fn math_visuals_world(moto: &Moto, api_says: &str) {
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

pub(crate) fn math_visuals_params() -> Vec<&'static str> {
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
