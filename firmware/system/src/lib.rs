pub mod apply;
pub mod network;
