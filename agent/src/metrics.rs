//! Prometheus metrics on an opt-in TCP listener (`metrics_listen
//! ADDRESS:PORT` in global_defs; no listener without it).
//!
//! A scrape asks the protocol loop for the same [`Status`] snapshot the
//! status socket serves, and renders it with `prometheus-client` in the
//! Prometheus text format 0.0.4: per instance state, priorities, adverts,
//! drops by reason, transitions and master changes; per socket drops;
//! tracked checks; IPVS real servers; and the process (CPU, memory, file
//! descriptors, threads). The listener runs on the I/O thread, never on
//! the protocol loop, and answers one request per connection.
//!
//! Nothing secret is in the status model, so nothing secret is here.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::status::{Request, Status};

/// The longest a client may take to send its request.
const REQUEST_WAIT: Duration = Duration::from_secs(5);
/// The longest request head read.
const REQUEST_MAX: usize = 8 * 1024;

#[derive(Debug, Error)]
pub enum MetricsError {
    #[error("cannot listen for metrics on {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Binds the metrics listener (before the daemon reports it runs, so a
/// busy port is a start failure, not a silent gap).
pub fn bind(address: SocketAddr) -> Result<TcpListener, MetricsError> {
    let fail = |source| MetricsError::Bind { address, source };
    let socket = std::net::TcpListener::bind(address).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    TcpListener::from_std(socket).map_err(fail)
}

/// Serves scrapes until the protocol loop goes away.
pub async fn serve(listener: TcpListener, requests: mpsc::Sender<Request>) {
    let started = SystemTime::now();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if requests.is_closed() {
            return;
        }
        tokio::spawn(answer(stream, requests.clone(), started));
    }
}

async fn answer(mut stream: TcpStream, requests: mpsc::Sender<Request>, started: SystemTime) {
    let path = match tokio::time::timeout(REQUEST_WAIT, request_path(&mut stream)).await {
        Ok(Ok(Some(path))) => path,
        _ => {
            let _ = respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                "bad request\n",
            )
            .await;
            return;
        }
    };
    if path != "/metrics" && path != "/" {
        let _ = respond(&mut stream, "404 Not Found", "text/plain", "try /metrics\n").await;
        return;
    }
    let (reply, snapshot) = oneshot::channel();
    if requests.send(Request::Status(reply)).await.is_err() {
        return;
    }
    let Ok(status) = snapshot.await else { return };
    let body = render(&status, &Process::read(started));
    let _ = respond(&mut stream, "200 OK", prometheus_text::CONTENT_TYPE, &body).await;
}

