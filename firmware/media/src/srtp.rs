//! SRTP and SRTCP (RFC 3711) through libsrtp2, the reference implementation Debian
//! ships (no cipher is written here), with SDES keys (RFC 4568): one session per
//! direction of one leg, keyed by the 30 bytes of master key and salt an `a=crypto`
//! line carries.

use srtp2_sys as ffi;
use std::sync::Once;

/// Master key and salt (AES-128 key, 112-bit salt).
pub const KEY_LEN: usize = 30;

/// Bytes protection adds at most (RTCP: index and 80-bit tag).
pub const MAX_TRAILER: usize = 16;

/// The crypto suites the box speaks (RFC 4568 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// AES_CM_128_HMAC_SHA1_80: every phone's default.
    Aes128Sha1_80,
    /// AES_CM_128_HMAC_SHA1_32: a 32-bit tag on RTP (SRTCP keeps 80 bits).
    Aes128Sha1_32,
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::Aes128Sha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::Aes128Sha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    pub fn from_name(s: &str) -> Option<Suite> {
        match s {
            "AES_CM_128_HMAC_SHA1_80" => Some(Suite::Aes128Sha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(Suite::Aes128Sha1_32),
            _ => None,
        }
    }
}

/// Why SRTP said no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("srtp error {0}")]
pub struct SrtpError(pub u32);

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: srtp_init has no preconditions; Once runs it a single time.
        let r = unsafe { ffi::srtp_init() };
        assert_eq!(r, ffi::srtp_err_status_t_srtp_err_status_ok, "srtp_init");
    });
}

/// One direction of a leg: protects what goes out, or unprotects what comes in.
pub struct Session {
    ctx: ffi::srtp_t,
}

// SAFETY: a libsrtp session is used by one thread at a time (callers hold it behind a
// Mutex or own it); it has no thread affinity.
unsafe impl Send for Session {}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("srtp::Session")
    }
}

impl Session {
    fn new(suite: Suite, key: &[u8; KEY_LEN], inbound: bool) -> Result<Session, SrtpError> {
        init();
        let mut policy = ffi::srtp_policy_t::default();
        // SAFETY: the setters fill the crypto policies they are given.
        unsafe {
            match suite {
                Suite::Aes128Sha1_80 => ffi::srtp_crypto_policy_set_rtp_default(&mut policy.rtp),
                Suite::Aes128Sha1_32 => {
                    ffi::srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&mut policy.rtp)
                }
            }
            ffi::srtp_crypto_policy_set_rtcp_default(&mut policy.rtcp);
        }
        policy.ssrc.type_ = if inbound {
            ffi::srtp_ssrc_type_t_ssrc_any_inbound
        } else {
            ffi::srtp_ssrc_type_t_ssrc_any_outbound
        };
        // libsrtp copies the key while it creates the session.
        let mut k = *key;
        policy.key = k.as_mut_ptr();
        policy.window_size = 128;
        // Never encrypt twice at one index (a relayed party choosing an earlier
        // stream's SSRC and numbers would learn that stream's keystream): libsrtp
        // refuses such a packet, and it is not sent. Plays and the mixer send with
        // fresh SSRCs.
        policy.allow_repeat_tx = 0;
        policy.next = std::ptr::null_mut();
        let mut ctx: ffi::srtp_t = std::ptr::null_mut();
        // SAFETY: policy is fully set; ctx receives a new session or stays null.
        let r = unsafe { ffi::srtp_create(&mut ctx, &policy) };
        // libsrtp has its copy; this one goes (volatile: not optimised away).
        for b in k.iter_mut() {
            // SAFETY: b is a valid, aligned byte of k.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
        if r != ffi::srtp_err_status_t_srtp_err_status_ok || ctx.is_null() {
            return Err(SrtpError(r));
        }
        Ok(Session { ctx })
    }

    /// Unprotects what the party sends, with the key of its own `a=crypto`.
    pub fn inbound(suite: Suite, key: &[u8; KEY_LEN]) -> Result<Session, SrtpError> {
        Self::new(suite, key, true)
    }

    /// Protects what the box sends the party, with the key the box offered it.
    pub fn outbound(suite: Suite, key: &[u8; KEY_LEN]) -> Result<Session, SrtpError> {
        Self::new(suite, key, false)
    }

    /// Protects the packet in `buf[..len]` in place (RTP, or RTCP when `rtcp`); `buf`
    /// needs [`MAX_TRAILER`] bytes of room past `len`. The protected length.
    pub fn protect(&mut self, buf: &mut [u8], len: usize, rtcp: bool) -> Result<usize, SrtpError> {
        let min = if rtcp { 8 } else { 12 };
        if len < min || len + MAX_TRAILER > buf.len() || len > i32::MAX as usize {
            return Err(SrtpError(u32::MAX));
        }
        let mut n = len as i32;
        // SAFETY: buf holds len bytes and MAX_TRAILER of room; libsrtp writes within.
        let r = unsafe {
            if rtcp {
                ffi::srtp_protect_rtcp(self.ctx, buf.as_mut_ptr().cast(), &mut n)
            } else {
                ffi::srtp_protect(self.ctx, buf.as_mut_ptr().cast(), &mut n)
            }
        };
        if r != ffi::srtp_err_status_t_srtp_err_status_ok {
            return Err(SrtpError(r));
        }
        Ok(n as usize)
    }

