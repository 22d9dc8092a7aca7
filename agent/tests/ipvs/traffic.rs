//! Traffic through the IPVS table the agent programs, inside the VM: a
//! client, LB hosts and three real servers (busybox httpd each, answering
//! with its own name) on one segment, LVS-DR as keepalived users run it
//! (the VIP on the real servers' loopback, arp_ignore/arp_announce set).
//!
//! ```text
//!   h0 client   h1 lb1   h2 lb2   h3 rs1   h4 rs2   h5 rs3   h6 sorry
//!   10.77.0.1   .2       .3       .4       .5       .6       .7
//!                  VIP 10.77.0.100 (VRRP)  VIP on lo of h3..h6
//! ```

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use crate::lab::{DEADLINE, Daemon, Scratch, table};
use crate::support::netns::{Host, Segment, Spawned, wait_until};

pub const VIP: &str = "10.77.0.100";
pub const CLIENT: usize = 0;
pub const LB1: usize = 1;
pub const LB2: usize = 2;
pub const RS: [usize; 3] = [3, 4, 5];
pub const SORRY: usize = 6;

/// The hosts, the real servers' web roots and their httpd processes.
pub struct Lab {
    pub segment: Segment,
    roots: Scratch,
    servers: RefCell<Vec<Option<Spawned>>>,
}

impl Lab {
    pub fn new() -> Lab {
        let segment = Segment::new(7);
        let roots = Scratch::new("www");
        let lab = Lab {
            segment,
            roots,
            servers: RefCell::new((0..7).map(|_| None).collect()),
        };
        for index in RS.iter().copied().chain([SORRY]) {
            let host = lab.segment.host(index);
            // LVS-DR: the VIP on lo, never answered for on the wire.
            host.run(&["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
            // From a thread inside the namespace: /proc/sys/net is the
            // namespace of the task that opens it, and no process is
            // spawned (each costs under TCG).
            host.in_netns(|| {
                for scope in ["all", "eth0"] {
                    for (key, value) in [("arp_ignore", "1"), ("arp_announce", "2")] {
                        let path = format!("/proc/sys/net/ipv4/conf/{scope}/{key}");
                        std::fs::write(&path, value)
                            .unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
                        let read = std::fs::read_to_string(&path).unwrap_or_default();
                        assert_eq!(read.trim(), value, "{path}");
                    }
                }
            });
            let root = lab.roots.0.join(format!("h{index}"));
            std::fs::create_dir_all(&root).expect("web root");
            std::fs::write(root.join("index.html"), format!("{}\n", name(index))).expect("page");
            lab.start_http(index);
        }
        lab
    }

    pub fn host(&self, index: usize) -> &Host {
        self.segment.host(index)
    }

    pub fn start_http(&self, index: usize) {
        let root = self.roots.0.join(format!("h{index}"));
        let root = root.to_string_lossy().into_owned();
        let process = self
            .segment
            .host(index)
            .spawn(&["busybox", "httpd", "-f", "-p", "80", "-h", &root]);
        self.servers.borrow_mut()[index] = Some(process);
        let address = self.segment.host(index).ipv4();
        wait_until(DEADLINE, "httpd to listen", || {
            self.host(CLIENT)
                .in_netns(|| get(SocketAddr::from((address, 80))).is_some())
        });
    }

    /// Kills a real server's httpd (SIGKILL: a crash, not a goodbye).
    pub fn kill_http(&self, index: usize) {
        self.servers.borrow_mut()[index] = None;
    }

    /// One GET / to the VIP from the client: who answered.
    pub fn request(&self) -> Option<String> {
        let vip: SocketAddr = format!("{VIP}:80").parse().expect("vip");
        self.host(CLIENT).in_netns(|| get(vip))
    }
}

/// The page a real server answers with: its name.
pub fn name(index: usize) -> String {
    if index == SORRY {
        "sorry".to_owned()
    } else {
        format!("rs{}", index - RS[0] + 1)
    }
}

/// MD5 of a real server's page, as `genhash` prints it.
pub fn digest(index: usize) -> String {
    Md5::digest(format!("{}\n", name(index)).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// GET / from `to` with short timeouts: the body, trimmed.
pub fn get(to: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.trim().to_owned())
}

/// The VRRP instance both LBs run: v3, 0.5 s adverts (a short
/// Master_Down_Interval for the failover test).
pub fn vrrp(priority: u8, state: &str) -> String {
    format!(
        "global_defs {{
  router_id lb
  script_user root
  enable_script_security
}}
vrrp_instance VI_1 {{
  state {state}
  interface eth0
  virtual_router_id 77
  version 3
  priority {priority}
  advert_int 0.5
  virtual_ipaddress {{
    {VIP}/24
  }}
}}
"
    )
}

/// The real servers of the segment, each with `checker` (RS address and
/// index filled in by the closure) and `extra` lines.
pub fn real_servers(checker: &dyn Fn(usize) -> String, extra: &dyn Fn(usize) -> String) -> String {
    RS.iter()
        .map(|&i| {
            format!(
                "  real_server 10.77.0.{} 80 {{\n    weight 1\n{}{}  }}\n",
                i + 1,
                extra(i),
                checker(i)
            )
        })
        .collect()
}

pub fn http_checker(index: usize) -> String {
    format!(
        "    HTTP_GET {{\n      url {{\n        path /\n        digest {}\n      }}\n      connect_timeout 1\n      retry 2\n      delay_before_retry 0.5\n    }}\n",
        digest(index)
    )
}

/// The virtual server: rr over DR, delay_loop 1.
pub fn virtual_server(body: &str) -> String {
    format!(
        "virtual_server {VIP} 80 {{\n  delay_loop 1\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n{body}}}\n"
    )
}

/// Whether `host`'s table has destination `index` (with `weight`, any when
/// `None`).
pub fn has_destination(host: &Host, index: usize, weight: Option<u32>) -> bool {
    let address = format!("-> 10.77.0.{}:80 ", index + 1);
    table(host).iter().any(|l| {
        l.trim_start().starts_with(&address) && weight.is_none_or(|w| l.ends_with(&format!(" {w}")))
    })
}

/// Waits for the agent on `host` to be master with every real server in.
pub fn wait_serving(lab: &Lab, lb: usize) {
    wait_until(DEADLINE, "the LB to hold the VIP", || {
        lab.host(lb)
            .addresses("eth0")
            .iter()
            .any(|(a, _)| a.to_string() == VIP)
    });
    wait_until(DEADLINE, "every real server in the table", || {
        RS.iter().all(|&i| has_destination(lab.host(lb), i, None))
    });
}

/// Answers to `n` requests, by server name.
pub fn spread(lab: &Lab, n: usize) -> std::collections::BTreeMap<String, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..n {
        let who = lab.request().unwrap_or_else(|| "no answer".to_owned());
        *seen.entry(who).or_default() += 1;
    }
    seen
}

