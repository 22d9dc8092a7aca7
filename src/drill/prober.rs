//! The VIP prober of a drill: ICMP echo requests from the controller to a
//! VIP every few milliseconds on a raw socket, each reply stamped on
//! arrival, so a drill can say when the VIP stopped and started answering
//! and how many probes it lost.
//!
//! The probes leave through the controller's own routing (the lab routes
//! its subnet via the controller's veth), so they see what a client sees,
//! including the controller's neighbour cache: after a takeover the new
//! master's gratuitous ARP must update the cached MAC of the VIP. Linux
//! ignores such an update within `locktime` (1 s by default) of the
//! entry's last update; the prober measures what happens and does not tune
//! the controller. Packet building and parsing are pure functions; the
//! socket work runs on one thread until [`Prober::finish`].

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// How often the prober sends.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(5);

/// Replies later than this after the prober stops sending are not waited for.
const STRAGGLER_WAIT: Duration = Duration::from_millis(100);

const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;
const ICMP_PROTOCOL: u8 = 1;
const PAYLOAD: &[u8; 8] = b"hactl-dr";

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot open a raw ICMP socket (the prober needs root or CAP_NET_RAW)")]
    Socket(#[source] std::io::Error),
    #[error("the prober thread failed")]
    Thread,
}

/// One probe: when it left and when its reply came, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub sent: Instant,
    pub reply: Option<Instant>,
}

/// An ICMP echo request (RFC 792) with our identifier and sequence number.
pub fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut packet = vec![ECHO_REQUEST, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(PAYLOAD);
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    packet
}

