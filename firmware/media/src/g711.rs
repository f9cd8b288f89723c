//! G.711 u-law and A-law (ITU-T G.711), and direct conversion tables between them.

use std::sync::OnceLock;

/// Decodes one u-law byte to 16-bit linear.
pub fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let t = ((((u & 0x0f) as i32) << 3) + 0x84) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// Encodes 16-bit linear to u-law.
pub fn linear_to_ulaw(pcm: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut v = pcm as i32;
    let sign = if v < 0 {
        v = -v;
        0x80
    } else {
        0
    };
    v = v.min(CLIP) + BIAS;
    let mut exp = 7;
    let mut mask = 0x4000;
    while exp > 0 && v & mask == 0 {
        exp -= 1;
        mask >>= 1;
    }
    let mant = (v >> (exp + 3)) & 0x0f;
    !((sign | (exp << 4) | mant) as u8)
}

/// Decodes one A-law byte to 16-bit linear.
pub fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t = ((a & 0x0f) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// Encodes 16-bit linear to A-law.
pub fn linear_to_alaw(pcm: i16) -> u8 {
    let mut v = pcm as i32;
    let mask = if v >= 0 {
        0xd5
    } else {
        v = -v - 1;
        0x55
    };
    v = v.min(32767);
    let seg_ends = [0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff, 0x3fff, 0x7fff];
    let seg = seg_ends.iter().position(|e| v <= *e).unwrap_or(8) as i32;
    let a = if seg >= 8 {
        0x7f
    } else {
        let shift = if seg < 2 { 4 } else { seg + 3 };
        (seg << 4) | ((v >> shift) & 0x0f)
    };
    (a ^ mask) as u8
}

/// u-law byte to A-law byte.
pub fn ulaw_to_alaw_table() -> &'static [u8; 256] {
    static T: OnceLock<[u8; 256]> = OnceLock::new();
    T.get_or_init(|| std::array::from_fn(|i| linear_to_alaw(ulaw_to_linear(i as u8))))
}

/// A-law byte to u-law byte.
pub fn alaw_to_ulaw_table() -> &'static [u8; 256] {
    static T: OnceLock<[u8; 256]> = OnceLock::new();
    T.get_or_init(|| std::array::from_fn(|i| linear_to_ulaw(alaw_to_linear(i as u8))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_stay_close() {
        for x in (-32000i32..32000).step_by(97) {
            let x = x as i16;
            let u = ulaw_to_linear(linear_to_ulaw(x));
            let a = alaw_to_linear(linear_to_alaw(x));
            let tol = (x as i32).abs() / 16 + 16;
            assert!((u as i32 - x as i32).abs() <= tol, "ulaw {x} -> {u}");
            assert!((a as i32 - x as i32).abs() <= tol, "alaw {x} -> {a}");
        }
    }

    #[test]
    fn known_codes() {
        // Silence codes of each law.
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(ulaw_to_alaw_table()[0xff], 0xd5);
        assert!(ulaw_to_linear(alaw_to_ulaw_table()[0xd5]).abs() <= 8);
    }

    #[test]
    fn table_conversion_preserves_level() {
        for b in 0..=255u8 {
            let lin = ulaw_to_linear(b) as i32;
            let back = alaw_to_linear(ulaw_to_alaw_table()[b as usize]) as i32;
            assert!(
                (lin - back).abs() <= lin.abs() / 8 + 16,
                "{b}: {lin} vs {back}"
            );
        }
    }
}
