//! The daemon's tasks and its main loop.
//!
//! One task, the main loop, owns all protocol state ([`Daemon`]); every
//! other task only produces inputs for it over channels, or consumes work
//! it queued. Timers are not tasks: the main loop keeps one deadline per
//! (instance, timer) and sleeps until the earliest, so ArmTimer / StopTimer
//! are map updates and a stopped timer can never fire late.
//!
//! ```text
//!  recv thread (one per interface+family) ─Packet─┐
//!  vrrp_script task (one per script) ───Track─────┤
//!  link watcher task (rtnetlink events) ──Track───┤
//!                                                 v
//!  status server ──Request────────>  ┌─────────────────────────┐
//!     (unix socket, 0600)  <─Status──│ main loop: Daemon       │<── SIGTERM/SIGINT: shutdown
//!                                    │  Router (state machines)│<── SIGHUP: reload
//!                                    │  timers: deadline map   │<── sleep_until(earliest)
//!                                    └──┬──────────┬───────────┘
//!                     adverts (sendmsg) │          │ NotifyJob
//!                     VIPs + ledger     v          v
//!                              raw sockets,   notify queue task (one
//!                              ip addr        script at a time, timeout)
//!                                                  ^
//!  LVS thread (crate::lvs, own runtime): checkers,  │ notify_up/down,
//!  pools, IPVS table  <──reload/shutdown── main     │ quorum_up/down
//!                     ──status (watch)──>  loop     │
//! ```
//!
//! The IPVS half runs on its own thread so that checks and netlink calls
//! never delay an advert; the main loop only forwards SIGHUP and SIGTERM to
//! it and reads its status.
//!
//! Inputs carry the generation of the world that produced them, so a packet
//! read by a task of the configuration replaced at reload is ignored.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{self, Config, Family, VirtualAddress};
use crate::email;
use crate::glue::{self, INTERFACE_TRACK_PREFIX, NotifyScripts, Plan};
use crate::lvs;
use crate::metrics;
use crate::netlink::LinkEvents;
use crate::network::{self, Received, VrrpSocket};
use crate::notify::{self, NotifySender, RunAs, split_command};
use crate::status;
use crate::track::{self, TrackUpdate};

use super::clock::PreciseSleep;
use super::events::{Daemon, Origins, chain};
use super::realtime;
use super::vips::{VipDriver, VipLedger};
use super::vmac;
use super::{DaemonError, Options, log};

/// How long shutdown waits for queued notify scripts (notify_stop).
const NOTIFY_DRAIN: Duration = Duration::from_secs(5);

enum Input {
    Packet { socket: usize, received: Received },
    Track(TrackUpdate),
}

/// One configuration running: the protocol state and the tasks feeding it.
struct World {
    generation: u64,
    daemon: Daemon,
    tasks: Vec<JoinHandle<()>>,
    /// Tells the receive threads to end.
    stop: Arc<AtomicBool>,
    link_states: Vec<(String, bool)>,
}

