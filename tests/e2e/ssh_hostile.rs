//! The SSH step types against what a hostile pass tried, on a real `sshd` on 127.0.0.1: a
//! compromised host's names and checksums, gigabytes through a step, a `kill -9` of flow, a
//! handshake that stalls, a bastion's host key, modes, symlinks and names that are not
//! UTF-8.

use crate::common::Flow;
use crate::common::run::mode_of;
use crate::common::sshd::Sshd;
use crate::ssh_steps::{apply_json, apply_json_in, outputs, playbook};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The command lines of the processes running now.
fn command_lines() -> Vec<String> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| {
            String::from_utf8_lossy(&c)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .filter(|c| !c.is_empty())
        .collect()
}

/// Waits (at most `limit`) until no process's command line satisfies `matches`; true then.
fn none_left_within(limit: Duration, matches: impl Fn(&str) -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !command_lines().iter().any(|c| matches(c)) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The scp CVE-2019-6111 class: a host that answers the listing with `../../x`, an absolute
/// path, or a name under a symlink here that leads elsewhere gets none of them written —
/// the download fails before it writes anything.
#[test]
fn a_download_writes_nothing_outside_dest_whatever_names_the_host_sends() {
    let server = Sshd::start();
    let remote = tempfile::tempdir().expect("remote");
    let outside = tempfile::tempdir().expect("outside");
    let absolute = outside.path().join("absolute-dir");
    // `find` answers what a compromised host would; `cat` gives every file the same bytes.
    server.shadow_commands(&[
        (
            "find",
            &format!(
                "printf '%s\\0' d 755 . '' f 644 ./../../escaped '' d 755 '{}' ''",
                absolute.display()
            ),
        ),
        ("cat", "echo pwned"),
    ]);
    let flow = Flow::new().playbook(&playbook(
        &server,
        &format!(
            "  down:\n    type: ssh.download\n    with: {{ src: \"{}\", dest: a/b/down }}\n",
            remote.path().display()
        ),
    ));
    let (out, _) = apply_json_in(flow, 1);
    out.stdout_has("the host sent the name `./../../escaped`, which is not a name inside the folder asked for: refused");
    assert!(!out.exists("a/escaped"), "a host's `../..` was written");
    assert!(!absolute.exists(), "a host's absolute path was created");

    // A symlink already in `dest` that leads outside it is not written through.
    server.shadow_commands(&[
        (
            "find",
            "printf '%s\\0' d 755 . '' d 755 ./sub '' f 644 ./sub/x ''",
        ),
        ("cat", "echo pwned"),
    ]);
    let flow = Flow::new().playbook(&playbook(
        &server,
        &format!(
            "  down:\n    type: ssh.download\n    with: {{ src: \"{}\", dest: down }}\n",
            remote.path().display()
        ),
    ));
    std::fs::create_dir(flow.path("down")).expect("mkdir");
    std::os::unix::fs::symlink(outside.path(), flow.path("down/sub")).expect("symlink");
    let (out, _) = apply_json_in(flow, 1);
    out.stdout_has("`sub` leads outside down through a symlink: refused");
    assert!(
        !outside.path().join("x").exists(),
        "written through a symlink"
    );
}

/// A host whose `sha256sum` answers nothing does not get its copies called verified: the
/// copy fails, both ways.
#[test]
fn a_missing_checksum_answer_fails_the_copy() {
    let server = Sshd::start();
    let remote = tempfile::tempdir().expect("remote");
    std::fs::write(remote.path().join("dump.rdb"), "data").expect("write");
    server.shadow_commands(&[("sha256sum", "exit 0")]);
    let flow = Flow::new().file("up.txt", "up\n").playbook(&playbook(
        &server,
        &format!(
            "  down:\n    type: ssh.download\n    with: {{ src: \"{r}/dump.rdb\", dest: dump.rdb }}\n",
            r = remote.path().display()
        ),
    ));
    let (out, _) = apply_json_in(flow, 1);
    out.stdout_has("the host's sha256sum gave 0 answer(s) for 1 file(s)");
    let flow = Flow::new().file("up.txt", "up\n").playbook(&playbook(
        &server,
        &format!(
            "  up:\n    type: ssh.upload\n    with: {{ src: up.txt, dest: \"{r}/up.txt\" }}\n",
            r = remote.path().display()
        ),
    ));
    let (out, _) = apply_json_in(flow, 1);
    out.stdout_has("the host's sha256sum gave 0 answer(s) for 1 file(s)");
}

/// flow's peak resident memory (VmHWM), sampled until it exits, and its exit code.
fn run_measured(dir: &Path, args: &[&str]) -> (i32, u64) {
    let mut child = std::process::Command::new(crate::common::flow_bin())
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout.txt")).expect("stdout"))
        .stderr(std::fs::File::create(dir.join("stderr.txt")).expect("stderr"))
        .spawn()
        .expect("spawn flow");
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(kib) = std::fs::read_to_string(&status).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        }) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(code) = child.try_wait().expect("wait") {
            return (code.code().unwrap_or(-1), peak_kib * 1024);
        }
        assert!(
            Instant::now() < deadline,
            "flow did not finish in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A multi-GB Redis dump passes in bounded memory: 1 GiB of `ssh.exec` stdout, a 1 GiB
/// upload and the same 1 GiB downloaded back, in one run whose peak memory stays small.
#[test]
fn a_gigabyte_through_ssh_exec_upload_and_download_stays_in_bounded_memory() {
    const GIB: u64 = 1 << 30;
    let server = Sshd::start();
    let remote = tempfile::tempdir().expect("remote");
    let dir = tempfile::tempdir().expect("dir");
    // Sparse here; written out for real on the host and back.
    std::fs::File::create(dir.path().join("dump.rdb"))
        .and_then(|f| f.set_len(GIB))
        .expect("big file");
    std::fs::write(
        dir.path().join("playbook.yaml"),
        playbook(
            &server,
            &format!(
                "  out:\n    type: ssh.exec\n    with: {{ shell: \"head -c {GIB} /dev/zero | tr '\\\\0' x; echo; echo last-line\" }}\n  up:\n    type: ssh.upload\n    with: {{ src: dump.rdb, dest: \"{r}/dump.rdb\" }}\n  down:\n    type: ssh.download\n    with: {{ src: \"{r}/dump.rdb\", dest: back.rdb }}\n",
                r = remote.path().display()
            ),
        ),
    )
    .expect("playbook");
    let (code, peak) = run_measured(
        dir.path(),
        &["apply", "playbook.yaml", "--yes", "--output", "json"],
    );
    let stdout = std::fs::read_to_string(dir.path().join("stdout.txt")).unwrap_or_default();
    let stderr = std::fs::read_to_string(dir.path().join("stderr.txt")).unwrap_or_default();
    assert_eq!(code, 0, "stderr:\n{stderr}");
    eprintln!(
        "flow's peak RSS for 1 GiB through ssh.exec, ssh.upload and ssh.download: {} MiB",
        peak >> 20
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let out = outputs(&events, "out")["stdout"].as_str().unwrap_or("");
    assert!(
        out.ends_with("\nlast-line"),
        "{}",
        &out[out.len().saturating_sub(200)..]
    );
    assert!(
        out.starts_with("[flow: the first "),
        "the 1 MiB cap of `exec` applies"
    );
    assert_eq!(outputs(&events, "up")["bytes"], GIB);
    assert_eq!(outputs(&events, "down")["verified"], true);
    assert_eq!(
        std::fs::metadata(dir.path().join("back.rdb"))
            .expect("downloaded")
            .len(),
        GIB
    );
    assert!(
        peak < 128 << 20,
        "flow's peak RSS was {} MiB for 1 GiB through SSH",
        peak >> 20
    );
}

/// A `kill -9` of flow ends what it started on the host, as a timeout or Ctrl-C does, and
/// takes its SSH connections along: the supervisor sends the remote kill through the master
/// (which daemonizes into a session of its own, so only the supervisor can end it), then
/// ends the master.
#[test]
fn a_killed_flow_ends_its_remote_command_and_leaves_no_ssh_behind() {
    let server = Sshd::start();
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("playbook.yaml"),
        playbook(
            &server,
            "  slow:\n    type: ssh.exec\n    with: { shell: \"sleep 41.25; echo done\" }\n",
        ),
    )
    .expect("write");
    let mut child = std::process::Command::new(crate::common::flow_bin())
        .args(["apply", "playbook.yaml", "--yes"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn flow");
    let sleeping = |c: &str| c == "sleep 41.25";
    let deadline = Instant::now() + Duration::from_secs(15);
    while !command_lines().iter().any(|c| sleeping(c)) {
        assert!(
            Instant::now() < deadline,
            "the remote command never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        none_left_within(Duration::from_secs(8), sleeping),
        "the remote command outlived a killed flow"
    );
    assert!(
        none_left_within(Duration::from_secs(8), |c| c.starts_with("ssh ")
            && c.contains(&server.config().display().to_string())),
        "an ssh process outlived a killed flow"
    );
}

/// A host that sends its banner and then nothing holds `ssh` in the handshake for ever:
/// each attempt's `ssh` is ended with the attempt, not left behind one per retry.
#[test]
fn a_stalled_handshake_leaves_no_ssh_process_behind() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            use std::io::Write;
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
            held.push(stream); // and never another byte
        }
    });
    let ours = |c: &str| c.starts_with("ssh ") && c.contains(&format!(" -p {port} "));
    let (out, _) = apply_json(
        &format!(
            "flow: 1\nsteps:\n  hi:\n    type: ssh.exec\n    retry: {{ attempts: 3, delay: 10ms }}\n    with: {{ host: 127.0.0.1, port: {port}, connect_timeout: 1s, command: [\"true\"] }}\n"
        ),
        1,
    );
    out.stdout_has(&format!(
        "cannot connect to 127.0.0.1:{port}: no answer within 1.0s"
    ));
    assert!(
        none_left_within(Duration::from_secs(8), ours),
        "an ssh of a stalled handshake outlived its attempt: {:?}",
        command_lines()
            .into_iter()
            .filter(|c| ours(c))
            .collect::<Vec<_>>()
    );
    // The same for `ssh.wait`, which tries again and again.
    let (out, _) = apply_json(
        &format!(
            "flow: 1\nsteps:\n  up:\n    type: ssh.wait\n    with: {{ host: 127.0.0.1, port: {port}, connect_timeout: 1s, timeout: 5s, interval: 100ms }}\n"
        ),
        1,
    );
    out.stdout_has("did not answer within 5.0s");
    assert!(
        none_left_within(Duration::from_secs(8), ours),
        "an ssh of ssh.wait's tries outlived them"
    );
}

