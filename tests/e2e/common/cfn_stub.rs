//! CloudFormation as it answers what moto cannot stage — a deploy that rolls back, a change
//! set that fails, a call IAM refuses: a server on 127.0.0.1 that answers each call by its
//! action, as the test says.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// How the stub answers one call.
pub enum Answer {
    /// The call's `<…Result>`, inside its response.
    Result(String),
    /// IAM's refusal of the call (HTTP 403, AccessDenied).
    Denied,
}

/// A stack named `app`, as DescribeStacks and DescribeStackEvents name it.
pub const STACK: &str = "<StackName>app</StackName><StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/app/1</StackId><CreationTime>2026-12-01T00:00:00Z</CreationTime>";

/// Serves `answer(action, executed)` — `executed` is whether ExecuteChangeSet was called yet
/// — until the test ends: its port.
pub fn serve(answer: impl Fn(&str, bool) -> Answer + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut executed = false;
        for mut stream in listener.incoming().flatten() {
            let request = read_message(&mut stream)
                .map(|(_, body)| body)
                .unwrap_or_default();
            let action = request
                .split('&')
                .find_map(|p| p.strip_prefix("Action="))
                .unwrap_or_default()
                .to_string();
            let (status, body) = match answer(&action, executed) {
                Answer::Result(result) => (
                    "200 OK",
                    format!(
                        "<{action}Response xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></{action}Response>"
                    ),
                ),
                Answer::Denied => (
                    "403 Forbidden",
                    format!(
                        "<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/runner is not authorized to perform: cloudformation:{action}</Message></Error><RequestId>req-1</RequestId></ErrorResponse>"
                    ),
                ),
            };
            executed |= action == "ExecuteChangeSet";
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// One HTTP message from `stream`: its head and its body, read as far as Content-Length
/// says (a peer that keeps the connection open is not waited for).
pub fn read_message(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let read = stream.read(&mut buffer).ok()?;
        data.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&data);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .and_then(|v| v.trim().parse::<usize>().ok())
            });
            if read == 0 || body.len() >= length.unwrap_or(0) {
                return Some((head.to_string(), body.to_string()));
            }
        }
        if read == 0 {
            return None;
        }
    }
}
