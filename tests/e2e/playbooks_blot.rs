//! Seed 000 (Blot): the shipped provision-and-restore and cleanup playbooks end to end
//! against local stand-ins — `moto_server` for AWS, the loopback `sshd` for every host (an
//! ssh config maps `blot` and the new instance's private IP to it), a `redis-server` for
//! production and the one the shipped helper script starts from the restored snapshot. The
//! main host's `docker` and `openresty` are stand-in scripts that record their calls, and its
//! `redis-cli` sees the network as the main host would: an instance's private address (moto
//! hands out 10.x) is this machine, 127.0.0.1, as the ssh config maps every host to the
//! loopback sshd — or, for a main host that cannot reach the instance, 127.0.0.2, where
//! nothing listens (a security group that keeps it out, a Redis bound to the instance's
//! loopback). Assertions are on the world afterwards: the instance, its tags and groups, the
//! audit log, the env file on the "main host", the recorded restarts.

use crate::common::moto::{Moto, outputs};
use crate::common::redis::{RedisServer, free_port, raw_command};
use crate::common::sshd::Sshd;
use crate::common::{Flow, Outcome, read};
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
    /// The launch template's own security group.
    template_group: String,
    /// The group the playbook attaches beside it.
    group: String,
    restored_port: u16,
}

/// Production's keys: 100, so that a few written after the snapshot are a drift of a few %.
const POSTS: usize = 96;
const KEYS: usize = POSTS + 4;

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
        let (template, template_group, group) = moto.launch_template_with_group("blot-redis");
        let production = RedisServer::start();
        let mut posts = vec!["MSET".to_string()];
        for n in 1..=POSTS {
            posts.push(format!("blog:{n}:title"));
            posts.push(format!("Post {n}"));
        }
        production.cli(&posts.iter().map(String::as_str).collect::<Vec<_>>());
        production.cli(&["HSET", "user:1", "name", "ann", "plan", "pro"]);
        production.cli(&["RPUSH", "queue:mail", "a", "b", "c"]);
        production.cli(&["SADD", "tags", "x", "y"]);
        production.cli(&["SET", "blog:count", "96"]);
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
        write_script(&r.join("redis-cli"), &main_host_redis_cli("127.0.0.1"));
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
            template_group,
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

    /// Nothing changed on the main host: the env file as it was, nothing restarted or reloaded.
    fn assert_not_switched(&self) {
        assert!(
            self.env_file()
                .contains("BLOT_REDIS_HOST=old-redis.internal\n"),
            "{}",
            self.env_file()
        );
        assert_eq!(self.calls(), "", "nothing restarted or reloaded");
    }

    /// BLOT_REDIS_HOST names another host now.
    fn assert_switched(&self) {
        assert!(
            !self.env_file().contains("old-redis.internal"),
            "{}",
            self.env_file()
        );
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
            format!("redis_cli={r}/redis-cli"),
            format!("production_redis_url={}", self.production.url()),
            format!("redis_port={}", self.restored_port),
            format!("redis_dir={}", self.redis_dir().display()),
            "redis_service=".to_string(),
            format!("remote_dir={r}/upload"),
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

/// `redis-cli` on the "main host": the instances' private addresses are `address` here.
fn main_host_redis_cli(address: &str) -> String {
    format!(
        "#!/bin/sh\n\
         n=$#; previous=\n\
         for a in \"$@\"; do\n\
         \x20 if [ \"$previous\" = -h ]; then case $a in 10.*|172.*|192.168.*) a={address} ;; esac; fi\n\
         \x20 set -- \"$@\" \"$a\"; previous=$a\n\
         done\n\
         shift $n\n\
         exec redis-cli \"$@\"\n"
    )
}

fn instances(world: &World) -> Vec<Value> {
    world
        .moto
        .instances()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Production moves on after the snapshot, as it always does: `extra` new keys, and the
/// value of `blog:7:title` changed.
fn production_moves_on(world: &World, extra: usize) {
    for n in 0..extra {
        world
            .production
            .cli(&["SET", &format!("session:{n}"), "written after the snapshot"]);
    }
    world
        .production
        .cli(&["SET", "blog:7:title", "Edited later"]);
}

/// The terminal args of a provision run with the stand-ins' params (each quoted for `script`).
fn terminal_args(world: &World, command: &str, extra: &[&str]) -> String {
    let mut args = format!("{command} {}", playbook("provision-and-restore.yaml"));
    for p in world
        .params()
        .iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
    {
        args.push_str(&format!(" -p '{}'", p.replace('\'', "'\\''")));
    }
    args
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

    // One instance, from the template, with the runbook's tags — and with the template's own
    // security group and the named one: attached beside it, not substituted for it.
    let all = instances(&world);
    assert_eq!(all.len(), 1, "{all:#?}");
    let instance = &all[0];
    assert_eq!(instance["id"], id);
    assert_eq!(instance["state"], "running");
    assert_eq!(
        instance["groups"],
        serde_json::json!([world.template_group, world.group])
    );
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
            "launched {id} private_ip={ip} snapshot={SNAPSHOT} template={} security_groups={},{}",
            world.template, world.template_group, world.group
        )),
        "{audit}"
    );

    // The snapshot was restored on the "instance", the main host reached it, and it matches
    // production side by side.
    let restored = raw_command(world.restored_port, None, &["DBSIZE"])
        .expect("the restored Redis answers")
        .to_text();
    assert_eq!(restored, KEYS.to_string());
    assert_eq!(outputs(&events, "reach_from_main")["stdout"], "PONG");
    let compare = outputs(&events, "compare");
    assert_eq!(compare["equal"], true, "{compare:#}");
    assert_eq!(compare["sampled"], KEYS, "every key compared: {compare:#}");
    assert_eq!(compare["identical"], KEYS, "{compare:#}");
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

