//! AWS errors that are not AWS's: an endpoint that answers HTML (moto's page for a call it
//! does not implement), one that does not answer at all, and a call IAM denies — each one
//! clear line naming the service and operation.

use crate::common::Flow;
use crate::common::cfn_stub::{self, Answer};
use crate::common::moto::Moto;
use std::io::{Read, Write};
use std::net::TcpListener;

/// A server on 127.0.0.1 that answers every request with moto's HTML 500 page.
fn html_500_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buffer = [0u8; 65536];
            let _ = stream.read(&mut buffer);
            let body = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n";
            let _ = write!(
                stream,
                "HTTP/1.1 500 INTERNAL SERVER ERROR\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn listing(endpoint: &str) -> String {
    format!(
        "flow: 1\ndefaults:\n  aws: {{ region: us-east-1, endpoint_url: \"{endpoint}\" }}\nsteps:\n  found:\n    type: ec2.find\n    with: {{}}\n"
    )
}

fn dummy_credentials(flow: Flow) -> Flow {
    flow.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

#[test]
fn an_html_500_and_a_closed_port_are_each_one_line() {
    let port = html_500_server();
    let out =
        dummy_credentials(Flow::new().playbook(&listing(&format!("http://127.0.0.1:{port}"))))
            .args(&["apply", "playbook.yaml", "--yes"])
            .run();
    out.code(1)
        .stdout_has(
            "ec2 DescribeInstances failed: the endpoint answered HTTP 500 without an AWS error",
        )
        .stdout_lacks("<html");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let out =
        dummy_credentials(Flow::new().playbook(&listing(&format!("http://127.0.0.1:{port}"))))
            .args(&["apply", "playbook.yaml", "--yes"])
            .run();
    out.code(1)
        .stdout_has("ec2 DescribeInstances could not reach AWS");
}

/// No region anywhere (no block, no AWS_REGION, no profile): one line that says where to set it.
#[test]
fn a_missing_region_says_where_to_set_it() {
    let home = tempfile::tempdir().expect("home");
    let out = dummy_credentials(
        Flow::new().playbook("flow: 1\nsteps:\n  found:\n    type: ec2.find\n    with: {}\n"),
    )
    .env("HOME", home.path().to_str().expect("utf-8"))
    .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    .args(&["plan", "playbook.yaml"])
    .run();
    out.code(1).stdout_has(
        "ec2 DescribeInstances: no AWS region: set `region` in the AWS block, or AWS_REGION",
    );
}

/// moto's IAM mode: every call is checked against IAM, and this user may only list S3.
#[test]
fn a_call_iam_denies_names_the_service_operation_and_code() {
    let moto = Moto::start_enforcing();
    let keys = moto.user(
        "reader",
        &serde_json::json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*" }] }),
    );
    moto.run_flow_as(&keys);
    let out = moto
        .reach(
            Flow::new().playbook("flow: 1\nsteps:\n  found:\n    type: ec2.find\n    with: {}\n"),
        )
        .args(&["apply", "playbook.yaml", "--yes"])
        .run();
    out.code(1)
        .stdout_has("ec2 DescribeInstances failed:")
        .stdout_has("not authorized")
        .stdout_has("it needs IAM permission `ec2:DescribeInstances`")
        .stdout_lacks(&keys.secret);
}

/// CloudFormation as it answers a deploy that rolled back — moto never fails a resource, so
/// these few answers stand in for AWS: the stack settles UPDATE_ROLLBACK_COMPLETE and its
/// events name the resource that failed and why.
fn rolled_back_cloudformation() -> u16 {
    cfn_stub::serve(|action, executed| {
        let now = jiff::Timestamp::now().to_string();
        let stack = cfn_stub::STACK;
        Answer::Result(match action {
            "DescribeStacks" => format!(
                "<Stacks><member>{stack}<StackStatus>{}</StackStatus></member></Stacks>",
                if executed { "UPDATE_ROLLBACK_COMPLETE" } else { "UPDATE_COMPLETE" }
            ),
            "CreateChangeSet" => "<Id>arn:aws:cloudformation:us-east-1:123456789012:changeSet/c/1</Id>".into(),
            "DescribeChangeSet" => "<ChangeSetName>c</ChangeSetName><Status>CREATE_COMPLETE</Status><ExecutionStatus>AVAILABLE</ExecutionStatus><Changes></Changes>".into(),
            "DescribeStackEvents" => format!(
                "<StackEvents><member>{stack}<EventId>2</EventId><LogicalResourceId>app</LogicalResourceId><ResourceType>AWS::CloudFormation::Stack</ResourceType><Timestamp>{now}</Timestamp><ResourceStatus>UPDATE_ROLLBACK_COMPLETE</ResourceStatus></member><member>{stack}<EventId>1</EventId><LogicalResourceId>Cache</LogicalResourceId><ResourceType>AWS::ElastiCache::ReplicationGroup</ResourceType><Timestamp>{now}</Timestamp><ResourceStatus>UPDATE_FAILED</ResourceStatus><ResourceStatusReason>AuthToken must be at least 16 characters</ResourceStatusReason></member></StackEvents>"
            ),
            _ => String::new(),
        })
    })
}

#[test]
fn a_deploy_that_rolled_back_names_the_resource_that_failed_and_why() {
    let port = rolled_back_cloudformation();
    let out = dummy_credentials(
        Flow::new()
            .file("stack.json", "{ \"Resources\": {} }")
            .playbook(&format!(
                "flow: 1\ndefaults:\n  aws: {{ region: us-east-1, endpoint_url: \"http://127.0.0.1:{port}\" }}\nsteps:\n  data:\n    type: cfn.deploy\n    with: {{ stack_name: app, template: stack.json }}\n"
            )),
    )
    .args(&["apply", "playbook.yaml", "--yes"])
    .run();
    out.code(1).stdout_has(
        "stack app ended UPDATE_ROLLBACK_COMPLETE: Cache (AWS::ElastiCache::ReplicationGroup) UPDATE_FAILED: AuthToken must be at least 16 characters",
    );
}

/// Inputs the SDK would stop on (an empty endpoint, a key longer than S3 takes) and a
/// launch of zero instances are each one clear line, and nothing is launched.
#[test]
fn empty_endpoints_overlong_keys_and_a_zero_count_are_refused_clearly() {
    let moto = Moto::start();
    moto.create_bucket("backups");
    // An empty `endpoint_url` is "not set": AWS_ENDPOINT_URL (moto) is used.
    let (out, _) = moto.apply(
        Flow::new().playbook(
            "flow: 1\nsteps:\n  list:\n    type: s3.list\n    with: { bucket: backups, endpoint_url: \"\" }\n",
        ),
        0,
    );
    out.stdout_lacks("panicked");
    // An empty AWS_ENDPOINT_URL too: the block's endpoint is used.
    let out = moto
        .reach(Flow::new().playbook(&format!(
            "flow: 1\ndefaults:\n  aws: {{ endpoint_url: \"{}\" }}\nsteps:\n  list:\n    type: s3.list\n    with: {{ bucket: backups }}\n",
            moto.endpoint()
        )))
        .env("AWS_ENDPOINT_URL", "")
        .args(&["apply", "playbook.yaml", "--yes"])
        .run();
    out.code(0);
    let long = "k".repeat(2000);
    let (out, _) = moto.apply(
        Flow::new().file("f", "x").playbook(&format!(
            "flow: 1\nsteps:\n  up:\n    type: s3.put\n    continue_on_error: true\n    with: {{ bucket: backups, key: {long}, path: f }}\n  after:\n    type: log\n    needs: [up]\n    with: {{ message: still here }}\n"
        )),
        0,
    );
    out.stdout_has("a key of 2000 bytes (starting `kkkk")
        .stdout_has("S3 keys have at most 1024")
        .stdout_has("still here");
    let template = moto.launch_template("redis");
    let plan = moto
        .reach(Flow::new().playbook(&format!(
            "flow: 1\nsteps:\n  launch:\n    type: ec2.run\n    with: {{ launch_template: {{ id: {template} }}, count: 0 }}\n"
        )))
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(1)
        .stdout_has("`count` is 0: give 1 to 100 instances");
    let (out, _) = moto.apply(
        Flow::new().playbook(&format!(
            "flow: 1\nsteps:\n  launch:\n    type: ec2.run\n    with: {{ launch_template: {{ id: {template} }}, count: 0 }}\n"
        )),
        1,
    );
    out.stdout_has("`count` is 0");
    assert_eq!(moto.instances().as_array().map(Vec::len), Some(0));
}