/// The Internet checksum (RFC 1071).
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The sequence number of an echo reply from `from` with identifier `id`,
/// given the IPv4 datagram a raw socket returns; `None` for anything else.
pub fn parse_reply(datagram: &[u8], from: Ipv4Addr, id: u16) -> Option<u16> {
    let header_len = usize::from(datagram.first()? & 0x0f) * 4;
    if datagram.first()? >> 4 != 4 || header_len < 20 || *datagram.get(9)? != ICMP_PROTOCOL {
        return None;
    }
    let source = Ipv4Addr::new(
        *datagram.get(12)?,
        *datagram.get(13)?,
        *datagram.get(14)?,
        *datagram.get(15)?,
    );
    let icmp = datagram.get(header_len..)?;
    if source != from || icmp.len() < 8 || icmp[0] != ECHO_REPLY || icmp[1] != 0 {
        return None;
    }
    if u16::from_be_bytes([icmp[4], icmp[5]]) != id {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// A running prober; [`Prober::finish`] stops it and returns the log.
pub struct Prober {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Probe>>>,
}

impl Prober {
    /// Starts probing `target` every `interval`.
    pub fn start(target: Ipv4Addr, interval: Duration) -> Result<Prober, ProbeError> {
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
            .map_err(ProbeError::Socket)?;
        // Identifier: this process and a counter, so two probers (two
        // drills, two hactl runs) never take each other's replies.
        static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let id = (std::process::id() as u16) ^ NEXT.fetch_add(0x1111, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("vip-prober".to_owned())
            .spawn(move || probe_loop(&socket, target, id, interval, &flag))
            .map_err(ProbeError::Socket)?;
        Ok(Prober {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops sending, waits briefly for late replies, returns the log.
    pub fn finish(mut self) -> Result<ProbeLog, ProbeError> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().ok_or(ProbeError::Thread)?;
        let probes = thread.join().map_err(|_| ProbeError::Thread)?;
        Ok(ProbeLog { probes })
    }
}

impl Drop for Prober {
    /// A prober dropped unfinished (Ctrl-C) stops its thread.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn probe_loop(
    socket: &Socket,
    target: Ipv4Addr,
    id: u16,
    interval: Duration,
    stop: &AtomicBool,
) -> Vec<Probe> {
    let address = SockAddr::from(SocketAddrV4::new(target, 0));
    let mut probes: Vec<Probe> = Vec::new();
    let mut next = Instant::now();
    let mut stopped_at: Option<Instant> = None;
    let mut buf = [0u8; 1500];
    loop {
        let now = Instant::now();
        match stopped_at {
            None if stop.load(Ordering::Relaxed) => stopped_at = Some(now),
            Some(at) if now >= at + STRAGGLER_WAIT => break,
            _ => {}
        }
        if stopped_at.is_none() && now >= next {
            let seq = probes.len() as u16;
            // A send error (no route while a link is down) is a lost probe.
            let _ = socket.send_to(&echo_request(id, seq), &address);
            probes.push(Probe {
                sent: now,
                reply: None,
            });
            next += interval;
            if next < now {
                next = now + interval;
            }
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let _ = socket.set_read_timeout(Some(wait));
        let mut reader = socket;
        if let Ok(n) = reader.read(&mut buf)
            && let Some(seq) = parse_reply(&buf[..n], target, id)
        {
            let arrived = Instant::now();
            // Sequence numbers wrap after 65536 probes (5 minutes at 5 ms):
            // the newest probe with that number is the one answered.
            let wrapped = probes
                .iter_mut()
                .enumerate()
                .rev()
                .find(|(i, _)| *i as u16 == seq);
            if let Some((_, probe)) = wrapped
                && probe.reply.is_none()
            {
                probe.reply = Some(arrived);
            }
        }
    }
    probes
}

/// What a prober saw.
#[derive(Debug, Clone, Default)]
pub struct ProbeLog {
    pub probes: Vec<Probe>,
}

impl ProbeLog {
    /// Probes sent in `[from, until)` that got no reply.
    pub fn lost_between(&self, from: Instant, until: Instant) -> usize {
        self.probes
            .iter()
            .filter(|p| p.sent >= from && p.sent < until && p.reply.is_none())
            .count()
    }

    /// Probes sent in `[from, until)` that were answered.
    pub fn answered_between(&self, from: Instant, until: Instant) -> usize {
        self.probes
            .iter()
            .filter(|p| p.sent >= from && p.sent < until && p.reply.is_some())
            .count()
    }

    /// The outage that follows `fault`: from `fault` to the reply to the
    /// first answered probe after the first lost one. `None` when no probe
    /// sent after `fault` (before `until`) was lost: the VIP never stopped
    /// answering.
    pub fn outage_after(&self, fault: Instant, until: Instant) -> Option<Duration> {
        let window = || {
            self.probes
                .iter()
                .filter(move |p| p.sent >= fault && p.sent < until)
        };
        let first_lost = window().position(|p| p.reply.is_none())?;
        let back = window()
            .skip(first_lost)
            .find_map(|p| p.reply)
            .unwrap_or(until);
        Some(back.saturating_duration_since(fault))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_bytes_and_checksum() {
        let packet = echo_request(0x1234, 7);
        assert_eq!(&packet[..8], &[8, 0, 0x49, 0x4f, 0x12, 0x34, 0, 7]);
        assert_eq!(&packet[8..], PAYLOAD);
        // A correct checksum sums to zero over the whole message.
        assert_eq!(checksum(&packet), 0);
    }

    fn reply(source: [u8; 4], kind: u8, id: u16, seq: u16) -> Vec<u8> {
        let mut d = vec![0x45, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0];
        d.extend_from_slice(&source);
        d.extend_from_slice(&[10, 0, 0, 1]);
        d.extend_from_slice(&[kind, 0, 0, 0]);
        d.extend_from_slice(&id.to_be_bytes());
        d.extend_from_slice(&seq.to_be_bytes());
        d.extend_from_slice(PAYLOAD);
        d
    }

    #[test]
    fn parse_reply_takes_only_our_echo_replies_from_the_target() {
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        assert_eq!(
            parse_reply(&reply([10, 0, 0, 100], 0, 9, 41), vip, 9),
            Some(41)
        );
        assert_eq!(parse_reply(&reply([10, 0, 0, 99], 0, 9, 41), vip, 9), None);
        assert_eq!(parse_reply(&reply([10, 0, 0, 100], 8, 9, 41), vip, 9), None);
        assert_eq!(parse_reply(&reply([10, 0, 0, 100], 0, 8, 41), vip, 9), None);
        let full = reply([10, 0, 0, 100], 0, 9, 41);
        for len in 0..27 {
            assert_eq!(parse_reply(&full[..len], vip, 9), None, "length {len}");
        }
    }

    #[test]
    fn outage_and_losses_from_a_log() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // Probes every 10 ms; 30..=60 lost; the reply to 70 comes at 72.
        let probes = (0..10)
            .map(|i| {
                let sent = ms(i * 10);
                let lost = (3..=6).contains(&i);
                Probe {
                    sent,
                    reply: (!lost).then(|| sent + Duration::from_millis(2)),
                }
            })
            .collect();
        let log = ProbeLog { probes };
        assert_eq!(log.lost_between(ms(0), ms(100)), 4);
        assert_eq!(log.answered_between(ms(0), ms(100)), 6);
        assert_eq!(
            log.outage_after(ms(25), ms(100)),
            Some(Duration::from_millis(47))
        );
        assert_eq!(log.outage_after(ms(70), ms(100)), None);
    }
}
