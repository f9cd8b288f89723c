//! libsrtp2's C interface as bindgen reads it from `srtp2/srtp.h`. The safe side is
//! `media::srtp`.
#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code
)]
#![allow(clippy::all)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
