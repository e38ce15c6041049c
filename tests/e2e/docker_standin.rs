//! The docker stand-in (tests/fixtures/docker) earns its place by behaving like Docker where
//! seed 001's runbook depends on it (shared/REALITY.md). Each test pins one behaviour, on
//! the seed's own layout: `docker-compose up -d` in infra/redis, Redis 7 with AOF + RDB,
//! `./data:/data`.

use crate::common::docker::DockerHost;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// REALITY: `CONFIG GET dir` answers the server's own view — in a container, `/data` —
/// whatever the host's bind mount is; the files are in the host's infra/redis/data.
#[test]
fn config_get_dir_is_the_containers_data_and_the_files_are_in_the_bind_mount() {
    let host = DockerHost::new();
    host.up();
    assert_eq!(host.cli(&["CONFIG", "GET", "dir"]), "dir\n/data");
    host.cli(&["SET", "session:a", "{}"]);
    host.cli(&["SAVE"]);
    assert!(host.data_dir().join("dump.rdb").is_file());
    assert!(host.data_dir().join("appendonlydir").is_dir());
    assert!(
        !std::path::Path::new("/data/dump.rdb").exists(),
        "the container's /data is not a folder of the host"
    );
    // Inside, /data is the bind mount, and the host's own folders are not there.
    let inside = host.docker(&["exec", "redis", "sh", "-c", "ls /data"]);
    inside
        .code(0)
        .stdout_has("dump.rdb")
        .stdout_has("appendonlydir");
    host.docker(&[
        "exec",
        "redis",
        "ls",
        &host.data_dir().display().to_string(),
    ])
    .code(2);
    host.docker(&["exec", "redis", "redis-cli", "config", "get", "dir"])
        .code(0)
        .stdout_has("/data");
    // The redis image's entrypoint: Redis runs as its own user with umask 0077.
    let mode = std::fs::metadata(host.data_dir().join("dump.rdb"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "dump.rdb is {mode:o}");
}

/// REALITY: SIGTERM = SHUTDOWN — `docker-compose stop` makes Redis save its dataset, over a
/// dump.rdb that was replaced while it ran.
#[test]
fn stop_is_sigterm_and_redis_saves_over_a_file_replaced_while_it_ran() {
    let host = DockerHost::new();
    host.up();
    host.cli(&["SET", "one", "1"]);
    host.cli(&["SAVE"]);
    let one_key = std::fs::read(host.data_dir().join("dump.rdb")).unwrap();
    host.cli(&["SET", "two", "2"]);
    host.cli(&["SET", "three", "3"]);
    host.cli(&["SAVE"]);
    // "Restore" the one-key file while Redis runs, then stop it as the runbook does.
    std::fs::write(host.data_dir().join("dump.rdb"), &one_key).unwrap();
    host.compose(&["stop", "redis"])
        .code(0)
        .stderr_has(" Container redis  Stopping")
        .stderr_has(" Container redis  Stopped");
    assert_eq!(
        host.keys_in_rdb("dump.rdb"),
        3,
        "the stop's SAVE wrote the dataset over the restored file"
    );
    host.docker(&["logs", "--tail", "10", "redis"])
        .code(0)
        .stdout_has("Received SIGTERM scheduling shutdown")
        .stdout_has("DB saved on disk")
        .stdout_has("Redis is now ready to exit, bye bye");
    assert!(host.inspect("{{.State.Status}} {{.State.ExitCode}}") == "exited 0");
}

/// REALITY: with AOF on, Redis 7 starts from appendonlydir/ and ignores dump.rdb.
#[test]
fn with_aof_redis_starts_from_appendonlydir_and_ignores_a_restored_dump_rdb() {
    let host = DockerHost::new();
    host.up();
    host.cli(&["SET", "backup-key", "x"]);
    host.cli(&["SAVE"]);
    let backup = std::fs::read(host.data_dir().join("dump.rdb")).unwrap();
    host.cli(&["DEL", "backup-key"]);
    host.cli(&["SET", "later", "y"]);
    host.compose(&["stop", "redis"]).code(0);
    std::fs::write(host.data_dir().join("dump.rdb"), &backup).unwrap();
    host.compose(&["start", "redis"]).code(0);
    host.wait_ready();
    assert_eq!(
        host.cli(&["EXISTS", "backup-key"]),
        "0",
        "dump.rdb was ignored"
    );
    assert_eq!(host.cli(&["EXISTS", "later"]), "1", "loaded from the AOF");
}

/// A stopped container: exec fails as dockerd says, the published port is closed, ps and
/// inspect say how it ended; it starts again on the same data.
#[test]
fn a_stopped_container_refuses_exec_closes_its_port_and_starts_again_on_its_data() {
    let host = DockerHost::new();
    host.up();
    host.cli(&["SET", "kept", "1"]);
    host.compose(&["stop", "redis"]).code(0);
    assert!(!host.answers(), "the published port must be closed");
    host.docker(&["exec", "redis", "redis-cli", "ping"])
        .code(1)
        .stderr_has("Error response from daemon: container ")
        .stderr_has(" is not running");
    host.compose(&["exec", "-T", "redis", "redis-cli", "ping"])
        .code(1)
        .stderr_has("service \"redis\" is not running");
    host.compose(&["ps"])
        .code(0)
        .stdout_lacks("redis   redis:7");
    host.compose(&["ps", "--all"])
        .code(0)
        .stdout_has("Exited (0) ");
    host.docker(&["ps", "-a", "--format", "{{.Names}}: {{.Status}}"])
        .code(0)
        .stdout_has("redis: Exited (0) ");
    host.compose(&["start", "redis"])
        .code(0)
        .stderr_has(" Container redis  Started");
    host.wait_ready();
    assert_eq!(host.cli(&["GET", "kept"]), "1");
    host.docker(&["ps"]).code(0).stdout_has("Up ");
}

/// The restart policy (`restart: unless-stopped`) brings Redis back when it exits by itself
/// — a `SHUTDOWN` sent to it — but not after `docker stop`.
#[test]
fn unless_stopped_restarts_redis_after_its_own_shutdown_but_not_after_docker_stop() {
    let host = DockerHost::new();
    host.up();
    host.docker(&["exec", "redis", "redis-cli", "shutdown", "nosave"]);
    wait_until("the policy restarts Redis", Duration::from_secs(10), || {
        host.inspect("{{.RestartCount}}") == "1" && host.answers()
    });
    host.docker(&["stop", "redis"]).code(0).stdout_has("redis");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(host.inspect("{{.State.Status}}"), "exited");
    assert!(!host.answers());
}

/// `docker-compose exec` allocates a terminal unless `-T`: off a terminal (cron, CI, flow) it
/// fails, as the real one does (docker/compose#5696); `docker exec -it` likewise.
#[test]
fn exec_with_a_terminal_fails_off_a_terminal() {
    let host = DockerHost::new();
    host.up();
    host.compose(&["exec", "redis", "redis-cli", "ping"])
        .code(1)
        .stderr_has("the input device is not a TTY");
    host.docker(&["exec", "-it", "redis", "redis-cli", "ping"])
        .code(1)
        .stderr_has("the input device is not a TTY");
    host.compose(&["exec", "-T", "redis", "redis-cli", "ping"])
        .code(0)
        .stdout_has("PONG");
}

/// `docker stats` reports the container's figures against its memory limit (mem_limit: 300m)
/// and `docker inspect` its state, mounts and restart policy.
#[test]
fn stats_and_inspect_report_the_container() {
    let host = DockerHost::new();
    host.up();
    let stats = host.docker(&["stats", "--no-stream", "redis"]);
    stats
        .code(0)
        .stdout_has("CONTAINER ID   NAME    CPU %")
        .stdout_has("MEM USAGE / LIMIT")
        .stdout_has(" / 300MiB ");
    let row = stats.stdout.lines().nth(1).expect("a row");
    assert!(row.contains(" redis "), "{row}");
    assert_eq!(
        host.inspect("{{.State.Running}} {{.HostConfig.RestartPolicy.Name}}"),
        "true unless-stopped"
    );
    assert_eq!(
        host.inspect("{{range .Mounts}}{{.Destination}} {{end}}"),
        "/data /usr/local/etc/redis/redis.conf"
    );
    assert_eq!(
        host.inspect("{{index .Config.Labels \"com.docker.compose.service\"}}"),
        "redis"
    );
    let json = host.docker(&["inspect", "redis"]);
    json.code(0);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        document[0]["Mounts"][0]["Source"],
        host.data_dir().display().to_string()
    );
    host.docker(&["inspect", "nope"])
        .code(1)
        .stderr_has("Error: No such object: nope");
}