/// A daily snapshot beside live production: a session written since, a post edited. With
/// `--yes` the run goes on within the tolerance, says by how much it differs, and names the
/// key whose value differs.
#[test]
fn with_yes_a_restore_within_the_tolerance_switches_and_says_how_far_it_differs() {
    let world = World::start();
    production_moves_on(&world, 1);
    let out = world.provision(&["apply", "--yes"], &[&format!("snapshot={SNAPSHOT}")]);
    out.code(0)
        .stdout_has(&format!(
            "production {} keys, restored {KEYS} keys (drift 0.99%); {} keys sampled: {KEYS} present (99.01%), {} identical (98.02%): within the tolerance",
            KEYS + 1,
            KEYS + 1,
            KEYS - 1
        ))
        .stdout_has("2 sampled keys differ from production: blog:7:title, session:0")
        .stdout_has("within_tolerance");
    world.assert_switched();
    assert!(world.calls().contains("openresty -s reload"));
    assert_eq!(instances(&world)[0]["state"], "running");
}

/// Production moved on further than the tolerance: `--yes` judged nothing, so the run stops
/// before the switch, shows the differences, and the instance goes.
#[test]
fn with_yes_a_restore_outside_the_tolerance_stops_before_the_switch_with_the_differences() {
    let world = World::start();
    production_moves_on(&world, 20);
    let out = world.provision(&["apply", "--yes"], &[&format!("snapshot={SNAPSHOT}")]);
    out.code(1)
        .stdout_has(&format!(
            "production {} keys, restored {KEYS} keys (drift 16.67%)",
            KEYS + 20
        ))
        .stdout_has("OUTSIDE the tolerance (drift ≤ 5%, present ≥ 95%, identical ≥ 90%)")
        .stdout_has("blog:7:title")
        .stdout_has("approved with --yes but nobody judged the comparison")
        .stdout_has("production")
        .stdout_has("restored");
    world.assert_not_switched();
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
    // Widened by the operator, the same difference goes through.
    let out = world.provision(
        &["apply", "--yes"],
        &[
            &format!("snapshot={SNAPSHOT}"),
            "max_key_drift_percent=20",
            "min_present_percent=80",
            "min_identical_percent=80",
        ],
    );
    out.code(0).stdout_has("within the tolerance");
}

/// On a terminal the operator judges: a restore outside the tolerance, shown as such,
/// approved by a person, switches.
#[test]
fn on_a_terminal_the_operator_judges_a_restore_outside_the_tolerance() {
    let world = World::start();
    production_moves_on(&world, 20);
    let dir = tempfile::tempdir().expect("dir");
    let args = terminal_args(&world, "apply", &[&format!("snapshot={SNAPSHOT}")]);
    let mut terminal =
        crate::common::pty::Terminal::start_with_env(dir.path(), &args, &world.moto.env());
    terminal.wait_for("OUTSIDE the tolerance. Point BLOT_REDIS_HOST");
    terminal.wait_for("keyspace");
    terminal.type_keys("y\r");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("the operator judged the comparison on the terminal"),
        "{screen}"
    );
    world.assert_switched();
}

