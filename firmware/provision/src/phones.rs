//! Changes to the Provisioned Phones table (Kerio 10.2-10.4) and the CSV import (10.3),
//! as pure edits of a [`Config`]; the caller commits them through the configurator,
//! which validates the whole result.

use crate::templates::model_for;
use config::{
    format_mac, normalize_mac, phone_model, Config, Extension, Phone, PhoneLine, SipAccount,
};
use serde::Serialize;
use store::ChangeError;

/// Most lines a CSV file may have.
pub const MAX_CSV_LINES: usize = 5000;

/// The next number for a new phone: the first extension, or the next one above it that
/// no extension uses (keeping leading zeros).
pub fn next_number(c: &Config) -> Result<String, ChangeError> {
    let first = &c.provisioning.first_extension;
    let start: u64 = first
        .parse()
        .map_err(|_| ChangeError::field("first_extension", "must be digits"))?;
    (start..start + 100_000)
        .map(|n| format!("{n:0width$}", width = first.len()))
        .find(|n| !c.extensions.iter().any(|e| &e.number == n))
        .ok_or_else(|| ChangeError::conflict("first_extension", "no free number left"))
}

/// Gives every account a phone line uses the shared phone password.
pub fn sync_phone_passwords(c: &mut Config) {
    let pw = c.provisioning.phone_password.clone();
    if pw.is_empty() {
        return;
    }
    let used: Vec<String> = c
        .phones
        .iter()
        .flat_map(|p| p.lines.iter().map(|l| l.account.clone()))
        .collect();
    for a in &mut c.accounts {
        if used.contains(&a.username) {
            a.secret = pw.clone();
        }
    }
}

/// A line for `number` on a phone: the extension is made when it does not exist, and the
/// phone gets an account of its own with the shared password.
fn new_line(c: &mut Config, number: &str) -> Result<PhoneLine, ChangeError> {
    if number.is_empty() || number.len() > 20 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ChangeError::field(
            "extensions",
            format!("{number:?} is not an extension number"),
        ));
    }
    if let Some(p) = c
        .phones
        .iter()
        .find(|p| p.lines.iter().any(|l| l.extension == number))
    {
        return Err(ChangeError::conflict(
            "extensions",
            format!(
                "extension {number} is already on phone {}",
                format_mac(&p.mac)
            ),
        ));
    }
    if c.provisioning.phone_password.is_empty() {
        return Err(ChangeError::field(
            "phone_password",
            "set the password for phones first",
        ));
    }
    if !c.extensions.iter().any(|e| e.number == number) {
        c.extensions.push(Extension::new(number));
    }
    let username = c.free_username(number);
    let secret = c.provisioning.phone_password.clone();
    c.accounts.push(SipAccount::new(&username, &secret, number));
    Ok(PhoneLine {
        extension: number.to_string(),
        account: username,
    })
}

fn parse_mac(mac: &str) -> Result<String, ChangeError> {
    normalize_mac(mac).ok_or_else(|| {
        ChangeError::field(
            "mac",
            format!("{mac:?} is not a MAC address (for example 00:1a:a0:be:1e:cd)"),
        )
    })
}

/// Sets a phone's model and extensions: adds the phone, or edits it. Lines kept keep
/// their accounts; lines dropped lose theirs (the extension stays); new lines get new
/// accounts. A removed (disabled) phone added again is provisioned again.
pub fn put_phone(
    c: &mut Config,
    mac: &str,
    model: &str,
    extensions: &[String],
) -> Result<String, ChangeError> {
    let mut work = c.clone();
    let mac = put_phone_into(&mut work, mac, model, extensions)?;
    *c = work;
    Ok(mac)
}

/// [`put_phone`] on a configuration the caller throws away on an error (a check late in
/// the change fails after earlier steps changed it).
fn put_phone_into(
    c: &mut Config,
    mac: &str,
    model: &str,
    extensions: &[String],
) -> Result<String, ChangeError> {
    let mac = parse_mac(mac)?;
    let m = model_for(None, model).map_err(|e| ChangeError::field("model", e))?;
    if extensions.len() > m.lines {
        return Err(ChangeError::field(
            "extensions",
            format!("a {} carries at most {} extensions", m.name, m.lines),
        ));
    }
    for (i, n) in extensions.iter().enumerate() {
        if extensions[..i].contains(n) {
            return Err(ChangeError::field(
                "extensions",
                format!("{n} is listed twice"),
            ));
        }
    }
    let idx = match c.phones.iter().position(|p| p.mac == mac) {
        Some(i) => i,
        None => {
            c.phones.push(Phone::new(&mac, m.name));
            c.phones.len() - 1
        }
    };
    let old = std::mem::take(&mut c.phones[idx].lines);
    c.phones[idx].model = m.name.to_string();
    c.phones[idx].disabled = false;
    for l in &old {
        if !extensions.contains(&l.extension) {
            c.remove_account(&l.account);
        }
    }
    let mut lines = Vec::new();
    for n in extensions {
        let line = match old.iter().find(|l| &l.extension == n) {
            Some(l) => l.clone(),
            None => new_line(c, n)?,
        };
        lines.push(line);
    }
    c.phones[idx].lines = lines;
    sync_phone_passwords(c);
    Ok(mac)
}