/// Seconds from now until `condition` holds.
pub fn time_until(what: &str, condition: impl FnMut() -> bool) -> f64 {
    let start = Instant::now();
    wait_until(DEADLINE, what, condition);
    start.elapsed().as_secs_f64()
}

// ===== tests =====

/// rr spreads requests evenly; a killed real server leaves the table
/// within delay_loop x retry + connect_timeout and comes back once it
/// answers again; with inhibit_on_failure it stays at weight 0.
pub fn checker_removes_and_restores() {
    let lab = Lab::new();
    let config = vrrp(150, "MASTER")
        + &virtual_server(&real_servers(&http_checker, &|i| {
            if i == RS[2] {
                "    inhibit_on_failure\n".to_owned()
            } else {
                String::new()
            }
        }));
    let agent = Daemon::agent(lab.host(LB1), &config);
    wait_serving(&lab, LB1);

    let seen = spread(&lab, 30);
    for &i in &RS {
        let n = seen.get(&name(i)).copied().unwrap_or(0);
        assert!(n >= 8, "rr spreads 30 requests over 3 servers: {seen:?}");
    }

    // delay_loop 1 x retry 2 + connect_timeout 1.
    let bound = 1.0 * 2.0 + 1.0;
    lab.kill_http(RS[0]);
    let removed = time_until("rs1 out of the table", || {
        !has_destination(lab.host(LB1), RS[0], None)
    });
    println!(
        "checker reaction (hactl-agent, HTTP_GET, rs killed -> out of the table): {removed:.2}s"
    );
    assert!(
        removed <= bound,
        "removed after {removed:.2}s, bound {bound}s"
    );
    let seen = spread(&lab, 12);
    assert!(
        !seen.contains_key(&name(RS[0])) && !seen.contains_key("no answer"),
        "{seen:?}"
    );
    lab.start_http(RS[0]);
    let restored = time_until("rs1 back in the table", || {
        has_destination(lab.host(LB1), RS[0], Some(1))
    });
    assert!(restored <= 2.5, "restored after {restored:.2}s");

    lab.kill_http(RS[2]);
    let inhibited = time_until("rs3 at weight 0", || {
        has_destination(lab.host(LB1), RS[2], Some(0))
    });
    assert!(inhibited <= bound, "inhibited after {inhibited:.2}s");
    let status = agent.status();
    let servers = &status["virtual_servers"][0]["real_servers"];
    assert_eq!(servers[2]["up"], false, "{status}");
    assert_eq!(servers[2]["weight"], 0, "{status}");
    assert_eq!(servers[0]["up"], true, "{status}");
    assert_eq!(servers[0]["transitions"], 2, "{status}");
    let log = agent.log();
    assert_eq!(
        log.matches("real server 10.77.0.4:80 DOWN").count(),
        1,
        "one line per transition:\n{log}"
    );
}

