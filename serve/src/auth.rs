//! The token that guards a server reachable from other hosts: checked on every request,
//! from an `Authorization: Bearer` header, the cookie a first `?token=` sets (so the links
//! of the pages keep working), or that `?token=` itself.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

const COOKIE: &str = "flow_serve_token";

/// The token requests must carry; `None` lets every request in (loopback, no token given).
#[derive(Clone, Default)]
pub struct Token(pub Option<Arc<str>>);

/// A fresh token: 128 bits from the system's random source, as hex.
pub fn generate() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Equal without telling how much of a guess was right by how long the answer took.
fn same(given: &str, token: &str) -> bool {
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// Why a token given with `--token` cannot work: it travels in a header, a cookie and a
/// query, so it must be plain visible ASCII without `;`, `,`, `&` or spaces, and long enough
/// not to be guessed.
pub fn usable(token: &str) -> Result<(), String> {
    if token.len() < 12 {
        return Err(format!(
            "it has {} characters; use at least 12",
            token.len()
        ));
    }
    match token.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '='))
    }) {
        Some(c) => Err(format!(
            "{c:?} cannot be in it (letters, digits and - _ . ~ + / = can)"
        )),
        None => Ok(()),
    }
}

/// On loopback without a token, the `Host` a browser sends must name this machine: a web
/// page whose name was rebound to 127.0.0.1 would otherwise read the runs (DNS rebinding).
fn local_host(request: &Request) -> bool {
    let Some(host) = request
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("?"))
    else {
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub async fn check(State(token): State<Token>, request: Request, next: Next) -> Response {
    let Some(token) = token.0 else {
        if !local_host(&request) {
            return (
                StatusCode::MISDIRECTED_REQUEST,
                "421: this flow serve answers only to 127.0.0.1 and localhost\n",
            )
                .into_response();
        }
        return next.run(request).await;
    };
    let headers = request.headers();
    // The scheme's name is case-insensitive (RFC 7235).
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, value)| value.trim());
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(&format!("{COOKIE}=")))
        .any(|value| same(value, &token));
    let query = request
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.strip_prefix("token="))
        .map(percent_decode)
        .any(|value| same(&value, &token));
    if bearer.is_some_and(|b| same(b, &token)) || cookie {
        return next.run(request).await;
    }
    if !query {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "401: this flow serve needs its token: open the URL it printed (…/?token=…) or send \
`Authorization: Bearer TOKEN`\n",
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `%41` as `A`, `+` as a space; a broken escape stays as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_a_browser_encodes_and_keeps_broken_escapes() {
        assert_eq!(percent_decode("a%2Bb+c"), "a+b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert!(same("abc", "abc"));
        assert!(!same("abd", "abc"));
        assert!(!same("ab", "abc"));
        assert!(usable("0123456789abcdef").is_ok());
        assert!(usable("short").is_err());
        assert!(usable("0123456789ab;cd").is_err());
    }
}
