//! Per-vendor configuration files: which file names each family of phones asks for, and
//! the template (in `templates/<family>/`) that writes each one.
//!
//! To add a family: put its models in `config::PHONE_MODELS`, its templates in
//! `templates/<family>/`, and a [`Family`] entry below naming the files it requests.
//! File patterns take `{mac}` (12 hex digits, any letter case), `{model}` (a model's
//! file-name token, any case) and `{any}` (one or more letters and digits).

use config::{phone_model, PhoneModel, PHONE_MODELS};
use serde::Serialize;

/// One file a family of phones requests.
#[derive(Debug)]
pub struct FileRule {
    pub pattern: &'static str,
    /// Template name, `<family>/<file>`.
    pub template: &'static str,
    source: &'static str,
}

/// A family of phones sharing file names and templates.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub files: &'static [FileRule],
    /// First three octets of the MAC addresses the vendor ships with (lower-case hex),
    /// used to tell families apart when two request the same file name.
    pub ouis: &'static [&'static str],
    /// The `Event` header of the NOTIFY that makes the phone fetch its files again.
    pub resync_event: &'static str,
}

macro_rules! rule {
    ($pattern:literal, $family:literal, $file:literal) => {
        FileRule {
            pattern: $pattern,
            template: concat!($family, "/", $file),
            source: include_str!(concat!("../templates/", $family, "/", $file, ".j2")),
        }
    };
}

/// Every family, in the order ties are broken.
pub static FAMILIES: &[Family] = &[
    Family {
        name: "cisco79xx",
        files: &[
            rule!("OS79XX.TXT", "cisco79xx", "OS79XX.TXT"),
            rule!("SIPDefault.cnf", "cisco79xx", "SIPDefault.cnf"),
            rule!("SIP{mac}.cnf", "cisco79xx", "SIPMAC.cnf"),
        ],
        ouis: &["001aa0", "000e84", "0019aa", "001b54", "0013c4"],
        resync_event: "check-sync",
    },
    Family {
        name: "linksys",
        files: &[
            rule!("spa{model}.cfg", "linksys", "spa.cfg"),
            rule!("spa{mac}.cfg", "linksys", "spaMAC.cfg"),
        ],
        ouis: &["000e08", "001ca0", "0018f8", "001310", "001c10"],
        resync_event: "resync",
    },
    Family {
        name: "snom",
        files: &[
            rule!("snom{model}.htm", "snom", "snom.htm"),
            rule!("snom{model}-{mac}.htm", "snom", "snomMAC.htm"),
        ],
        ouis: &["000413"],
        resync_event: "check-sync;reboot=true",
    },
    Family {
        name: "yealink",
        files: &[
            rule!("y0000000000{any}.cfg", "yealink", "common.cfg"),
            rule!("{mac}.cfg", "yealink", "MAC.cfg"),
        ],
        ouis: &["001565", "805ec0", "249ad8", "805e0c", "44dbd2"],
        resync_event: "check-sync;reboot=true",
    },
    Family {
        name: "polycom",
        files: &[
            rule!("000000000000.cfg", "polycom", "master.cfg"),
            rule!("{mac}.cfg", "polycom", "MAC.cfg"),
            rule!("{mac}-sip.cfg", "polycom", "MAC-sip.cfg"),
        ],
        ouis: &["0004f2", "64167f", "482567", "00e0db"],
        resync_event: "check-sync",
    },
    Family {
        name: "grandstream",
        files: &[rule!("cfg{mac}.xml", "grandstream", "cfgMAC.xml")],
        ouis: &["000b82", "c074ad", "ec74d7"],
        resync_event: "check-sync",
    },
];

/// The family with this name.
pub fn family(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}

/// The models of a family, its default (assumed when a file name does not tell) first.
pub fn models_of(family: &str) -> impl Iterator<Item = &'static PhoneModel> + '_ {
    PHONE_MODELS.iter().filter(move |m| m.family == family)
}

/// A file name matched against a family's rule.
#[derive(Debug, Clone)]
pub struct Match {
    pub family: &'static Family,
    pub rule: &'static FileRule,
    /// The phone's MAC (lower case) when the file is one phone's.
    pub mac: Option<String>,
    /// The model when the file name tells it.
    pub model: Option<&'static PhoneModel>,
}

