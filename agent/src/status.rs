//! The status API: what a running agent reports about itself, the unix
//! socket that serves it, and the client behind `hactl-agent status`.
//!
//! The protocol is as small as it can be: a client connects, the daemon
//! writes one JSON document and closes. A client may first write one line
//! of JSON, a [`ControlRequest`] (`{"request":"takeover","instance":"VI_1"}`),
//! and gets a [`ControlReply`] instead; a client that writes nothing (and
//! closes its write half, or waits [`REQUEST_WAIT`]) gets the status, so
//! older clients keep working. The socket file is created with mode
//! 0600 (root only; created under umask 0177, so there is no moment when it
//! is wider): the status names addresses and scripts, and the socket is the
//! local control surface. Each connection's peer credentials
//! (SO_PEERCRED) are checked too: a peer that is neither root nor the
//! agent's own user is answered `permission denied` and gets nothing else,
//! neither status nor takeover/release (issue 14). Secrets are never part
//! of the model.
//!
//! hactl reads the same JSON over SSH (`hactl status`, drills, audit), so the
//! field names here are a contract; see [`Status`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

/// Default path of the status socket.
pub const DEFAULT_SOCKET: &str = "/run/hactl/agent.sock";

/// A whole agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub config: PathBuf,
    /// RFC 3339 wall time the daemon started.
    pub started: String,
    pub instances: Vec<InstanceStatus>,
    /// Drops that could not be tied to an instance (no VRID of ours), per
    /// receiving socket.
    pub sockets: Vec<SocketStatus>,
    /// The IPVS half: every virtual_server and its real servers. Absent in
    /// the answers of agents older than issue 11.
    #[serde(default)]
    pub virtual_servers: Vec<VirtualServerStatus>,
    /// Tracked scripts and interfaces: whether each passes now.
    #[serde(default)]
    pub checks: BTreeMap<String, bool>,
}

