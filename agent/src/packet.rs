//! The VRRP wire format: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798)
//! advertisements over IPv4 and IPv6, and nothing else.
//!
//! This module turns bytes into an [`Advertisement`] and back, checksums
//! included, and parses the IPv4 header that a raw IPv4 socket hands over
//! with each packet. It owns no socket and no clock: the socket layer reads
//! bytes and ancillary data, the state machine judges the decoded advert
//! (VRID, version, interval, addresses against its configuration). Every way
//! a packet can be refused is a [`DecodeError`] variant with a stable
//! [`DecodeError::reason`] label, so each refusal can be counted.
//!
//! Secrets: a VRRPv2 `auth_pass` lives in [`AuthPass`], whose `Debug` output
//! is redacted and which never appears in an error.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// IP protocol number of VRRP (RFC 5798 5.1.1.4, RFC 3768 5.2.4).
pub const IPPROTO_VRRP: u8 = 112;

/// TTL / hop limit of every VRRP packet; a received packet with any other
/// value MUST be discarded (RFC 5798 5.1.1.3, 7.1; RFC 3768 5.2.3, 7.1).
pub const VRRP_TTL: u8 = 255;

/// IPv4 multicast group of VRRP (RFC 5798 5.1.1.2).
pub const VRRP_MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// IPv6 multicast group of VRRP (RFC 5798 5.1.2.2).
pub const VRRP_MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// Priority of a master that is leaving: backups take over after
/// Skew_Time instead of Master_Down_Interval (RFC 5798 6.4.3, 6.4.2).
pub const PRIORITY_STOP: u8 = 0;

/// Priority of the address owner, which never waits to become master
/// (RFC 5798 5.2.4).
pub const PRIORITY_OWNER: u8 = 255;

/// Largest VRRPv3 Max Advertise Interval: 12 bits of centiseconds
/// (RFC 5798 5.2.7), a little under 41 seconds.
pub const V3_MAX_ADVERT_INTERVAL_CS: u16 = 0x0fff;

/// Largest VRRPv2 Advertisement Interval: 8 bits of seconds (RFC 3768 5.3.7).
pub const V2_MAX_ADVERT_INTERVAL_S: u8 = u8::MAX;

/// Length of the VRRPv2 Authentication Data field (RFC 3768 5.3.10).
pub const V2_AUTH_DATA_LEN: usize = 8;

/// The fixed part of both versions: everything before the addresses.
const FIXED_LEN: usize = 8;

/// VRRP packet type 1, the only one defined (RFC 5798 5.2.2).
const TYPE_ADVERTISEMENT: u8 = 1;

/// VRRPv2 Auth Type values: 0 and 1 per RFC 2338 5.3.6 (kept by RFC 3768
/// for compatibility), 2 is the IPsec AH type keepalived still offers.
const AUTH_TYPE_NONE: u8 = 0;
const AUTH_TYPE_PASS: u8 = 1;
/// Offset of the checksum in both versions.
const CHECKSUM_OFFSET: usize = 6;

// ===== Version =====

/// VRRP protocol version, the high nibble of the first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, interval in seconds, optional simple password.
    V2,
    /// RFC 5798: IPv4 or IPv6, interval in centiseconds, no authentication.
    V3,
}

impl Version {
    /// The number on the wire.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

// ===== Authentication (VRRPv2) =====

/// A VRRPv2 simple-text password, exactly as it travels: 8 bytes, shorter
/// passwords padded with zero bytes (as keepalived does).
///
/// `Debug` never shows the bytes, and there is no `Display`: a password must
/// not reach a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthPass([u8; V2_AUTH_DATA_LEN]);

/// A configured password longer than the 8 bytes VRRPv2 can carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("auth_pass is {len} bytes, vrrp version 2 carries at most {V2_AUTH_DATA_LEN}")]
pub struct AuthPassTooLong {
    /// Length of the refused password, never its content.
    pub len: usize,
}

impl AuthPass {
    /// A password from configuration; refuses more than 8 bytes.
    pub fn new(pass: &[u8]) -> Result<AuthPass, AuthPassTooLong> {
        if pass.len() > V2_AUTH_DATA_LEN {
            return Err(AuthPassTooLong { len: pass.len() });
        }
        Ok(AuthPass::truncated(pass))
    }

