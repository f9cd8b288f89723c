pub mod apply;
pub mod capture;
pub mod dahdi;
pub mod firewall;
pub mod network;
#[doc(hidden)]
pub mod testing;
pub mod time;
pub mod update;

/// The marker a factory reset (the console's entry 9, or a board's reset button) leaves
/// on the data partition; `pbx-console --finish-factory-reset` erases the partition at
/// the next boot when it is there.
pub const FACTORY_RESET_MARKER: &str = ".factory-reset";
