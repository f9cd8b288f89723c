//! The box's network settings (Kerio 2.2.1 and 22.1): per interface DHCP or a static
//! address, mask and gateway; DNS servers; the host name. They live in a small JSON
//! file on the data partition that `system` owns (not in the store), so the console
//! can read, change and apply them while pbxd is down.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The factory address of the first NIC (Kerio 2.2.1).
pub const FACTORY_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 10, 10, 1);
pub const FACTORY_PREFIX: u8 = 24;

/// One network interface's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceSettings {
    /// The kernel's name for it (`eth0`).
    pub name: String,
    /// Obtain the configuration from a DHCP server.
    #[serde(default)]
    pub dhcp: bool,
    /// Static address (when not DHCP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    /// Prefix length of the mask (24 = 255.255.255.0).
    #[serde(default)]
    pub prefix: u8,
    /// Default gateway through this interface (static only; at most one in all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
}

/// All of the box's network settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSettings {
    #[serde(default = "default_hostname")]
    pub hostname: String,
    pub interfaces: Vec<InterfaceSettings>,
    /// DNS servers, in order (at most 3). Empty with DHCP: the DHCP server's.
    #[serde(default)]
    pub dns: Vec<Ipv4Addr>,
}

fn default_hostname() -> String {
    "pbx".into()
}

impl NetworkSettings {
    /// The factory settings: `nic` static at 10.10.10.1/24, no gateway, no DNS.
    pub fn factory(nic: &str) -> NetworkSettings {
        NetworkSettings {
            hostname: default_hostname(),
            interfaces: vec![InterfaceSettings {
                name: nic.into(),
                dhcp: false,
                address: Some(FACTORY_ADDRESS),
                prefix: FACTORY_PREFIX,
                gateway: None,
            }],
            dns: Vec::new(),
        }
    }

    pub fn interface(&self, name: &str) -> Option<&InterfaceSettings> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// Replaces (or adds) one interface's settings.
    pub fn set_interface(&mut self, i: InterfaceSettings) {
        match self.interfaces.iter_mut().find(|x| x.name == i.name) {
            Some(slot) => *slot = i,
            None => self.interfaces.push(i),
        }
    }

    /// Checks everything; the error names the field and says what is wrong.
    pub fn validate(&self) -> Result<(), Invalid> {
        valid_hostname(&self.hostname).map_err(|m| Invalid::new("hostname", m))?;
        if self.interfaces.is_empty() {
            return Err(Invalid::new(
                "interfaces",
                "at least one interface is needed",
            ));
        }
        let mut gateways = 0;
        for (n, i) in self.interfaces.iter().enumerate() {
            if !valid_ifname(&i.name) {
                return Err(Invalid::new(
                    "name",
                    format!("{:?} is not an interface name", i.name),
                ));
            }
            if self.interfaces[..n].iter().any(|x| x.name == i.name) {
                return Err(Invalid::new("name", format!("{} is listed twice", i.name)));
            }
            if i.dhcp {
                if i.address.is_some() || i.gateway.is_some() {
                    return Err(Invalid::new(
                        "address",
                        format!("{}: DHCP gives the address and gateway", i.name),
                    ));
                }
                continue;
            }
            let Some(a) = i.address else {
                return Err(Invalid::new(
                    "address",
                    format!("{}: a static address is needed (or DHCP)", i.name),
                ));
            };
            check_static(a, i.prefix, i.gateway)?;
            gateways += i.gateway.is_some() as usize;
        }
        if gateways > 1 {
            return Err(Invalid::new(
                "gateway",
                "only one interface can have the default gateway",
            ));
        }
        if self.dns.len() > 3 {
            return Err(Invalid::new("dns", "at most 3 DNS servers"));
        }
        for d in &self.dns {
            if !unicast(*d) {
                return Err(Invalid::new(
                    "dns",
                    format!("{d} is not a usable server address"),
                ));
            }
        }
        Ok(())
    }
}

/// A refused setting: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub(crate) fn new(field: &str, message: impl Into<String>) -> Invalid {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn unicast(a: Ipv4Addr) -> bool {
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || a.is_broadcast()
        || a.octets()[0] >= 240)
}

/// The network and broadcast addresses of `a/prefix`.
pub fn subnet(a: Ipv4Addr, prefix: u8) -> (Ipv4Addr, Ipv4Addr) {
    let mask = mask_bits(prefix);
    let n = u32::from(a) & mask;
    (Ipv4Addr::from(n), Ipv4Addr::from(n | !mask))
}

fn mask_bits(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32) as u32)
    }
}

/// A prefix length as a dotted mask (24 = 255.255.255.0).
pub fn mask_of(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(mask_bits(prefix))
}

