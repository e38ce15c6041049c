//! A real `moto_server` (PyPI `moto[server]`) as the AWS stand-in for a test: on 127.0.0.1 at
//! a free port, stopped when dropped. The real SDK clients reach it through
//! `AWS_ENDPOINT_URL`, with dummy credentials; the instance metadata service is disabled so
//! nothing leaves the machine. A missing moto_server fails the test, saying how to install it.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    port: u16,
    /// The keys setup scripts (`boto`) use: any in moto's default mode; in its IAM mode
    /// (`start_enforcing`), the admin user's.
    admin: Keys,
    /// The keys `flow` gets (`env`): the admin's, unless a test runs it as another user.
    flow_keys: Mutex<Keys>,
    /// Whether moto checks every call against IAM (then nothing goes unsigned).
    enforcing: bool,
}

/// An access key pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Keys {
    pub id: String,
    pub secret: String,
}

impl Keys {
    fn dummy() -> Self {
        Keys {
            id: "testing".into(),
            secret: "testing".into(),
        }
    }
}

/// How many calls moto lets through unchecked in its IAM mode: those that make the admin.
const ADMIN_CALLS: u32 = 3;

fn moto_bin() -> PathBuf {
    let venv = std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cache/flow/venv/bin/moto_server"))
        .ok();
    if let Some(venv) = venv.filter(|p| p.exists()) {
        return venv;
    }
    if let Ok(found) = Command::new("sh")
        .args(["-c", "command -v moto_server"])
        .output()
        && found.status.success()
    {
        return PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
    }
    panic!(
        "moto_server is not installed: the AWS tests need it.\n\
         Install it with `python3 -m venv ~/.cache/flow/venv && ~/.cache/flow/venv/bin/pip install 'moto[server]'` (scripts/test does)."
    );
}