/// Matches `name` against `pattern`, case-insensitively; returns the MAC and model.
fn match_pattern(
    pattern: &str,
    name: &str,
    models: &[&'static PhoneModel],
) -> Option<(Option<String>, Option<&'static PhoneModel>)> {
    fn go(
        p: &str,
        n: &str,
        models: &[&'static PhoneModel],
        mac: Option<String>,
        model: Option<&'static PhoneModel>,
    ) -> Option<(Option<String>, Option<&'static PhoneModel>)> {
        if p.is_empty() {
            return n.is_empty().then_some((mac, model));
        }
        if let Some(rest) = p.strip_prefix("{mac}") {
            let (h, tail) = (n.get(..12)?, &n[12..]);
            if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            return go(rest, tail, models, Some(h.to_ascii_lowercase()), model);
        }
        if let Some(rest) = p.strip_prefix("{model}") {
            return models.iter().find_map(|m| {
                let t = n.get(..m.token.len())?;
                if !t.eq_ignore_ascii_case(m.token) {
                    return None;
                }
                go(rest, &n[m.token.len()..], models, mac.clone(), Some(m))
            });
        }
        if let Some(rest) = p.strip_prefix("{any}") {
            let len = n.bytes().take_while(|b| b.is_ascii_alphanumeric()).count();
            return (1..=len)
                .rev()
                .find_map(|i| go(rest, &n[i..], models, mac.clone(), model));
        }
        let lit_len = p.find('{').unwrap_or(p.len());
        let (lit, rest) = p.split_at(lit_len);
        let head = n.get(..lit.len())?;
        if !head.eq_ignore_ascii_case(lit) {
            return None;
        }
        go(rest, &n[lit.len()..], models, mac, model)
    }
    go(pattern, name, models, None, None)
}

/// Every family rule the file name matches.
pub fn matches(name: &str) -> Vec<Match> {
    let mut out = Vec::new();
    for f in FAMILIES {
        let models: Vec<_> = models_of(f.name).collect();
        for r in f.files {
            if let Some((mac, model)) = match_pattern(r.pattern, name, &models) {
                // An all-zero MAC is Polycom's master file name, never a phone.
                if mac.as_deref() == Some("000000000000") {
                    continue;
                }
                out.push(Match {
                    family: f,
                    rule: r,
                    mac,
                    model,
                });
            }
        }
    }
    out
}

/// The family whose vendor ships this MAC, if one does.
pub fn family_by_oui(mac: &str) -> Option<&'static Family> {
    let oui = mac.get(..6)?;
    FAMILIES.iter().find(|f| f.ouis.contains(&oui))
}

/// One line of a phone as the templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct LineView {
    pub index: usize,
    pub extension: String,
    pub display_name: String,
    pub username: String,
    pub password: String,
}

/// A busy-lamp key as the templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct BlfView {
    /// 1, 2, ... in the phone's order of keys after its lines.
    pub index: usize,
    /// The extension or parking slot watched.
    pub number: String,
    /// The key's label (the number when none was given).
    pub label: String,
    /// What the key dials while the lamp shows ringing: the directed pickup code and
    /// the number (empty for a parking slot, which the key simply dials).
    pub pickup: String,
}

/// The phone as the templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct PhoneView {
    pub mac: String,
    pub mac_upper: String,
    pub mac_colon: String,
    pub model: String,
    pub max_lines: usize,
}

/// Everything a template may use.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    /// The box address the request arrived on.
    pub server: String,
    pub sip_port: u16,
    /// Where the phone fetches further files: `tftp://ADDR` or `https://ADDR:PORT/prov`.
    pub prov_url: String,
    /// Host (and port) part of `prov_url`.
    pub prov_host: String,
    pub ntp_server: String,
    pub time_zone: String,
    /// `+01:00`
    pub utc_offset: String,
    pub utc_offset_seconds: i32,
    /// `+1`, `-5.5`
    pub utc_offset_hours: String,
    /// `UTC-1` (POSIX signs are reversed)
    pub posix_tz: String,
    /// Abbreviation for phones that take one (`CET`), else `GMT`.
    pub tz_abbrev: String,
    /// The model of a generic file, or of the phone.
    pub model: String,
    pub model_token: String,
    /// The uploaded firmware file for the model, or empty.
    pub firmware: String,
    pub phone: Option<PhoneView>,
    pub lines: Vec<LineView>,
    /// Busy-lamp keys, after the lines.
    pub blf: Vec<BlfView>,
    /// The directed pickup code (`**`), for phones that set it once.
    pub pickup_prefix: String,
}

