//! Local files flow reads and writes that are not what their name says: a download
//! (`s3.get`, `redis.backup`'s copy) never replaces a device, a FIFO or a symlink — it is
//! refused, or the link is followed; and an input that is not a regular file — a playbook, a
//! params file, a template, a file to upload — is refused at once, never read until a writer
//! comes or memory runs out. Devices are made with `mknod` in the test's own folder (the
//! tests run as root), so a regression replaces that node, never the machine's `/dev/null`.

use crate::common::Flow;
use crate::common::moto::Moto;
use crate::common::redis::RedisServer;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// A character device node like `/dev/null` (1, 3), in the test's folder.
fn mknod_null(path: &Path) {
    let made = std::process::Command::new("mknod")
        .arg(path)
        .args(["c", "1", "3"])
        .status()
        .expect("mknod (the tests run as root)");
    assert!(made.success(), "mknod {}", path.display());
}

fn is_fifo(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

fn is_char_device(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

fn within(dir: &Path, args: &[&str], env: &[(String, String)], seconds: u64) -> (i32, String) {
    crate::common::run::flow_within(dir, args, env, seconds)
}

// ---------------------------------------------------------------- downloads

/// `s3.get` to a FIFO or a device node is refused (plan and apply) and leaves it as it was;
/// to a symlink, it writes the file the link points to and the link stays a link.
#[test]
fn s3_get_never_replaces_a_device_or_a_fifo_and_follows_a_symlink() {
    let moto = Moto::start();
    moto.create_bucket("backups");
    let flow = Flow::new()
        .file("dump.rdb", "REDIS0011 data")
        .file("real.rdb", "old")
        .playbook(
            r#"flow: 1
steps:
  up: { type: s3.put, with: { bucket: backups, key: dump.rdb, path: dump.rdb } }
  to_link: { type: s3.get, with: { bucket: backups, key: dump.rdb, path: link.rdb } }
  to_fifo: { type: s3.get, needs: [up], with: { bucket: backups, key: dump.rdb, path: pipe } }
  to_device: { type: s3.get, needs: [up], with: { bucket: backups, key: dump.rdb, path: devnull } }
"#,
        );
    let dir = flow.dir.path().to_path_buf();
    mkfifo(&dir.join("pipe"));
    mknod_null(&dir.join("devnull"));
    std::os::unix::fs::symlink("real.rdb", dir.join("link.rdb")).expect("symlink");

    let (code, plan) = within(&dir, &["plan", "playbook.yaml"], &moto.env(), 60);
    assert_eq!(code, 0, "{plan}");
    assert!(plan.contains("will fail: "), "{plan}");
    assert!(
        plan.contains("pipe is a FIFO, not a regular file"),
        "{plan}"
    );
    assert!(
        plan.contains("devnull is a character device, not a regular file"),
        "{plan}"
    );

    let (code, apply) = within(&dir, &["apply", "playbook.yaml", "--yes"], &moto.env(), 60);
    assert_eq!(code, 1, "{apply}");
    assert!(
        apply.contains("pipe is a FIFO, not a regular file"),
        "{apply}"
    );
    assert!(
        apply.contains("devnull is a character device, not a regular file"),
        "{apply}"
    );
    assert!(is_fifo(&dir.join("pipe")), "the FIFO was replaced");
    assert!(
        is_char_device(&dir.join("devnull")),
        "the device node was replaced"
    );
    assert!(
        is_symlink(&dir.join("link.rdb")),
        "the symlink was replaced"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("real.rdb")).unwrap(),
        "REDIS0011 data"
    );
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".flow-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `redis.backup`'s `dest` a FIFO or a device node: refused before the save, left as it
/// was; a symlink: the backup lands in the file it points to.
#[test]
fn redis_backup_never_replaces_a_device_or_a_fifo_and_follows_a_symlink() {
    let redis = RedisServer::start();
    redis.cli(&["SET", "k", "v"]);
    let playbook = |dest: &str| {
        format!(
            "flow: 1\nsteps:\n  backup:\n    type: redis.backup\n    with: {{ url: \"{}\", timeout: 20s, dest: {dest} }}\n",
            redis.url()
        )
    };
    for (dest, make, kind) in [
        ("pipe", mkfifo as fn(&Path), "a FIFO"),
        ("devnull", mknod_null as fn(&Path), "a character device"),
    ] {
        let flow = Flow::new().playbook(&playbook(dest));
        let dir = flow.dir.path().to_path_buf();
        make(&dir.join(dest));
        let (code, plan) = within(&dir, &["plan", "playbook.yaml"], &[], 60);
        assert_eq!(code, 0, "{plan}");
        assert!(plan.contains("will fail: "), "{plan}");
        assert!(plan.contains(&format!("{dest} is {kind}")), "{plan}");
        let (code, apply) = within(&dir, &["apply", "playbook.yaml", "--yes"], &[], 60);
        assert_eq!(code, 1, "{apply}");
        assert!(
            apply.contains(&format!("{dest} is {kind}, not a regular file")),
            "{apply}"
        );
        let path = dir.join(dest);
        assert!(
            is_fifo(&path) || is_char_device(&path),
            "{dest} was replaced"
        );
    }

    let flow = Flow::new()
        .file("backups/real.rdb", "")
        .playbook(&playbook("link.rdb"));
    let dir = flow.dir.path().to_path_buf();
    std::os::unix::fs::symlink("backups/real.rdb", dir.join("link.rdb")).expect("symlink");
    let (code, apply) = within(&dir, &["apply", "playbook.yaml", "--yes"], &[], 60);
    assert_eq!(code, 0, "{apply}");
    assert!(
        is_symlink(&dir.join("link.rdb")),
        "the symlink was replaced"
    );
    let copy = std::fs::read(dir.join("backups/real.rdb")).unwrap();
    assert!(
        copy.starts_with(b"REDIS"),
        "the backup is not in the linked file"
    );
}

// ---------------------------------------------------------------- inputs

/// A FIFO as the playbook, as a params file, as a saved plan, as a CloudFormation template
/// (`plan --offline`), as the file `s3.put` uploads or `ssh.upload` copies: one clear error
/// naming it, at once. (Before, each waited for a writer — past any step timeout — or, for
/// `s3.put`, left flow unable to exit.) `/dev/zero` as a playbook is refused too, not read
/// until memory runs out.
#[test]
fn a_fifo_or_a_device_given_as_an_input_is_refused_at_once() {
    let moto = Moto::start();
    moto.create_bucket("backups");
    let flow = Flow::new()
        .file(
            "uses_params.yaml",
            "flow: 1\nparams:\n  who: { type: string, default: x }\nsteps:\n  hi: { type: log, with: { message: hi } }\n",
        )
        .file(
            "deploy.yaml",
            "flow: 1\nsteps:\n  stack:\n    type: cfn.deploy\n    timeout: 5s\n    with: { stack_name: app, template: pipe }\n",
        )
        .file(
            "put.yaml",
            "flow: 1\nsteps:\n  up:\n    type: s3.put\n    timeout: 5s\n    with: { bucket: backups, key: k, path: pipe }\n",
        )
        .file(
            "upload.yaml",
            "flow: 1\nsteps:\n  copy:\n    type: ssh.upload\n    with: { host: 127.0.0.1, src: pipe, dest: /tmp/x }\n",
        );
    let dir = flow.dir.path().to_path_buf();
    mkfifo(&dir.join("pipe"));
    let env = moto.env();
    let expect = |args: &[&str], code: i32, says: &str| {
        let (got, text) = within(&dir, args, &env, 30);
        assert_eq!(got, code, "flow {args:?}:\n{text}");
        assert!(
            text.contains(says),
            "flow {args:?} does not say {says:?}:\n{text}"
        );
    };
    expect(
        &["validate", "pipe"],
        2,
        "cannot read playbook pipe: it is a FIFO, not a regular file",
    );
    expect(
        &["apply", "pipe", "--yes"],
        2,
        "cannot read playbook pipe: it is a FIFO, not a regular file",
    );
    expect(
        &["validate", "/dev/zero"],
        2,
        "cannot read playbook /dev/zero: it is a character device, not a regular file",
    );
    mkfifo(&dir.join("params.yaml"));
    expect(
        &["plan", "uses_params.yaml", "--params-file", "params.yaml"],
        2,
        "cannot read params file params.yaml: it is a FIFO, not a regular file",
    );
    expect(
        &["plan", "deploy.yaml", "--offline"],
        1,
        "cannot read template",
    );
    expect(
        &["apply", "put.yaml", "--yes"],
        1,
        "cannot read pipe: it is a FIFO, not a regular file",
    );
    expect(
        &["plan", "upload.yaml"],
        1,
        "pipe is a FIFO: only files, folders and symlinks are copied",
    );
    assert!(moto.keys("backups").is_empty());
}