    /// Checks and decrypts the packet in `buf` in place; the plain length. A packet
    /// that fails authentication, is replayed or is too short is an error.
    pub fn unprotect(&mut self, buf: &mut [u8], rtcp: bool) -> Result<usize, SrtpError> {
        // RTP header and the shortest tag; RTCP header, SSRC, index and tag.
        let min = if rtcp { 8 + 4 + 10 } else { 12 + 4 };
        if buf.len() < min || buf.len() > i32::MAX as usize {
            return Err(SrtpError(u32::MAX));
        }
        let mut n = buf.len() as i32;
        // SAFETY: buf holds n bytes; unprotecting only shortens it.
        let r = unsafe {
            if rtcp {
                ffi::srtp_unprotect_rtcp(self.ctx, buf.as_mut_ptr().cast(), &mut n)
            } else {
                ffi::srtp_unprotect(self.ctx, buf.as_mut_ptr().cast(), &mut n)
            }
        };
        if r != ffi::srtp_err_status_t_srtp_err_status_ok || n < 0 || n as usize > buf.len() {
            return Err(SrtpError(r));
        }
        Ok(n as usize)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: ctx came from srtp_create and is freed once.
        unsafe {
            ffi::srtp_dealloc(self.ctx);
        }
    }
}

/// A fresh master key and salt for an `a=crypto` line the box offers or answers, from
/// the kernel's random numbers (getrandom(2), which blocks only until the pool is first
/// seeded at boot).
pub fn new_key() -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    // Fails only on a kernel without getrandom(2) and /dev/urandom: no box runs one.
    getrandom::getrandom(&mut k).expect("the kernel's random numbers");
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 1, 2, 3, 4];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn what_one_side_protects_the_other_unprotects_and_tampering_is_refused() {
        for suite in [Suite::Aes128Sha1_80, Suite::Aes128Sha1_32] {
            let key = new_key();
            let mut tx = Session::outbound(suite, &key).unwrap();
            let mut rx = Session::inbound(suite, &key).unwrap();
            let plain = rtp(1, &[0x55; 160]);
            let mut buf = [0u8; 2048];
            buf[..plain.len()].copy_from_slice(&plain);
            let n = tx.protect(&mut buf, plain.len(), false).unwrap();
            let tag = if suite == Suite::Aes128Sha1_80 { 10 } else { 4 };
            assert_eq!(n, plain.len() + tag);
            assert_ne!(&buf[12..172], &plain[12..], "the payload is encrypted");
            let mut wire = buf[..n].to_vec();
            let mut tampered = wire.clone();
            tampered[20] ^= 1;
            assert!(rx.unprotect(&mut tampered, false).is_err());
            let m = rx.unprotect(&mut wire, false).unwrap();
            assert_eq!(&wire[..m], &plain[..]);
            // The same packet again is a replay.
            let mut again = buf[..n].to_vec();
            assert!(rx.unprotect(&mut again, false).is_err());
            // RTCP: a receiver report.
            let rr = [0x80u8, 201, 0, 1, 1, 2, 3, 4];
            buf[..8].copy_from_slice(&rr);
            let n = tx.protect(&mut buf, 8, true).unwrap();
            assert_eq!(n, 8 + 4 + 10);
            let mut wire = buf[..n].to_vec();
            let m = rx.unprotect(&mut wire, true).unwrap();
            assert_eq!(&wire[..m], &rr[..]);
        }
    }

    #[test]
    fn another_key_short_packets_and_no_room_are_errors_not_panics() {
        let mut tx = Session::outbound(Suite::Aes128Sha1_80, &new_key()).unwrap();
        let mut rx = Session::inbound(Suite::Aes128Sha1_80, &new_key()).unwrap();
        let plain = rtp(7, &[1; 20]);
        let mut buf = [0u8; 64];
        buf[..plain.len()].copy_from_slice(&plain);
        let n = tx.protect(&mut buf, plain.len(), false).unwrap();
        assert!(rx.unprotect(&mut buf[..n].to_vec(), false).is_err());
        for len in 0..24 {
            let mut junk = vec![0x80u8; len];
            assert!(rx.unprotect(&mut junk, false).is_err());
            assert!(rx.unprotect(&mut junk, true).is_err());
        }
        let mut full = [0u8; 40];
        assert!(
            tx.protect(&mut full, 32, false).is_err(),
            "no room for the tag"
        );
        assert!(tx.protect(&mut full, 4, false).is_err());
        assert_eq!(
            Suite::from_name("AES_CM_128_HMAC_SHA1_32"),
            Some(Suite::Aes128Sha1_32)
        );
        assert_eq!(
            Suite::from_name(Suite::Aes128Sha1_80.name()),
            Some(Suite::Aes128Sha1_80)
        );
        assert_eq!(Suite::from_name("F8_128_HMAC_SHA1_80"), None);
    }
}