/// Fills the time fields of a context from an offset in minutes.
pub fn time_fields(minutes: i32) -> (i32, String, String, String) {
    let secs = minutes * 60;
    let hours = if minutes % 60 == 0 {
        format!("{:+}", minutes / 60)
    } else {
        format!("{:+}", minutes as f64 / 60.0)
    };
    let (sign, abs) = (if minutes > 0 { '-' } else { '+' }, minutes.abs());
    let posix = if minutes == 0 {
        "UTC0".to_string()
    } else if abs % 60 == 0 {
        format!("UTC{sign}{}", abs / 60)
    } else {
        format!("UTC{sign}{}:{:02}", abs / 60, abs % 60)
    };
    let abbrev = match minutes {
        -600 => "HST",
        -540 => "AKST",
        -480 => "PST",
        -420 => "MST",
        -360 => "CST",
        -300 => "EST",
        -240 => "AST",
        60 => "CET",
        120 => "EET",
        180 => "MSK",
        _ => "GMT",
    };
    (secs, hours, posix, abbrev.to_string())
}

/// Renders one rule's file. An empty result means the phone gets "file not found"
/// (Cisco's OS79XX.TXT without an uploaded image, say).
pub fn render(rule: &FileRule, ctx: &Context) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    // Values are written as they are; templates escape XML themselves where it applies.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.add_template(rule.template, rule.source)
        .map_err(|e| format!("template {}: {e}", rule.template))?;
    env.get_template(rule.template)
        .and_then(|t| t.render(ctx))
        .map_err(|e| format!("template {}: {e}", rule.template))
}

