//! The IPVS socket: one generic netlink socket, the family resolved once,
//! and one call per `ipvsadm` operation.
//!
//! Calls are synchronous: the kernel answers a request on this socket at
//! once (no network in between), in microseconds even for a large table,
//! so the caller (the LVS task, never the VRRP main loop) simply waits.
//! Every change asks for an acknowledgement (`NLM_F_ACK`), so a refusal is
//! an error naming the operation and the kernel's errno. The socket belongs
//! to the network namespace of the thread that opened it.

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkDeserializable, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NetlinkSerializable,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};
use thiserror::Error;

use super::wire::{
    self, Command, IpvsMessage, destination_attr, parse_destination, parse_service, service_attr,
    service_key_attr,
};
use super::{Destination, DestinationEntry, Info, Service, ServiceKey};

#[derive(Debug, Error)]
pub enum IpvsError {
    #[error("cannot open a generic netlink socket")]
    Open(#[source] io::Error),
    #[error("the kernel has no IPVS (generic netlink family \"IPVS\" not found; is ip_vs loaded?)")]
    NoFamily,
    #[error("cannot resolve the IPVS generic netlink family")]
    Resolve(#[source] io::Error),
    #[error("cannot send {operation} to the kernel")]
    Send {
        operation: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the kernel's answer to {operation}")]
    Receive {
        operation: String,
        #[source]
        source: io::Error,
    },
    #[error("the kernel's answer to {operation} is malformed: {reason}")]
    Decode { operation: String, reason: String },
    #[error("the kernel refused {operation}")]
    Refused {
        operation: String,
        #[source]
        source: io::Error,
    },
}

impl IpvsError {
    /// The kernel's errno when it refused the operation.
    pub fn errno(&self) -> Option<i32> {
        match self {
            IpvsError::Refused { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// A socket speaking the IPVS family.
#[derive(Debug)]
pub struct Ipvs {
    socket: Socket,
    family: u16,
    sequence: u32,
}

impl Ipvs {
    /// Opens the socket and resolves the family; `NoFamily` when the kernel
    /// has no IPVS (module not loaded, or not built).
    pub fn open() -> Result<Ipvs, IpvsError> {
        let mut socket = Socket::new(NETLINK_GENERIC).map_err(IpvsError::Open)?;
        socket.bind_auto().map_err(IpvsError::Open)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(IpvsError::Open)?;
        let mut ipvs = Ipvs {
            socket,
            family: 0,
            sequence: 0,
        };
        ipvs.family = ipvs.resolve()?;
        Ok(ipvs)
    }

    /// The family id the controller gave IPVS.
    pub fn family_id(&self) -> u16 {
        self.family
    }

    fn resolve(&mut self) -> Result<u16, IpvsError> {
        let request = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(wire::FAMILY_NAME.to_owned())],
        });
        let operation = "CTRL_CMD_GETFAMILY IPVS";
        let answers = match self.exchange(request, NLM_F_REQUEST, operation) {
            Ok(a) => a,
            // ENOENT: no such family.
            Err(e) if e.errno() == Some(2) => return Err(IpvsError::NoFamily),
            Err(IpvsError::Refused { source, .. }) => return Err(IpvsError::Resolve(source)),
            Err(e) => return Err(e),
        };
        answers
            .iter()
            .flat_map(|m: &GenlMessage<GenlCtrl>| m.payload.nlas.iter())
            .find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
            .ok_or(IpvsError::NoFamily)
    }

    // ===== operations =====

    /// `IPVS_CMD_GET_INFO`: the IPVS version and connection table size.
    pub fn info(&mut self) -> Result<Info, IpvsError> {
        let operation = "IPVS_CMD_GET_INFO";
        let answers = self.ipvs(Command::GetInfo, Vec::new(), NLM_F_REQUEST, operation)?;
        let answer = answers.first().ok_or_else(|| IpvsError::Decode {
            operation: operation.to_owned(),
            reason: "no answer".to_owned(),
        })?;
        answer.info().map_err(|e| IpvsError::Decode {
            operation: operation.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Every service of this namespace's table.
    pub fn services(&mut self) -> Result<Vec<Service>, IpvsError> {
        let operation = "IPVS_CMD_GET_SERVICE (dump)";
        let answers = self.ipvs(
            Command::GetService,
            Vec::new(),
            NLM_F_REQUEST | NLM_F_DUMP,
            operation,
        )?;
        answers
            .iter()
            .filter_map(IpvsMessage::service)
            .map(|v| {
                parse_service(v).map_err(|e| IpvsError::Decode {
                    operation: operation.to_owned(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// The destinations of the service `key`.
    pub fn destinations(&mut self, key: &ServiceKey) -> Result<Vec<DestinationEntry>, IpvsError> {
        let operation = format!("IPVS_CMD_GET_DEST {key} (dump)");
        let answers = self.ipvs(
            Command::GetDest,
            vec![service_key_attr(key)],
            NLM_F_REQUEST | NLM_F_DUMP,
            &operation,
        )?;
        answers
            .iter()
            .filter_map(IpvsMessage::destination)
            .map(|v| {
                parse_destination(key.family(), v).map_err(|e| IpvsError::Decode {
                    operation: operation.clone(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    pub fn new_service(&mut self, s: &Service) -> Result<(), IpvsError> {
        self.change(Command::NewService, vec![service_attr(s)], &s.key, None)
    }

    pub fn set_service(&mut self, s: &Service) -> Result<(), IpvsError> {
        self.change(Command::SetService, vec![service_attr(s)], &s.key, None)
    }

    pub fn del_service(&mut self, key: &ServiceKey) -> Result<(), IpvsError> {
        self.change(Command::DelService, vec![service_key_attr(key)], key, None)
    }

    pub fn new_destination(&mut self, key: &ServiceKey, d: &Destination) -> Result<(), IpvsError> {
        let attrs = vec![service_key_attr(key), destination_attr(key.family(), d)];
        self.change(Command::NewDest, attrs, key, Some(d))
    }

    pub fn set_destination(&mut self, key: &ServiceKey, d: &Destination) -> Result<(), IpvsError> {
        let attrs = vec![service_key_attr(key), destination_attr(key.family(), d)];
        self.change(Command::SetDest, attrs, key, Some(d))
    }

    pub fn del_destination(&mut self, key: &ServiceKey, d: &Destination) -> Result<(), IpvsError> {
        let attrs = vec![service_key_attr(key), destination_attr(key.family(), d)];
        self.change(Command::DelDest, attrs, key, Some(d))
    }

    fn change(
        &mut self,
        command: Command,
        attrs: Vec<wire::Attr>,
        key: &ServiceKey,
        destination: Option<&Destination>,
    ) -> Result<(), IpvsError> {
        let name = format!("{command:?}").to_ascii_uppercase();
        let operation = match destination {
            Some(d) => format!("IPVS_CMD_{name} {key} -> {}", endpoint(d)),
            None => format!("IPVS_CMD_{name} {key}"),
        };
        self.ipvs(command, attrs, NLM_F_REQUEST | NLM_F_ACK, &operation)
            .map(|_| ())
    }

    // ===== the exchange =====

    fn ipvs(
        &mut self,
        command: Command,
        attrs: Vec<wire::Attr>,
        flags: u16,
        operation: &str,
    ) -> Result<Vec<IpvsMessage>, IpvsError> {
        let mut message = GenlMessage::from_payload(IpvsMessage::new(command, attrs));
        message.set_resolved_family_id(self.family);
        Ok(self
            .exchange(message, flags, operation)?
            .into_iter()
            .map(|m| m.payload)
            .collect())
    }

    /// Sends one request and reads every answer to it: until the ack (or
    /// error) of a change, the end of a dump, or the single reply of a get.
    fn exchange<F>(
        &mut self,
        payload: GenlMessage<F>,
        flags: u16,
        operation: &str,
    ) -> Result<Vec<GenlMessage<F>>, IpvsError>
    where
        F: GenlFamily + std::fmt::Debug + Clone + PartialEq + Eq,
        GenlMessage<F>: NetlinkSerializable + NetlinkDeserializable,
    {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = sequence;
        let mut request = NetlinkMessage::new(header, NetlinkPayload::from(payload));
        request.finalize();
        let mut bytes = vec![0; request.buffer_len()];
        request.serialize(&mut bytes);
        self.socket
            .send(&bytes, 0)
            .map_err(|source| IpvsError::Send {
                operation: operation.to_owned(),
                source,
            })?;

        let dump = flags & NLM_F_DUMP != 0;
        let ack = flags & NLM_F_ACK != 0;
        let mut answers = Vec::new();
        loop {
            let (datagram, _) =
                self.socket
                    .recv_from_full()
                    .map_err(|source| IpvsError::Receive {
                        operation: operation.to_owned(),
                        source,
                    })?;
            let mut offset = 0;
            while offset < datagram.len() {
                let message = NetlinkMessage::<GenlMessage<F>>::deserialize(&datagram[offset..])
                    .map_err(|e| IpvsError::Decode {
                        operation: operation.to_owned(),
                        reason: e.to_string(),
                    })?;
                let length = message.header.length as usize;
                if length == 0 {
                    break;
                }
                offset += length.next_multiple_of(4);
                if message.header.sequence_number != sequence {
                    // An answer to an earlier request that was abandoned.
                    continue;
                }
                match message.payload {
                    NetlinkPayload::InnerMessage(inner) => {
                        answers.push(inner);
                        if !dump && !ack {
                            return Ok(answers);
                        }
                    }
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(answers),
                            Some(_) => Err(IpvsError::Refused {
                                operation: operation.to_owned(),
                                source: e.to_io(),
                            }),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(answers),
                    _ => {}
                }
            }
        }
    }
}

fn endpoint(d: &Destination) -> String {
    match d.address {
        std::net::IpAddr::V6(a) => format!("[{a}]:{}", d.port),
        a => format!("{a}:{}", d.port),
    }
}
