//! AWS errors that are not AWS's: an endpoint that answers HTML (moto's page for a call it
//! does not implement), one that does not answer at all, and a call IAM denies — each one
//! clear line naming the service and operation.

use crate::common::Flow;
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

/// moto's IAM mode: after the first few calls (which set up a user whose policy allows only
/// S3 listing), every call is checked against IAM.
#[test]
fn a_call_iam_denies_names_the_service_operation_and_code() {
    let moto = Moto::start_with_iam(3);
    let keys = moto.boto(
        "iam = boto3.client('iam', **kw)\n\
         iam.create_user(UserName='reader')\n\
         iam.put_user_policy(UserName='reader', PolicyName='s3', PolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': 's3:ListBucket', 'Resource': '*'}]}))\n\
         key = iam.create_access_key(UserName='reader')['AccessKey']\n\
         print(key['AccessKeyId'], key['SecretAccessKey'])",
    );
    let (id, secret) = keys.split_once(' ').expect("access key");
    let out = moto
        .reach(
            Flow::new().playbook("flow: 1\nsteps:\n  found:\n    type: ec2.find\n    with: {}\n"),
        )
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .args(&["apply", "playbook.yaml", "--yes"])
        .run();
    out.code(1)
        .stdout_has("ec2 DescribeInstances failed:")
        .stdout_has("not authorized")
        .stdout_lacks(secret);
}