    /// A password cut to its first 8 bytes, as keepalived reads an
    /// over-long `auth_pass` (keepalived.conf(5): "only the first eight (8)
    /// characters are used").
    pub fn truncated(pass: &[u8]) -> AuthPass {
        let mut data = [0u8; V2_AUTH_DATA_LEN];
        let n = pass.len().min(V2_AUTH_DATA_LEN);
        data[..n].copy_from_slice(&pass[..n]);
        AuthPass(data)
    }

    /// The 8 bytes as they go on the wire.
    pub fn as_bytes(&self) -> &[u8; V2_AUTH_DATA_LEN] {
        &self.0
    }
}

impl fmt::Debug for AuthPass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthPass(<redacted>)")
    }
}

/// True when a received PASS authentication field equals the configured
/// password. All 8 bytes are compared, zero padding included, and the time
/// taken does not depend on where the first difference is.
pub fn pass_matches(received: &AuthPass, configured: &AuthPass) -> bool {
    received
        .0
        .iter()
        .zip(configured.0.iter())
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

/// Authentication of an advertisement. VRRPv3 has none (RFC 5798 removed
/// it), so a v3 advertisement always carries [`Auth::None`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Auth Type 0: no authentication (the Authentication Data is zero).
    None,
    /// Auth Type 1: simple text password (RFC 2338 5.3.6.1).
    Pass(AuthPass),
}

impl Auth {
    /// The Auth Type number on the wire.
    pub fn type_number(&self) -> u8 {
        match self {
            Auth::None => AUTH_TYPE_NONE,
            Auth::Pass(_) => AUTH_TYPE_PASS,
        }
    }
}

// ===== Advertisement =====

/// A VRRP advertisement, version 2 or 3.
///
/// VRRPv2, RFC 3768 section 5.1 (IPv4 only):
///
/// ```text
///     0                   1                   2                   3
///     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |   Auth Type   |   Adver Int   |          Checksum             |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                         IP Address (1)                        |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                            .                                  |
///    |                            .                                  |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                         IP Address (n)                        |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                     Authentication Data (1)                   |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                     Authentication Data (2)                   |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// VRRPv3, RFC 5798 section 5.1 (IPv4 or IPv6 addresses, never mixed):
///
/// ```text
///     0                   1                   2                   3
///     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                    IPv4 Fields or IPv6 Fields                 |
///   ...                                                             ...
///    |                                                               |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |(rsvd) |     Max Adver Int     |          Checksum             |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                                                               |
///    +                                                               +
///    |                       IPvX Address(es)                        |
///    +                                                               +
///    +                                                               +
///    +                                                               +
///    +                                                               +
///    |                                                               |
///    +                                                               +
///    |                                                               |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Type is always 1 (advertisement). The v2 checksum covers the VRRP
/// message alone (RFC 3768 5.3.8); the v3 checksum also covers the IPv4 or
/// IPv6 pseudo-header with protocol 112 (RFC 5798 5.2.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertisement {
    pub version: Version,
    /// Virtual Router ID, 1..=255.
    pub vrid: u8,
    /// [`PRIORITY_STOP`] (the master is leaving), 1..=254, or
    /// [`PRIORITY_OWNER`].
    pub priority: u8,
    /// The advertisement interval in centiseconds. VRRPv2 carries whole
    /// seconds, so a v2 value is a multiple of 100; VRRPv3 carries
    /// 1..=[`V3_MAX_ADVERT_INTERVAL_CS`].
    pub advert_interval_cs: u16,
    /// VRRPv2 authentication; always [`Auth::None`] for VRRPv3.
    pub auth: Auth,
    /// The virtual addresses, all of one family: IPv4 for v2, the family of
    /// the IP header for v3.
    pub addresses: Vec<IpAddr>,
}