/// Every real server down: the sorry server answers; one back: it goes.
pub fn sorry_server_answers_when_all_are_down() {
    let lab = Lab::new();
    let body = format!(
        "  sorry_server 10.77.0.{} 80\n{}",
        SORRY + 1,
        real_servers(&http_checker, &|_| String::new())
    );
    let config = vrrp(150, "MASTER") + &virtual_server(&body);
    let agent = Daemon::agent(lab.host(LB1), &config);
    wait_serving(&lab, LB1);
    for &i in &RS {
        lab.kill_http(i);
    }
    wait_until(DEADLINE, "the sorry server in the table", || {
        has_destination(lab.host(LB1), SORRY, Some(1))
            && RS.iter().all(|&i| !has_destination(lab.host(LB1), i, None))
    });
    assert_eq!(lab.request().as_deref(), Some("sorry"));
    lab.start_http(RS[1]);
    wait_until(DEADLINE, "rs2 back, the sorry server out", || {
        has_destination(lab.host(LB1), RS[1], Some(1))
            && !has_destination(lab.host(LB1), SORRY, None)
    });
    assert_eq!(lab.request().as_deref(), Some("rs2"));
    let log = agent.log();
    assert!(log.contains("quorum lost"), "{log}");
    assert!(log.contains("quorum gained"), "{log}");
}

