//! The one DNS message reader, for every source: the capture's port-53
//! traffic ([`super::DnsTracker`]), the check's live lookups
//! (`check::dns`) and the reverse names of trace hops (`check::rdns`).
//!
//! hickory-proto decodes the wire format (names, compression pointers,
//! record data); this module only decides how far to read. A message is read
//! in two steps, because most messages in a capture are about names nobody
//! asked us about and need no more than their header and question:
//! [`MessageReader::new`] reads the header and the question section,
//! [`MessageReader::answers`] the answer section. The authority and
//! additional sections are never read: nothing pathproof judges is in them,
//! and a snapshot length that cuts them loses nothing.
//!
//! What a response says about a name (its CNAME chain and the records of
//! the name the chain ends at) is [`super::chain`]'s business.

use hickory_proto::op::{Header, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::fmt;

/// The question of a message (the first one, when a message has several).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: RecordType,
}

/// The header and question of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub id: u16,
    /// The QR bit.
    pub response: bool,
    pub opcode: OpCode,
    /// The header's 4-bit RCODE. The upper bits an EDNS OPT record may add
    /// are not read: pathproof's queries carry no OPT record, so no server
    /// may use them in its answer, and in a capture only the header's code
    /// tells NOERROR, SERVFAIL, NXDOMAIN and REFUSED apart.
    pub rcode: u8,
    /// The TC bit: the answer did not fit (retry over TCP).
    pub truncated: bool,
    /// The AA bit.
    pub authoritative: bool,
    /// QDCOUNT: questions in the message (normally 1; 0 in some error answers).
    pub questions: u16,
    /// ANCOUNT: records the answer section claims.
    pub answer_count: u16,
    /// The first question.
    pub question: Option<Question>,
}

/// A message whose header or question section cannot be read: not DNS, or
/// cut before its answers begin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError(pub String);

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReadError {}

/// The answer section as far as it could be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answers {
    /// The records in message order, up to the first one that could not be read.
    pub records: Vec<Record>,
    /// Every record ANCOUNT announced was read. False when the message was
    /// cut (snapshot length, a truncated UDP datagram) or is malformed
    /// after its question: the records read may not be all there were.
    pub complete: bool,
}

/// A message read up to its answer section.
pub struct MessageReader<'a> {
    pub head: Head,
    decoder: BinDecoder<'a>,
}

impl<'a> MessageReader<'a> {
    /// Reads the header and every question (keeping the first).
    pub fn new(bytes: &'a [u8]) -> Result<MessageReader<'a>, ReadError> {
        let mut decoder = BinDecoder::new(bytes);
        let header = Header::read(&mut decoder).map_err(|e| ReadError(format!("header: {e}")))?;
        let m = header.metadata;
        let mut question = None;
        for i in 0..header.counts.queries {
            let q = Query::read(&mut decoder)
                .map_err(|e| ReadError(format!("question {}: {e}", i + 1)))?;
            if question.is_none() {
                question = Some(Question {
                    qtype: q.query_type(),
                    name: q.name().clone(),
                });
            }
        }
        Ok(MessageReader {
            head: Head {
                id: m.id,
                response: m.message_type == MessageType::Response,
                opcode: m.op_code,
                rcode: (u16::from(m.response_code) & 0x0f) as u8,
                truncated: m.truncation,
                authoritative: m.authoritative,
                questions: header.counts.queries,
                answer_count: header.counts.answers,
                question,
            },
            decoder,
        })
    }

    /// Reads the answer section: the records ANCOUNT announces, up to the
    /// first that cannot be read.
    pub fn answers(mut self) -> Answers {
        // A record takes at least 11 bytes: no allocation for a count the
        // message cannot hold.
        let room = self.decoder.len() / 11;
        let mut records = Vec::with_capacity(usize::from(self.head.answer_count).min(room));
        for _ in 0..self.head.answer_count {
            match Record::read(&mut self.decoder) {
                Ok(r) => records.push(r),
                Err(_) => {
                    return Answers {
                        records,
                        complete: false,
                    };
                }
            }
        }
        Answers {
            records,
            complete: true,
        }
    }
}

/// A message read in one go: header, question and answer section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub head: Head,
    pub answers: Answers,
}

/// Reads `bytes` as a DNS message, header to answer section.
pub fn read_message(bytes: &[u8]) -> Result<Message, ReadError> {
    let reader = MessageReader::new(bytes)?;
    let head = reader.head.clone();
    Ok(Message {
        head,
        answers: reader.answers(),
    })
}

/// The mnemonic of a response code, as dig prints it (`RCODE12` for one
/// without a name).
pub fn rcode_name(rcode: u16) -> String {
    let s = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        _ => return format!("RCODE{rcode}"),
    };
    s.to_string()
}

