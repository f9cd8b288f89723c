//! The serial console's line settings (115200 8N1, no flow control), set through
//! serialport on the terminal the console menu runs on.

use std::path::Path;
use std::time::Duration;

/// Whether `dev` names a serial port rather than a virtual terminal (`tty1`) or a
/// pseudo-terminal.
pub fn is_serial(dev: &Path) -> bool {
    let name = dev.file_name().and_then(|n| n.to_str()).unwrap_or("");
    ["ttyS", "ttyAMA", "ttyUSB", "ttyACM", "ttymxc"]
        .iter()
        .any(|p| {
            name.strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Sets `baud` 8N1 without flow control on the serial port `dev`. The settings stay on
/// the line after this returns, for as long as the console holds it open. serialport
/// puts the line in raw mode; the terminal's line editing (canonical input, echo,
/// CR to NL, signals from Ctrl-C) is put back as it was, since the menu reads lines.
pub fn configure(dev: &Path, baud: u32) -> Result<(), String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, SetArg};
    let path = dev.to_str().ok_or("the device path is not UTF-8")?;
    let before = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(|e| format!("{}: {e}", dev.display()))?;
    let cooked = tcgetattr(&before).map_err(|e| format!("{}: {e}", dev.display()))?;
    let mut port = serialport::new(path, baud)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .timeout(Duration::from_millis(100))
        .open_native()
        .map_err(|e| format!("{}: {e}", dev.display()))?;
    // serialport opens exclusively; the console's own descriptor and later opens must
    // keep working.
    port.set_exclusive(false)
        .map_err(|e| format!("{}: {e}", dev.display()))?;
    drop(port);
    let mut t = tcgetattr(&before).map_err(|e| format!("{}: {e}", dev.display()))?;
    t.input_flags = cooked.input_flags;
    t.output_flags = cooked.output_flags;
    t.local_flags = cooked.local_flags;
    t.control_chars = cooked.control_chars;
    tcsetattr(&before, SetArg::TCSANOW, &t).map_err(|e| format!("{}: {e}", dev.display()))?;
    Ok(())
}