impl Advertisement {
    /// The advertisement interval as a duration.
    pub fn advert_interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.advert_interval_cs) * 10)
    }

    /// Encode for sending from `src` to `dst` (the addresses the IP header
    /// will carry; they enter the VRRPv3 checksum), checksum filled in.
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, EncodeError> {
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(EncodeError::AddressFamilyMismatch { src, dst });
        }
        if self.version == Version::V2 && src.is_ipv6() {
            return Err(EncodeError::V2OverIpv6);
        }
        if self.vrid == 0 {
            return Err(EncodeError::BadVrid);
        }
        if let Some(&addr) = self.addresses.iter().find(|a| a.is_ipv4() != src.is_ipv4()) {
            return Err(EncodeError::AddressNotInFamily { addr, src });
        }
        let count = u8::try_from(self.addresses.len())
            .map_err(|_| EncodeError::TooManyAddresses(self.addresses.len()))?;
        let interval_field = self.interval_field()?;
        if self.version == Version::V3 && self.auth != Auth::None {
            return Err(EncodeError::AuthInV3);
        }

        let addr_len = if src.is_ipv4() { 4 } else { 16 };
        let mut out =
            Vec::with_capacity(FIXED_LEN + addr_len * self.addresses.len() + V2_AUTH_DATA_LEN);
        out.push(self.version.number() << 4 | TYPE_ADVERTISEMENT);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(count);
        match self.version {
            Version::V2 => {
                out.push(self.auth.type_number());
                out.push(interval_field.to_be_bytes()[1]);
            }
            // RFC 5798 5.2.6: the reserved bits MUST be zero on transmit.
            Version::V3 => out.extend_from_slice(&interval_field.to_be_bytes()),
        }
        out.extend_from_slice(&[0, 0]);
        for addr in &self.addresses {
            match addr {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            match &self.auth {
                Auth::None => out.extend_from_slice(&[0; V2_AUTH_DATA_LEN]),
                Auth::Pass(pass) => out.extend_from_slice(pass.as_bytes()),
            }
        }
        let sum = checksum(self.version, &out, src, dst);
        out[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2].copy_from_slice(&sum.to_be_bytes());
        Ok(out)
    }

    /// The value of the interval field: seconds for v2, centiseconds for v3.
    fn interval_field(&self) -> Result<u16, EncodeError> {
        let cs = self.advert_interval_cs;
        let fits = match self.version {
            Version::V2 => {
                cs % 100 == 0 && (100..=u16::from(V2_MAX_ADVERT_INTERVAL_S) * 100).contains(&cs)
            }
            Version::V3 => (1..=V3_MAX_ADVERT_INTERVAL_CS).contains(&cs),
        };
        if !fits {
            return Err(EncodeError::IntervalOutOfRange {
                version: self.version,
                interval_cs: cs,
            });
        }
        Ok(match self.version {
            Version::V2 => cs / 100,
            Version::V3 => cs,
        })
    }

    /// Check the advert's authentication against the configured one
    /// (RFC 2338 7.1, kept for v2 by keepalived): the types must agree and,
    /// for PASS, all 8 bytes must match. VRRPv3 configures [`Auth::None`].
    pub fn check_auth(&self, configured: &Auth) -> Result<(), DecodeError> {
        match (&self.auth, configured) {
            (Auth::None, Auth::None) => Ok(()),
            (Auth::Pass(received), Auth::Pass(wanted)) => {
                if pass_matches(received, wanted) {
                    Ok(())
                } else {
                    Err(DecodeError::AuthMismatch)
                }
            }
            (received, wanted) => Err(DecodeError::AuthTypeMismatch {
                received: received.type_number(),
                configured: wanted.type_number(),
            }),
        }
    }
}