/// Adds a phone (Kerio 10.2): a new MAC, or one that waits without extensions (pending
/// or removed). A phone that already has extensions is edited with [`put_phone`] instead.
pub fn add_phone(
    c: &mut Config,
    mac: &str,
    model: &str,
    extensions: &[String],
) -> Result<String, ChangeError> {
    let m = parse_mac(mac)?;
    if c.phones.iter().any(|p| p.mac == m && !p.lines.is_empty()) {
        return Err(ChangeError::conflict(
            "mac",
            format!("phone {} is already in the table", format_mac(&m)),
        ));
    }
    put_phone(c, &m, model, extensions)
}

/// MAC addresses as given by an admin, each checked: a typo must not widen a restart
/// of some phones to all of them.
pub fn parse_macs(list: &[String]) -> Result<Vec<String>, ChangeError> {
    list.iter().map(|m| parse_mac(m)).collect()
}

/// Removes a phone (Kerio 10.4): refused while it has extensions; afterwards the phone
/// is kept as disabled, so it is not provisioned again until added back.
pub fn remove_phone(c: &mut Config, mac: &str) -> Result<(), ChangeError> {
    let mac = parse_mac(mac)?;
    let p = c
        .phones
        .iter_mut()
        .find(|p| p.mac == mac && !p.disabled)
        .ok_or_else(|| ChangeError::NotFound(format!("no phone {}", format_mac(&mac))))?;
    if !p.lines.is_empty() {
        return Err(ChangeError::conflict(
            "extensions",
            format!(
                "phone {} still has extensions {}; remove them first",
                format_mac(&mac),
                p.lines
                    .iter()
                    .map(|l| l.extension.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    p.disabled = true;
    Ok(())
}

/// A phone asked for its file and is not in the table: it is added as `model`; with
/// auto-create on it gets the next free number. Returns whether anything changed.
pub fn auto_add(c: &mut Config, mac: &str, model: &str) -> Result<bool, ChangeError> {
    if c.phones.iter().any(|p| p.mac == mac) {
        return Ok(false);
    }
    let model = phone_model(model)
        .ok_or_else(|| ChangeError::field("model", format!("unknown model {model}")))?;
    if c.phones.len() >= config::MAX_PHONES {
        return Err(ChangeError::conflict(
            "mac",
            format!("the table is full ({} phones)", config::MAX_PHONES),
        ));
    }
    c.phones.push(Phone::new(mac, model.name));
    if c.provisioning.auto_create {
        let n = next_number(c)?;
        let line = new_line(c, &n)?;
        c.phones.last_mut().expect("just pushed").lines.push(line);
    }
    Ok(true)
}

/// One line of a CSV file as the preview shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportLine {
    /// 1-based line number in the file.
    pub line: usize,
    pub mac: String,
    pub manufacturer: String,
    pub model: String,
    pub extensions: Vec<String>,
    /// Why the line cannot be imported; `None` when it can.
    pub error: Option<String>,
}

/// Reads a CSV file in Kerio's format (`hwAddress;phoneManufacturer;phoneType;ext1;...`)
/// and checks every line against the configuration and the lines before it. Blank lines,
/// `#` comments and a header line are skipped.
pub fn preview(c: &Config, csv: &[u8]) -> Result<Vec<ImportLine>, String> {
    let text = std::str::from_utf8(csv).map_err(|e| format!("the file is not UTF-8 text: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out: Vec<ImportLine> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let mut fields: Vec<&str> = raw.split(';').map(str::trim).collect();
        if out.is_empty() && fields[0].eq_ignore_ascii_case("hwAddress") {
            continue;
        }
        if out.len() >= MAX_CSV_LINES {
            return Err(format!("the file has more than {MAX_CSV_LINES} phones"));
        }
        while fields.len() > 3 && fields.last() == Some(&"") {
            fields.pop();
        }
        let get = |k: usize| fields.get(k).copied().unwrap_or("").to_string();
        let mut l = ImportLine {
            line: i + 1,
            mac: get(0),
            manufacturer: get(1),
            model: get(2),
            extensions: fields.iter().skip(3).map(|s| s.to_string()).collect(),
            error: None,
        };
        l.error = check_line(c, &l, &out).err();
        if let (None, Some(mac)) = (&l.error, normalize_mac(&l.mac)) {
            l.mac = mac;
        }
        if let (None, Ok(m)) = (&l.error, model_for(None, &l.model)) {
            l.model = m.name.to_string();
        }
        out.push(l);
    }
    if out.is_empty() {
        return Err("the file lists no phones".into());
    }
    Ok(out)
}

fn check_line(c: &Config, l: &ImportLine, before: &[ImportLine]) -> Result<(), String> {
    if l.model.is_empty() {
        return Err("expected hwAddress;phoneManufacturer;phoneType;extension1;...".into());
    }
    let mac = normalize_mac(&l.mac).ok_or_else(|| format!("{:?} is not a MAC address", l.mac))?;
    let m = model_for(Some(&l.manufacturer), &l.model)?;
    if l.extensions.len() > m.lines {
        return Err(format!(
            "a {} carries at most {} extensions, the line lists {}",
            m.name,
            m.lines,
            l.extensions.len()
        ));
    }
    if before.iter().any(|b| b.error.is_none() && b.mac == mac) {
        return Err(format!(
            "duplicate MAC {}: listed earlier in the file",
            format_mac(&mac)
        ));
    }
    if c.phones.iter().any(|p| p.mac == mac && !p.lines.is_empty()) {
        return Err(format!(
            "duplicate MAC {}: the phone is already provisioned",
            format_mac(&mac)
        ));
    }
    for (k, n) in l.extensions.iter().enumerate() {
        if n.is_empty() || n.len() > 20 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{n:?} is not an extension number"));
        }
        if l.extensions[..k].contains(n) {
            return Err(format!("extension {n} is listed twice"));
        }
        if let Some(p) = c
            .phones
            .iter()
            .find(|p| p.mac != mac && p.lines.iter().any(|x| &x.extension == n))
        {
            return Err(format!(
                "extension {n} is taken by phone {}",
                format_mac(&p.mac)
            ));
        }
        if let Some(b) = before
            .iter()
            .find(|b| b.error.is_none() && b.extensions.contains(n))
        {
            return Err(format!(
                "extension {n} is taken by phone {} on line {}",
                format_mac(&b.mac),
                b.line
            ));
        }
    }
    Ok(())
}

/// Imports the chosen lines (by line number; all when `None`), all or nothing: any chosen
/// line with an error refuses the whole import.
pub fn import(
    c: &mut Config,
    csv: &[u8],
    chosen: Option<&[usize]>,
) -> Result<Vec<ImportLine>, ChangeError> {
    let lines = preview(c, csv).map_err(|e| ChangeError::field("file", e))?;
    let picked: Vec<ImportLine> = lines
        .into_iter()
        .filter(|l| chosen.is_none_or(|ch| ch.contains(&l.line)))
        .collect();
    if picked.is_empty() {
        return Err(ChangeError::field("lines", "no line chosen"));
    }
    let bad: Vec<String> = picked
        .iter()
        .filter_map(|l| l.error.as_ref().map(|e| format!("line {}: {e}", l.line)))
        .collect();
    if !bad.is_empty() {
        return Err(ChangeError::field("file", bad.join("; ")));
    }
    let mut work = c.clone();
    for l in &picked {
        put_phone_into(&mut work, &l.mac, &l.model, &l.extensions)?;
    }
    *c = work;
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        let mut c = Config::default();
        c.provisioning.enabled = true;
        c.provisioning.phone_password = "Ph0ne-Secret".into();
        c
    }

    const KERIO: &str = "00:1a:a0:be:1e:cd;Cisco;794X;111;112\n00:1b:b0:cd:e1:ca;Cisco;796X;115\n00:1c:c0:ab:a2:24;Linksys;SPA942;113;114\n";

    #[test]
    fn a_refused_import_changes_nothing() {
        // Found by the phones_csv fuzz target: the phone was added before its line
        // failed (no password for phones yet), and stayed.
        let mut c = Config::default();
        c.extensions.push(Extension::new("101"));
        let before = c.clone();
        let csv =
            b"hwAddress;phoneManufacturer;phoneType;ext1\r\n000413aabbcc;Snom;snom320;101;104\r\n";
        let e = import(&mut c, csv, None).unwrap_err();
        assert!(e.to_string().contains("password for phones"), "{e}");
        assert_eq!(c, before);
        let e = put_phone(&mut c, "000413aabbcc", "snom320", &["101".into()]).unwrap_err();
        assert!(e.to_string().contains("password for phones"), "{e}");
        assert_eq!(c, before);
    }

    #[test]
    fn kerio_example_imports() {
        let mut c = cfg();
        let p = preview(&c, KERIO.as_bytes()).unwrap();
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|l| l.error.is_none()), "{p:?}");
        import(&mut c, KERIO.as_bytes(), None).unwrap();
        c.validate().unwrap();
        assert_eq!(c.phones.len(), 3);
        assert_eq!(c.phones[0].mac, "001aa0be1ecd");
        assert_eq!(c.phones[2].lines.len(), 2);
        assert_eq!(c.extensions.len(), 5);
        assert!(c.accounts.iter().all(|a| a.secret == "Ph0ne-Secret"));
    }

    #[test]
    fn a_file_full_of_errors_is_listed_and_refused() {
        let mut c = cfg();
        put_phone(&mut c, "00:04:13:aa:bb:cc", "snom360", &["200".into()]).unwrap();
        let csv = "hwAddress;phoneManufacturer;phoneType;extension1\n\
                   00:1a:a0:be:1e:zz;Cisco;794X;111\n\
                   00:1a:a0:be:1e:cd;Cisco;7970;111\n\
                   00:1a:a0:be:1e:cd;Cisco;794X;111;112;113\n\
                   00:1a:a0:be:1e:cd;Cisco;794X;200\n\
                   00:1b:b0:cd:e1:ca;Cisco;796X;115\n\
                   00:1b:b0:cd:e1:ca;Cisco;796X;116\n\
                   00:1c:c0:ab:a2:24;Snom;SPA942;113\n\
                   00:1d:c0:ab:a2:24;Linksys;SPA942;115\n\
                   00:04:13:aa:bb:cc;Snom;snom360;201\n\
                   garbage\n\
                   00:1e:c0:ab:a2:24;Linksys;SPA942;1a3\n";
        let p = preview(&c, csv.as_bytes()).unwrap();
        let errs: Vec<_> = p.iter().map(|l| (l.line, l.error.clone())).collect();
        let has = |line: usize, what: &str| {
            errs.iter()
                .any(|(l, e)| *l == line && e.as_deref().is_some_and(|e| e.contains(what)))
        };
        assert!(has(2, "not a MAC address"), "{errs:?}");
        assert!(has(3, "unknown phone model"));
        assert!(has(4, "at most 2 extensions"));
        assert!(has(5, "taken by phone 00:04:13:aa:bb:cc"));
        assert_eq!(p[4].error, None, "line 6 is fine");
        assert!(has(7, "duplicate MAC"));
        assert!(has(8, "made by Linksys"));
        assert!(has(9, "taken by phone 00:1b:b0:cd:e1:ca on line 6"));
        assert!(has(10, "already provisioned"));
        assert!(has(11, "expected hwAddress"));
        assert!(has(12, "not an extension number"));
        let before = c.clone();
        let e = import(&mut c, csv.as_bytes(), None).unwrap_err();
        assert!(e.to_string().contains("line 2:"), "{e}");
        // Only the good line chosen: it goes in.
        import(&mut c, csv.as_bytes(), Some(&[6])).unwrap();
        assert_eq!(c.phones.len(), before.phones.len() + 1);
        c.validate().unwrap();
    }

    #[test]
    fn broken_files_are_refused() {
        let c = cfg();
        assert!(preview(&c, b"\xff\xfe;;").unwrap_err().contains("UTF-8"));
        assert!(preview(&c, b"\n\n# nothing\n")
            .unwrap_err()
            .contains("no phones"));
    }

    #[test]
    fn auto_add_takes_the_next_free_number() {
        let mut c = cfg();
        c.provisioning.first_extension = "10".into();
        c.provisioning.auto_create = true;
        c.extensions.push(Extension::new("10"));
        assert!(auto_add(&mut c, "001aa0be1ecd", "794X").unwrap());
        assert!(!auto_add(&mut c, "001aa0be1ecd", "794X").unwrap());
        assert_eq!(c.phones[0].lines[0].extension, "11");
        c.provisioning.auto_create = false;
        auto_add(&mut c, "001aa0be1ece", "794X").unwrap();
        assert!(c.phones[1].lines.is_empty());
        c.validate().unwrap();
    }

    #[test]
    fn the_table_is_bounded_and_macs_are_checked() {
        let mut c = cfg();
        for i in 0..config::MAX_PHONES {
            auto_add(&mut c, &format!("0004{i:08x}"), "snom360").unwrap();
        }
        assert!(matches!(
            auto_add(&mut c, "0004ffffffff", "snom360"),
            Err(ChangeError::Conflict { .. })
        ));
        c.validate().unwrap();
        assert!(parse_macs(&["00:04:13:aa:bb:cc".into(), "bogus".into()]).is_err());
        assert_eq!(
            parse_macs(&["00-04-13-AA-BB-CC".into()]).unwrap(),
            vec!["000413aabbcc"]
        );
    }

    #[test]
    fn adding_a_provisioned_phone_again_is_refused() {
        let mut c = cfg();
        add_phone(&mut c, "001aa0be1ecd", "794X", &[]).unwrap();
        add_phone(&mut c, "00:1a:a0:be:1e:cd", "794X", &["111".into()]).unwrap();
        assert!(matches!(
            add_phone(&mut c, "001aa0be1ecd", "794X", &["112".into()]),
            Err(ChangeError::Conflict { .. })
        ));
        assert_eq!(c.phones[0].lines.len(), 1);
    }

    #[test]
    fn removal_needs_no_extensions_and_disables() {
        let mut c = cfg();
        put_phone(&mut c, "001aa0be1ecd", "794X", &["111".into()]).unwrap();
        assert!(matches!(
            remove_phone(&mut c, "001aa0be1ecd"),
            Err(ChangeError::Conflict { .. })
        ));
        put_phone(&mut c, "001aa0be1ecd", "794X", &[]).unwrap();
        assert!(
            c.accounts.is_empty(),
            "the phone's account goes with its line"
        );
        assert_eq!(c.extensions.len(), 1, "the extension stays");
        remove_phone(&mut c, "00:1A:A0:BE:1E:CD").unwrap();
        assert!(c.phones[0].disabled);
        assert!(matches!(
            remove_phone(&mut c, "001aa0be1ecd"),
            Err(ChangeError::NotFound(_))
        ));
        // Added back, it is provisioned again.
        put_phone(&mut c, "001aa0be1ecd", "796X", &["111".into()]).unwrap();
        assert!(!c.phones[0].disabled);
        c.validate().unwrap();
    }

    #[test]
    fn password_change_reaches_every_phone_account() {
        let mut c = cfg();
        put_phone(
            &mut c,
            "001aa0be1ecd",
            "794X",
            &["111".into(), "112".into()],
        )
        .unwrap();
        c.provisioning.phone_password = "N3w-Ph0ne-Secret".into();
        sync_phone_passwords(&mut c);
        assert!(c.accounts.iter().all(|a| a.secret == "N3w-Ph0ne-Secret"));
    }
}

/// A change of the provisioning settings; absent fields keep their value.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    pub enabled: Option<bool>,
    pub first_extension: Option<String>,
    pub auto_create: Option<bool>,
    pub phone_password: Option<String>,
    pub allowed_sources: Option<Vec<String>>,
    pub ntp_server: Option<String>,
    pub time_zone: Option<String>,
    pub utc_offset: Option<String>,
}

/// Applies new settings. Enabling provisioning without a phone password generates a
/// strong one (phones read it from their files; nobody has to type it). A new password
/// reaches every provisioned phone's accounts.
pub fn set_settings(c: &mut Config, i: SettingsInput) -> Result<(), ChangeError> {
    let p = &mut c.provisioning;
    if let Some(v) = i.enabled {
        p.enabled = v;
    }
    if let Some(v) = i.first_extension {
        p.first_extension = v.trim().to_string();
    }
    if let Some(v) = i.auto_create {
        p.auto_create = v;
    }
    if let Some(v) = i.phone_password {
        p.phone_password = v;
    }
    if let Some(v) = i.allowed_sources {
        p.allowed_sources = v
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    if let Some(v) = i.ntp_server {
        p.ntp_server = v.trim().to_string();
    }
    if let Some(v) = i.time_zone {
        p.time_zone = v.trim().to_string();
    }
    if let Some(v) = i.utc_offset {
        p.utc_offset = v.trim().to_string();
    }
    if p.enabled && p.phone_password.is_empty() {
        p.phone_password = config::generate_secret(&mut rand::thread_rng());
    }
    sync_phone_passwords(c);
    Ok(())
}
