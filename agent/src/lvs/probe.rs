//! The checks themselves: TCP_CHECK connects, HTTP_GET fetches each url and
//! judges its status code and body digest, MISC_CHECK runs a program and
//! reads its exit code. Each probe is bounded by its timeout, so a black-
//! holed server costs one timeout, never a stuck task.
//!
//! HTTP_GET (and SSL_GET, the same over TLS: [`super::tls`]) speaks
//! HTTP/1.0 as keepalived's checker does (one request per
//! connection, the server closes): `GET PATH HTTP/1.0`, a Host header
//! (`virtualhost`, else ADDRESS:PORT) and keepalived's User-Agent; the
//! `digest` is the MD5 of the body, as `genhash` prints it. Without
//! `status_code` any 2xx passes.

use std::net::SocketAddr;
use std::time::Duration;

use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::checker::Outcome;
use super::plan::Probe;
use crate::config::HttpUrl;
use crate::notify::{self, RunAs, split_command};

/// The most of a response we read: enough for a health page.
const MAX_RESPONSE: u64 = 1 << 20;

/// Runs `probe` once. `run_as` is who MISC_CHECK programs run as.
pub async fn run(probe: &Probe, run_as: Option<RunAs>) -> Outcome {
    match probe {
        Probe::Tcp {
            target,
            bind,
            timeout,
        } => match connect(*target, *bind, *timeout).await {
            Ok(_) => Outcome::Pass,
            Err(why) => Outcome::Fail(why),
        },
        Probe::Http {
            target,
            bind,
            timeout,
            tls,
            host,
            urls,
        } => {
            for url in urls {
                let exchange = http_get(*target, *bind, *tls, host, url);
                let verdict = match tokio::time::timeout(*timeout, exchange).await {
                    Ok(v) => v,
                    Err(_) => Err(format!("no answer within {}s", timeout.as_secs_f64())),
                };
                if let Err(why) = verdict {
                    return Outcome::Fail(format!("{}: {why}", url.path));
                }
            }
            Outcome::Pass
        }
        Probe::Misc {
            command,
            timeout,
            dynamic,
            ..
        } => misc(command, *timeout, *dynamic, run_as).await,
    }
}

async fn connect(
    target: SocketAddr,
    bind: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| format!("socket: {e}"))?;
    if let Some(bind) = bind {
        socket.bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    }
    match tokio::time::timeout(timeout, socket.connect(target)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("connect {target}: {e}")),
        Err(_) => Err(format!(
            "connect {target}: no answer within {}s",
            timeout.as_secs_f64()
        )),
    }
}

async fn http_get(
    target: SocketAddr,
    bind: Option<SocketAddr>,
    tls: bool,
    host: &str,
    url: &HttpUrl,
) -> Result<(), String> {
    // The caller bounds the whole exchange; the connect has no bound of
    // its own beyond that.
    let stream = connect(target, bind, Duration::from_secs(3600)).await?;
    let host = url.virtualhost.as_deref().unwrap_or(host);
    let response = if tls {
        exchange(super::tls::handshake(stream, host).await?, host, url).await?
    } else {
        exchange(stream, host, url).await?
    };
    judge(&response, url)
}

/// One request on `stream`, the whole response back.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    url: &HttpUrl,
) -> Result<Vec<u8>, String> {
    let request = format!(
        "GET {} HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        url.path
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut response = Vec::new();
    match stream.take(MAX_RESPONSE).read_to_end(&mut response).await {
        Ok(_) => Ok(response),
        // A TLS server that closes without close_notify: what came is the
        // response (HTTP/1.0 ends at the close).
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {
            Ok(response)
        }
        Err(e) => Err(format!("read: {e}")),
    }
}

/// Whether `response` (a whole HTTP/1.x response) passes `url`'s checks.
pub fn judge(response: &[u8], url: &HttpUrl) -> Result<(), String> {
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| "no complete HTTP header".to_owned())?;
    let status_line = response[..head_end]
        .split(|&b| b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim().to_owned())
        .unwrap_or_default();
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .filter(|_| status_line.starts_with("HTTP/"))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
    let accepted = if url.status_code.is_empty() {
        (200..=299).contains(&code)
    } else {
        url.status_code
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&code))
    };
    if !accepted {
        return Err(format!("status {code}"));
    }
    if let Some(want) = &url.digest {
        let body = &response[head_end + 4..];
        let got: String = Md5::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if &got != want {
            return Err(format!("digest {got}, want {want}"));
        }
    }
    Ok(())
}

