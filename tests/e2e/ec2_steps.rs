//! The EC2 step types against a real `moto_server`, with the real SDK clients: what a user
//! sees, and what moto holds afterwards (instances, their tags, groups and states).

use crate::common::Flow;
use crate::common::moto::{Moto, outputs};
use serde_json::Value;

fn security_group(moto: &Moto) -> String {
    moto.boto("print(ec2.create_security_group(GroupName='redis', Description='redis')['GroupId'])")
}

fn by_id<'a>(instances: &'a Value, id: &str) -> &'a Value {
    instances
        .as_array()
        .and_then(|all| all.iter().find(|i| i["id"] == id))
        .unwrap_or_else(|| panic!("no instance {id} in {instances:#}"))
}

#[test]
fn an_instance_launches_from_a_template_tagged_and_is_found_stopped_and_terminated() {
    let moto = Moto::start();
    let template = moto.launch_template("redis-restore");
    let group = security_group(&moto);
    let playbook = format!(
        "flow: 1
steps:
  launch:
    type: ec2.run
    with:
      launch_template: {{ id: {template} }}
      security_group_ids: [{group}]
      tags: {{ Name: redis-restore, Snapshot: daily/2026-12-01.rdb }}
  found:
    type: ec2.find
    needs: [launch]
    with:
      filters: {{ \"tag:Name\": redis-restore }}
  stop:
    type: ec2.stop
    with: {{ instance_ids: \"{{{{ steps.found.instance_ids }}}}\" }}
  gone:
    type: ec2.terminate
    needs: [stop]
    with: {{ instance_ids: \"{{{{ steps.launch.instance_id }}}}\" }}
"
    );
    let (out, events) = moto.apply(Flow::new().playbook(&playbook), 0);
    let launched = outputs(&events, "launch");
    let id = launched["instance_id"]
        .as_str()
        .expect("instance id")
        .to_string();
    assert_eq!(launched["state"], "running");
    assert_eq!(launched["launched"], true);
    assert!(launched["private_ip"].is_string(), "{launched:#}");
    assert_eq!(outputs(&events, "found")["count"], 1);
    assert_eq!(outputs(&events, "found")["instance_ids"][0], id.as_str());
    assert_eq!(outputs(&events, "stop")["states"][&id], "stopped");
    assert_eq!(outputs(&events, "gone")["states"][&id], "terminated");
    // The table of the find, as the operator reads it.
    out.stdout_has("redis-restore");

    let instances = moto.instances();
    assert_eq!(instances.as_array().map(Vec::len), Some(1));
    let instance = by_id(&instances, &id);
    assert_eq!(instance["state"], "terminated");
    assert_eq!(instance["type"], "t3.small");
    assert_eq!(instance["tags"]["Snapshot"], "daily/2026-12-01.rdb");
    assert_eq!(instance["tags"]["flow:step"], "launch");
    assert!(instance["tags"]["flow:run"].is_string());
    assert_eq!(instance["groups"][0], group.as_str());
}

/// moto ignores ClientToken: the `flow:run`/`flow:step` tags are what a retry finds. The
/// first attempt launches, `until` sends it round again, the second finds its instance.
#[test]
fn a_retried_launch_finds_its_instance_and_launches_exactly_one() {
    let moto = Moto::start();
    moto.launch_template("redis-restore");
    let playbook = "flow: 1
steps:
  launch:
    type: ec2.run
    retry: { attempts: 3, delay: 0s, until: result.launched == false }
    with:
      launch_template: { name: redis-restore, version: 1 }
      tags: { Name: once }
";
    let (out, events) = moto.apply(Flow::new().playbook(playbook), 0);
    out.stdout_has("already launched by an earlier attempt of this step");
    let instances = moto.instances();
    assert_eq!(
        instances.as_array().map(Vec::len),
        Some(1),
        "one instance, not two: {instances:#}"
    );
    assert_eq!(
        outputs(&events, "launch")["instance_id"],
        instances[0]["id"]
    );
}

#[test]
fn the_plan_shows_the_launch_and_what_would_stop_and_launches_nothing() {
    let moto = Moto::start();
    moto.launch_template("redis-restore");
    let running = moto.boto(
        "image = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         r = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[{'ResourceType': 'instance', 'Tags': [{'Key': 'Name', 'Value': 'old-redis'}]}])\n\
         print(r['Instances'][0]['InstanceId'])",
    );
    let playbook = "flow: 1
steps:
  old:
    type: ec2.find
    with:
      filters: { \"tag:Name\": old-redis }
  stop_old:
    type: ec2.stop
    with: { instance_ids: \"{{ steps.old.instance_ids }}\" }
  launch:
    type: ec2.run
    with:
      launch_template: { name: redis-restore }
      instance_type: t3.large
      tags: { Name: new-redis, Snapshot: \"{{ steps.old.count }}\" }
";
    let plan = moto
        .reach(Flow::new().playbook(playbook))
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(0)
        .stdout_has("launch 1 instance from launch template redis-restore (version $Default)")
        .stdout_has("instance type: t3.large")
        .stdout_has("tags: Name=new-redis, Snapshot=1")
        .stdout_has(&format!("stop {running}"))
        .stdout_has("old-redis");
    let instances = moto.instances();
    assert_eq!(instances.as_array().map(Vec::len), Some(1));
    assert_eq!(instances[0]["state"], "running");
}

#[test]
fn ec2_errors_are_one_clear_line() {
    let moto = Moto::start();
    let (out, _) = moto.apply(
        Flow::new().playbook(
            "flow: 1\nsteps:\n  launch:\n    type: ec2.run\n    with:\n      launch_template: { id: lt-0000000000000000 }\n",
        ),
        1,
    );
    out.stdout_has("ec2 RunInstances failed:");
    let (out, _) = moto.apply(
        Flow::new().playbook(
            "flow: 1\nsteps:\n  stop:\n    type: ec2.stop\n    with: { instance_ids: [i-0123456789abcdef0] }\n",
        ),
        1,
    );
    out.stdout_has("ec2 StopInstances failed: InvalidInstanceID.NotFound");
    let (out, _) = moto.apply(
        Flow::new().playbook(
            "flow: 1\nsteps:\n  launch:\n    type: ec2.run\n    with:\n      launch_template: { id: lt-1, name: both }\n",
        ),
        1,
    );
    out.stdout_has("`launch_template` takes `id` or `name`, not both");
}

#[test]
fn waiting_for_a_terminated_instance_to_run_fails_at_once_naming_its_state() {
    let moto = Moto::start();
    let id = moto.boto(
        "image = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         i = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)['Instances'][0]['InstanceId']\n\
         ec2.terminate_instances(InstanceIds=[i])\n\
         print(i)",
    );
    let (out, _) = moto.apply(
        Flow::new().playbook(&format!(
            "flow: 1\nsteps:\n  up:\n    type: ec2.wait\n    with: {{ instance_ids: {id}, state: running, timeout: 10m }}\n"
        )),
        1,
    );
    out.stdout_has(&format!("{id} is terminated"))
        .stdout_has("it will never be running");
}

/// A launch that failed after launching (here: its `until` never held), resumed: the same
/// run id and step find the instance by its tags, and there is still one instance.
#[test]
fn a_resumed_launch_finds_the_instance_of_the_failed_run_and_launches_no_second() {
    let moto = Moto::start();
    moto.launch_template("redis-restore");
    let dir = tempfile::tempdir().expect("dir");
    let playbook = "flow: 1
steps:
  launch:
    type: ec2.run
    retry: { attempts: 1, until: result.launched == false }
    with:
      launch_template: { name: redis-restore }
      tags: { Name: resumed }
";
    crate::common::run::write(dir.path(), "playbook.yaml", playbook);
    let env: Vec<(String, String)> = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    crate::common::run::flow(dir.path(), &["apply", "playbook.yaml"], &env).code(1);
    assert_eq!(moto.instances().as_array().map(Vec::len), Some(1));
    let run = crate::common::run::only_run(&dir.path().join(".flow"));
    let id = run
        .file_name()
        .expect("run id")
        .to_string_lossy()
        .into_owned();
    crate::common::run::flow(dir.path(), &["apply", "--resume", &id], &env)
        .code(0)
        .stdout_has("already launched by an earlier attempt of this step");
    let instances = moto.instances();
    assert_eq!(
        instances.as_array().map(Vec::len),
        Some(1),
        "one instance, not two: {instances:#}"
    );
    assert_eq!(instances[0]["tags"]["flow:run"], id.as_str());
}

/// `security_group_ids` at launch replace a launch template's groups (as on AWS, and in
/// moto); `ec2.attach_security_groups` adds a group beside them — ModifyInstanceAttribute with
/// the union — and a second run finds nothing to change.
#[test]
fn a_security_group_is_attached_beside_the_template_groups_not_substituted() {
    let moto = Moto::start();
    let (template, own, named) = moto.launch_template_with_group("with-group");
    let playbook = format!(
        "flow: 1
steps:
  substituted:
    type: ec2.run
    with: {{ launch_template: {{ id: {template} }}, security_group_ids: [{named}] }}
  launch:
    type: ec2.run
    with: {{ launch_template: {{ id: {template} }} }}
  attach:
    type: ec2.attach_security_groups
    with:
      instance_ids: [\"{{{{ steps.launch.instance_id }}}}\"]
      security_group_ids: [{named}]
  again:
    type: ec2.attach_security_groups
    with:
      instance_ids: [\"{{{{ steps.launch.instance_id }}}}\"]
      security_group_ids: [{named}, {own}]
"
    );
    let (out, events) = moto.apply(Flow::new().playbook(&playbook), 0);
    let id = outputs(&events, "launch")["instance_id"]
        .as_str()
        .expect("id")
        .to_string();
    let substituted = outputs(&events, "substituted")["instance_id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(outputs(&events, "attach")["changed"], true);
    assert_eq!(outputs(&events, "again")["changed"], false);
    assert_eq!(
        outputs(&events, "attach")["groups"][&id],
        serde_json::json!([own, named])
    );
    out.stdout_has(&format!("{id}: security groups {own}, {named}"))
        .stdout_has(&format!("{id}: has them already ({own}, {named})"));
    let instances = moto.instances();
    assert_eq!(
        by_id(&instances, &id)["groups"],
        serde_json::json!([own, named])
    );
    // What AWS does with groups given at launch: the template's are gone.
    assert_eq!(
        by_id(&instances, &substituted)["groups"],
        serde_json::json!([named])
    );

    // The plan, with the instance known: each instance's groups now and after.
    let plan = moto
        .reach(Flow::new().playbook(&format!(
            "flow: 1\nsteps:\n  attach:\n    type: ec2.attach_security_groups\n    with: {{ instance_ids: [{substituted}], security_group_ids: [{own}] }}\n"
        )))
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(0)
        .stdout_has(&format!(
            "attach security group {own} to {substituted} (beside the groups it has)"
        ))
        .stdout_has(&format!("{substituted}: {named} → {named}, {own}"));
}