/// `proxy_jump`'s bastion is `localhost` here (the same sshd under another name, so another
/// known_hosts entry), the destination `flowtest`.
fn bastion_playbook(server: &Sshd, known_hosts: &Path) -> String {
    format!(
        "flow: 1\nsteps:\n  hi:\n    type: ssh.exec\n    with: {{ host: flowtest, proxy_jump: bastion, config: \"{}\", known_hosts: \"{}\", connect_timeout: 5s, command: [echo, through] }}\n",
        server.config().display(),
        known_hosts.display()
    )
}

/// The bastion's host key is checked like the host's: a config that says
/// `StrictHostKeyChecking no` for it does not let an unknown bastion key through.
#[test]
fn a_bastion_with_an_unknown_key_is_refused_whatever_the_config_says() {
    let server = Sshd::start();
    server.append_config(&format!(
        "Host bastion\n  HostName localhost\n  Port {}\n  IdentityFile {}\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n",
        server.port(),
        server.client_key().display()
    ));
    // Only the destination is known.
    let known = tempfile::NamedTempFile::new().expect("known_hosts");
    std::fs::write(known.path(), server.known_hosts_line("127.0.0.1")).expect("write");
    let (out, _) = apply_json(&bastion_playbook(&server, known.path()), 1);
    out.stdout_has("cannot connect to flowtest: through the bastion bastion: the host key is not in known_hosts");
}