/// Checks a static address, prefix and gateway together.
pub fn check_static(a: Ipv4Addr, prefix: u8, gateway: Option<Ipv4Addr>) -> Result<(), Invalid> {
    if !unicast(a) || a.is_link_local() {
        return Err(Invalid::new(
            "address",
            format!("{a} cannot be the box's address"),
        ));
    }
    if !(1..=30).contains(&prefix) {
        return Err(Invalid::new(
            "mask",
            "the mask must leave room for hosts (prefix 1 to 30)",
        ));
    }
    let (net, bcast) = subnet(a, prefix);
    if a == net || a == bcast {
        return Err(Invalid::new(
            "address",
            format!("{a} is the subnet's network or broadcast address"),
        ));
    }
    if let Some(g) = gateway {
        if g == a {
            return Err(Invalid::new(
                "gateway",
                "the gateway is the box's own address",
            ));
        }
        if subnet(g, prefix).0 != net || g == net || g == bcast || !unicast(g) {
            return Err(Invalid::new(
                "gateway",
                format!("{g} is not a host of {net}/{prefix}"),
            ));
        }
    }
    Ok(())
}

/// Reads a mask typed as `255.255.255.0`, `/24` or `24`.
pub fn parse_mask(s: &str) -> Result<u8, Invalid> {
    let s = s.trim();
    let bad = || Invalid::new("mask", format!("{s:?} is not a mask (255.255.255.0 or 24)"));
    if let Ok(n) = s.trim_start_matches('/').parse::<u8>() {
        return if n <= 32 { Ok(n) } else { Err(bad()) };
    }
    let m: Ipv4Addr = s.parse().map_err(|_| bad())?;
    let bits = u32::from(m);
    let prefix = bits.leading_ones();
    if bits.checked_shl(prefix).unwrap_or(0) != 0 {
        return Err(Invalid::new(
            "mask",
            format!("{s} has holes; a mask is ones then zeros"),
        ));
    }
    Ok(prefix as u8)
}

/// Reads an IPv4 address typed by a person, naming the field on error.
pub fn parse_addr(field: &str, s: &str) -> Result<Ipv4Addr, Invalid> {
    s.trim()
        .parse()
        .map_err(|_| Invalid::new(field, format!("{:?} is not an IPv4 address", s.trim())))
}

/// Letters, digits and inner hyphens in dot-separated labels of up to 63 (a dotted
/// IPv4 address passes too).
pub(crate) fn is_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn valid_hostname(h: &str) -> Result<(), String> {
    if is_hostname(h) {
        Ok(())
    } else {
        Err(format!(
            "{h:?}: letters, digits and inner hyphens, labels up to 63"
        ))
    }
}

fn valid_ifname(n: &str) -> bool {
    (1..=15).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Why the settings file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0} is damaged: {1}")]
    Damaged(PathBuf, String),
}

/// The settings file (`<data>/system/network.json`).
#[derive(Debug, Clone)]
pub struct SettingsFile {
    pub path: PathBuf,
}

impl SettingsFile {
    pub fn in_data_dir(data: &Path) -> SettingsFile {
        SettingsFile {
            path: data.join("system").join("network.json"),
        }
    }

    /// The saved settings; `None` when none were ever saved (the factory settings
    /// apply).
    pub fn load(&self) -> Result<Option<NetworkSettings>, LoadError> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LoadError::Io(self.path.clone(), e)),
        };
        let s: NetworkSettings = serde_json::from_slice(&text)
            .map_err(|e| LoadError::Damaged(self.path.clone(), e.to_string()))?;
        s.validate()
            .map_err(|e| LoadError::Damaged(self.path.clone(), e.to_string()))?;
        Ok(Some(s))
    }

    /// Validates and stores the settings atomically: a power cut leaves the old file
    /// or the new one, never a mix.
    pub fn save(&self, s: &NetworkSettings) -> Result<(), SaveError> {
        s.validate()?;
        let text = serde_json::to_vec_pretty(s).expect("settings serialise");
        write_atomic(&self.path, &text).map_err(SaveError::Io)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("saving: {0}")]
    Io(std::io::Error),
}