/// The model named in a CSV line or the API, checked against the manufacturer when one
/// is given.
pub fn model_for(manufacturer: Option<&str>, name: &str) -> Result<&'static PhoneModel, String> {
    let m = phone_model(name).ok_or_else(|| {
        format!(
            "unknown phone model {name:?} (known: {})",
            PHONE_MODELS
                .iter()
                .map(|m| m.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    if let Some(v) = manufacturer.map(str::trim).filter(|v| !v.is_empty()) {
        if !m.manufacturer.eq_ignore_ascii_case(v)
            && !m.also_sold_as.iter().any(|a| a.eq_ignore_ascii_case(v))
        {
            return Err(format!(
                "model {} is made by {}, not {v}",
                m.name, m.manufacturer
            ));
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_has_a_family_and_every_template_compiles() {
        for m in PHONE_MODELS {
            assert!(family(m.family).is_some(), "{} has no family", m.name);
        }
        let ctx = Context {
            server: "10.10.10.1".into(),
            sip_port: 5060,
            prov_url: "tftp://10.10.10.1".into(),
            prov_host: "10.10.10.1".into(),
            ntp_server: "10.10.10.1".into(),
            time_zone: "UTC".into(),
            utc_offset: "+00:00".into(),
            utc_offset_seconds: 0,
            utc_offset_hours: "+0".into(),
            posix_tz: "UTC0".into(),
            tz_abbrev: "GMT".into(),
            model: "x".into(),
            model_token: "x".into(),
            firmware: String::new(),
            phone: Some(PhoneView {
                mac: "001aa0be1ecd".into(),
                mac_upper: "001AA0BE1ECD".into(),
                mac_colon: "00:1a:a0:be:1e:cd".into(),
                model: "x".into(),
                max_lines: 16,
            }),
            lines: (1..=16)
                .map(|i| LineView {
                    index: i,
                    extension: format!("{}", 100 + i),
                    display_name: "Ann & <Bob>".into(),
                    username: format!("{}", 100 + i),
                    password: "Str0ng-Secret".into(),
                })
                .collect(),
            blf: vec![
                BlfView {
                    index: 1,
                    number: "102".into(),
                    label: "Bob".into(),
                    pickup: "**102".into(),
                },
                BlfView {
                    index: 2,
                    number: "*71".into(),
                    label: "Park 1".into(),
                    pickup: String::new(),
                },
            ],
            pickup_prefix: "**".into(),
        };
        // BLF keys reach the families that have them, after the line keys.
        let file = |family: &str, file: &str| {
            let r = FAMILIES
                .iter()
                .find(|f| f.name == family)
                .unwrap()
                .files
                .iter()
                .find(|r| r.template.ends_with(file))
                .unwrap();
            render(r, &ctx).unwrap()
        };
        let y = file("yealink", "MAC.cfg");
        assert!(y.contains("linekey.17.type = 16\nlinekey.17.line = 1\nlinekey.17.value = 102\nlinekey.17.label = Bob\nlinekey.17.pickup_value = **102"), "{y}");
        assert!(y.contains("linekey.18.value = *71"), "{y}");
        let s = file("snom", "snomMAC.htm");
        assert!(
            s.contains("fkey16$: blf <sip:102@10.10.10.1:5060>|**\nfkey_label16$: Bob"),
            "{s}"
        );
        let p = file("polycom", "MAC-sip.cfg");
        assert!(
            p.contains(
                "attendant.resourceList.1.address=\"102\" attendant.resourceList.1.label=\"Bob\""
            ),
            "{p}"
        );
        assert!(p.contains("call.directedCallPickupString=\"**\""), "{p}");
        let l = file("linksys", "spaMAC.cfg");
        assert!(
            l.contains(
                "<Unit_1_Key_2_>fnc=blf+sd;sub=*71@10.10.10.1:5060;nme=Park 1</Unit_1_Key_2_>"
            ),
            "{l}"
        );
        for f in FAMILIES {
            assert!(
                models_of(f.name).next().is_some(),
                "{} has no model",
                f.name
            );
            for r in f.files {
                render(r, &ctx).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    #[test]
    fn file_names_match_in_any_case() {
        let m = matches("SIP001AA0BE1ECD.cnf");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].family.name, "cisco79xx");
        assert_eq!(m[0].mac.as_deref(), Some("001aa0be1ecd"));
        let m = matches("sip001aa0be1ecd.CNF");
        assert_eq!(m[0].mac.as_deref(), Some("001aa0be1ecd"));
        let m = matches("snom360-000413AABBCC.htm");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].model.unwrap().name, "snom360");
        assert_eq!(m[0].mac.as_deref(), Some("000413aabbcc"));
        let m = matches("snom360.htm");
        assert_eq!(m[0].model.unwrap().name, "snom360");
        assert!(m[0].mac.is_none());
        let m = matches("spa942.cfg");
        assert_eq!(m[0].model.unwrap().name, "SPA942");
        assert_eq!(
            matches("spa000e08aabbcc.cfg")[0].mac.as_deref(),
            Some("000e08aabbcc")
        );
        // Yealink and Polycom both ask for <mac>.cfg.
        let fams: Vec<_> = matches("0004f2aabbcc.cfg")
            .iter()
            .map(|m| m.family.name)
            .collect();
        assert_eq!(fams, vec!["yealink", "polycom"]);
        let m = matches("000000000000.cfg");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].family.name, "polycom");
        assert_eq!(matches("0004f2aabbcc-sip.cfg")[0].family.name, "polycom");
        assert_eq!(matches("y000000000028.cfg")[0].family.name, "yealink");
        assert_eq!(matches("cfg000b82aabbcc.xml")[0].family.name, "grandstream");
        assert_eq!(matches("OS79XX.TXT")[0].family.name, "cisco79xx");
        for n in [
            "SIP001AA0BE1EC.cnf",
            "snom999-000413AABBCC.htm",
            "passwd",
            "SIP001AA0BE1ECDX.cnf",
        ] {
            assert!(matches(n).is_empty(), "{n}");
        }
        assert_eq!(family_by_oui("0004f2aabbcc").unwrap().name, "polycom");
    }

    #[test]
    fn time_fields_for_offsets() {
        assert_eq!(
            time_fields(60),
            (3600, "+1".into(), "UTC-1".into(), "CET".into())
        );
        assert_eq!(
            time_fields(-330),
            (-19800, "-5.5".into(), "UTC+5:30".into(), "GMT".into())
        );
        assert_eq!(time_fields(0).2, "UTC0");
    }

    #[test]
    fn models_are_checked_against_the_manufacturer() {
        assert_eq!(model_for(Some("Cisco"), "794X").unwrap().lines, 2);
        assert_eq!(model_for(Some("cisco"), "SPA942").unwrap().name, "SPA942");
        assert!(model_for(Some("Snom"), "794X").is_err());
        assert!(model_for(None, "7970").is_err());
    }
}