/// A record type as dig prints it: `A`, `AAAA`, `HTTPS`, or `TYPEnnn`.
pub fn qtype_name(t: RecordType) -> String {
    match t {
        RecordType::Unknown(n) => format!("TYPE{n}"),
        t => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::RData;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// dnsmasq's answer to `dig co2br.prod.zpath.net A` (see the capture
    /// tracker's `real_resolver_bytes`): the CNAME target and the addresses
    /// use compression pointers (0xc00c, 0xc032), and an EDNS OPT record
    /// follows in the additional section.
    const DNSMASQ: &str = "ec028580000100040000000105636f3262720470726f64057a70617468036e6574\
        0000010001c00c000500010000000000120465646765036c6162076578616d706c6500c03200010001\
        000000000004c6120402c03200010001000000000004c6120401c03200010001000000000004c61204\
        0300002904d0000000000000";

    #[test]
    fn reads_a_compressed_response() {
        let m = read_message(&hex(DNSMASQ)).unwrap();
        let h = &m.head;
        assert_eq!(h.id, 0xec02);
        assert!(h.response && h.authoritative && !h.truncated);
        assert_eq!(
            (h.opcode, h.rcode, h.questions, h.answer_count),
            (OpCode::Query, 0, 1, 4)
        );
        let q = h.question.as_ref().unwrap();
        assert_eq!(q.name.to_ascii(), "co2br.prod.zpath.net.");
        assert_eq!(q.qtype, RecordType::A);
        assert!(m.answers.complete);
        let r = &m.answers.records;
        assert_eq!(r.len(), 4);
        // The CNAME's target was written with a pointer into its own rdata's
        // neighbour; the A records' owners point at the target.
        let RData::CNAME(c) = &r[0].data else {
            panic!("{:?}", r[0])
        };
        assert_eq!(c.0.to_ascii(), "edge.lab.example.");
        assert_eq!(r[1].name.to_ascii(), "edge.lab.example.");
    }

    #[test]
    fn cut_messages() {
        let bytes = hex(DNSMASQ);
        // Cut inside the answer section: the head reads, the answers are
        // incomplete with the records before the cut.
        let m = read_message(&bytes[..bytes.len() - 20]).unwrap();
        assert!(!m.answers.complete);
        assert_eq!(m.answers.records.len(), 3);
        // Cut inside the question (or the header): not a message.
        assert!(read_message(&bytes[..30]).is_err());
        assert!(read_message(&bytes[..5]).is_err());
        assert!(read_message(&[]).is_err());
        // Every prefix is handled without panicking.
        for cut in 0..bytes.len() {
            let _ = read_message(&bytes[..cut]);
        }
    }

    #[test]
    fn a_compression_loop_is_an_error_not_a_hang() {
        // Header (1 question), then a name that is a pointer to itself.
        let bytes = hex("0001 0100 0001 0000 0000 0000 c00c 0001 0001");
        assert!(read_message(&bytes).is_err());
    }

    #[test]
    fn an_absurd_answer_count_is_incomplete() {
        // NOERROR, one question, ANCOUNT 65535, no records.
        let mut bytes = hex("0001 8180 0001 ffff 0000 0000");
        bytes.extend(hex("01780474657374 00 0001 0001")); // x.test A IN
        let m = read_message(&bytes).unwrap();
        assert_eq!(m.head.answer_count, 65535);
        assert!(m.answers.records.is_empty());
        assert!(!m.answers.complete);
    }

    #[test]
    fn header_fields() {
        // A truncated SERVFAIL without a question.
        let m = read_message(&hex("abcd 8382 0000 0000 0000 0000")).unwrap();
        let h = &m.head;
        assert_eq!(
            (h.id, h.rcode, h.truncated, h.questions),
            (0xabcd, 2, true, 0)
        );
        assert!(h.question.is_none());
        assert!(m.answers.complete);
        // A NOTIFY query.
        let m = read_message(&hex("0002 2000 0000 0000 0000 0000")).unwrap();
        assert_eq!(m.head.opcode, OpCode::Notify);
        assert!(!m.head.response);
    }

    #[test]
    fn rcode_and_type_names() {
        assert_eq!(rcode_name(0), "NOERROR");
        assert_eq!(rcode_name(2), "SERVFAIL");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(5), "REFUSED");
        assert_eq!(rcode_name(16), "BADVERS");
        assert_eq!(rcode_name(12), "RCODE12");
        assert_eq!(qtype_name(RecordType::AAAA), "AAAA");
        assert_eq!(qtype_name(RecordType::Unknown(65280)), "TYPE65280");
    }
}
