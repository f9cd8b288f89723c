//! Provisioned hardware phones: the models the box knows, MAC addresses, the
//! provisioning settings and the phones table (Kerio chapter 10).

use serde::{Deserialize, Serialize};

/// A phone model the box can provision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneModel {
    /// The name used in CSV files, pbxctl and the API (`794X`, `SPA942`, `snom360`).
    pub name: &'static str,
    /// Manufacturer as written in Kerio's CSV (`Cisco`, `Linksys`, `Snom`, ...).
    pub manufacturer: &'static str,
    /// Other manufacturer names accepted in a CSV line (Linksys phones were sold as Cisco).
    pub also_sold_as: &'static [&'static str],
    /// Template family in the `provision` crate that writes this model's files.
    pub family: &'static str,
    /// How many extensions (lines) the model carries.
    pub lines: usize,
    /// The part of the model's file names that names it (`360` in `snom360.htm`).
    pub token: &'static str,
}

const fn m(
    name: &'static str,
    manufacturer: &'static str,
    also_sold_as: &'static [&'static str],
    family: &'static str,
    lines: usize,
    token: &'static str,
) -> PhoneModel {
    PhoneModel {
        name,
        manufacturer,
        also_sold_as,
        family,
        lines,
        token,
    }
}

/// Every model, grouped by family; the first model of a family is the one assumed for a
/// phone whose file name does not tell its model.
pub const PHONE_MODELS: &[PhoneModel] = &[
    m("794X", "Cisco", &[], "cisco79xx", 2, "7940"),
    m("796X", "Cisco", &[], "cisco79xx", 6, "7960"),
    m("SPA942", "Linksys", &["Cisco"], "linksys", 4, "942"),
    m("SPA962", "Linksys", &["Cisco"], "linksys", 6, "962"),
    m("SPA922", "Linksys", &["Cisco"], "linksys", 1, "922"),
    m("SPA901", "Linksys", &["Cisco"], "linksys", 1, "901"),
    m("PAP2T", "Linksys", &["Cisco"], "linksys", 2, "pap2t"),
    m("snom300", "Snom", &[], "snom", 4, "300"),
    m("snom320", "Snom", &[], "snom", 12, "320"),
    m("snom360", "Snom", &[], "snom", 12, "360"),
    m("snom370", "Snom", &[], "snom", 12, "370"),
    m("snom820", "Snom", &[], "snom", 12, "820"),
    m("snom821", "Snom", &[], "snom", 12, "821"),
    m("snom870", "Snom", &[], "snom", 12, "870"),
    m("snomM3", "Snom", &[], "snom", 8, "m3"),
    m("snomMP", "Snom", &[], "snom", 1, "MP"),
    m("T4X", "Yealink", &[], "yealink", 6, "t4x"),
    m("T46", "Yealink", &[], "yealink", 16, "t46"),
    m("T48", "Yealink", &[], "yealink", 16, "t48"),
    m("VVX", "Polycom", &["Poly"], "polycom", 6, "vvx"),
    m("VVX6XX", "Polycom", &["Poly"], "polycom", 16, "vvx6xx"),
    m("GXP21XX", "Grandstream", &[], "grandstream", 6, "gxp21xx"),
    m("GXP16XX", "Grandstream", &[], "grandstream", 2, "gxp16xx"),
];

/// The model with this name, ignoring letter case.
pub fn phone_model(name: &str) -> Option<&'static PhoneModel> {
    PHONE_MODELS
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(name.trim()))
}

/// A MAC address in any usual spelling (`00:1a:a0:be:1e:cd`, `00-1A-A0-BE-1E-CD`,
/// `001a.a0be.1ecd`, `001AA0BE1ECD`) as 12 lower-case hex digits; `None` when it is not
/// one, or is the all-zero, broadcast or a multicast address.
pub fn normalize_mac(s: &str) -> Option<String> {
    let s = s.trim();
    let groups: Vec<&str> = if s.contains(':') || s.contains('-') {
        s.split([':', '-']).collect()
    } else if s.contains('.') {
        s.split('.').collect()
    } else {
        vec![s]
    };
    let width = 12 / groups.len().max(1);
    if !matches!(groups.len(), 1 | 3 | 6) || groups.iter().any(|g| g.len() != width) {
        return None;
    }
    let hex: String = groups.concat();
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    let first = u8::from_str_radix(&hex[..2], 16).ok()?;
    if hex == "000000000000" || first & 1 == 1 {
        return None;
    }
    Some(hex)
}

