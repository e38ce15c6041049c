//! Seed 000 (Blot): the shipped provision-and-restore and cleanup playbooks end to end
//! against local stand-ins — `moto_server` for AWS, the loopback `sshd` for every host (an
//! ssh config maps `blot` and the new instance's private IP to it), a `redis-server` for
//! production and the one the shipped helper script starts from the restored snapshot. The
//! main host's `docker` and `openresty` are stand-in scripts that record their calls.
//! Assertions are on the world afterwards: the instance, its tags and group, the audit log,
//! the env file on the "main host", the recorded restarts.

use crate::common::moto::{Moto, outputs};
use crate::common::redis::{RedisServer, free_port, raw_command};
use crate::common::sshd::Sshd;
use crate::common::{Flow, Outcome};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub(crate) const SNAPSHOT: &str = "daily/2026-12-01.rdb";

pub(crate) fn playbook(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("playbooks/blot")
        .join(name)
        .display()
        .to_string()
}

/// Everything a run talks to, stopped when dropped (the restored Redis too).
pub(crate) struct World {
    pub(crate) moto: Moto,
    sshd: Sshd,
    production: RedisServer,
    /// The "remote" side: the env file, the stand-in commands and their call log, the
    /// instance's Redis folder and upload folder.
    remote: tempfile::TempDir,
    template: String,
    group: String,
    restored_port: u16,
}