/// The path of a `GET` request, once its head has arrived.
async fn request_path(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > REQUEST_MAX {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or_default().split_whitespace();
    Ok(match (words.next(), words.next()) {
        (Some("GET"), Some(target)) => {
            Some(target.split('?').next().unwrap_or_default().to_owned())
        }
        _ => None,
    })
}

async fn respond(
    stream: &mut TcpStream,
    code: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

// ===== the process =====

/// What /proc says about this process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Process {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub threads: u64,
    pub start_time_seconds: f64,
}

impl Process {
    fn read(started: SystemTime) -> Process {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        Process {
            cpu_seconds: cpu_seconds(&stat, crate::sys::clock_ticks()),
            resident_bytes: field("VmRSS:") * 1024,
            virtual_bytes: field("VmSize:") * 1024,
            open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
            threads: field("Threads:"),
            start_time_seconds: started
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

/// utime + stime of a /proc/PID/stat line, in seconds (fields 14 and 15,
/// counted after the command name, which may hold spaces).
fn cpu_seconds(stat: &str, ticks: u64) -> f64 {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // rest starts at field 3 (state): utime is field 14, stime 15.
    let total = tick(11) + tick(12);
    if ticks == 0 {
        return 0.0;
    }
    total as f64 / ticks as f64
}

// ===== rendering =====

fn gauge_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    registry.register(name, help, family.clone());
    family
}

fn counter_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let family = Family::<Labels, Counter>::default();
    registry.register(name, help, family.clone());
    family
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The states an instance may be in, as the status names them.
const STATES: [&str; 4] = ["INIT", "BACKUP", "MASTER", "FAULT"];

/// The metrics text for `status` and `process`.
pub fn render(status: &Status, process: &Process) -> String {
    let mut registry = Registry::default();
    let state = gauge_family(
        &mut registry,
        "hactl_vrrp_state",
        "1 for the state the instance is in (INIT, BACKUP, MASTER, FAULT), 0 for the others",
    );
    let priority = gauge_family(&mut registry, "hactl_vrrp_priority", "Configured priority");
    let effective = gauge_family(
        &mut registry,
        "hactl_vrrp_effective_priority",
        "Priority after tracked scripts and interfaces",
    );
    let vips = gauge_family(
        &mut registry,
        "hactl_vrrp_vips_present",
        "Virtual addresses of the instance present on this host",
    );
    let advert_int = Family::<Labels, FloatGauge>::default();
    registry.register(
        "hactl_vrrp_advert_interval_seconds",
        "The advertisement interval in use",
        advert_int.clone(),
    );
    let sent = counter_family(&mut registry, "hactl_vrrp_adverts_sent", "Adverts sent");
    let received = counter_family(
        &mut registry,
        "hactl_vrrp_adverts_received",
        "Adverts received and accepted",
    );
    let send_errors = counter_family(
        &mut registry,
        "hactl_vrrp_send_errors",
        "Adverts the kernel refused to send",
    );
    let drops = counter_family(
        &mut registry,
        "hactl_vrrp_drops",
        "Received packets dropped, by reason",
    );
    let socket_drops = counter_family(
        &mut registry,
        "hactl_vrrp_socket_drops",
        "Received packets dropped before an instance could be found, by reason",
    );
    let transitions = counter_family(
        &mut registry,
        "hactl_vrrp_transitions",
        "State transitions since the agent started",
    );
    let master_changes = counter_family(
        &mut registry,
        "hactl_vrrp_master_changes",
        "Changes of the master this instance knows (itself or the advertiser)",
    );
    for i in &status.instances {
        let labels = || -> Labels {
            vec![
                ("instance", i.name.clone()),
                ("interface", i.interface.clone()),
                ("vrid", i.vrid.to_string()),
            ]
        };
        for s in STATES {
            let mut l = labels();
            l.push(("state", s.to_owned()));
            state.get_or_create(&l).set(i64::from(i.state == s));
        }
        priority.get_or_create(&labels()).set(i64::from(i.priority));
        effective
            .get_or_create(&labels())
            .set(i64::from(i.effective_priority));
        vips.get_or_create(&labels())
            .set(as_i64(i.vips.iter().filter(|v| v.present).count() as u64));
        advert_int
            .get_or_create(&labels())
            .set(i.advert_int_ms as f64 / 1000.0);
        sent.get_or_create(&labels())
            .inc_by(i.counters.adverts_sent);
        received
            .get_or_create(&labels())
            .inc_by(i.counters.adverts_received);
        send_errors
            .get_or_create(&labels())
            .inc_by(i.counters.send_errors);
        transitions
            .get_or_create(&labels())
            .inc_by(i.counters.transitions);
        master_changes
            .get_or_create(&labels())
            .inc_by(i.counters.master_changes);
        for (reason, n) in &i.counters.drops {
            let mut l = labels();
            l.push(("reason", reason.clone()));
            drops.get_or_create(&l).inc_by(*n);
        }
    }
    for s in &status.sockets {
        for (reason, n) in &s.drops {
            let l: Labels = vec![
                ("interface", s.interface.clone()),
                ("family", s.family.clone()),
                ("reason", reason.clone()),
            ];
            socket_drops.get_or_create(&l).inc_by(*n);
        }
    }
    let checks = gauge_family(
        &mut registry,
        "hactl_vrrp_check_up",
        "1 when the tracked script or interface passes",
    );
    for (name, up) in &status.checks {
        checks
            .get_or_create(&vec![("check", name.clone())])
            .set(i64::from(*up));
    }
    let quorum = gauge_family(
        &mut registry,
        "hactl_lvs_quorum_up",
        "1 when the virtual server has its quorum",
    );
    let real_up = gauge_family(
        &mut registry,
        "hactl_lvs_real_server_up",
        "1 when every checker of the real server passes",
    );
    let real_transitions = counter_family(
        &mut registry,
        "hactl_lvs_real_server_transitions",
        "Up/down changes of the real server",
    );
    for vs in &status.virtual_servers {
        quorum
            .get_or_create(&vec![("virtual_server", vs.name.clone())])
            .set(i64::from(vs.quorum_up));
        for rs in &vs.real_servers {
            let l: Labels = vec![
                ("virtual_server", vs.name.clone()),
                ("real_server", format!("{}:{}", rs.address, rs.port)),
            ];
            real_up.get_or_create(&l).set(i64::from(rs.up));
            real_transitions.get_or_create(&l).inc_by(rs.transitions);
        }
    }
    register_process(&mut registry, process);
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_text::encode(&mut text, &registry);
    text
}

fn register_process(registry: &mut Registry, p: &Process) {
    let float = |registry: &mut Registry, name: &str, help: &str, v: f64| {
        let g = FloatGauge::default();
        g.set(v);
        registry.register(name, help, g);
    };
    let cpu = Counter::<f64, std::sync::atomic::AtomicU64>::default();
    cpu.inc_by(p.cpu_seconds);
    registry.register(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds",
        cpu,
    );
    float(
        registry,
        "process_resident_memory_bytes",
        "Resident memory size in bytes",
        p.resident_bytes as f64,
    );
    float(
        registry,
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes",
        p.virtual_bytes as f64,
    );
    float(
        registry,
        "process_open_fds",
        "Number of open file descriptors",
        p.open_fds as f64,
    );
    float(
        registry,
        "process_threads",
        "Number of OS threads",
        p.threads as f64,
    );
    float(
        registry,
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch in seconds",
        p.start_time_seconds,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let stat = "42 (hactl agent) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert!((cpu_seconds(stat, 100) - 3.0).abs() < 1e-9);
        assert!(cpu_seconds("garbage", 100).abs() < 1e-9);
    }
}