/// HTTP_GET with the wrong digest, or expecting another status, marks the
/// server down; the right ones keep it.
pub fn wrong_digest_or_status_is_down() {
    let lab = Lab::new();
    let checker = |i: usize| -> String {
        let url = match i {
            // rs1: right digest; rs2: rs1's digest; rs3: expects 404.
            3 => format!("path /\n        digest {}", digest(RS[0])),
            4 => format!("path /\n        digest {}", digest(RS[0])),
            _ => "path /\n        status_code 404".to_owned(),
        };
        format!(
            "    HTTP_GET {{\n      url {{\n        {url}\n      }}\n      connect_timeout 1\n      retry 0\n    }}\n"
        )
    };
    let config = vrrp(150, "MASTER") + &virtual_server(&real_servers(&checker, &|_| String::new()));
    let agent = Daemon::agent(lab.host(LB1), &config);
    wait_until(DEADLINE, "only rs1 in the table", || {
        let t = table(lab.host(LB1));
        has_destination(lab.host(LB1), RS[0], Some(1))
            && !has_destination(lab.host(LB1), RS[1], None)
            && !has_destination(lab.host(LB1), RS[2], None)
            && t.len() == 2
    });
    let status = agent.status();
    let servers = &status["virtual_servers"][0]["real_servers"];
    let last = |n: usize| {
        servers[n]["last_check"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(last(1).contains("digest"), "{status}");
    assert!(last(2).contains("status 200"), "{status}");
}

/// MISC_CHECK with misc_dynamic: the exit code sets the weight (code - 2),
/// 1 takes the server out.
pub fn misc_dynamic_sets_weights() {
    let lab = Lab::new();
    let scratch = Scratch::new("w");
    let file = |i: usize| scratch.file(&format!("exit{i}"));
    for &i in &RS {
        std::fs::write(file(i), "0").expect("exit file");
    }
    let checker = |i: usize| {
        format!(
            "    MISC_CHECK {{\n      misc_path \"/bin/sh -c 'exit $(cat {})'\"\n      misc_timeout 2\n      misc_dynamic\n    }}\n",
            file(i)
        )
    };
    let config = vrrp(150, "MASTER") + &virtual_server(&real_servers(&checker, &|_| String::new()));
    let _agent = Daemon::agent(lab.host(LB1), &config);
    wait_serving(&lab, LB1);
    std::fs::write(file(RS[0]), "7").expect("exit file");
    std::fs::write(file(RS[1]), "12").expect("exit file");
    std::fs::write(file(RS[2]), "1").expect("exit file");
    wait_until(DEADLINE, "weights 5 and 10, rs3 out", || {
        has_destination(lab.host(LB1), RS[0], Some(5))
            && has_destination(lab.host(LB1), RS[1], Some(10))
            && !has_destination(lab.host(LB1), RS[2], None)
    });
    // Exit 0: the weight stays.
    std::fs::write(file(RS[0]), "0").expect("exit file");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        has_destination(lab.host(LB1), RS[0], Some(5)),
        "{:?}",
        table(lab.host(LB1))
    );
}

/// The master LB's link dies: the backup takes the VIP, and its IPVS table
/// already serves it; the client sees only the takeover's outage.
pub fn failover_keeps_serving() {
    let lab = Lab::new();
    let body = real_servers(&http_checker, &|_| String::new());
    let master = Daemon::agent(
        lab.host(LB1),
        &(vrrp(150, "MASTER") + &virtual_server(&body)),
    );
    wait_serving(&lab, LB1);
    let backup = Daemon::agent(
        lab.host(LB2),
        &(vrrp(100, "BACKUP") + &virtual_server(&body)),
    );
    wait_until(DEADLINE, "the backup's table ready", || {
        RS.iter()
            .all(|&i| has_destination(lab.host(LB2), i, Some(1)))
    });
    assert!(lab.request().is_some());
    // Requests every 50 ms; the master's cable is pulled in the middle.
    let mut outage: Option<(Instant, Option<Instant>)> = None;
    let start = Instant::now();
    let mut pulled = false;
    while start.elapsed() < Duration::from_secs(20) {
        if !pulled && start.elapsed() > Duration::from_secs(1) {
            lab.segment.port_set(LB1, false);
            pulled = true;
        }
        let t = Instant::now();
        match (lab.request(), &mut outage) {
            (None, None) => outage = Some((t, None)),
            (Some(_), Some((_, end @ None))) => *end = Some(t),
            _ => {}
        }
        if matches!(outage, Some((_, Some(_)))) && t.duration_since(start) > Duration::from_secs(2)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (down, up) = outage.expect("pulling the master's cable interrupts the service");
    let up = up.expect("the backup serves the VIP");
    let gap = up.duration_since(down).as_secs_f64();
    // v3, advert 0.5 s, priority 100: Master_Down_Interval = 3 x 0.5 +
    // (256 - 100) x 0.5 / 256 = 1.8 s; the client's own timeouts on top.
    println!("failover with IPVS: client outage {gap:.2}s (Master_Down_Interval 1.80s)");
    assert!(gap <= 1.8 + 2.0, "outage {gap:.2}s");
    let seen = spread(&lab, 9);
    assert!(!seen.contains_key("no answer"), "{seen:?}");
    drop(master);
    drop(backup);
}

/// SSL_GET: the same checks over TLS (openssl s_server on rs1, a
/// self-signed certificate, which SSL_GET accepts as keepalived does);
/// rs2 speaks no TLS and stays out.
pub fn ssl_get_checks_over_tls() {
    let lab = Lab::new();
    let rs1 = lab.host(RS[0]);
    let dir = Scratch::new("tls");
    std::fs::write(dir.0.join("index.html"), format!("{}\n", name(RS[0]))).expect("page");
    let (key, cert) = (dir.file("k.pem"), dir.file("c.pem"));
    rs1.run(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=rs1",
        "-days",
        "1",
        "-keyout",
        &key,
        "-out",
        &cert,
    ]);
    let server = rs1.spawn(&[
        "sh",
        "-c",
        &format!(
            "cd {} && exec openssl s_server -quiet -accept 443 -cert {cert} -key {key} -WWW",
            dir.0.display()
        ),
    ]);
    let checker = |i: usize| {
        format!(
            "    SSL_GET {{\n      url {{\n        path /index.html\n        digest {}\n      }}\n      connect_port 443\n      connect_timeout 2\n      retry 0\n    }}\n",
            digest(i)
        )
    };
    let config = vrrp(150, "MASTER") + &virtual_server(&real_servers(&checker, &|_| String::new()));
    let agent = Daemon::agent(lab.host(LB1), &config);
    wait_until(DEADLINE, "only rs1 in the table", || {
        has_destination(lab.host(LB1), RS[0], Some(1))
            && !has_destination(lab.host(LB1), RS[1], None)
            && !has_destination(lab.host(LB1), RS[2], None)
    });
    let status = agent.status();
    let servers = &status["virtual_servers"][0]["real_servers"];
    assert_eq!(servers[0]["last_check"], "SSL_GET: ok", "{status}");
    drop(server);
}