async fn misc(command: &str, timeout: Duration, dynamic: bool, run_as: Option<RunAs>) -> Outcome {
    let argv = split_command(command);
    match notify::run_script(&argv, run_as, timeout).await {
        notify::Outcome::Exited(Some(0)) => Outcome::Pass,
        // keepalived.conf(5) misc_dynamic: 1 fails, 2..255 set weight - 2.
        notify::Outcome::Exited(Some(code)) if dynamic && code >= 2 => {
            Outcome::PassWeight(u32::try_from(code - 2).unwrap_or(0))
        }
        notify::Outcome::Exited(Some(code)) => Outcome::Fail(format!("exit status {code}")),
        notify::Outcome::Exited(None) => Outcome::Fail("killed by a signal".to_owned()),
        notify::Outcome::TimedOut => Outcome::Fail(format!(
            "still running after {}s, killed",
            timeout.as_secs_f64()
        )),
        notify::Outcome::NotStarted(why) => Outcome::Fail(format!("not started: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(status: &[(u16, u16)], digest: Option<&str>) -> HttpUrl {
        HttpUrl {
            path: "/".to_owned(),
            status_code: status.to_vec(),
            digest: digest.map(str::to_owned),
            virtualhost: None,
        }
    }

    #[test]
    fn status_and_digest_decide() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        // MD5("abc") from RFC 1321's test suite.
        let md5_abc = "900150983cd24fb0d6963f7d28e17f72";
        assert_eq!(judge(ok, &url(&[], None)), Ok(()));
        assert_eq!(judge(ok, &url(&[(200, 200)], Some(md5_abc))), Ok(()));
        assert_eq!(
            judge(ok, &url(&[], Some("00000000000000000000000000000000"))),
            Err(format!(
                "digest {md5_abc}, want 00000000000000000000000000000000"
            ))
        );
        let moved = b"HTTP/1.1 301 Moved\r\n\r\n";
        assert_eq!(judge(moved, &url(&[], None)), Err("status 301".to_owned()));
        assert_eq!(judge(moved, &url(&[(300, 399)], None)), Ok(()));
        assert!(judge(b"garbage", &url(&[], None)).is_err());
        assert!(judge(b"SSH-2.0-OpenSSH\r\n\r\n", &url(&[], None)).is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn misc_exit_codes_with_and_without_dynamic() {
        let t = Duration::from_secs(5);
        assert_eq!(misc("/bin/true", t, false, None).await, Outcome::Pass);
        assert_eq!(
            misc("/bin/sh -c 'exit 1'", t, true, None).await,
            Outcome::Fail("exit status 1".to_owned())
        );
        assert_eq!(
            misc("/bin/sh -c 'exit 7'", t, true, None).await,
            Outcome::PassWeight(5)
        );
        assert_eq!(
            misc("/bin/sh -c 'exit 7'", t, false, None).await,
            Outcome::Fail("exit status 7".to_owned())
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tcp_to_a_closed_port_fails_and_to_a_listener_passes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let open = listener.local_addr().expect("addr");
        let probe = |target| Probe::Tcp {
            target,
            bind: None,
            timeout: Duration::from_secs(2),
        };
        assert_eq!(run(&probe(open), None).await, Outcome::Pass);
        // A port bound without listen refuses connections, and, unlike a
        // port merely released, can be neither taken by a parallel test nor
        // picked as the probe's own source port (a TCP self-connect).
        let bound = tokio::net::TcpSocket::new_v4().expect("socket");
        bound
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let closed = bound.local_addr().expect("addr");
        assert!(!run(&probe(closed), None).await.passed());
    }
}
