pub mod apply;
pub mod network;
#[doc(hidden)]
pub mod testing;
pub mod update;