/// Decode and verify a VRRP message (the IP payload) received from `src` at
/// `dst`, the addresses of its IP header.
///
/// Checks, in order: the fixed header is there, version 2 or 3, type 1,
/// VRID not 0, `src`/`dst` of one family (IPv4 for v2), the length matches
/// the address count, the checksum, a non-zero interval, a known v2 auth
/// type. Checks that need configuration (VRID, interval, addresses, the
/// password via [`Advertisement::check_auth`]) and the TTL (see
/// [`check_ttl`]) are left to the caller.
pub fn decode(bytes: &[u8], src: IpAddr, dst: IpAddr) -> Result<Advertisement, DecodeError> {
    if bytes.len() < FIXED_LEN {
        return Err(DecodeError::TooShort {
            len: bytes.len(),
            need: FIXED_LEN,
        });
    }
    let version = match bytes[0] >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        other => return Err(DecodeError::BadVersion(other)),
    };
    let packet_type = bytes[0] & 0x0f;
    if packet_type != TYPE_ADVERTISEMENT {
        return Err(DecodeError::BadType(packet_type));
    }
    let vrid = bytes[1];
    if vrid == 0 {
        return Err(DecodeError::BadVrid);
    }
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(DecodeError::AddressFamilyMismatch { src, dst });
    }
    if version == Version::V2 && src.is_ipv6() {
        return Err(DecodeError::V2OverIpv6 { src });
    }
    let priority = bytes[2];
    let count = bytes[3];
    let addr_len = if src.is_ipv4() { 4 } else { 16 };
    let auth_len = match version {
        Version::V2 => V2_AUTH_DATA_LEN,
        Version::V3 => 0,
    };
    let expected = FIXED_LEN + addr_len * usize::from(count) + auth_len;
    if bytes.len() != expected {
        return Err(DecodeError::CountMismatch {
            count,
            expected,
            len: bytes.len(),
        });
    }
    let received = u16::from_be_bytes([bytes[CHECKSUM_OFFSET], bytes[CHECKSUM_OFFSET + 1]]);
    let computed = checksum(version, bytes, src, dst);
    if received != computed {
        return Err(DecodeError::BadChecksum { received, computed });
    }
    let advert_interval_cs = match version {
        Version::V2 => u16::from(bytes[5]) * 100,
        // RFC 5798 5.2.6: the reserved bits are ignored on receive.
        Version::V3 => u16::from_be_bytes([bytes[4], bytes[5]]) & V3_MAX_ADVERT_INTERVAL_CS,
    };
    if advert_interval_cs == 0 {
        return Err(DecodeError::ZeroInterval);
    }
    let addr_end = FIXED_LEN + addr_len * usize::from(count);
    let addresses = bytes[FIXED_LEN..addr_end]
        .chunks_exact(addr_len)
        .map(read_address)
        .collect();
    let auth = match version {
        Version::V3 => Auth::None,
        Version::V2 => match bytes[4] {
            // RFC 3768 5.3.10: Authentication Data is ignored on reception.
            AUTH_TYPE_NONE => Auth::None,
            AUTH_TYPE_PASS => Auth::Pass(AuthPass::truncated(&bytes[addr_end..])),
            other => return Err(DecodeError::UnsupportedAuthType(other)),
        },
    };
    Ok(Advertisement {
        version,
        vrid,
        priority,
        advert_interval_cs,
        auth,
        addresses,
    })
}

/// One address field; `chunk` is 4 or 16 bytes (`chunks_exact` of the
/// family's length).
fn read_address(chunk: &[u8]) -> IpAddr {
    if let [a, b, c, d] = *chunk {
        return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    }
    let mut octets = [0u8; 16];
    let n = chunk.len().min(16);
    octets[..n].copy_from_slice(&chunk[..n]);
    IpAddr::V6(Ipv6Addr::from(octets))
}

