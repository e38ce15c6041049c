//! CloudFormation and CloudWatch Logs step types against a real `moto_server`: stacks
//! created and updated through change sets, no-change deploys, outputs, plans that say
//! create or update, and log searches.
//!
//! moto does not compute Outputs for a stack changed through a change set (MOTO.md): the
//! tests that read outputs create their stack with CreateStack first.

use crate::common::Flow;
use crate::common::moto::{Moto, outputs};

/// A template whose one resource is an SSM parameter named after the stack, holding `Value`.
const TEMPLATE: &str = r#"{
  "Parameters": { "Value": { "Type": "String", "Default": "one" } },
  "Resources": {
    "Setting": {
      "Type": "AWS::SSM::Parameter",
      "Properties": { "Name": { "Fn::Sub": "/${AWS::StackName}/setting" }, "Type": "String", "Value": { "Ref": "Value" } }
    }
  },
  "Outputs": { "Setting": { "Value": { "Ref": "Value" } } }
}
"#;

fn deploy(stack: &str, value: &str) -> String {
    format!(
        "flow: 1\nsteps:\n  stack:\n    type: cfn.deploy\n    with:\n      stack_name: {stack}\n      template: stack.json\n      parameters: {{ Value: {value} }}\n"
    )
}

fn parameter(moto: &Moto, name: &str) -> String {
    moto.boto(&format!(
        "print(ssm.get_parameter(Name='{name}')['Parameter']['Value'])"
    ))
}

fn stack_status(moto: &Moto, stack: &str) -> String {
    moto.boto(&format!(
        "print(cfn.describe_stacks(StackName='{stack}')['Stacks'][0]['StackStatus'])"
    ))
}

#[test]
fn a_stack_is_created_then_updated_then_left_alone_when_nothing_changed() {
    let moto = Moto::start();
    let flow = || Flow::new().file("stack.json", TEMPLATE);

    let plan = moto
        .reach(flow().playbook(&deploy("app", "two")))
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(0)
        .stdout_has("create stack app from stack.json")
        .stdout_has("parameter Value = two");

    let (_, events) = moto.apply(flow().playbook(&deploy("app", "two")), 0);
    assert_eq!(outputs(&events, "stack")["changed"], true);
    assert_eq!(outputs(&events, "stack")["status"], "CREATE_COMPLETE");
    assert_eq!(parameter(&moto, "/app/setting"), "two");

    let plan = moto
        .reach(flow().playbook(&deploy("app", "three")))
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(0)
        .stdout_has("update stack app from stack.json (now CREATE_COMPLETE)")
        .stdout_has("parameter Value: two → three")
        .stdout_has("template unchanged");

    let (_, events) = moto.apply(flow().playbook(&deploy("app", "three")), 0);
    assert_eq!(outputs(&events, "stack")["changed"], true);
    assert_eq!(outputs(&events, "stack")["status"], "UPDATE_COMPLETE");
    assert_eq!(parameter(&moto, "/app/setting"), "three");

    let (out, events) = moto.apply(flow().playbook(&deploy("app", "three")), 0);
    out.stdout_has("stack app: no changes");
    assert_eq!(outputs(&events, "stack")["changed"], false);
    assert_eq!(stack_status(&moto, "app"), "UPDATE_COMPLETE");
}