/// On a terminal: the snapshot question (the newest first), then the approval with
/// the side-by-side comparison shown, declined.
#[test]
fn an_operator_who_declines_after_the_comparison_changes_nothing_and_the_instance_goes() {
    let world = World::start();
    let dir = tempfile::tempdir().expect("dir");
    // No `snapshot` param: the question is asked, the newest snapshot first.
    let args = terminal_args(&world, "apply", &[]);
    let mut terminal =
        crate::common::pty::Terminal::start_with_env(dir.path(), &args, &world.moto.env());
    terminal.answer("Which snapshot to restore?", "\r");
    terminal.wait_for("within the tolerance. Point BLOT_REDIS_HOST");
    terminal.wait_for("keyspace");
    terminal.type_keys("n\r");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 3, "{screen}");
    assert!(
        screen.contains("production") && screen.contains("restored"),
        "{screen}"
    );
    world.assert_not_switched();
    let all = instances(&world);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(
        all[0]["state"], "terminated",
        "undo terminates the instance"
    );
}

/// A snapshot named on the command line restores however old it is — here older than the
/// listing's first page of 20 — and one that does not exist launches nothing.
#[test]
fn a_named_snapshot_older_than_the_listing_restores_and_a_missing_one_launches_nothing() {
    let world = World::start();
    // The production snapshot as it was on 1 November, then 24 newer ones.
    let old = "daily/2026-11-01.rdb";
    world.moto.boto(&format!(
        "body = s3.get_object(Bucket='blot-redis-backups', Key='{SNAPSHOT}')['Body'].read()\n\
         s3.put_object(Bucket='blot-redis-backups', Key='{old}', Body=body)\n\
         for day in range(2, 26):\n\
         \x20   s3.put_object(Bucket='blot-redis-backups', Key='daily/2026-11-%02d.rdb' % day, Body=b'REDIS-other')"
    ));
    let out = world.provision(&["apply", "--yes"], &["snapshot=daily/2025-01-01.rdb"]);
    out.code(1).stdout_has(
        "there is no snapshot s3://blot-redis-backups/daily/2025-01-01.rdb: nothing was launched",
    );
    assert!(instances(&world).is_empty(), "nothing was launched");

    let out = world.provision(&["apply", "--yes"], &[&format!("snapshot={old}")]);
    out.code(0);
    let all = instances(&world);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["tags"]["RedisSnapshot"], old);
    let restored = raw_command(world.restored_port, None, &["DBSIZE"])
        .expect("the restored Redis answers")
        .to_text();
    assert_eq!(restored, KEYS.to_string());
}

/// The main host must reach the new Redis where BLOT_REDIS_HOST will point: when it cannot,
/// the run stops before the switch and the instance goes.
#[test]
fn a_new_redis_the_main_host_cannot_reach_stops_the_run_before_the_switch() {
    let world = World::start();
    write_script(
        &world.remote.path().join("redis-cli"),
        &main_host_redis_cli("127.0.0.2"),
    );
    let out = world.provision(&["apply", "--yes"], &[&format!("snapshot={SNAPSHOT}")]);
    out.code(1)
        .stdout_has("blot cannot reach the restored Redis at 10.")
        .stdout_has("Could not connect to Redis at 127.0.0.2")
        .stdout_lacks("✔ approve");
    world.assert_not_switched();
    assert_eq!(instances(&world)[0]["state"], "terminated");
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
    world.assert_switched();
    assert!(
        world.calls().contains("openresty -s reload"),
        "{}",
        world.calls()
    );
}

