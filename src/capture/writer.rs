//! Writers for classic pcap and pcapng (little-endian), for `--save` and for
//! building test captures. Wrap `W` in a `BufWriter` when it is a file: each
//! frame is written with a few small `write_all` calls.
//!
//! Hand-written rather than pcap-parser's `serialize` feature: the reader's
//! crate can serialise blocks (through cookie-factory, one more dependency
//! tree), but these writers predate `--evidence` (`--save`, the tests), and
//! the packet comments it needs (`opt_comment`) were a few lines here.

use std::io::{self, Write};

/// Largest caplen libpcap accepts; also the pcap snaplen written for "no limit".
const MAX_SNAPLEN: u32 = 262_144;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Timestamp precision of a classic pcap file (selects the magic number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsPrecision {
    /// Magic a1b2c3d4: microseconds.
    Micro,
    /// Magic a1b23c4d: nanoseconds.
    Nano,
}

/// Classic pcap writer.
pub struct PcapWriter<W: Write> {
    out: W,
    precision: TsPrecision,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header. `snaplen` 0 means "no limit" and is written
    /// as 262144 (libpcap's maximum), so the file reads back everywhere.
    pub fn new(
        mut out: W,
        link_type: u32,
        snaplen: u32,
        precision: TsPrecision,
    ) -> io::Result<PcapWriter<W>> {
        let snaplen = if snaplen == 0 { MAX_SNAPLEN } else { snaplen };
        let magic: u32 = match precision {
            TsPrecision::Micro => 0xa1b2_c3d4,
            TsPrecision::Nano => 0xa1b2_3c4d,
        };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&magic.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0, as every tool writes them.
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&link_type.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            precision,
            snaplen,
        })
    }

    /// Writes one record. `data` longer than the snaplen is cut to it (as a
    /// capture would); `orig_len` is written as given. Timestamps before 1970
    /// or after 2106 cannot be represented and are an `InvalidInput` error.
    pub fn write_frame(&mut self, ts_ns: i64, orig_len: u32, data: &[u8]) -> io::Result<()> {
        if ts_ns < 0 {
            return Err(invalid(format!(
                "pcap cannot store a timestamp before 1970 ({ts_ns} ns)"
            )));
        }
        let sec = u32::try_from(ts_ns / 1_000_000_000).map_err(|_| {
            invalid(format!(
                "pcap cannot store a timestamp after 2106 ({ts_ns} ns)"
            ))
        })?;
        let ns = (ts_ns % 1_000_000_000) as u32;
        let frac = match self.precision {
            TsPrecision::Micro => ns / 1000,
            TsPrecision::Nano => ns,
        };
        let caplen = data.len().min(self.snaplen as usize);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&sec.to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&(caplen as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&data[..caplen])
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// pcapng writer: one section (SHB), interfaces added with
/// [`PcapngWriter::add_interface`], one Enhanced Packet Block per frame.
pub struct PcapngWriter<W: Write> {
    out: W,
    /// `if_tsresol` of each interface, by id.
    tsresol: Vec<u8>,
}

/// Appends a pcapng option (code, length, value padded to 4 bytes).
fn push_option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_le_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// A comment's bytes for an option (whose length is 16-bit): cut to
/// 60,000 bytes at a character boundary.
fn comment_bytes(c: &str) -> &[u8] {
    let mut end = c.len().min(60_000);
    while !c.is_char_boundary(end) {
        end -= 1;
    }
    &c.as_bytes()[..end]
}

/// Writes a whole block: type, length, body (already padded), length.
fn write_block(out: &mut impl Write, block_type: u32, body: &[u8]) -> io::Result<()> {
    let len = (12 + body.len()) as u32;
    out.write_all(&block_type.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&len.to_le_bytes())
}

/// Nanoseconds to units of `if_tsresol` (10^-n, or 2^-n when bit 7 is set).
fn ns_to_units(ts_ns: u64, tsresol: u8) -> Option<u64> {
    let n = u32::from(tsresol & 0x7f);
    let units: u128 = if tsresol & 0x80 != 0 {
        if n > 63 {
            return None;
        }
        (u128::from(ts_ns) << n) / 1_000_000_000
    } else if n <= 9 {
        u128::from(ts_ns / 10u64.pow(9 - n))
    } else if n <= 19 {
        u128::from(ts_ns) * 10u128.pow(n - 9)
    } else {
        return None;
    };
    u64::try_from(units).ok()
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the Section Header Block.
    pub fn new(out: W) -> io::Result<PcapngWriter<W>> {
        Self::with_comment(out, None)
    }

    /// Writes the Section Header Block with an `opt_comment` (what the
    /// file is, for whoever opens it: Wireshark shows it in the capture
    /// file properties).
    pub fn with_comment(mut out: W, comment: Option<&str>) -> io::Result<PcapngWriter<W>> {
        let mut body = Vec::with_capacity(64);
        body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        // Section length -1: unknown, we stream.
        body.extend_from_slice(&(-1i64).to_le_bytes());
        let appl = concat!("pathproof ", env!("CARGO_PKG_VERSION"));
        if let Some(c) = comment {
            push_option(&mut body, 1, comment_bytes(c)); // opt_comment
        }
        push_option(&mut body, 4, appl.as_bytes()); // shb_userappl
        push_option(&mut body, 0, &[]); // opt_endofopt
        write_block(&mut out, 0x0A0D_0D0A, &body)?;
        Ok(PcapngWriter {
            out,
            tsresol: Vec::new(),
        })
    }

    /// Writes an Interface Description Block (snaplen 0: no limit) and
    /// returns its interface id. `tsresol` is the raw `if_tsresol` byte:
    /// 6 = microseconds, 9 = nanoseconds, 0x80 | n = 2^-n seconds.
    pub fn add_interface(&mut self, link_type: u32, tsresol: u8) -> io::Result<u32> {
        let link_type = u16::try_from(link_type)
            .map_err(|_| invalid(format!("pcapng link types are 16-bit, got {link_type}")))?;
        if ns_to_units(0, tsresol).is_none() {
            return Err(invalid(format!("invalid if_tsresol {tsresol:#04x}")));
        }
        let mut body = Vec::with_capacity(24);
        body.extend_from_slice(&link_type.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        push_option(&mut body, 9, &[tsresol]); // if_tsresol
        push_option(&mut body, 0, &[]);
        write_block(&mut self.out, 1, &body)?;
        self.tsresol.push(tsresol);
        Ok((self.tsresol.len() - 1) as u32)
    }

    /// Writes one Enhanced Packet Block. Errors (`InvalidInput`) for an
    /// interface not added, a negative or unrepresentable timestamp, or a
    /// frame too big for a block readers accept (16 MiB).
    pub fn write_frame(
        &mut self,
        interface: u32,
        ts_ns: i64,
        orig_len: u32,
        data: &[u8],
    ) -> io::Result<()> {
        self.write_frame_with_comment(interface, ts_ns, orig_len, data, None)
    }

    /// [`PcapngWriter::write_frame`] with a packet comment (`opt_comment`,
    /// option 1: Wireshark's `frame.comment`), cut to 60,000 bytes at a
    /// character boundary.
    pub fn write_frame_with_comment(
        &mut self,
        interface: u32,
        ts_ns: i64,
        orig_len: u32,
        data: &[u8],
        comment: Option<&str>,
    ) -> io::Result<()> {
        let tsresol = *self
            .tsresol
            .get(interface as usize)
            .ok_or_else(|| invalid(format!("interface {interface} was not added")))?;
        let ts_ns =
            u64::try_from(ts_ns).map_err(|_| invalid(format!("negative timestamp {ts_ns} ns")))?;
        let ts = ns_to_units(ts_ns, tsresol).ok_or_else(|| {
            invalid(format!(
                "timestamp {ts_ns} ns does not fit in 64 bits at if_tsresol {tsresol:#04x}"
            ))
        })?;
        let padded = data.len().next_multiple_of(4);
        let mut options = Vec::new();
        if let Some(c) = comment {
            push_option(&mut options, 1, comment_bytes(c));
            push_option(&mut options, 0, &[]);
        }
        if 32 + padded + options.len() > super::reader::MAX_BLOCK_LEN {
            return Err(invalid(format!("frame of {} bytes is too big", data.len())));
        }
        let len = (32 + padded + options.len()) as u32;
        let mut h = [0u8; 28];
        h[0..4].copy_from_slice(&6u32.to_le_bytes());
        h[4..8].copy_from_slice(&len.to_le_bytes());
        h[8..12].copy_from_slice(&interface.to_le_bytes());
        h[12..16].copy_from_slice(&((ts >> 32) as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(ts as u32).to_le_bytes());
        h[20..24].copy_from_slice(&(data.len() as u32).to_le_bytes());
        h[24..28].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)?;
        let pad = padded - data.len();
        self.out.write_all(&[0u8; 3][..pad])?;
        self.out.write_all(&options)?;
        self.out.write_all(&len.to_le_bytes())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(ns_to_units(1_500_000_000, 6), Some(1_500_000));
        assert_eq!(ns_to_units(1_500_000_000, 9), Some(1_500_000_000));
        assert_eq!(ns_to_units(1_500_000_000, 0x8a), Some(1536));
        assert_eq!(ns_to_units(1_500_000_000, 12), Some(1_500_000_000_000));
        assert_eq!(ns_to_units(u64::MAX, 19), None);
        assert_eq!(ns_to_units(0, 20), None);
    }

    #[test]
    fn epb_padding() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        w.add_interface(1, 6).unwrap();
        let before = w.get_ref().len();
        w.write_frame(0, 0, 5, &[1, 2, 3, 4, 5]).unwrap();
        let epb = &w.get_ref()[before..];
        assert_eq!(epb.len(), 40);
        assert_eq!(&epb[4..8], &40u32.to_le_bytes());
        assert_eq!(&epb[36..40], &40u32.to_le_bytes());
        assert!(w.write_frame(1, 0, 0, &[]).is_err());
        let before = w.get_ref().len();
        w.write_frame_with_comment(0, 0, 3, &[1, 2, 3], Some("why"))
            .unwrap();
        let epb = &w.get_ref()[before..];
        // 28 header + 4 data + (4 + 4) comment + 4 end of options + 4 length.
        assert_eq!(epb.len(), 48);
        assert_eq!(&epb[32..36], &[1, 0, 3, 0]);
        assert_eq!(&epb[36..39], b"why");
        assert_eq!(&epb[44..48], &48u32.to_le_bytes());
        assert!(w.write_frame(0, -1, 0, &[]).is_err());
    }
}