/// The VRRP checksum of `message` (its checksum field counted as zero):
/// over the message alone for v2 (RFC 3768 5.3.8), over the pseudo-header
/// of `src`/`dst` with protocol 112 plus the message for v3 (RFC 5798
/// 5.2.8; RFC 8200 8.1 for IPv6, RFC 768 style for IPv4).
pub fn checksum(version: Version, message: &[u8], src: IpAddr, dst: IpAddr) -> u16 {
    let mut sum = 0u64;
    if version == Version::V3 {
        let len = message.len() as u64;
        match (src, dst) {
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                sum = add_words(sum, &s.octets());
                sum = add_words(sum, &d.octets());
                sum += (len >> 16) + (len & 0xffff) + u64::from(IPPROTO_VRRP);
            }
            (s, d) => {
                sum = add_words(sum, &ip_octets_v4(s));
                sum = add_words(sum, &ip_octets_v4(d));
                sum += (len & 0xffff) + u64::from(IPPROTO_VRRP);
            }
        }
    }
    let head = message.len().min(CHECKSUM_OFFSET);
    sum = add_words(sum, &message[..head]);
    if message.len() > CHECKSUM_OFFSET + 2 {
        sum = add_words(sum, &message[CHECKSUM_OFFSET + 2..]);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Add `bytes` as big-endian 16-bit words (a trailing odd byte is the high
/// half of a last word, RFC 1071).
fn add_words(mut sum: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// An address for the IPv4 pseudo-header. Only reached with two IPv4
/// addresses from `encode` and `decode`; a mixed pair from a direct caller
/// sums the IPv4-mapped form rather than panicking.
fn ip_octets_v4(addr: IpAddr) -> [u8; 4] {
    match addr {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or([0; 4], |a| a.octets()),
    }
}

/// Refuse a packet whose TTL (IPv4) or hop limit (IPv6, from ancillary
/// data) is not 255: it crossed a router (RFC 5798 7.1).
pub fn check_ttl(ttl: u8) -> Result<(), DecodeError> {
    if ttl == VRRP_TTL {
        Ok(())
    } else {
        Err(DecodeError::BadTtl(ttl))
    }
}

// ===== IPv4 header (raw sockets) =====

/// The fields of an IPv4 header that the VRRP receive path needs. A raw
/// IPv4 socket returns the header in front of the payload; a raw IPv6
/// socket does not (its hop limit comes from `IPV6_HOPLIMIT` ancillary
/// data), so there is no IPv6 counterpart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Header length in bytes (IHL * 4).
    pub header_len: usize,
    /// Total Length: header plus payload.
    pub total_len: usize,
    pub ttl: u8,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
}

/// Parse the IPv4 header at the start of `packet` (as a raw socket returns
/// it) and return it with the payload it announces. The header checksum is
/// not checked: the kernel has done so before delivering.
pub fn parse_ipv4_header(packet: &[u8]) -> Result<(Ipv4Header, &[u8]), DecodeError> {
    const MIN: usize = 20;
    if packet.len() < MIN {
        return Err(DecodeError::TooShort {
            len: packet.len(),
            need: MIN,
        });
    }
    let version = packet[0] >> 4;
    if version != 4 {
        return Err(DecodeError::BadIpHeader(IpHeaderFault::Version(version)));
    }
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    if header_len < MIN || header_len > packet.len() {
        return Err(DecodeError::BadIpHeader(IpHeaderFault::HeaderLength {
            header_len,
            len: packet.len(),
        }));
    }
    let total_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if total_len < header_len || total_len > packet.len() {
        return Err(DecodeError::BadIpHeader(IpHeaderFault::TotalLength {
            total_len,
            len: packet.len(),
        }));
    }
    let header = Ipv4Header {
        header_len,
        total_len,
        ttl: packet[8],
        protocol: packet[9],
        src: Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        dst: Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]),
    };
    Ok((header, &packet[header_len..total_len]))
}

/// Parse what a raw IPv4 protocol-112 socket returned: the IP header, then
/// the advertisement, checking protocol and TTL on the way.
pub fn decode_ipv4_packet(packet: &[u8]) -> Result<(Ipv4Header, Advertisement), DecodeError> {
    let (header, payload) = parse_ipv4_header(packet)?;
    if header.protocol != IPPROTO_VRRP {
        return Err(DecodeError::NotVrrp(header.protocol));
    }
    check_ttl(header.ttl)?;
    let advert = decode(payload, header.src.into(), header.dst.into())?;
    Ok((header, advert))
}

// ===== Errors =====