#[test]
fn outputs_are_read_from_a_stack_and_a_no_change_deploy_returns_them() {
    let moto = Moto::start();
    moto.boto(&format!(
        "cfn.create_stack(StackName='network', TemplateBody='''{TEMPLATE}''', Parameters=[{{'ParameterKey': 'Value', 'ParameterValue': 'redis.internal:6379'}}])"
    ));
    let playbook = "flow: 1
steps:
  read:
    type: cfn.outputs
    with: { stack_name: network }
  same:
    type: cfn.deploy
    with:
      stack_name: network
      template: stack.json
      parameters: { Value: \"{{ steps.read.outputs.Setting }}\" }
";
    let (out, events) = moto.apply(
        Flow::new().file("stack.json", TEMPLATE).playbook(playbook),
        0,
    );
    assert_eq!(
        outputs(&events, "read")["outputs"]["Setting"],
        "redis.internal:6379"
    );
    assert_eq!(outputs(&events, "read")["status"], "CREATE_COMPLETE");
    assert_eq!(outputs(&events, "same")["changed"], false);
    assert_eq!(
        outputs(&events, "same")["outputs"]["Setting"],
        "redis.internal:6379"
    );
    out.stdout_has("redis.internal:6379");
}

#[test]
fn a_missing_stack_a_missing_template_and_a_template_cloudformation_refuses_are_clear() {
    let moto = Moto::start();
    let (out, _) = moto.apply(
        Flow::new().playbook(
            "flow: 1\nsteps:\n  read:\n    type: cfn.outputs\n    with: { stack_name: nowhere }\n",
        ),
        1,
    );
    out.stdout_has("stack nowhere does not exist");

    let plan = moto
        .reach(Flow::new().playbook(&deploy("app", "x")))
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(1).stdout_has("cannot read template stack.json");

    let (out, _) = moto.apply(
        Flow::new()
            .file(
                "stack.json",
                "{ \"Parameters\": { \"Value\": { \"Type\": \"String\" } }, \"Resources\": 42 }",
            )
            .playbook(&deploy("broken", "x")),
        1,
    );
    out.stdout_has("cloudformation CreateChangeSet");
}

#[test]
fn offline_plans_of_stacks_and_instances_need_no_credentials() {
    let home = tempfile::tempdir().expect("home");
    let playbook = "flow: 1
defaults:
  aws: { region: us-east-1, endpoint_url: \"http://127.0.0.1:9\" }
steps:
  found:
    type: ec2.find
    with: { filters: { \"tag:Role\": redis } }
  stack:
    type: cfn.deploy
    with: { stack_name: app, template: stack.json, parameters: { Value: x } }
  launch:
    type: ec2.run
    with: { launch_template: { name: redis } }
  stop:
    type: ec2.stop
    with: { instance_ids: \"{{ steps.found.instance_ids }}\" }
  logs:
    type: logs.search
    with: { log_group: /app, filter_pattern: ERROR }
";
    let plan = Flow::new()
        .file("stack.json", TEMPLATE)
        .playbook(playbook)
        .env("HOME", home.path().to_str().expect("utf-8"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(&["plan", "playbook.yaml", "--offline"])
        .run();
    plan.code(0)
        .stdout_has("create or update stack app from stack.json")
        .stdout_has("launch 1 instance from launch template redis");
}

#[test]
fn a_log_search_finds_the_matching_events_since_a_moment() {
    let moto = Moto::start();
    moto.boto(
        "logs.create_log_group(logGroupName='/blot/app')\n\
         logs.create_log_stream(logGroupName='/blot/app', logStreamName='web-1')\n\
         now = int(time.time() * 1000)\n\
         logs.put_log_events(logGroupName='/blot/app', logStreamName='web-1', logEvents=[\n\
         \x20 {'timestamp': now - 7200000, 'message': 'connected to redis old-host'},\n\
         \x20 {'timestamp': now - 60000, 'message': 'connected to redis new-host'},\n\
         \x20 {'timestamp': now - 30000, 'message': 'request served'}])",
    );
    let (out, events) = moto.apply(
        Flow::new().playbook(
            "flow: 1\nsteps:\n  search:\n    type: logs.search\n    with: { log_group: /blot/app, filter_pattern: connected, since: 30m }\n",
        ),
        0,
    );
    let found = outputs(&events, "search");
    assert_eq!(found["count"], 1, "{found:#}");
    assert_eq!(found["events"][0]["message"], "connected to redis new-host");
    assert_eq!(found["events"][0]["stream"], "web-1");
    out.stdout_has("connected to redis new-host")
        .stdout_lacks("old-host");

    let (out, _) = moto.apply(
        Flow::new().playbook(
            "flow: 1\nsteps:\n  search:\n    type: logs.search\n    with: { log_group: /nowhere }\n",
        ),
        1,
    );
    out.stdout_has("logs FilterLogEvents failed: ResourceNotFoundException");
}

/// Parameters CloudFormation would refuse are said in the plan, before anything is sent —
/// offline too — and the outputs of a stack the same playbook creates are read after it.
#[test]
fn undeclared_and_missing_parameters_are_refused_and_outputs_of_a_new_stack_wait_for_it() {
    let needs = r#"{ "Parameters": { "Value": { "Type": "String" }, "Size": { "Type": "Number", "Default": 1 } },
  "Resources": { "Setting": { "Type": "AWS::SSM::Parameter", "Properties": { "Name": "/new/setting", "Type": "String", "Value": { "Ref": "Value" } } } } }"#;
    let playbook = |parameters: &str| {
        format!(
            "flow: 1\nsteps:\n  stack:\n    type: cfn.deploy\n    with: {{ stack_name: new, template: stack.json, parameters: {parameters} }}\n  outputs:\n    type: cfn.outputs\n    with: {{ stack_name: new }}\n"
        )
    };
    Flow::new()
        .file("stack.json", needs)
        .playbook(&playbook("{ Value: a, Sise: 2 }"))
        .args(&["plan", "--offline", "playbook.yaml"])
        .run()
        .code(1)
        .stdout_has("parameter `Sise` is not declared in template stack.json (it declares: Value, Size); did you mean `Size`?");
    Flow::new()
        .file("stack.json", needs)
        .playbook(&playbook("{ Size: 2 }"))
        .args(&["plan", "--offline", "playbook.yaml"])
        .run()
        .code(1)
        .stdout_has(
            "template stack.json needs parameter `Value` (no Default): give it under `parameters`",
        );

    let moto = Moto::start();
    let plan = moto
        .reach(
            Flow::new()
                .file("stack.json", needs)
                .playbook(&playbook("{ Value: a }")),
        )
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(0)
        .stdout_has("+ stack  (cfn.deploy)  create stack new from stack.json")
        .stdout_has("= outputs  (cfn.outputs)")
        .stdout_has("read during apply, after `stack` has changed things (read now: ");
}