/// One `virtual_server` and the services it programs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualServerStatus {
    /// As the config names it: `10.0.0.50 80 TCP`, `fwmark 7`, `group web`.
    pub name: String,
    /// The IPVS services, as ipvsadm names them (`TCP 10.0.0.50:80`).
    pub services: Vec<String>,
    pub quorum: u32,
    pub quorum_up: bool,
    /// Total weight of the live real servers.
    pub alive_weight: u64,
    /// Whether the sorry server takes the traffic now.
    pub sorry_server_active: bool,
    pub real_servers: Vec<RealServerStatus>,
    /// Real server up/down changes since the agent started.
    pub transitions: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServerStatus {
    pub address: IpAddr,
    pub port: u16,
    /// Every checker passes.
    pub up: bool,
    /// The weight in the kernel's table now; `None` when not in it.
    pub weight: Option<u32>,
    /// `ok`, or why the last check failed.
    pub last_check: Option<String>,
    /// RFC 3339 time of the last check.
    pub last_check_time: Option<String>,
    pub transitions: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub name: String,
    pub vrid: u8,
    pub interface: String,
    /// 2 or 3.
    pub version: u8,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// MASTER, BACKUP, FAULT or INIT.
    pub state: String,
    /// The configured priority.
    pub priority: u8,
    /// The priority after track weights, the one advertised.
    pub effective_priority: u8,
    pub vips: Vec<VipStatus>,
    /// The address of the master this node sees (itself when MASTER).
    pub master: Option<IpAddr>,
    /// This node's own advert source address.
    pub address: IpAddr,
    pub advert_int_ms: u64,
    /// RFC 3339 wall time of the last advert accepted from a peer.
    pub last_advert: Option<String>,
    pub counters: Counters,
    pub transitions: Vec<TransitionRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipStatus {
    /// `ADDR/LEN`.
    pub address: String,
    pub interface: String,
    /// Whether the address is on the interface now (the kernel's word, not
    /// the agent's intent).
    pub present: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub send_errors: u64,
    /// State transitions since the agent started (the history keeps the
    /// last few only).
    #[serde(default)]
    pub transitions: u64,
    /// Changes of the master this instance knows: itself while MASTER,
    /// the advertiser while BACKUP.
    #[serde(default)]
    pub master_changes: u64,
    /// Received packets refused, by reason (`bad_ttl`, `bad_checksum`,
    /// `auth_mismatch`, `too_short`, `bad_version`, ...).
    pub drops: BTreeMap<String, u64>,
}

impl Counters {
    pub fn drop(&mut self, reason: &str) {
        *self.drops.entry(reason.to_owned()).or_default() += 1;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketStatus {
    pub interface: String,
    pub family: String,
    pub drops: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionRecord {
    pub from: String,
    pub to: String,
    pub reason: String,
    /// Wall clock, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Monotonic clock (CLOCK_MONOTONIC), nanoseconds: comparable across
    /// the agents of one host, immune to wall clock steps.
    pub monotonic_ns: u64,
}

// ===== time =====

/// `2026-11-22T17:19:06.123Z` for a wall-clock time.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let ms = since.subsec_millis();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// published `civil_from_days` algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y, m as u32, d as u32)
}

/// CLOCK_MONOTONIC now, in nanoseconds.
pub fn monotonic_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => {
            let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
            let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
            secs.saturating_mul(1_000_000_000).saturating_add(nanos)
        }
        Err(_) => 0,
    }
}

// ===== server =====

#[derive(Debug, Error)]
pub enum StatusError {
    #[error("cannot create the status socket {path}")]
    Bind {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot reach the agent at {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the agent's answer from {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the agent at {path} refused: {reason}")]
    Refused { path: PathBuf, reason: String },
    #[error("the agent at {path} answered with invalid json")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// How long the server waits for a request line before it treats the
/// client as a status reader that writes nothing.
pub const REQUEST_WAIT: Duration = Duration::from_millis(200);

/// The priority a takeover advertises unless the request names one: the
/// highest a non-owner may use (RFC 5798 5.2.4).
pub const TAKEOVER_PRIORITY: u8 = 254;

/// A request a client writes as one line of JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "lowercase")]
pub enum ControlRequest {
    /// The status document (the same as writing nothing).
    Status,
    /// Become master now: advertise `priority` (default
    /// [`TAKEOVER_PRIORITY`]) for the instance named, else every instance.
    Takeover {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<u8>,
    },
    /// Back to the configured priority; a master by takeover steps down.
    Release {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance: Option<String>,
    },
}

/// The answer to a takeover or release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlReply {
    pub ok: bool,
    /// The instances that heard the request.
    pub instances: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A request from the socket server to the daemon.
#[derive(Debug)]
pub enum Request {
    /// A fresh snapshot.
    Status(oneshot::Sender<Status>),
    /// A takeover or release.
    Control {
        request: ControlRequest,
        reply: oneshot::Sender<ControlReply>,
    },
}

/// Binds the status socket (replacing a stale file) with mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, StatusError> {
    let fail = |source| StatusError::Bind {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    // The agent is one process and binds before it runs any script, so a
    // process-wide umask for the bind is safe.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(fail)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    Ok(listener)
}

/// Whether a peer of uid `uid` may use the socket: root, or the user the
/// agent itself runs as (root in production; a test's own user).
pub fn peer_allowed(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// Serves requests forever: each connection gets one JSON document (the
/// status, or the reply to its request line).
pub async fn serve(listener: UnixListener, requests: mpsc::Sender<Request>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if requests.is_closed() {
            return;
        }
        match stream.peer_cred() {
            Ok(cred) if peer_allowed(cred.uid()) => {}
            refused => {
                let who =
                    refused.map_or_else(|e| format!("unknown ({e})"), |c| c.uid().to_string());
                crate::daemon::log(&format!(
                    "status socket: refused a client of uid {who} (only root may connect)"
                ));
                tokio::spawn(refuse(stream, who));
                continue;
            }
        }
        tokio::spawn(answer(stream, requests.clone()));
    }
}

/// The whole answer to a peer that may not connect.
async fn refuse(stream: tokio::net::UnixStream, uid: String) {
    let (read, mut write) = stream.into_split();
    // Read (and drop) what the client wrote, bounded: closing with unread
    // bytes would reset the connection before it reads the refusal.
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(REQUEST_WAIT, read.take(64 * 1024).read_to_end(&mut sink)).await;
    let reply = ControlReply {
        ok: false,
        instances: Vec::new(),
        error: Some(format!("permission denied: uid {uid} is not root")),
    };
    write_json(&mut write, &reply).await;
}

async fn answer(stream: tokio::net::UnixStream, requests: mpsc::Sender<Request>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(64 * 1024);
    // No line within REQUEST_WAIT (or EOF at once): a status reader.
    let _ = tokio::time::timeout(REQUEST_WAIT, reader.read_line(&mut line)).await;
    let request = if line.trim().is_empty() {
        ControlRequest::Status
    } else {
        match serde_json::from_str::<ControlRequest>(line.trim()) {
            Ok(r) => r,
            Err(e) => {
                let reply = ControlReply {
                    ok: false,
                    instances: Vec::new(),
                    error: Some(format!("bad request: {e}")),
                };
                write_json(&mut write, &reply).await;
                return;
            }
        }
    };
    if request == ControlRequest::Status {
        let (tx, rx) = oneshot::channel();
        if requests.send(Request::Status(tx)).await.is_err() {
            return;
        }
        if let Ok(status) = rx.await {
            write_json(&mut write, &status).await;
        }
        return;
    }
    let (tx, rx) = oneshot::channel();
    let sent = requests.send(Request::Control { request, reply: tx }).await;
    if sent.is_err() {
        return;
    }
    if let Ok(reply) = rx.await {
        write_json(&mut write, &reply).await;
    }
}

async fn write_json(write: &mut tokio::net::unix::OwnedWriteHalf, value: &impl Serialize) {
    if let Ok(mut text) = serde_json::to_vec_pretty(value) {
        text.push(b'\n');
        let _ = write.write_all(&text).await;
        let _ = write.shutdown().await;
    }
}

// ===== client =====

/// Asks the agent at `path` for its status.
pub fn fetch(path: &Path) -> Result<Status, StatusError> {
    // No request: the server answers with the status at our EOF.
    exchange(path, None)
}

/// Sends `request` to the agent at `path` and reads its reply.
pub fn control(path: &Path, request: &ControlRequest) -> Result<ControlReply, StatusError> {
    let mut line = serde_json::to_vec(request).map_err(|source| StatusError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    line.push(b'\n');
    exchange(path, Some(&line))
}

/// One connection to the status socket: write `request` (if any), close our
/// side, read the whole JSON answer.
fn exchange<T: serde::de::DeserializeOwned>(
    path: &Path,
    request: Option<&[u8]>,
) -> Result<T, StatusError> {
    use std::io::Write as _;
    let connect = |source| StatusError::Connect {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(connect)?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if let Some(request) = request {
        stream.write_all(request).map_err(connect)?;
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut text = Vec::new();
    stream
        .read_to_end(&mut text)
        .map_err(|source| StatusError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    serde_json::from_slice(&text).map_err(|source| {
        // A refused peer gets a failed reply whatever it asked.
        match serde_json::from_slice::<ControlReply>(&text) {
            Ok(ControlReply {
                ok: false,
                error: Some(reason),
                ..
            }) => StatusError::Refused {
                path: path.to_path_buf(),
                reason,
            },
            _ => StatusError::Json {
                path: path.to_path_buf(),
                source,
            },
        }
    })
}

/// The human table of `hactl-agent status`.
pub fn table(status: &Status) -> String {
    let header = [
        "INSTANCE", "VRID", "IFACE", "VER", "STATE", "PRIO", "EFF", "MASTER", "VIPS", "SENT",
        "RECV", "DROPS",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
    for i in &status.instances {
        let vips = i
            .vips
            .iter()
            .map(|v| {
                if v.present {
                    format!("{}*", v.address)
                } else {
                    v.address.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        let drops: u64 = i.counters.drops.values().sum();
        rows.push(vec![
            i.name.clone(),
            i.vrid.to_string(),
            i.interface.clone(),
            format!("v{}", i.version),
            i.state.clone(),
            i.priority.to_string(),
            i.effective_priority.to_string(),
            i.master.map_or_else(|| "-".to_owned(), |m| m.to_string()),
            vips,
            i.counters.adverts_sent.to_string(),
            i.counters.adverts_received.to_string(),
            drops.to_string(),
        ]);
    }
    let mut out = aligned(&rows);
    let _ = writeln!(out, "(* = VIP present on the interface)");
    if !status.virtual_servers.is_empty() {
        out.push('\n');
        out.push_str(&virtual_server_table(&status.virtual_servers));
    }
    out
}

/// The virtual servers part of `hactl-agent status`: one row per real
/// server.
pub fn virtual_server_table(servers: &[VirtualServerStatus]) -> String {
    let header = [
        "VIRTUAL_SERVER",
        "QUORUM",
        "REAL_SERVER",
        "STATE",
        "WEIGHT",
        "LAST_CHECK",
        "CHANGES",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
    for v in servers {
        let quorum = format!(
            "{}/{}{}",
            v.alive_weight,
            v.quorum,
            if v.sorry_server_active {
                " sorry"
            } else if v.quorum_up {
                ""
            } else {
                " lost"
            }
        );
        for (n, r) in v.real_servers.iter().enumerate() {
            let endpoint = match r.address {
                IpAddr::V6(a) => format!("[{a}]:{}", r.port),
                a => format!("{a}:{}", r.port),
            };
            rows.push(vec![
                if n == 0 {
                    v.name.clone()
                } else {
                    String::new()
                },
                if n == 0 {
                    quorum.clone()
                } else {
                    String::new()
                },
                endpoint,
                if r.up { "UP" } else { "DOWN" }.to_owned(),
                r.weight.map_or_else(|| "-".to_owned(), |w| w.to_string()),
                r.last_check.clone().unwrap_or_else(|| "-".to_owned()),
                r.transitions.to_string(),
            ]);
        }
    }
    aligned(&rows)
}

fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        let instance = |name: &str, state: &str, present: bool| InstanceStatus {
            name: name.to_owned(),
            vrid: 51,
            interface: "eth0".to_owned(),
            version: 3,
            family: "ipv4".to_owned(),
            state: state.to_owned(),
            priority: 150,
            effective_priority: 120,
            vips: vec![VipStatus {
                address: "10.0.0.50/24".to_owned(),
                interface: "eth0".to_owned(),
                present,
            }],
            master: "10.0.0.2".parse().ok(),
            address: IpAddr::from([10, 0, 0, 1]),
            advert_int_ms: 1000,
            last_advert: None,
            counters: Counters {
                adverts_sent: 7,
                adverts_received: 12,
                send_errors: 0,
                drops: BTreeMap::from([("bad_ttl".to_owned(), 2), ("auth_mismatch".to_owned(), 1)]),
                ..Counters::default()
            },
            transitions: Vec::new(),
        };
        Status {
            pid: 42,
            config: PathBuf::from("/etc/hactl/keepalived.conf"),
            started: "2026-11-22T17:29:06.123Z".to_owned(),
            instances: vec![
                instance("VI_1", "MASTER", true),
                instance("web_backup", "BACKUP", false),
            ],
            sockets: Vec::new(),
            virtual_servers: Vec::new(),
            checks: BTreeMap::new(),
        }
    }

    #[test]
    fn table_aligns_columns_and_marks_present_vips() {
        let expected = "\
INSTANCE    VRID  IFACE  VER  STATE   PRIO  EFF  MASTER    VIPS           SENT  RECV  DROPS
VI_1        51    eth0   v3   MASTER  150   120  10.0.0.2  10.0.0.50/24*  7     12    3
web_backup  51    eth0   v3   BACKUP  150   120  10.0.0.2  10.0.0.50/24   7     12    3
(* = VIP present on the interface)
";
        assert_eq!(table(&sample()), expected);
    }

    #[test]
    fn virtual_servers_table_one_row_per_real_server() {
        let rs = |last: u8, up: bool, weight: Option<u32>, check: &str| RealServerStatus {
            address: IpAddr::from([10, 0, 1, last]),
            port: 80,
            up,
            weight,
            last_check: Some(check.to_owned()),
            last_check_time: None,
            transitions: u64::from(!up),
        };
        let vs = VirtualServerStatus {
            name: "10.0.0.50 80 TCP".to_owned(),
            services: vec!["TCP 10.0.0.50:80".to_owned()],
            quorum: 1,
            quorum_up: true,
            alive_weight: 2,
            sorry_server_active: false,
            real_servers: vec![
                rs(1, true, Some(2), "ok"),
                rs(2, false, None, "connect 10.0.1.2:80: refused"),
            ],
            transitions: 1,
        };
        let expected = "\
VIRTUAL_SERVER    QUORUM  REAL_SERVER  STATE  WEIGHT  LAST_CHECK                    CHANGES
10.0.0.50 80 TCP  2/1     10.0.1.1:80  UP     2       ok                            0
                          10.0.1.2:80  DOWN   -       connect 10.0.1.2:80: refused  1
";
        assert_eq!(virtual_server_table(std::slice::from_ref(&vs)), expected);
        let mut status = sample();
        status.virtual_servers = vec![vs];
        let text = serde_json::to_string(&status).expect("json");
        assert!(
            text.contains("\"virtual_servers\":[{\"name\":\"10.0.0.50 80 TCP\""),
            "{text}"
        );
        let back: Status = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, status);
        // An older agent's answer has no virtual_servers.
        let old = text.replace(",\"virtual_servers\":[", ",\"x\":[");
        let old: Status = serde_json::from_str(&old).expect("old answer");
        assert!(old.virtual_servers.is_empty());
    }

    #[test]
    fn json_round_trips_with_the_contract_field_names() {
        let status = sample();
        let text = serde_json::to_string(&status).expect("json");
        for field in [
            "\"effective_priority\":120",
            "\"advert_int_ms\":1000",
            "\"present\":true",
            "\"drops\":{\"auth_mismatch\":1,\"bad_ttl\":2}",
            "\"master\":\"10.0.0.2\"",
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }
        let back: Status = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, status);
    }

    #[test]
    fn control_requests_are_one_line_of_tagged_json() {
        let takeover = ControlRequest::Takeover {
            instance: Some("VI_1".to_owned()),
            priority: None,
        };
        let text = serde_json::to_string(&takeover).expect("json");
        assert_eq!(text, r#"{"request":"takeover","instance":"VI_1"}"#);
        let release: ControlRequest =
            serde_json::from_str(r#"{"request":"release"}"#).expect("parse");
        assert_eq!(release, ControlRequest::Release { instance: None });
        assert!(serde_json::from_str::<ControlRequest>(r#"{"request":"reboot"}"#).is_err());
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_368_546_123);
        assert_eq!(rfc3339(t), "2026-11-22T17:29:06.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century leap year).
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
