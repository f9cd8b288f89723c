//! Board profiles: what each model the firmware runs on has. The image names its board
//! in `/etc/pbx/board` (one word); [`Profile::detect`] reads it.

use serde::Serialize;
use std::path::Path;

/// A status LED and how it is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Led {
    /// What it shows: `power`, `status` (pbxd healthy) or `line` (ISDN spans up).
    pub role: &'static str,
    /// BCM GPIO number on a Raspberry Pi (through rppal), or `None` for a LED the
    /// kernel drives (`/sys/class/leds`).
    pub gpio: Option<u8>,
    /// The kernel LED name under `/sys/class/leds`, when the kernel drives it.
    pub sysfs: Option<&'static str>,
}

/// A push button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Button {
    /// `factory-reset`: held for [`Button::hold_secs`] it resets the box.
    pub role: &'static str,
    /// BCM GPIO number (active low, internal pull-up).
    pub gpio: u8,
    pub hold_secs: u32,
}

/// One model of box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// The name `/etc/pbx/board` holds and RAUC's `compatible` is made from.
    pub name: &'static str,
    pub description: &'static str,
    /// RAUC's `compatible`: bundles for another value are refused.
    pub compatible: &'static str,
    /// Terminals the console menu runs on, with the serial line's speed (0: a VT).
    pub consoles: &'static [(&'static str, u32)],
    /// Network interfaces, the first being the one with the factory address.
    pub nics: &'static [&'static str],
    pub leds: &'static [Led],
    pub buttons: &'static [Button],
    /// The hardware watchdog device and the timeout pbxd asks for.
    pub watchdog: Option<(&'static str, u32)>,
    /// The ALSA capture device for live music on hold (line-in), if the board has one.
    pub audio_in: Option<&'static str>,
    /// Telephony cards the board is sold with (DAHDI drivers to load).
    pub telephony: &'static [&'static str],
}

/// The x86 box with one NIC; the other x86 boards differ from it only where they say.
const X86_1NIC: Profile = Profile {
    name: "x86-1nic",
    description: "x86 box with CompactFlash and one NIC (Kerio Operator Box 1000 class)",
    compatible: "pbx-x86_64",
    consoles: &[("tty1", 0), ("ttyS0", 115_200)],
    nics: &["eth0"],
    leds: &[],
    buttons: &[],
    watchdog: Some(("/dev/watchdog", 30)),
    audio_in: None,
    telephony: &[],
};

/// Every board the firmware knows.
pub const PROFILES: &[Profile] = &[
    X86_1NIC,
    Profile {
        name: "x86-isdn",
        description: "larger x86 box with a PCI PRI (one E1/T1 port) or BRI (four ports) card",
        nics: &["eth0", "eth1"],
        audio_in: Some("hw:0,0"),
        // TE122 (Kerio's E1/T1 card) is wcte12xp; TE131/TE133 wcte13xp; TE2xx/4xx
        // wct4xxp; B410P (four BRI ports) wcb4xxp.
        telephony: &["wcte12xp", "wcte13xp", "wct4xxp", "wcb4xxp"],
        ..X86_1NIC
    },
    Profile {
        name: "qemu-x86_64",
        description: "QEMU virtual board (virtio disk and NIC, i6300esb watchdog)",
        ..X86_1NIC
    },
    Profile {
        name: "rpi4",
        description: "Raspberry Pi 4 Model B with a USB sound card for line-in",
        compatible: "pbx-rpi4",
        consoles: &[("tty1", 0), ("ttyAMA0", 115_200)],
        nics: &["eth0"],
        leds: &[
            Led {
                role: "power",
                gpio: None,
                sysfs: Some("PWR"),
            },
            Led {
                role: "status",
                gpio: Some(17),
                sysfs: None,
            },
            Led {
                role: "line",
                gpio: Some(27),
                sysfs: None,
            },
        ],
        buttons: &[Button {
            role: "factory-reset",
            gpio: 22,
            hold_secs: 10,
        }],
        watchdog: Some(("/dev/watchdog", 15)),
        audio_in: Some("plughw:1,0"),
        telephony: &[],
    },
];

impl Profile {
    /// The profile named `name`.
    pub fn by_name(name: &str) -> Option<&'static Profile> {
        PROFILES.iter().find(|p| p.name == name)
    }

    /// The board of the running system, from `<root>/etc/pbx/board`; `None` off the box
    /// (a development machine) or when the file names no known board.
    pub fn detect(root: &Path) -> Option<&'static Profile> {
        let text = std::fs::read_to_string(root.join("etc/pbx/board")).ok()?;
        Profile::by_name(text.trim())
    }

    /// Whether `dev` (`ttyS0`) is one of this board's consoles, with its line speed.
    pub fn console_speed(&self, dev: &str) -> Option<u32> {
        self.consoles.iter().find(|c| c.0 == dev).map(|c| c.1)
    }
}