/// `docker run --rm -v $(pwd)/data:/data redis:7-alpine redis-check-aof …`, the runbook's
/// AOF repair, runs on the bind mount; redis-check-aof opens the files for writing even to
/// check, so a read-only mount fails as it does on Docker.
#[test]
fn docker_run_checks_the_aof_through_the_bind_mount() {
    let host = DockerHost::new();
    host.up();
    host.cli(&["SET", "k", "v"]);
    let manifest = "/data/appendonlydir/appendonly.aof.manifest";
    host.check_aof(manifest, "")
        .code(0)
        .stdout_has("All AOF files and manifest are valid");
    host.check_aof(manifest, ":ro")
        .code(1)
        .stdout_has("Read-only file system");
    host.docker(&["run", "--rm", "-v", "data:/data", "redis:7-alpine", "true"])
        .code(125)
        .stderr_has("named volume");
    host.docker(&["run", "--rm", "ubuntu", "true"])
        .code(125)
        .stderr_has("Unable to find image 'ubuntu' locally");
    assert_eq!(
        host.docker(&["ps", "-aq"]).stdout.lines().count(),
        1,
        "--rm removes the one-off containers"
    );
}

/// The daemon belongs to a process (the test): when it is gone, its containers die with it,
/// so a killed test leaves no Redis behind.
#[test]
fn containers_die_with_the_daemons_owner() {
    let host = DockerHost::new();
    let mut owner = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("sleep");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", owner.id())).unwrap();
    let start = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .unwrap()
        .to_string();
    std::fs::write(
        host.state_dir().join("owner"),
        format!("{} {start}", owner.id()),
    )
    .unwrap();
    host.up();
    let pid: u32 = host.inspect("{{.State.Pid}}").parse().unwrap();
    owner.kill().unwrap();
    owner.wait().unwrap();
    wait_until("Redis dies with the owner", Duration::from_secs(10), || {
        !crate::common::run::alive(pid)
    });
    assert_eq!(
        host.inspect("{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
}