/// `001aa0be1ecd` as `00:1a:a0:be:1e:cd`.
pub fn format_mac(mac: &str) -> String {
    mac.as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap_or("??"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Provisioning settings (Kerio 10.1, 22.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provisioning {
    /// Phones get configuration files at all.
    #[serde(default)]
    pub enabled: bool,
    /// Numbering of automatically created extensions starts here; used numbers are skipped.
    #[serde(default = "default_first")]
    pub first_extension: String,
    /// "Create new extension for newly registered phones".
    #[serde(default)]
    pub auto_create: bool,
    /// The SIP password every provisioned phone uses (its accounts carry it).
    #[serde(default)]
    pub phone_password: String,
    /// Addresses or subnets allowed to fetch files; empty = anywhere (Kerio 22.2).
    #[serde(default)]
    pub allowed_sources: Vec<String>,
    /// NTP server written into the files; empty = the box itself.
    #[serde(default)]
    pub ntp_server: String,
    /// Olson time zone name written into the files, for phones that take one.
    #[serde(default = "default_tz")]
    pub time_zone: String,
    /// Offset from UTC written into the files, `+HH:MM` or `-HH:MM`.
    #[serde(default = "default_offset")]
    pub utc_offset: String,
}

fn default_first() -> String {
    "100".into()
}
fn default_tz() -> String {
    "UTC".into()
}
fn default_offset() -> String {
    "+00:00".into()
}

impl Default for Provisioning {
    fn default() -> Self {
        Provisioning {
            enabled: false,
            first_extension: default_first(),
            auto_create: false,
            phone_password: String::new(),
            allowed_sources: Vec::new(),
            ntp_server: String::new(),
            time_zone: default_tz(),
            utc_offset: default_offset(),
        }
    }
}

/// `+01:00` as minutes east of UTC.
pub fn parse_utc_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 || (h == 14 && m > 0) {
        return None;
    }
    Some(sign * (h * 60 + m))
}

/// One line of a phone: the extension it rings for and the SIP account it registers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneLine {
    pub extension: String,
    pub account: String,
}

/// A hardware phone in the Provisioned Phones table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phone {
    /// 12 lower-case hex digits.
    pub mac: String,
    /// A [`PHONE_MODELS`] name.
    pub model: String,
    /// Line 1 first.
    #[serde(default)]
    pub lines: Vec<PhoneLine>,
    /// Removed by the admin: never provisioned again until added back (Kerio 10.4).
    #[serde(default)]
    pub disabled: bool,
    /// Busy-lamp keys after the line keys, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blf_keys: Vec<BlfKey>,
}

/// A busy-lamp key: the extension or parking slot it watches (and picks up or dials),
/// and what the key's label says (the number when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlfKey {
    pub number: String,
    #[serde(default)]
    pub label: String,
}

/// Most BLF keys one phone is given (an expansion module's worth).
pub const MAX_BLF_KEYS: usize = 40;

/// BLF keys written as `102 Bob; *71 Park 1` (number, then an optional label; `;` or a
/// new line between keys).
pub fn parse_blf_keys(s: &str) -> Vec<BlfKey> {
    s.split([';', '\n'])
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            let (number, label) = k.split_once(char::is_whitespace).unwrap_or((k, ""));
            BlfKey {
                number: number.to_string(),
                label: label.trim().to_string(),
            }
        })
        .collect()
}

/// The keys as [`parse_blf_keys`] reads them.
pub fn format_blf_keys(keys: &[BlfKey]) -> String {
    keys.iter()
        .map(|k| {
            if k.label.is_empty() {
                k.number.clone()
            } else {
                format!("{} {}", k.number, k.label)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Most phones the table holds. Phones add themselves by asking for a file, so the table
/// needs a bound a flood of made-up MAC addresses cannot pass.
pub const MAX_PHONES: usize = 1000;

/// Where a phone stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PhoneState {
    /// Known, but no extension yet: it gets a file without lines.
    Pending,
    /// Has extensions.
    Provisioned,
    /// Removed; gets nothing.
    Disabled,
}

impl PhoneState {
    /// The name used in the API, pbxctl and the pages.
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneState::Pending => "pending",
            PhoneState::Provisioned => "provisioned",
            PhoneState::Disabled => "disabled",
        }
    }
}

impl Phone {
    /// A phone without lines.
    pub fn new(mac: &str, model: &str) -> Phone {
        Phone {
            mac: mac.into(),
            model: model.into(),
            lines: Vec::new(),
            disabled: false,
            blf_keys: Vec::new(),
        }
    }

    pub fn state(&self) -> PhoneState {
        if self.disabled {
            PhoneState::Disabled
        } else if self.lines.is_empty() {
            PhoneState::Pending
        } else {
            PhoneState::Provisioned
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_in_every_spelling() {
        for s in [
            "00:1a:a0:be:1e:cd",
            "00-1A-A0-BE-1E-CD",
            "001a.a0be.1ecd",
            "001AA0BE1ECD",
        ] {
            assert_eq!(normalize_mac(s).as_deref(), Some("001aa0be1ecd"), "{s}");
        }
        for s in [
            "",
            "00:1a:a0:be:1e",
            "00:1a:a0:be:1e:cg",
            "ff:ff:ff:ff:ff:ff",
            "01:00:5e:00:00:01",
            "000000000000",
            "0:01a:a0:be:1e:cd",
            "00::1a:a0:be:1ecd",
        ] {
            assert_eq!(normalize_mac(s), None, "{s}");
        }
        assert_eq!(format_mac("001aa0be1ecd"), "00:1a:a0:be:1e:cd");
    }

    #[test]
    fn models_are_unique_and_found_in_any_case() {
        let mut names = std::collections::HashSet::new();
        for m in PHONE_MODELS {
            assert!(names.insert(m.name.to_ascii_lowercase()), "{}", m.name);
            assert!(m.lines >= 1);
        }
        assert_eq!(phone_model("snom360").unwrap().lines, 12);
        assert_eq!(phone_model("spa942").unwrap().name, "SPA942");
        assert!(phone_model("7970").is_none());
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_utc_offset("+01:00"), Some(60));
        assert_eq!(parse_utc_offset("-05:30"), Some(-330));
        assert_eq!(parse_utc_offset("+14:00"), Some(840));
        for s in ["01:00", "+1:00", "+15:00", "+01:60", "", "+"] {
            assert_eq!(parse_utc_offset(s), None, "{s}");
        }
    }
}