/// Writes `data` to `path` through a temporary file in the same directory, synced,
/// renamed over the old file, and the directory synced.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // The process's own temporary name: the serial and VGA consoles may save at once.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(a: &str, p: u8, g: Option<&str>) -> InterfaceSettings {
        InterfaceSettings {
            name: "eth0".into(),
            dhcp: false,
            address: Some(a.parse().unwrap()),
            prefix: p,
            gateway: g.map(|g| g.parse().unwrap()),
        }
    }

    #[test]
    fn the_factory_settings_are_kerios() {
        let f = NetworkSettings::factory("eth0");
        f.validate().unwrap();
        assert_eq!(f.interfaces[0].address, Some(Ipv4Addr::new(10, 10, 10, 1)));
        assert_eq!(mask_of(f.interfaces[0].prefix).to_string(), "255.255.255.0");
    }

    #[test]
    fn masks_are_read_as_people_type_them() {
        assert_eq!(parse_mask("255.255.255.0").unwrap(), 24);
        assert_eq!(parse_mask(" /16 ").unwrap(), 16);
        assert_eq!(parse_mask("255.255.255.252").unwrap(), 30);
        assert!(parse_mask("255.0.255.0")
            .unwrap_err()
            .message
            .contains("holes"));
        assert!(parse_mask("33").is_err());
        assert!(parse_mask("banana").is_err());
        assert!(parse_addr("gateway", "10.0.0")
            .unwrap_err()
            .message
            .contains("not an IPv4"));
    }

    #[test]
    fn bad_settings_name_their_field() {
        let mut s = NetworkSettings::factory("eth0");
        let cases: Vec<(InterfaceSettings, &str)> = vec![
            (st("10.10.10.0", 24, None), "address"),
            (st("10.10.10.255", 24, None), "address"),
            (st("127.0.0.5", 8, None), "address"),
            (st("224.0.0.1", 24, None), "address"),
            (st("0.0.0.0", 24, None), "address"),
            (st("169.254.1.1", 16, None), "address"),
            (st("10.10.10.1", 31, None), "mask"),
            (st("10.10.10.1", 0, None), "mask"),
            (st("10.10.10.1", 24, Some("10.10.11.1")), "gateway"),
            (st("10.10.10.1", 24, Some("10.10.10.1")), "gateway"),
            (st("10.10.10.1", 24, Some("10.10.10.255")), "gateway"),
        ];
        for (i, field) in cases {
            s.interfaces = vec![i.clone()];
            assert_eq!(s.validate().unwrap_err().field, field, "{i:?}");
        }
        s.interfaces = vec![st("192.168.1.10", 24, Some("192.168.1.1"))];
        s.validate().unwrap();
        s.hostname = "-pbx".into();
        assert_eq!(s.validate().unwrap_err().field, "hostname");
        s.hostname = "pbx.example.com".into();
        s.dns = vec!["255.255.255.255".parse().unwrap()];
        assert_eq!(s.validate().unwrap_err().field, "dns");
        s.dns = vec!["9.9.9.9".parse().unwrap(); 4];
        assert_eq!(s.validate().unwrap_err().field, "dns");
        s.dns.truncate(2);
        let mut two = st("10.0.0.2", 8, Some("10.0.0.1"));
        two.name = "eth1".into();
        s.interfaces.push(two.clone());
        assert_eq!(s.validate().unwrap_err().field, "gateway");
        two.gateway = None;
        two.name = "eth0".into();
        s.interfaces[1] = two;
        assert_eq!(s.validate().unwrap_err().field, "name");
        s.interfaces.truncate(1);
        s.interfaces[0] = InterfaceSettings {
            name: "eth0".into(),
            dhcp: true,
            address: None,
            prefix: 0,
            gateway: None,
        };
        s.validate().unwrap();
        s.interfaces[0].name = "eth0; reboot".into();
        assert_eq!(s.validate().unwrap_err().field, "name");
    }

    #[test]
    fn the_file_is_written_whole_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let f = SettingsFile::in_data_dir(dir.path());
        assert!(f.load().unwrap().is_none(), "nothing saved: factory");
        let mut s = NetworkSettings::factory("eth0");
        s.interfaces[0] = st("192.168.5.20", 24, Some("192.168.5.1"));
        s.dns = vec!["192.168.5.1".parse().unwrap()];
        f.save(&s).unwrap();
        assert_eq!(f.load().unwrap(), Some(s.clone()));
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(f.path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("network.json")]);
        // Invalid settings are refused and the file keeps what it had.
        let mut bad = s.clone();
        bad.interfaces[0].prefix = 32;
        assert!(matches!(f.save(&bad), Err(SaveError::Invalid(_))));
        assert_eq!(f.load().unwrap(), Some(s));
        // A damaged or hand-broken file says so.
        std::fs::write(&f.path, b"{\"interfaces\": [").unwrap();
        assert!(matches!(f.load(), Err(LoadError::Damaged(..))));
        std::fs::write(
            &f.path,
            br#"{"interfaces": [{"name": "eth0", "address": "10.0.0.0", "prefix": 8}]}"#,
        )
        .unwrap();
        let e = f.load().unwrap_err().to_string();
        assert!(e.contains("damaged") && e.contains("address"), "{e}");
    }
}