impl World {
    /// A packet or a track update, unless it belongs to a replaced
    /// configuration.
    async fn input(&mut self, generation: u64, input: Input) {
        if generation != self.generation {
            return;
        }
        match input {
            Input::Packet { socket, received } => self.daemon.packet(socket, received).await,
            Input::Track(u) => self.daemon.track(&u.name, u.up).await,
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn interface_track(interface: &str) -> String {
    format!("{INTERFACE_TRACK_PREFIX}{interface}")
}

/// The plan for `config` on this host now.
fn plan_for(config: &Config) -> Result<Plan, DaemonError> {
    let vip_addresses: Vec<IpAddr> = config
        .vrrp_instances
        .iter()
        .flat_map(|i| i.virtual_ipaddress.iter().map(|v| v.address.addr))
        .collect();
    let primary = |interface: &str, family: Family| {
        network::primary_address(interface, family, &vip_addresses)
    };
    let mut plan = glue::plan(config, &primary)?;
    if config.global_defs.enable_script_security {
        for w in &mut plan.wire {
            refuse_insecure(&w.name, &mut w.notify);
        }
        for (name, scripts) in &mut plan.group_notify {
            refuse_insecure(name, scripts);
        }
    }
    Ok(plan)
}

/// enable_script_security: a notify script writable by a non-root user is
/// dropped (and logged), as keepalived disables it.
fn refuse_insecure(owner: &str, scripts: &mut NotifyScripts) {
    for slot in [
        &mut scripts.master,
        &mut scripts.backup,
        &mut scripts.fault,
        &mut scripts.stop,
        &mut scripts.generic,
    ] {
        let program = slot
            .as_deref()
            .map(split_command)
            .and_then(|argv| argv.into_iter().next());
        if let Some(program) = program
            && let Some(why) = track::insecure_reason(&program)
        {
            log(&format!(
                "{owner}: notify script refused by enable_script_security: {why}"
            ));
            *slot = None;
        }
    }
}

fn script_user(config: &Config) -> Result<Option<RunAs>, DaemonError> {
    let Some(su) = &config.global_defs.script_user else {
        return Ok(None);
    };
    RunAs::of(su)
        .map(Some)
        .ok_or_else(|| DaemonError::ScriptUser {
            user: su.user.clone(),
        })
}

#[allow(clippy::too_many_arguments)]
async fn build(
    io: &Handle,
    generation: u64,
    options: &Options,
    config: &Config,
    plan: Plan,
    origins: Origins,
    notify: NotifySender,
    inputs: &mpsc::Sender<(u64, Input)>,
) -> Result<World, DaemonError> {
    // One socket per interface and family, joined to every group used there.
    let mut wanted: BTreeMap<(String, bool), Vec<IpAddr>> = BTreeMap::new();
    for w in &plan.wire {
        let groups = wanted
            .entry((w.interface.clone(), w.family == Family::Ipv6))
            .or_default();
        for d in &w.destinations {
            if d.is_multicast() && !groups.contains(d) {
                groups.push(*d);
            }
        }
    }
    let mut sockets = Vec::new();
    for ((interface, v6), groups) in &wanted {
        let family = if *v6 { Family::Ipv6 } else { Family::Ipv4 };
        sockets.push(Arc::new(VrrpSocket::open(interface, family, groups)?));
    }
    for (base, v) in vmac::of(&plan) {
        vmac::ensure(base, v).await?;
    }
    let ledger = VipLedger::open(&options.state_dir, log)?;
    let vips = VipDriver::open()?;
    let daemon = Daemon::new(
        options.config.clone(),
        plan,
        sockets,
        ledger,
        vips,
        notify,
        origins,
    )?;

    let mut tasks = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    for (index, socket) in daemon.sockets().iter().enumerate() {
        let socket = Arc::clone(socket);
        let tx = inputs.clone();
        let stop = Arc::clone(&stop);
        // Receiving blocks: one thread per socket, checking `stop` at each
        // receive timeout.
        let spawned = std::thread::Builder::new()
            .name(format!("vrrp-recv-{}", socket.interface()))
            .spawn(move || {
                realtime::enter_vrrp_thread(&format!("receive on {}", socket.interface()));
                let mut failing = false;
                while !stop.load(Ordering::Relaxed) && !tx.is_closed() {
                    match socket.recv() {
                        Ok(Some(received)) => {
                            failing = false;
                            let input = Input::Packet {
                                socket: index,
                                received,
                            };
                            if tx.blocking_send((generation, input)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            if !failing {
                                log(&format!("receive on {}: {e}", socket.interface()));
                                failing = true;
                            }
                            // A persistent error (link gone) must not spin.
                            std::thread::sleep(network::RECV_POLL);
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            return Err(DaemonError::Runtime(e));
        }
    }

    // Scripts, link events and their forwarding run on the I/O thread.
    let _io = io.enter();
    let (track_tx, mut track_rx) = mpsc::channel::<TrackUpdate>(64);
    let run_as = script_user(config)?;
    let secure = config.global_defs.enable_script_security;
    let used: Vec<&str> = daemon
        .plan()
        .params
        .iter()
        .flat_map(|p| p.tracks.iter().map(|t| t.name.as_str()))
        .collect();
    for script in &config.vrrp_scripts {
        if used.contains(&script.name.as_str()) {
            let script = script.clone();
            let tx = track_tx.clone();
            let run_as = script.user.as_ref().map_or(Ok(run_as), |u| {
                let cfg = Config {
                    global_defs: config::GlobalDefs {
                        script_user: Some(u.clone()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                script_user(&cfg)
            })?;
            tasks.push(io.spawn(track::run_vrrp_script(script, run_as, secure, tx, log)));
        }
    }
    let links: Vec<String> = used
        .iter()
        .filter_map(|n| n.strip_prefix(INTERFACE_TRACK_PREFIX))
        .map(str::to_owned)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    // Subscribe first, then read: a change in between is not lost.
    let events = LinkEvents::open()?;
    let link_states = links
        .iter()
        .map(|l| (interface_track(l), network::link_up(l).unwrap_or(false)))
        .collect();
    tasks.push(io.spawn(track::watch_links(events, links, interface_track, track_tx)));
    let tx = inputs.clone();
    tasks.push(io.spawn(async move {
        while let Some(update) = track_rx.recv().await {
            if tx.send((generation, Input::Track(update))).await.is_err() {
                return;
            }
        }
    }));
    Ok(World {
        generation,
        daemon,
        tasks,
        stop,
        link_states,
    })
}

fn signal_stream(
    kind: SignalKind,
    name: &'static str,
) -> Result<tokio::signal::unix::Signal, DaemonError> {
    signal(kind).map_err(|source| DaemonError::Signal {
        signal: name,
        source,
    })
}

/// The email sender of `config`, if it mails anything (on the I/O thread).
fn mail_for(config: &Config, io: &Handle) -> Option<email::MailSender> {
    let settings = email::MailSettings::of(&config.global_defs)?;
    let _io = io.enter();
    Some(email::spawn(settings, log))
}

/// The daemon from start to exit. `io` runs everything that is not the
/// protocol: listeners, scripts, email.
pub async fn main(options: &Options, io: &Handle) -> Result<(), DaemonError> {
    let loaded = config::load(&options.config)?;
    for w in &loaded.warnings {
        log(&w.to_string());
    }
    let mut config = loaded.config;
    let plan = plan_for(&config)?;
    let policy = realtime::Policy::choose(&config.global_defs);
    realtime::install(policy);
    let mut term = signal_stream(SignalKind::terminate(), "SIGTERM")?;
    let mut int = signal_stream(SignalKind::interrupt(), "SIGINT")?;
    let mut hup = signal_stream(SignalKind::hangup(), "SIGHUP")?;
    let (notify_tx, notify_task) = {
        let _io = io.enter();
        notify::spawn_queue(script_user(&config)?, log)
    };
    let (input_tx, mut input_rx) = mpsc::channel::<(u64, Input)>(1024);
    let (status_tx, mut status_rx) = mpsc::channel(16);
    let (listener, metrics_listener) = {
        let _io = io.enter();
        let listener = status::bind(&options.socket)?;
        let metrics = match config.global_defs.metrics_listen {
            Some(address) => Some((address, metrics::bind(address)?)),
            None => None,
        };
        (listener, metrics)
    };
    let server = io.spawn(status::serve(listener, status_tx.clone()));
    let metrics_server = metrics_listener.map(|(address, listener)| {
        log(&format!("metrics on http://{address}/metrics"));
        io.spawn(metrics::serve(listener, status_tx))
    });

    let built = build(
        io,
        0,
        options,
        &config,
        plan,
        Origins::fresh(),
        notify_tx.clone(),
        &input_tx,
    )
    .await;
    let lvs = built.and_then(|world| {
        let lvs = lvs::spawn(
            &config,
            &options.state_dir,
            script_user(&config)?,
            notify_tx.clone(),
            log,
        )?;
        Ok((world, lvs))
    });
    let (mut world, lvs) = match lvs {
        Ok(w) => w,
        Err(e) => {
            server.abort();
            if let Some(m) = &metrics_server {
                m.abort();
            }
            let _ = std::fs::remove_file(&options.socket);
            return Err(e);
        }
    };
    log(&format!(
        "running {} instance(s) from {}",
        world.daemon.plan().wire.len(),
        options.config.display()
    ));
    world.daemon.set_mail(mail_for(&config, io));
    let states = world.link_states.clone();
    world.daemon.start(&states).await;
    // The protocol loop itself: real-time from here (the start's one-off
    // work, leftovers and netlink, ran before).
    realtime::enter_vrrp_thread("protocol loop");
    log(&realtime::describe(&policy));
    let mut demoted_at: Option<tokio::time::Instant> = None;
    let clock = PreciseSleep::new();

    loop {
        if demoted_at.is_none() && realtime::demoted() {
            log(&format!(
                "RLIMIT_RTTIME reached (SIGXCPU): the VRRP threads are SCHED_OTHER for {} s",
                realtime::DEMOTION_HOLD.as_secs()
            ));
            demoted_at = Some(tokio::time::Instant::now());
        }
        if demoted_at.is_some_and(|at| at.elapsed() >= realtime::DEMOTION_HOLD) {
            if let Some(line) = realtime::restore() {
                log(&line);
            }
            demoted_at = None;
        }
        let deadline = world.daemon.next_deadline();
        tokio::select! {
            // Timers first (a flood of packets must not delay an advert),
            // then packets, requests and signals; address work last.
            biased;
            () = sleep_until(&clock, deadline), if deadline.is_some() => {
                // A loop that did not run for a while wakes with the confirm
                // timer and its master's advert both ready: the advert (read
                // by the receiver threads, waiting here) goes first, at most
                // what is queued now.
                if world.daemon.confirmed_master_down_due() {
                    for _ in 0..input_rx.len() {
                        match input_rx.try_recv() {
                            Ok((generation, input)) => world.input(generation, input).await,
                            Err(_) => break,
                        }
                    }
                }
                world.daemon.fire_due().await;
            }
            Some((generation, input)) = input_rx.recv() => world.input(generation, input).await,
            Some(request) = status_rx.recv() => match request {
                status::Request::Status(reply) => {
                    let mut snapshot = world.daemon.snapshot();
                    if let Some(lvs) = &lvs {
                        snapshot.virtual_servers = lvs.status();
                    }
                    let _ = reply.send(snapshot);
                }
                status::Request::Control { request, reply } => {
                    let answer = control(&mut world.daemon, request).await;
                    let _ = reply.send(answer);
                }
            },
            _ = term.recv() => { log("SIGTERM: releasing"); break; }
            _ = int.recv() => { log("SIGINT: releasing"); break; }
            _ = hup.recv() => {
                if let Some(new_config) = reload(io, &mut world, &config, options, &notify_tx, &input_tx).await {
                    if new_config.global_defs.metrics_listen != config.global_defs.metrics_listen {
                        log("SIGHUP: metrics_listen changes with the next restart");
                    }
                    if let Some(lvs) = &lvs {
                        lvs.reload(&new_config);
                    } else if !new_config.virtual_servers.is_empty() {
                        log("SIGHUP: virtual servers added: they start with the next restart");
                    }
                    config = new_config;
                }
            }
            // Last: address work only when no packet or timer is ready.
            () = std::future::ready(()), if world.daemon.has_vip_work() => world.daemon.vip_work().await,
        }
    }

    world.daemon.shutdown().await;
    if let Some(lvs) = lvs {
        lvs.shutdown().await;
    }
    remove_vmacs(world.daemon.plan(), None).await;
    drop(world);
    server.abort();
    if let Some(m) = metrics_server {
        m.abort();
    }
    drop(notify_tx);
    if tokio::time::timeout(NOTIFY_DRAIN, notify_task)
        .await
        .is_err()
    {
        log("notify scripts still running at exit");
    }
    let _ = std::fs::remove_file(&options.socket);
    log("stopped");
    Ok(())
}

/// A takeover or release from the status socket.
async fn control(daemon: &mut Daemon, request: status::ControlRequest) -> status::ControlReply {
    use crate::instance::Event;
    let (instance, event) = match request {
        status::ControlRequest::Status => {
            return status::ControlReply {
                ok: true,
                instances: Vec::new(),
                error: None,
            };
        }
        status::ControlRequest::Takeover { instance, priority } => (
            instance,
            Event::Takeover {
                priority: priority.unwrap_or(status::TAKEOVER_PRIORITY),
            },
        ),
        status::ControlRequest::Release { instance } => (instance, Event::Release),
    };
    log(&format!(
        "{event} requested for {}",
        instance.as_deref().unwrap_or("every instance")
    ));
    match daemon.operator(instance.as_deref(), &event).await {
        Some(instances) => status::ControlReply {
            ok: true,
            instances,
            error: None,
        },
        None => status::ControlReply {
            ok: false,
            instances: Vec::new(),
            error: Some(format!(
                "no instance {}",
                instance.as_deref().unwrap_or_default()
            )),
        },
    }
}

async fn sleep_until(clock: &PreciseSleep, deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => clock.until(at).await,
        None => std::future::pending().await,
    }
}

/// SIGHUP: re-read the config. Instances whose settings did not change run
/// on untouched (state, timers, counters, history); changed and removed ones
/// are stopped (releasing their VIPs), new and changed ones start. A change
/// of sync groups restarts everything. A broken config keeps the old one
/// running. Returns the config now running when it changed.
async fn reload(
    io: &Handle,
    world: &mut World,
    old: &Config,
    options: &Options,
    notify: &NotifySender,
    inputs: &mpsc::Sender<(u64, Input)>,
) -> Option<Config> {
    let keep_old = |e: &dyn std::error::Error| {
        log(&format!("SIGHUP: keeping the running config: {}", chain(e)));
    };
    let loaded = match config::load(&options.config) {
        Ok(l) => l,
        Err(e) => {
            keep_old(&e);
            if let config::ConfigError::Invalid { diagnostics, .. } = &e {
                for d in diagnostics {
                    log(&d.to_string());
                }
            }
            return None;
        }
    };
    let plan = match plan_for(&loaded.config) {
        Ok(p) => p,
        Err(e) => {
            keep_old(&e);
            return None;
        }
    };
    let old_plan = world.daemon.plan().clone();
    let kept = kept_instances(&old_plan, old, &plan, &loaded.config);
    // Kept instances whose virtual addresses changed: new index, old set.
    let readdressed: Vec<(usize, Vec<VirtualAddress>)> = kept
        .iter()
        .enumerate()
        .filter_map(|(n, o)| {
            let old_vips = &old_plan.wire[(*o)?].vips;
            (*old_vips != plan.wire[n].vips).then(|| (n, old_vips.clone()))
        })
        .collect();
    if plan == old_plan && kept.iter().all(Option::is_some) {
        let lvs_same = loaded.config.virtual_servers == old.virtual_servers
            && loaded.config.virtual_server_groups == old.virtual_server_groups;
        if lvs_same {
            log("SIGHUP: config unchanged");
            return None;
        }
        // Only the IPVS half changed: the VRRP instances run on untouched.
        log("SIGHUP: vrrp instances unchanged");
        return Some(loaded.config);
    }
    let stopped: Vec<usize> = (0..old_plan.wire.len())
        .filter(|o| !kept.contains(&Some(*o)))
        .collect();
    let fresh: Vec<usize> = (0..plan.wire.len())
        .filter(|&n| kept[n].is_none())
        .collect();
    log(&format!(
        "SIGHUP: config changed: {} instance(s) kept, {} stopped, {} started",
        kept.iter().flatten().count(),
        stopped.len(),
        fresh.len()
    ));
    let mut origins = world.daemon.origins();
    origins.carried = kept
        .iter()
        .map(|k| k.map(|o| world.daemon.carry(o)))
        .collect();
    // Stop first: the new daemon's ledger must see the released VIPs gone.
    world.daemon.shutdown_some(&stopped).await;
    let built = build(
        io,
        world.generation + 1,
        options,
        &loaded.config,
        plan,
        origins,
        notify.clone(),
        inputs,
    )
    .await;
    match built {
        Ok(mut new_world) => {
            new_world.daemon.set_mail(mail_for(&loaded.config, io));
            remove_vmacs(&old_plan, Some(new_world.daemon.plan())).await;
            let states = new_world.link_states.clone();
            new_world.daemon.resume(&states, fresh).await;
            new_world.daemon.change_vips(&readdressed).await;
            *world = new_world;
            Some(loaded.config)
        }
        Err(e) => {
            keep_old(&e);
            world.daemon.restart(&stopped).await;
            None
        }
    }
}

/// Deletes the virtual MAC interfaces of `plan` that `keep` does not use.
async fn remove_vmacs(plan: &Plan, keep: Option<&Plan>) {
    let kept: Vec<String> = keep
        .map(|k| vmac::of(k).iter().map(|(_, v)| v.name.clone()).collect())
        .unwrap_or_default();
    for (_, v) in vmac::of(plan) {
        if !kept.contains(&v.name)
            && let Err(e) = vmac::remove(&v.name).await
        {
            log(&format!("cannot delete {}: {}", v.name, chain(&e)));
        }
    }
}

/// For each instance of the new plan, the index of the identical running
/// one, if any. Identical means the same name, settings and tracked scripts;
/// any sync group change keeps nothing.
fn kept_instances(
    old_plan: &Plan,
    old_config: &Config,
    plan: &Plan,
    config: &Config,
) -> Vec<Option<usize>> {
    if old_plan.sync_groups != plan.sync_groups || old_plan.group_notify != plan.group_notify {
        return vec![None; plan.wire.len()];
    }
    let same_script = |name: &str| {
        let find = |c: &Config| {
            c.vrrp_scripts.iter().find(|s| s.name == name).map(|s| {
                (
                    s.script.clone(),
                    s.interval,
                    s.timeout,
                    s.weight,
                    s.weight_reverse,
                    s.rise,
                    s.fall,
                    s.user.clone(),
                )
            })
        };
        find(old_config) == find(config)
    };
    (0..plan.wire.len())
        .map(|n| {
            let o = old_plan
                .wire
                .iter()
                .position(|w| w.name == plan.wire[n].name)?;
            // The addresses may change under a running instance
            // (`Daemon::change_vips`); anything else restarts it.
            let mut wire = plan.wire[n].clone();
            wire.vips.clone_from(&old_plan.wire[o].vips);
            let same = old_plan.wire[o] == wire
                && old_plan.params[o] == plan.params[n]
                && plan.params[n].tracks.iter().all(|t| same_script(&t.name));
            same.then_some(o)
        })
        .collect()
}
