//! RTP header arithmetic (RFC 3550 5.1): where a packet's payload is.

use std::ops::Range;

/// The payload's place in an RTP packet: after the fixed header, the CSRC list and a
/// header extension, before any padding. `None` for what is not RTP version 2 or whose
/// header runs past its end.
pub fn payload_range(pkt: &[u8]) -> Option<Range<usize>> {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return None;
    }
    let mut off = 12 + 4 * (pkt[0] & 0x0f) as usize;
    if pkt[0] & 0x10 != 0 {
        let ext = pkt.get(off + 2..off + 4)?;
        off += 4 + 4 * u16::from_be_bytes([ext[0], ext[1]]) as usize;
    }
    let mut end = pkt.len();
    if pkt[0] & 0x20 != 0 {
        end = end.saturating_sub(pkt[pkt.len() - 1] as usize);
    }
    (off <= end).then_some(off..end)
}

/// The payload type (the marker bit left out).
pub fn payload_type(pkt: &[u8]) -> u8 {
    pkt.get(1).map_or(0, |b| b & 0x7f)
}

/// The RTP timestamp (0 for a packet too short to hold one).
pub fn timestamp(pkt: &[u8]) -> u32 {
    pkt.get(4..8)
        .map_or(0, |t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_found_past_csrcs_extensions_and_padding() {
        let mut p = vec![0x80, 8, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
        p.extend_from_slice(&[0xd5; 160]);
        assert_eq!(payload_range(&p), Some(12..172));
        assert_eq!((payload_type(&p), timestamp(&p)), (8, 160));
        // Two CSRCs, an extension of one word, three octets of padding.
        let mut q = vec![0xb2, 0x80 | 101, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4];
        q.extend_from_slice(&[0; 8]); // CSRCs
        q.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // extension
        q.extend_from_slice(&[1, 0x0a, 0, 160]); // payload
        q.extend_from_slice(&[0, 0, 3]); // padding
        assert_eq!(payload_range(&q), Some(28..32));
        assert_eq!(payload_type(&q), 101);
        // Broken headers are refused, never sliced past the end.
        assert_eq!(payload_range(&q[..22]), None, "extension cut short");
        assert_eq!(payload_range(&[0x80, 0, 0]), None);
        assert_eq!(payload_range(&[0x40; 12]), None, "version 1");
        let mut pad = p.clone();
        pad[0] |= 0x20;
        *pad.last_mut().unwrap() = 255;
        assert_eq!(payload_range(&pad), None, "padding longer than the payload");
    }
}