/// Why a received packet was refused. Each variant carries what was seen,
/// never a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("packet too short: {len} bytes, need at least {need}")]
    TooShort { len: usize, need: usize },
    #[error("unsupported vrrp version {0}")]
    BadVersion(u8),
    #[error("unsupported vrrp packet type {0}, only 1 (advertisement) exists")]
    BadType(u8),
    #[error("virtual router id 0 is not valid")]
    BadVrid,
    #[error("source {src} and destination {dst} are of different address families")]
    AddressFamilyMismatch { src: IpAddr, dst: IpAddr },
    #[error("vrrp version 2 packet over ipv6 from {src}")]
    V2OverIpv6 { src: IpAddr },
    #[error("address count {count} needs a {expected}-byte packet, got {len} bytes")]
    CountMismatch {
        count: u8,
        expected: usize,
        len: usize,
    },
    #[error("bad checksum {received:#06x}, computed {computed:#06x}")]
    BadChecksum { received: u16, computed: u16 },
    #[error("advertisement interval of 0")]
    ZeroInterval,
    #[error("unsupported authentication type {0}")]
    UnsupportedAuthType(u8),
    #[error("authentication type {received} does not match the configured type {configured}")]
    AuthTypeMismatch { received: u8, configured: u8 },
    #[error("authentication password does not match")]
    AuthMismatch,
    #[error("ttl {0} is not 255")]
    BadTtl(u8),
    #[error("ip protocol {0} is not vrrp (112)")]
    NotVrrp(u8),
    #[error("bad ipv4 header: {0}")]
    BadIpHeader(IpHeaderFault),
}

/// What is wrong with an IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IpHeaderFault {
    #[error("version {0} is not 4")]
    Version(u8),
    #[error("header length {header_len} does not fit a {len}-byte packet")]
    HeaderLength { header_len: usize, len: usize },
    #[error("total length {total_len} does not fit a {len}-byte packet")]
    TotalLength { total_len: usize, len: usize },
}

impl DecodeError {
    /// Every label [`DecodeError::reason`] can return, for registering
    /// counters before the first packet arrives.
    pub const REASONS: &'static [&'static str] = &[
        "too_short",
        "bad_version",
        "bad_type",
        "bad_vrid",
        "address_family_mismatch",
        "v2_over_ipv6",
        "count_mismatch",
        "bad_checksum",
        "zero_interval",
        "unsupported_auth_type",
        "auth_type_mismatch",
        "auth_mismatch",
        "bad_ttl",
        "not_vrrp",
        "bad_ip_header",
    ];

    /// A short, stable snake_case label for counters and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TooShort { .. } => "too_short",
            DecodeError::BadVersion(_) => "bad_version",
            DecodeError::BadType(_) => "bad_type",
            DecodeError::BadVrid => "bad_vrid",
            DecodeError::AddressFamilyMismatch { .. } => "address_family_mismatch",
            DecodeError::V2OverIpv6 { .. } => "v2_over_ipv6",
            DecodeError::CountMismatch { .. } => "count_mismatch",
            DecodeError::BadChecksum { .. } => "bad_checksum",
            DecodeError::ZeroInterval => "zero_interval",
            DecodeError::UnsupportedAuthType(_) => "unsupported_auth_type",
            DecodeError::AuthTypeMismatch { .. } => "auth_type_mismatch",
            DecodeError::AuthMismatch => "auth_mismatch",
            DecodeError::BadTtl(_) => "bad_ttl",
            DecodeError::NotVrrp(_) => "not_vrrp",
            DecodeError::BadIpHeader(_) => "bad_ip_header",
        }
    }
}

/// Why an advertisement cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("source {src} and destination {dst} are of different address families")]
    AddressFamilyMismatch { src: IpAddr, dst: IpAddr },
    #[error("vrrp version 2 cannot be sent over ipv6")]
    V2OverIpv6,
    #[error("virtual router id 0 is not valid")]
    BadVrid,
    #[error("virtual address {addr} is not of the family of the source {src}")]
    AddressNotInFamily { addr: IpAddr, src: IpAddr },
    #[error("{0} virtual addresses, at most 255 fit in one advertisement")]
    TooManyAddresses(usize),
    #[error(
        "advertisement interval of {interval_cs} centiseconds does not fit vrrp version {version}"
    )]
    IntervalOutOfRange { version: Version, interval_cs: u16 },
    #[error("vrrp version 3 has no authentication")]
    AuthInV3,
}