/// The block's `known_hosts` is the bastion's too: a bastion known there (and nowhere else)
/// is reached.
#[test]
fn a_bastion_is_checked_against_the_blocks_known_hosts() {
    let server = Sshd::start();
    server.append_config(&format!(
        "Host bastion\n  HostName localhost\n  Port {}\n  IdentityFile {}\n",
        server.port(),
        server.client_key().display()
    ));
    let known = tempfile::NamedTempFile::new().expect("known_hosts");
    std::fs::write(
        known.path(),
        server.known_hosts_line("127.0.0.1") + &server.known_hosts_line("localhost"),
    )
    .expect("write");
    let (_, events) = apply_json(&bastion_playbook(&server, known.path()), 0);
    assert_eq!(outputs(&events, "hi")["stdout"], "through");
}

/// A 0600 file stays 0600 both ways, new or replacing; a file replaced keeps its own mode
/// when that is narrower.
#[test]
fn transfers_never_widen_a_files_mode() {
    let server = Sshd::start();
    let remote = tempfile::tempdir().expect("remote");
    let r = remote.path();
    std::fs::write(r.join("secret.env"), "S=1\n").expect("write");
    set_mode(&r.join("secret.env"), 0o600);
    std::fs::write(r.join("public.txt"), "p\n").expect("write");
    set_mode(&r.join("public.txt"), 0o644);
    std::fs::write(r.join("replaced-up.env"), "old\n").expect("write");
    set_mode(&r.join("replaced-up.env"), 0o644);
    std::fs::create_dir(r.join("private")).expect("mkdir");
    std::fs::write(r.join("private/key"), "k\n").expect("write");
    set_mode(&r.join("private"), 0o700);
    let flow = Flow::new()
        .file("up.env", "U=1\n")
        .file("replaced-secret.env", "old\n")
        .file("narrow.txt", "old\n")
        .playbook(&playbook(
            &server,
            &format!(
                "  new_down:\n    type: ssh.download\n    with: {{ src: \"{r}/secret.env\", dest: secret.env }}\n  \
                 over_wide:\n    type: ssh.download\n    with: {{ src: \"{r}/secret.env\", dest: replaced-secret.env }}\n  \
                 over_narrow:\n    type: ssh.download\n    with: {{ src: \"{r}/public.txt\", dest: narrow.txt }}\n  \
                 new_up:\n    type: ssh.upload\n    with: {{ src: up.env, dest: \"{r}/up.env\" }}\n  \
                 over_up:\n    type: ssh.upload\n    with: {{ src: up.env, dest: \"{r}/replaced-up.env\" }}\n  \
                 folder_down:\n    type: ssh.download\n    with: {{ src: \"{r}/private\", dest: private }}\n  \
                 folder_up:\n    type: ssh.upload\n    with: {{ src: private, dest: \"{r}/private-again\" }}\n",
                r = r.display()
            ),
        ));
    set_mode(&flow.path("up.env"), 0o600);
    set_mode(&flow.path("replaced-secret.env"), 0o644);
    set_mode(&flow.path("narrow.txt"), 0o600);
    let (out, _) = apply_json_in(flow, 0);
    assert_eq!(mode_of(&out.path("secret.env")), 0o600, "a new download");
    assert_eq!(
        mode_of(&out.path("replaced-secret.env")),
        0o600,
        "a 0644 file replaced by a 0600 one"
    );
    assert_eq!(out.file("replaced-secret.env"), "S=1\n");
    assert_eq!(
        mode_of(&out.path("narrow.txt")),
        0o600,
        "a 0600 file replaced by a 0644 one"
    );
    assert_eq!(mode_of(&r.join("up.env")), 0o600, "a new upload");
    assert_eq!(
        mode_of(&r.join("replaced-up.env")),
        0o600,
        "a 0644 file on the host replaced by a 0600 one"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("replaced-up.env")).expect("read"),
        "U=1\n"
    );
    assert_eq!(mode_of(&out.path("private")), 0o700, "a folder downloaded");
    assert_eq!(
        mode_of(&r.join("private-again")),
        0o700,
        "a folder uploaded"
    );
}