/// No terminal and no `--yes`: the run stops at the approval (exit 3), and what it prints
/// carries the question with the comparison, which nobody was shown.
#[test]
fn without_an_approval_nothing_is_switched_and_keep_instance_keeps_it_for_debugging() {
    let world = World::start();
    let out = world.provision(
        &["apply"],
        &[&format!("snapshot={SNAPSHOT}"), "keep_instance=true"],
    );
    out.code(3)
        .stdout_has("--approve approve")
        .stdout_has("The question: production 100 keys, restored 100 keys (drift 0%)")
        .stdout_has("within the tolerance. Point BLOT_REDIS_HOST")
        .stdout_has("keyspace db0");
    world.assert_not_switched();
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
        .stdout_has(&format!(
            "attach security group {} to (known after apply: steps.launch.instance_id)",
            world.group
        ))
        .stdout_has("restore-from-backup.sh")
        .stdout_has("redis-cli -h '(known after apply: steps.launch.private_ip)'")
        .stdout_has("secrets.env")
        .stdout_has("restart")
        .stdout_has("-s reload")
        .stdout_has("(known after apply: steps.launch.private_ip)");
    assert!(instances(&world).is_empty(), "the plan launched something");
    world.assert_not_switched();
    assert!(!out.exists("provisioned-instances.log"));
}

/// The SSH key: asked on a terminal when neither `ssh_key` nor REDIS_SSH_KEY gives it; without
/// a terminal, the usual error naming both.
#[test]
fn the_ssh_key_is_asked_on_a_terminal_and_named_as_missing_without_one() {
    let world = World::start();
    let without_key: Vec<String> = world
        .params()
        .into_iter()
        .filter(|p| !p.starts_with("ssh_key="))
        .chain([format!("snapshot={SNAPSHOT}")])
        .collect();
    let mut args = vec!["plan".to_string(), playbook("provision-and-restore.yaml")];
    for p in &without_key {
        args.extend(["-p".to_string(), p.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    world
        .moto
        .reach(Flow::new())
        .args(&args)
        .run()
        .code(2)
        .stderr_has("missing required param `ssh_key`")
        .stderr_has(
            "pass `-p ssh_key=VALUE` or set `REDIS_SSH_KEY` (on a terminal flow asks for it)",
        );

    let dir = tempfile::tempdir().expect("dir");
    let mut line = format!("plan {}", playbook("provision-and-restore.yaml"));
    for p in &without_key {
        line.push_str(&format!(" -p '{p}'"));
    }
    let mut terminal =
        crate::common::pty::Terminal::start_with_env(dir.path(), &line, &world.moto.env());
    // A moment after each question, for the prompt to take the terminal.
    let settle = std::time::Duration::from_millis(300);
    terminal.wait_for(
        "ssh_key (The private key of the launch template's key pair) [or set REDIS_SSH_KEY]",
    );
    terminal.drawn_during(settle);
    terminal.type_keys("no-such-key\r");
    terminal.wait_for("path `no-such-key` does not exist");
    terminal.drawn_during(settle);
    terminal.type_keys(&format!("{}\r", world.sshd.client_key().display()));
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("Plan: "), "{screen}");
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

/// Editing the main host's env file through `sudo -n` where sudo wants a password: the
/// step says so and how to fix it, and the file is untouched. The host's `sudo` is a
/// stand-in answering as sudo does then (the tests run as root, whom sudo never asks).
#[test]
fn editing_on_the_main_host_says_clearly_when_sudo_wants_a_password() {
    let mut sshd = Sshd::prepare();
    let bin = sshd.dir().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    write_script(
        &bin.join("sudo"),
        "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n",
    );
    let config = sshd.dir().join("sshd_config");
    let mut text = std::fs::read_to_string(&config).expect("sshd_config");
    text.push_str(&format!("SetEnv PATH={}:/usr/bin:/bin\n", bin.display()));
    std::fs::write(&config, text).expect("sshd_config");
    sshd.spawn();
    sshd.write_config(&["blot"]);
    let dir = tempfile::tempdir().expect("dir");
    let env_file = dir.path().join("secrets.env");
    std::fs::write(&env_file, "BLOT_REDIS_HOST=old-redis.internal\n").expect("w");
    let out = Flow::new()
        .playbook(&format!(
            "flow: 1\nsteps:\n  switch:\n    type: envfile.set\n    with:\n      ssh: {}\n      sudo: true\n      path: {}\n      set: {{ BLOT_REDIS_HOST: 10.0.0.5 }}\n",
            sshd.block("blot"),
            env_file.display()
        ))
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1)
        .stdout_has("sudo: a password is required")
        .stdout_has(
            "sudo on this host wants a password, and flow never types one (it runs `sudo -n`)",
        )
        .stdout_has("NOPASSWD");
    assert_eq!(
        read(&env_file),
        "BLOT_REDIS_HOST=old-redis.internal\n",
        "the file is untouched"
    );
}