impl Moto {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    fn start_with(env: &[(&str, &str)]) -> Self {
        let port = super::redis::free_port();
        let child = Command::new(moto_bin())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto {
            child,
            port,
            admin: Keys::dummy(),
            flow_keys: Mutex::new(Keys::dummy()),
            enforcing: false,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while moto.http("GET", "/moto-api/").is_none() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// moto checking every call against IAM, as AWS does: the first calls (free) make an
    /// admin user allowed everything, whose keys the setup scripts then use; `flow` runs with
    /// them too until `run_flow_as` gives it a user of the test's own.
    pub fn start_enforcing() -> Self {
        let mut moto =
            Self::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", &ADMIN_CALLS.to_string())]);
        moto.enforcing = true;
        moto.make_admin();
        moto
    }

    /// A clean slate in IAM mode: no state, the free calls counted again, a new admin.
    pub fn reset_enforcing(&mut self) {
        assert!(self.enforcing, "reset_enforcing is for a moto in IAM mode");
        self.post("/moto-api/reset", "{}")
            .expect("moto resets its state");
        self.post("/moto-api/reset-auth", &ADMIN_CALLS.to_string())
            .expect("moto counts its free calls again");
        self.admin = Keys::dummy();
        self.make_admin();
    }

    fn make_admin(&mut self) {
        let keys = self.boto(
            "iam = boto3.client('iam', **kw)\n\
             iam.create_user(UserName='admin')\n\
             iam.put_user_policy(UserName='admin', PolicyName='all', PolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}]}))\n\
             key = iam.create_access_key(UserName='admin')['AccessKey']\n\
             print(key['AccessKeyId'], key['SecretAccessKey'])",
        );
        let (id, secret) = keys.split_once(' ').expect("the admin's access key");
        self.admin = Keys {
            id: id.into(),
            secret: secret.into(),
        };
        *self.flow_keys.lock().unwrap_or_else(|e| e.into_inner()) = self.admin.clone();
    }

    /// A user whose only policy is `policy` (inline; none when it has no statement, which IAM
    /// refuses): its access key.
    pub fn user(&self, name: &str, policy: &serde_json::Value) -> Keys {
        let attach = if policy["Statement"].as_array().is_some_and(|s| s.is_empty()) {
            String::new()
        } else {
            format!(
                "iam.put_user_policy(UserName='{name}', PolicyName='flow', PolicyDocument={:?})\n",
                policy.to_string()
            )
        };
        let keys = self.boto(&format!(
            "iam = boto3.client('iam', **kw)\n\
             iam.create_user(UserName='{name}')\n\
             {attach}\
             key = iam.create_access_key(UserName='{name}')['AccessKey']\n\
             print(key['AccessKeyId'], key['SecretAccessKey'])"
        ));
        let (id, secret) = keys.split_once(' ').expect("the user's access key");
        Keys {
            id: id.into(),
            secret: secret.into(),
        }
    }

    /// From now on `flow` runs with these keys.
    pub fn run_flow_as(&self, keys: &Keys) {
        *self.flow_keys.lock().unwrap_or_else(|e| e.into_inner()) = keys.clone();
    }

    /// The environment a `flow` run needs to reach this server and nothing else.
    pub fn env(&self) -> Vec<(String, String)> {
        let keys = self
            .flow_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        [
            ("AWS_ACCESS_KEY_ID", keys.id),
            ("AWS_SECRET_ACCESS_KEY", keys.secret),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// One plain HTTP request (moto accepts unsigned ones): the response body, if any answer.
    pub fn http(&self, method: &str, path: &str) -> Option<String> {
        self.request(method, path, "")
    }

    /// A POST to moto's own API, with a body.
    fn post(&self, path: &str, body: &str) -> Option<String> {
        self.request("POST", path, body)
    }

    fn request(&self, method: &str, path: &str, body: &str) -> Option<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .ok()?;
        // Only as far as Content-Length: moto does not always close when it said it would.
        let (head, body) = super::cfn_stub::read_message(&mut stream)?;
        head.starts_with("HTTP/1.1 2").then(|| body.to_string())
    }

    pub fn create_bucket(&self, bucket: &str) {
        if self.enforcing {
            // Unsigned calls are refused in IAM mode.
            self.boto(&format!("s3.create_bucket(Bucket='{bucket}')"));
            return;
        }
        self.http("PUT", &format!("/{bucket}"))
            .unwrap_or_else(|| panic!("cannot create bucket {bucket}"));
    }

    /// The keys in a bucket, as moto has them.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        if self.enforcing {
            let keys = self.boto(&format!(
                "print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket='{bucket}').get('Contents', [])]))"
            ));
            return serde_json::from_str(&keys).expect("keys as JSON");
        }
        let body = self
            .http("GET", &format!("/{bucket}?list-type=2"))
            .unwrap_or_default();
        body.split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Runs a Python snippet with `boto3` (moto's own dependency, in the same venv) bound to
    /// this server as `ec2`, `cfn`, `logs`, `ssm`, `s3`; what it prints to stdout, trimmed.
    /// For setting up what a test needs and for reading the state afterwards.
    pub fn boto(&self, script: &str) -> String {
        let bin = moto_bin();
        let python = bin
            .parent()
            .map(|dir| dir.join("python"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("python3"));
        let prelude = format!(
            "import boto3, json, time\n\
             kw = dict(endpoint_url='{}', region_name='us-east-1', aws_access_key_id='{}', aws_secret_access_key='{}')\n\
             ec2, cfn, logs, ssm, s3 = (boto3.client(s, **kw) for s in ('ec2', 'cloudformation', 'logs', 'ssm', 's3'))\n",
            self.endpoint(),
            self.admin.id,
            self.admin.secret
        );
        let out = Command::new(python)
            .arg("-c")
            .arg(format!("{prelude}{script}"))
            .output()
            .expect("run python with boto3");
        assert!(
            out.status.success(),
            "boto3 script failed:\n{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A launch template (of one of moto's AMIs, `t3.small`) named `name`: its id.
    pub fn launch_template(&self, name: &str) -> String {
        self.boto(&format!(
            "image = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
             lt = ec2.create_launch_template(LaunchTemplateName='{name}', LaunchTemplateData={{'ImageId': image, 'InstanceType': 't3.small'}})\n\
             print(lt['LaunchTemplate']['LaunchTemplateId'])"
        ))
    }

    /// A launch template named `name` with a security group of its own, and a second group
    /// to attach beside it: (template id, the template's group, the second group).
    pub fn launch_template_with_group(&self, name: &str) -> (String, String, String) {
        let ids = self.boto(&format!(
            "image = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
             own = ec2.create_security_group(GroupName='{name}-template', Description='the template own')['GroupId']\n\
             other = ec2.create_security_group(GroupName='{name}', Description='attached beside')['GroupId']\n\
             lt = ec2.create_launch_template(LaunchTemplateName='{name}', LaunchTemplateData={{'ImageId': image, 'InstanceType': 't3.small', 'SecurityGroupIds': [own]}})\n\
             print(lt['LaunchTemplate']['LaunchTemplateId'], own, other)"
        ));
        let ids: Vec<String> = ids.split(' ').map(str::to_string).collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        (ids[0].clone(), ids[1].clone(), ids[2].clone())
    }

    /// The instances moto has (every state), as JSON: `[{id, state, type, tags, groups}]`.
    pub fn instances(&self) -> serde_json::Value {
        let text = self.boto(
            "out = []\n\
             for r in ec2.describe_instances()['Reservations']:\n\
             \x20   for i in r['Instances']:\n\
             \x20       out.append({'id': i['InstanceId'], 'state': i['State']['Name'], 'type': i['InstanceType'], 'tags': {t['Key']: t['Value'] for t in i.get('Tags', [])}, 'groups': [g['GroupId'] for g in i.get('SecurityGroups', [])]})\n\
             print(json.dumps(out))",
        );
        serde_json::from_str(&text).expect("instances as JSON")
    }
}

impl Moto {
    /// `flow` with the environment that reaches this server.
    pub fn reach(&self, flow: super::Flow) -> super::Flow {
        self.env().iter().fold(flow, |flow, (k, v)| flow.env(k, v))
    }

    /// `flow apply playbook.yaml --yes --output json` against this server, expecting exit
    /// `code`: the outcome and its events.
    pub fn apply(&self, flow: super::Flow, code: i32) -> (super::Outcome, Vec<serde_json::Value>) {
        let out = self
            .reach(flow)
            .args(&["apply", "playbook.yaml", "--yes", "--output", "json"])
            .run();
        out.code(code);
        let events = out.events();
        (out, events)
    }
}

/// The outputs a step finished with (not an element's).
pub fn outputs<'a>(events: &'a [serde_json::Value], step: &str) -> &'a serde_json::Value {
    &events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == step && e.get("element").is_none())
        .unwrap_or_else(|| panic!("no step_finished for `{step}` in {events:#?}"))["outputs"]
}
