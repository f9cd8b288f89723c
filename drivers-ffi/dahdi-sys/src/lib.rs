//! DAHDI's userspace interface (`dahdi/user.h`): the structures and constants come from
//! bindgen; the ioctls, which bindgen cannot expand (`_IOW`/`_IOR` are macros), are
//! declared here with nix's ioctl macros. `tests/ioctl_numbers.rs` checks every number
//! against what a C compiler computes from the same header.
//!
//! Only what the span driver needs is declared: opening a channel (`specify`), its
//! parameters and buffers, span status (alarms), events, law and audio mode, HDLC with
//! FCS for the D-channel.

mod bindings {
    #![allow(
        non_upper_case_globals,
        non_camel_case_types,
        non_snake_case,
        dead_code
    )]
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub use bindings::*;
use std::os::raw::c_int;

macro_rules! ioctls {
    ($( $(#[$doc:meta])* $kind:ident $name:ident $cname:literal $nr:literal $ty:ty; )*) => {
        $( ioctls!(@one $(#[$doc])* $kind $name $nr $ty); )*
        /// Every ioctl declared here: its C name and request number.
        pub fn request_codes() -> Vec<(&'static str, u64)> {
            vec![ $( ($cname, ioctls!(@code $kind $nr $ty) as u64), )* ]
        }
    };
    (@one $(#[$doc:meta])* read $name:ident $nr:literal $ty:ty) => {
        nix::ioctl_read!($(#[$doc])* $name, DAHDI_CODE, $nr, $ty);
    };
    (@one $(#[$doc:meta])* write $name:ident $nr:literal $ty:ty) => {
        nix::ioctl_write_ptr!($(#[$doc])* $name, DAHDI_CODE, $nr, $ty);
    };
    (@one $(#[$doc:meta])* readwrite $name:ident $nr:literal $ty:ty) => {
        nix::ioctl_readwrite!($(#[$doc])* $name, DAHDI_CODE, $nr, $ty);
    };
    (@code read $nr:literal $ty:ty) => {
        nix::request_code_read!(DAHDI_CODE, $nr, std::mem::size_of::<$ty>())
    };
    (@code write $nr:literal $ty:ty) => {
        nix::request_code_write!(DAHDI_CODE, $nr, std::mem::size_of::<$ty>())
    };
    (@code readwrite $nr:literal $ty:ty) => {
        nix::request_code_readwrite!(DAHDI_CODE, $nr, std::mem::size_of::<$ty>())
    };
}

ioctls! {
    /// Bytes per read/write on a channel.
    read get_blocksize "DAHDI_GET_BLOCKSIZE" 1 c_int;
    write set_blocksize "DAHDI_SET_BLOCKSIZE" 1 c_int;
    /// Flush read and/or write buffers (`DAHDI_FLUSH_*`).
    write flush "DAHDI_FLUSH" 3 c_int;
    /// A channel's parameters (number, span, law, signalling).
    readwrite get_params "DAHDI_GET_PARAMS" 5 dahdi_params;
    write set_params "DAHDI_SET_PARAMS" 5 dahdi_params;
    /// The next event on a channel (`DAHDI_EVENT_*`), e.g. alarms and HDLC aborts.
    read get_event "DAHDI_GETEVENT" 8 c_int;
    /// Wait for readable, writable or an event (`DAHDI_IOMUX_*`).
    readwrite iomux "DAHDI_IOMUX" 9 c_int;
    /// A span's status: alarms, line code, channels.
    readwrite span_stat "DAHDI_SPANSTAT" 10 dahdi_spaninfo;
    write maint "DAHDI_MAINT" 11 dahdi_maintinfo;
    read get_bufinfo "DAHDI_GET_BUFINFO" 27 dahdi_bufferinfo;
    write set_bufinfo "DAHDI_SET_BUFINFO" 27 dahdi_bufferinfo;
    /// 1 = audio (B-channel), 0 = clear channel.
    write audio_mode "DAHDI_AUDIOMODE" 32 c_int;
    read chan_no "DAHDI_CHANNO" 34 c_int;
    write hdlc_raw_mode "DAHDI_HDLCRAWMODE" 36 c_int;
    /// HDLC with the FCS computed and checked by DAHDI (the D-channel).
    write hdlc_fcs_mode "DAHDI_HDLCFCSMODE" 37 c_int;
    /// Binds an fd opened on /dev/dahdi/channel to a channel number.
    write specify "DAHDI_SPECIFY" 38 c_int;
    /// `DAHDI_LAW_ALAW` (E1) or `DAHDI_LAW_MULAW` (T1).
    write set_law "DAHDI_SETLAW" 39 c_int;
    write set_linear "DAHDI_SETLINEAR" 40 c_int;
    read get_version "DAHDI_GETVERSION" 57 dahdi_versioninfo;
}

/// The alarms of a span (`dahdi_spaninfo.alarms`) as words an admin reads.
pub fn alarm_names(alarms: u32) -> Vec<&'static str> {
    let table = [
        (DAHDI_ALARM_RED, "red (no signal or no frame sync)"),
        (DAHDI_ALARM_YELLOW, "yellow (the far end sees no signal)"),
        (DAHDI_ALARM_BLUE, "blue (all ones: the far end sends AIS)"),
        (DAHDI_ALARM_RECOVER, "recovering"),
        (DAHDI_ALARM_LOOPBACK, "loopback"),
        (DAHDI_ALARM_NOTOPEN, "not open"),
    ];
    table
        .iter()
        .filter(|(bit, _)| alarms & bit != 0)
        .map(|(_, n)| *n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_are_named() {
        assert!(alarm_names(DAHDI_ALARM_NONE).is_empty());
        let n = alarm_names(DAHDI_ALARM_RED | DAHDI_ALARM_YELLOW);
        assert_eq!(n.len(), 2);
        assert!(n[0].starts_with("red"));
    }

    #[test]
    fn the_structures_are_what_the_driver_expects() {
        // Sizes against gcc's are in tests/ioctl_numbers.rs; these pin the header itself.
        assert_eq!(std::mem::size_of::<dahdi_bufferinfo>(), 6 * 4);
        assert_eq!(DAHDI_CODE, 0xDA);
    }
}