impl Drop for World {
    fn drop(&mut self) {
        let pidfile = self.redis_dir().join("redis.pid");
        if let Ok(pid) = std::fs::read_to_string(pidfile) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

impl World {
    fn start() -> Self {
        Self::on(Moto::start())
    }

    /// The world with its AWS side on `moto` (one checking IAM, say).
    pub(crate) fn on(moto: Moto) -> Self {
        let template = moto.launch_template("blot-redis");
        let group = moto.boto(
            "print(ec2.create_security_group(GroupName='blot-redis', Description='redis')['GroupId'])",
        );
        let production = RedisServer::start();
        production.cli(&["SET", "blog:1:title", "Hello"]);
        production.cli(&["HSET", "user:1", "name", "ann", "plan", "pro"]);
        production.cli(&["RPUSH", "queue:mail", "a", "b", "c"]);
        production.cli(&["SADD", "tags", "x", "y"]);
        production.cli(&["SAVE"]);
        let dump = production.dir().join("dump.rdb");
        moto.create_bucket("blot-redis-backups");
        moto.boto(&format!(
            "s3.put_object(Bucket='blot-redis-backups', Key='daily/2026-11-30.rdb', Body=b'REDIS-old')\n\
             s3.put_object(Bucket='blot-redis-backups', Key='{SNAPSHOT}', Body=open('{}', 'rb').read())",
            dump.display()
        ));
        let sshd = Sshd::start();
        // Every host — `blot` and whatever private IP moto hands out — is the loopback sshd.
        sshd.write_config(&["*"]);
        let remote = tempfile::tempdir().expect("temp dir");
        let r = remote.path();
        std::fs::write(
            r.join("secrets.env"),
            "# Blot secrets\nBLOT_REDIS_HOST=old-redis.internal\nBLOT_SESSION_SECRET=s3cret\n",
        )
        .expect("env file");
        let calls = r.join("calls.log");
        write_script(
            &r.join("docker"),
            &format!(
                "#!/bin/sh\necho \"docker $*\" >> {calls}\nif [ \"$1\" = ps ]; then printf 'c0ffee1\\nc0ffee2\\n'; fi\nif [ \"$1\" = restart ]; then shift; printf '%s\\n' \"$@\"; fi\n",
                calls = calls.display()
            ),
        );
        write_script(
            &r.join("openresty"),
            &format!(
                "#!/bin/sh\necho \"openresty $* (as $(id -un))\" >> {}\n",
                calls.display()
            ),
        );
        World {
            moto,
            sshd,
            production,
            remote,
            template,
            group,
            restored_port: free_port(),
        }
    }

    fn redis_dir(&self) -> PathBuf {
        self.remote.path().join("redis")
    }

    pub(crate) fn env_file(&self) -> String {
        std::fs::read_to_string(self.remote.path().join("secrets.env")).expect("env file")
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.remote.path().join("calls.log")).unwrap_or_default()
    }

    /// The params that point the playbook at the stand-ins.
    pub(crate) fn params(&self) -> Vec<String> {
        let r = self.remote.path().display();
        [
            "region=us-east-1".to_string(),
            format!("launch_template={}", self.template),
            format!("security_group={}", self.group),
            format!("ssh_key={}", self.sshd.client_key().display()),
            format!("ssh_config={}", self.sshd.config().display()),
            "instance_user=root".to_string(),
            format!("secrets_env={r}/secrets.env"),
            format!("docker={r}/docker"),
            format!("openresty={r}/openresty"),
            format!("production_redis_url={}", self.production.url()),
            format!("redis_port={}", self.restored_port),
            format!("redis_dir={}", self.redis_dir().display()),
            "redis_service=".to_string(),
            format!("remote_dir={r}/upload"),
            "sample_keys=10".to_string(),
        ]
        .into()
    }

    /// `flow COMMAND provision-and-restore.yaml` with the stand-ins' params and `extra`.
    pub(crate) fn provision(&self, command: &[&str], extra: &[&str]) -> Outcome {
        let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        args.insert(1, playbook("provision-and-restore.yaml"));
        for p in self
            .params()
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
        {
            args.push("-p".into());
            args.push(p.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.moto.reach(Flow::new()).args(&args).run()
    }
}

fn instances(world: &World) -> Vec<Value> {
    world
        .moto
        .instances()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn provision_restores_compares_and_switches_the_main_host_to_the_new_instance() {
    let world = World::start();
    let out = world.provision(
        &["apply", "--yes", "--output", "json"],
        &[&format!("snapshot={SNAPSHOT}")],
    );
    out.code(0);
    let events = out.events();
    let launched = outputs(&events, "launch");
    let id = launched["instance_id"].as_str().expect("instance id");
    let ip = launched["private_ip"].as_str().expect("private ip");

    // One instance, from the template, with the runbook's tags and security group.
    let all = instances(&world);
    assert_eq!(all.len(), 1, "{all:#?}");
    let instance = &all[0];
    assert_eq!(instance["id"], id);
    assert_eq!(instance["state"], "running");
    assert_eq!(instance["groups"], serde_json::json!([world.group]));
    assert_eq!(
        instance["tags"]["RedisProvisionedBy"],
        "redis-restore-script"
    );
    assert_eq!(instance["tags"]["RedisSnapshot"], SNAPSHOT);
    let at = instance["tags"]["ProvisionedAt"]
        .as_str()
        .expect("time tag");
    assert!(
        at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "not ISO 8601: {at}"
    );

    // The audit log, in the folder flow ran in.
    let audit = out.file("provisioned-instances.log");
    assert!(
        audit.contains(&format!(
            "launched {id} private_ip={ip} snapshot={SNAPSHOT}"
        )),
        "{audit}"
    );

    // The snapshot was restored on the "instance" and matches production side by side.
    let restored = raw_command(world.restored_port, None, &["DBSIZE"])
        .expect("the restored Redis answers")
        .to_text();
    assert_eq!(restored, "4");
    let compare = outputs(&events, "compare");
    assert_eq!(compare["equal"], true, "{compare:#}");
    assert!(
        compare["rows"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["check"] == "dbsize")),
        "{compare:#}"
    );

    // The main host now names the instance; the rest of the file is as it was.
    assert_eq!(
        world.env_file(),
        format!("# Blot secrets\nBLOT_REDIS_HOST={ip}\nBLOT_SESSION_SECRET=s3cret\n")
    );
    let calls = world.calls();
    assert!(
        calls.contains("docker ps -q --filter name=^blot-container-\n"),
        "{calls}"
    );
    assert!(
        calls.contains("docker restart c0ffee1 c0ffee2\n"),
        "{calls}"
    );
    assert!(
        calls.contains("openresty -t (as root)\nopenresty -s reload (as root)\n"),
        "{calls}"
    );
    // The local copy of the snapshot is gone.
    assert!(!out.both().contains("panicked"));
    let leftovers: Vec<_> = std::fs::read_dir(out.dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".rdb"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_restore_that_differs_from_production_changes_no_configuration_and_terminates_the_instance() {
    let world = World::start();
    // Production moved on after the snapshot: the comparison cannot match.
    world.production.cli(&["SET", "blog:2:title", "Later"]);
    let out = world.provision(&["apply", "--yes"], &[&format!("snapshot={SNAPSHOT}")]);
    out.code(1)
        .stdout_has("the restored Redis differs from production")
        .stdout_has("production")
        .stdout_has("restored");
    assert!(
        world
            .env_file()
            .contains("BLOT_REDIS_HOST=old-redis.internal\n")
    );
    assert_eq!(world.calls(), "", "nothing restarted or reloaded");
    let all = instances(&world);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(
        all[0]["state"], "terminated",
        "undo terminates the instance"
    );
    assert!(
        out.file("provisioned-instances.log")
            .contains("launched i-")
    );
}

/// On a terminal: the snapshot question (the newest first), then the approval with
/// the side-by-side comparison shown, declined.
#[test]
fn an_operator_who_declines_after_the_comparison_changes_nothing_and_the_instance_goes() {
    let world = World::start();
    let dir = tempfile::tempdir().expect("dir");
    // No `snapshot` param: the question is asked, the newest snapshot first.
    let mut args = format!("apply {}", playbook("provision-and-restore.yaml"));
    for p in world.params() {
        args.push_str(&format!(" -p '{}'", p.replace('\'', "'\\''")));
    }
    let mut terminal =
        crate::common::pty::Terminal::start_with_env(dir.path(), &args, &world.moto.env());
    terminal.answer("Which snapshot to restore?", "\r");
    terminal.wait_for("Point BLOT_REDIS_HOST");
    terminal.wait_for("keyspace");
    terminal.type_keys("n\r");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 3, "{screen}");
    assert!(
        screen.contains("production") && screen.contains("restored"),
        "{screen}"
    );
    assert!(
        world
            .env_file()
            .contains("BLOT_REDIS_HOST=old-redis.internal\n")
    );
    assert_eq!(world.calls(), "", "nothing restarted or reloaded");
    let all = instances(&world);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(
        all[0]["state"], "terminated",
        "undo terminates the instance"
    );
}

/// After the switch the env file names the instance: a failed restart fails the run but
/// never terminates the instance the main host now points at.
#[test]
fn a_failed_restart_after_the_switch_fails_the_run_and_keeps_the_instance() {
    let world = World::start();
    // No container runs on the main host.
    write_script(&world.remote.path().join("docker"), "#!/bin/sh\nexit 0\n");
    let out = world.provision(&["apply", "--yes"], &[&format!("snapshot={SNAPSHOT}")]);
    out.code(1)
        .stdout_has("no running container is named blot-container-*")
        .stdout_has("finish by hand; the instance is kept");
    let all = instances(&world);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["state"], "running");
    assert!(
        !world.env_file().contains("old-redis.internal"),
        "{}",
        world.env_file()
    );
    assert!(
        world.calls().contains("openresty -s reload"),
        "{}",
        world.calls()
    );
}

#[test]
fn without_an_approval_nothing_is_switched_and_keep_instance_keeps_it_for_debugging() {
    let world = World::start();
    // No terminal and no --yes: the run stops at the approval (exit 3).
    let out = world.provision(
        &["apply"],
        &[&format!("snapshot={SNAPSHOT}"), "keep_instance=true"],
    );
    out.code(3).stdout_has("approve");
    assert!(
        world
            .env_file()
            .contains("BLOT_REDIS_HOST=old-redis.internal\n")
    );
    assert_eq!(world.calls(), "");
    let all = instances(&world);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["state"], "running", "kept for debugging");
}

#[test]
fn the_plan_is_the_runbooks_dry_run_every_aws_call_and_ssh_command_nothing_created() {
    let world = World::start();
    let out = world.provision(&["plan"], &[&format!("snapshot={SNAPSHOT}")]);
    out.code(0)
        .stdout_has(&format!(
            "choose: Which snapshot to restore? → {SNAPSHOT} (given, not asked)"
        ))
        .stdout_has(&format!(
            "launch 1 instance from launch template {}",
            world.template
        ))
        .stdout_has("RedisProvisionedBy=redis-restore-script")
        .stdout_has(&world.group)
        .stdout_has("restore-from-backup.sh")
        .stdout_has("secrets.env")
        .stdout_has("restart")
        .stdout_has("-s reload")
        .stdout_has("(known after apply: steps.launch.private_ip)");
    assert!(instances(&world).is_empty(), "the plan launched something");
    assert!(
        world
            .env_file()
            .contains("BLOT_REDIS_HOST=old-redis.internal\n")
    );
    assert_eq!(world.calls(), "");
    assert!(!out.exists("provisioned-instances.log"));
}

/// Two tagged instances (one stopped) and an unrelated one, with an audit log line.
pub(crate) fn tagged_instances(moto: &Moto) -> (String, String) {
    let ids = moto.boto(
        "image = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         def launch(tags):\n\
         \x20   spec = [{'ResourceType': 'instance', 'Tags': [{'Key': k, 'Value': v} for k, v in tags.items()]}]\n\
         \x20   return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=spec)['Instances'][0]['InstanceId']\n\
         running = launch({'RedisProvisionedBy': 'redis-restore-script', 'Name': 'blot-redis-restore'})\n\
         stopped = launch({'RedisProvisionedBy': 'redis-restore-script', 'Name': 'blot-redis-restore'})\n\
         launch({'Name': 'something-else'})\n\
         ec2.stop_instances(InstanceIds=[stopped])\n\
         print(running, stopped)",
    );
    let (running, stopped) = ids.split_once(' ').expect("two ids");
    (running.to_string(), stopped.to_string())
}

pub(crate) fn cleanup(moto: &Moto, command: &[&str], params: &[&str], audit: &str) -> Outcome {
    let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    args.insert(1, playbook("cleanup.yaml"));
    for p in ["region=us-east-1"].iter().chain(params) {
        args.push("-p".into());
        args.push(p.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    moto.reach(Flow::new().file("provisioned-instances.log", audit))
        .args(&args)
        .run()
}

#[test]
fn cleanup_lists_the_tagged_instances_and_terminates_the_stopped_one_chosen() {
    let moto = Moto::start();
    let (running, stopped) = tagged_instances(&moto);
    let audit = format!(
        "2026-12-01T10:00:00Z launched {stopped} private_ip=10.0.0.9 snapshot={SNAPSHOT}\n"
    );
    let out = cleanup(
        &moto,
        &["apply", "--yes"],
        &[&format!("instance={stopped}")],
        &audit,
    );
    // The table (state, launch time, private IP) and the audit log's line about it.
    out.code(0)
        .stdout_has(&running)
        .stdout_has("stopped")
        .stdout_has("private ip")
        .stdout_has("launched")
        .stdout_lacks("something-else")
        .stdout_has(&format!("snapshot={SNAPSHOT}"));
    let all = moto.instances();
    let state = |id: &str| {
        all.as_array()
            .and_then(|a| a.iter().find(|i| i["id"] == id))
            .map(|i| i["state"].clone())
    };
    // Terminate is what a stopped instance gets by default.
    assert_eq!(state(&stopped), Some("terminated".into()));
    assert_eq!(state(&running), Some("running".into()));
    let log = out.file("provisioned-instances.log");
    assert!(log.starts_with(&audit), "{log}");
    assert!(log.contains(&format!(" terminated {stopped} ")), "{log}");
}

#[test]
fn cleanup_refuses_to_stop_a_stopped_instance_and_plans_without_acting() {
    let moto = Moto::start();
    let (running, stopped) = tagged_instances(&moto);
    let out = cleanup(
        &moto,
        &["apply", "--yes"],
        &[&format!("instance={stopped}"), "action=stop"],
        "",
    );
    out.code(1).stdout_has("is already stopped");
    let plan = cleanup(&moto, &["plan"], &[&format!("instance={running}")], "");
    plan.code(0).stdout_has(&running).stdout_has("stop");
    let all = moto.instances();
    let states: Vec<&Value> = all
        .as_array()
        .expect("list")
        .iter()
        .map(|i| &i["state"])
        .collect();
    assert!(!states.contains(&&Value::from("terminated")), "{all:#}");
    assert_eq!(states.iter().filter(|s| **s == "stopped").count(), 1);
    assert_eq!(out.file("provisioned-instances.log"), "");
}

/// What `ask: "{{ params.snapshot is none }}"` relies on: `ask: false` takes the default
/// without a question, on a terminal too.
#[test]
fn a_choose_with_ask_false_takes_its_default_without_asking_on_a_terminal() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("playbook.yaml"),
        "flow: 1\nsteps:\n  pick:\n    type: choose\n    with: { prompt: Which backup?, options: [a, b], default: b, ask: false }\n  out:\n    type: file.write\n    with: { path: chosen.txt, content: \"{{ steps.pick.value }}\" }\n",
    )
    .expect("write playbook");
    let terminal = crate::common::pty::Terminal::start(dir.path(), "apply playbook.yaml");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("Which backup?"), "{screen}");
    assert_eq!(crate::common::read(&dir.path().join("chosen.txt")), "b");
}