/// Symlinks in a tree come as symlinks both ways (targets as written, never followed), so
/// a link that loops is one link: the plan counts it as one, and no nested folders appear.
#[test]
fn symlinks_are_copied_as_symlinks_and_a_loop_is_one_link() {
    let server = Sshd::start();
    let remote = tempfile::tempdir().expect("remote");
    let tree = remote.path().join("release");
    std::fs::create_dir_all(tree.join("releases/2")).expect("mkdir");
    std::fs::write(tree.join("releases/2/app"), "v2\n").expect("write");
    std::os::unix::fs::symlink("releases/2", tree.join("current")).expect("link");
    std::os::unix::fs::symlink("/etc/hostname", tree.join("host")).expect("link");
    let up_dest = remote.path().join("up");
    let text = playbook(
        &server,
        &format!(
            "  down:\n    type: ssh.download\n    with: {{ src: \"{}\", dest: back }}\n  up:\n    type: ssh.upload\n    with: {{ src: looped, dest: \"{}\" }}\n",
            tree.display(),
            up_dest.display()
        ),
    );
    let flow = Flow::new().file("looped/a/file", "f\n").playbook(&text);
    std::os::unix::fs::symlink("..", flow.path("looped/a/loop")).expect("loop");
    let plan = Flow::new().file("looped/a/file", "f\n").playbook(&text);
    std::os::unix::fs::symlink("..", plan.path("looped/a/loop")).expect("loop");
    plan.args(&["plan", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("upload 1 file(s) and 1 symlink(s) to flowtest:");
    let (out, events) = apply_json_in(flow, 0);
    assert_eq!(
        std::fs::read_link(out.path("back/current")).expect("a link"),
        Path::new("releases/2")
    );
    assert_eq!(
        std::fs::read_link(out.path("back/host")).expect("a link"),
        Path::new("/etc/hostname")
    );
    assert_eq!(out.file("back/current/app"), "v2\n");
    assert_eq!(
        outputs(&events, "down")["links"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        std::fs::read_link(up_dest.join("a/loop")).expect("a link on the host"),
        Path::new("..")
    );
    let mut names: Vec<String> = std::fs::read_dir(up_dest.join("a"))
        .expect("a/ on the host")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["file", "loop"], "nothing nested");
}

/// A name that is not UTF-8 is carried as the same bytes, both ways.
#[test]
fn names_that_are_not_utf8_are_carried_as_they_are() {
    let server = Sshd::start();
    let remote = tempfile::tempdir().expect("remote");
    let name = OsStr::from_bytes(b"caf\xe9.txt");
    let tree = remote.path().join("tree");
    std::fs::create_dir(&tree).expect("mkdir");
    std::fs::write(tree.join(name), "latin-1\n").expect("write");
    let up_dest = remote.path().join("up");
    let flow = Flow::new().playbook(&playbook(
        &server,
        &format!(
            "  down:\n    type: ssh.download\n    with: {{ src: \"{}\", dest: back }}\n  up:\n    type: ssh.upload\n    with: {{ src: back, dest: \"{}\" }}\n",
            tree.display(),
            up_dest.display()
        ),
    ));
    let (out, events) = apply_json_in(flow, 0);
    assert_eq!(
        std::fs::read_to_string(out.path("back").join(name)).expect("the same name here"),
        "latin-1\n"
    );
    assert_eq!(
        std::fs::read_to_string(up_dest.join(name)).expect("the same name on the host"),
        "latin-1\n"
    );
    assert_eq!(outputs(&events, "down")["verified"], true);
    assert_eq!(outputs(&events, "up")["verified"], true);
}
