//! ISDN cards on the box (Kerio 7): the DAHDI spans the kernel found (from sysfs, the
//! cards they belong to, so a BRI card shows its four ports), `/etc/dahdi/system.conf`
//! made from the configuration's ISDN interfaces, and the commands that put it in force
//! (`modprobe` of the board's drivers, `dahdi_cfg`).

use config::{Config, IsdnLine, IsdnSide, SpanDriver};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A span as DAHDI's sysfs shows it (`/sys/bus/dahdi_spans/devices/span-N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    /// The span number `dahdi_cfg` and the ISDN interface use.
    pub span: u32,
    /// The driver's name for it (`B4/0/1`: card 0, port 1 of a wcb4xxp).
    pub name: String,
    pub desc: String,
    /// `E1`, `T1`, `J1`, `BRI_TE`, `BRI_NT`...
    pub spantype: String,
    /// The first channel's number (none until the span is assigned).
    pub basechan: Option<u32>,
    pub channels: u32,
    /// The alarms in words (`red`, `yellow`, `blue`, `loopback`, `recovering`,
    /// `not open`); empty: none.
    pub alarms: Vec<&'static str>,
    /// The card: its device directory's name.
    pub card: String,
    /// The port on its card (the driver's local span number, from 1).
    pub port: u32,
}

impl Span {
    /// The line the span carries, as an ISDN interface names it.
    pub fn line(&self) -> Option<IsdnLine> {
        match self.spantype.as_str() {
            "E1" => Some(IsdnLine::E1),
            "T1" | "J1" => Some(IsdnLine::T1),
            t if t.starts_with("BRI") => Some(IsdnLine::Bri),
            _ => None,
        }
    }
}

/// A card with its spans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Card {
    pub id: String,
    /// The driver's description of the card (`type`).
    pub kind: String,
    pub manufacturer: String,
    /// Where it sits (`pci0000:00/0000:00:1e.0/...`).
    pub location: String,
    pub spans: Vec<u32>,
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// DAHDI_ALARM_* bits (dahdi/user.h) in words.
pub fn alarm_words(bits: u32) -> Vec<&'static str> {
    [
        (1 << 0, "recovering"),
        (1 << 1, "loopback"),
        (1 << 2, "yellow"),
        (1 << 3, "red"),
        (1 << 4, "blue"),
        (1 << 5, "not open"),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, w)| *w)
    .collect()
}

/// The spans under `sys` (`/sys` on the box), by number.
pub fn scan(sys: &Path) -> Vec<Span> {
    let dir = sys.join("bus/dahdi_spans/devices");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut spans: Vec<Span> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let span: u32 = name.strip_prefix("span-")?.parse().ok()?;
            let p = e.path();
            let real = std::fs::canonicalize(&p).unwrap_or(p.clone());
            let card = real
                .parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let alarms = read(&p.join("alarms"))
                .and_then(|a| u32::from_str_radix(a.trim_start_matches("0x"), 16).ok())
                .unwrap_or(0);
            Some(Span {
                span,
                name: read(&p.join("name")).unwrap_or_default(),
                desc: read(&p.join("desc")).unwrap_or_default(),
                spantype: read(&p.join("spantype")).unwrap_or_default(),
                basechan: read(&p.join("basechan")).and_then(|b| b.parse().ok()),
                channels: read(&p.join("channels"))
                    .and_then(|b| b.parse().ok())
                    .unwrap_or(0),
                alarms: alarm_words(alarms),
                card,
                port: read(&p.join("local_spanno"))
                    .and_then(|b| b.parse().ok())
                    .unwrap_or(1),
            })
        })
        .collect();
    spans.sort_by_key(|s| s.span);
    spans
}

/// The cards of `spans` (their device directories' `type`, `manufacturer`, `location`).
pub fn cards(sys: &Path, spans: &[Span]) -> Vec<Card> {
    let mut out: Vec<Card> = Vec::new();
    for s in spans {
        if let Some(c) = out.iter_mut().find(|c| c.id == s.card) {
            c.spans.push(s.span);
            continue;
        }
        let dev = std::fs::canonicalize(
            sys.join("bus/dahdi_spans/devices")
                .join(format!("span-{}", s.span)),
        )
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
        out.push(Card {
            id: s.card.clone(),
            kind: read(&dev.join("type")).unwrap_or_default(),
            manufacturer: read(&dev.join("manufacturer")).unwrap_or_default(),
            location: read(&dev.join("location")).unwrap_or_default(),
            spans: vec![s.span],
        });
    }
    out
}

/// `/etc/dahdi/system.conf` for the configuration's enabled DAHDI interfaces on the
/// spans found, and what could not be written (a span the box does not have, or whose
/// line is not the interface's).
///
/// Timing: a span on the user side takes its clock from the line (the provider's), the
/// first such span being the preferred source; a network-side span gives the clock
/// (timing 0).
pub fn system_conf(cfg: &Config, spans: &[Span]) -> (String, Vec<String>) {
    let mut text = String::from(
        "# Written by the PBX from its ISDN interfaces (Configuration > ISDN); changes here\n# are overwritten.\n",
    );
    let mut problems = Vec::new();
    let mut timing = 0;
    let mut ifs: Vec<_> = cfg
        .isdn_interfaces
        .iter()
        .filter(|i| i.enabled)
        .filter_map(|i| match i.span {
            SpanDriver::Dahdi { span } => Some((span, i)),
            SpanDriver::Virtual { .. } => None,
        })
        .collect();
    ifs.sort_by_key(|(span, _)| *span);
    for (n, i) in ifs {
        let Some(s) = spans.iter().find(|s| s.span == n) else {
            problems.push(format!(
                "{}: span {n} is not on this box (no such DAHDI span)",
                i.name
            ));
            continue;
        };
        let Some(base) = s.basechan else {
            problems.push(format!("{}: span {n} is not assigned yet", i.name));
            continue;
        };
        if s.line() != Some(i.line) {
            problems.push(format!(
                "{}: span {n} is {} but the interface says {:?}",
                i.name, s.spantype, i.line
            ));
            continue;
        }
        let t = if i.side == IsdnSide::User {
            timing += 1;
            timing
        } else {
            0
        };
        let c = |k: u32| base + k - 1;
        text.push_str(&format!("\n# {} ({}: {})\n", i.name, s.name, s.desc));
        match i.line {
            IsdnLine::E1 => {
                text.push_str(&format!("span={n},{t},0,ccs,hdb3,crc4\n"));
                text.push_str(&format!(
                    "bchan={}-{},{}-{}\ndchan={}\n",
                    c(1),
                    c(15),
                    c(17),
                    c(31),
                    c(16)
                ));
            }
            IsdnLine::T1 => {
                text.push_str(&format!("span={n},{t},0,esf,b8zs\n"));
                text.push_str(&format!("bchan={}-{}\ndchan={}\n", c(1), c(23), c(24)));
            }
            IsdnLine::Bri => {
                text.push_str(&format!("span={n},{t},0,ccs,ami\n"));
                text.push_str(&format!("bchan={}-{}\nhardhdlc={}\n", c(1), c(2), c(3)));
            }
        }
    }
    (text, problems)
}

/// What puts the cards' configuration in force.
#[derive(Debug, Clone)]
pub struct Dahdi {
    /// Where the kernel's sysfs is (`/sys`).
    pub sys: PathBuf,
    /// The file `dahdi_cfg` reads.
    pub conf: PathBuf,
    /// `dahdi_cfg`.
    pub dahdi_cfg: PathBuf,
    /// `modprobe`.
    pub modprobe: PathBuf,
}

impl Dahdi {
    /// Loads DAHDI and the board's card drivers (`modprobe -a`); answers what went
    /// wrong, if anything.
    pub fn load_modules(&self, drivers: &[&str]) -> Result<(), String> {
        if drivers.is_empty() {
            return Ok(());
        }
        let o = std::process::Command::new(&self.modprobe)
            .arg("-a")
            .arg("dahdi")
            .args(drivers)
            .output()
            .map_err(|e| format!("{}: {e}", self.modprobe.display()))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
        }
    }

    /// Writes `system.conf` and runs `dahdi_cfg` on it unless `text` is what this run of
    /// the daemon last applied (`applied`, which it then holds): after a boot the file
    /// may hold the same text while the kernel's spans are not configured, and a failed
    /// run is tried again. Answers whether it ran, or what went wrong.
    pub fn apply(&self, text: &str, applied: &mut Option<String>) -> Result<bool, String> {
        if applied.as_deref() == Some(text) {
            return Ok(false);
        }
        crate::network::write_atomic(&self.conf, text.as_bytes())
            .map_err(|e| format!("{}: {e}", self.conf.display()))?;
        let o = std::process::Command::new(&self.dahdi_cfg)
            .arg("-c")
            .arg(&self.conf)
            .output()
            .map_err(|e| format!("{}: {e}", self.dahdi_cfg.display()))?;
        if o.status.success() {
            *applied = Some(text.to_string());
            Ok(true)
        } else {
            Err(format!(
                "dahdi_cfg: {}{}",
                String::from_utf8_lossy(&o.stderr).trim(),
                String::from_utf8_lossy(&o.stdout).trim()
            ))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fake sysfs: a card `dev` with spans of `(number, type, basechan, channels)`.
    pub fn fake(sys: &Path, dev: &str, kind: &str, spans: &[(u32, &str, u32, u32)]) {
        let devdir = sys.join("devices/dahdi_devices").join(dev);
        std::fs::create_dir_all(&devdir).unwrap();
        std::fs::write(devdir.join("type"), format!("{kind}\n")).unwrap();
        std::fs::write(devdir.join("manufacturer"), "Digium\n").unwrap();
        std::fs::write(devdir.join("location"), "PCI Bus 01 Slot 01\n").unwrap();
        let bus = sys.join("bus/dahdi_spans/devices");
        std::fs::create_dir_all(&bus).unwrap();
        for (i, (n, t, base, chans)) in spans.iter().enumerate() {
            let d = devdir.join(format!("span-{n}"));
            std::fs::create_dir_all(&d).unwrap();
            for (k, v) in [
                ("name", format!("X/0/{}", i + 1)),
                ("desc", format!("{kind} Port {}", i + 1)),
                ("spantype", t.to_string()),
                ("basechan", base.to_string()),
                ("channels", chans.to_string()),
                ("alarms", if i == 0 { "0x8".into() } else { "0x0".into() }),
                ("local_spanno", (i + 1).to_string()),
            ] {
                std::fs::write(d.join(k), format!("{v}\n")).unwrap();
            }
            std::os::unix::fs::symlink(&d, bus.join(format!("span-{n}"))).unwrap();
        }
    }

    fn iface(name: &str, span: u32, line: &str, side: &str) -> serde_json::Value {
        serde_json::json!({"name": name, "span": {"driver": "dahdi", "span": span}, "line": line, "side": side, "numbers": ["2000"]})
    }

    #[test]
    fn spans_and_cards_are_read_and_system_conf_is_written_from_the_interfaces() {
        let d = tempfile::tempdir().unwrap();
        fake(
            d.path(),
            "pci:0000:01:00.0",
            "TE122 (wcte12xp)",
            &[(1, "E1", 1, 31)],
        );
        fake(
            d.path(),
            "pci:0000:02:00.0",
            "B410P (wcb4xxp)",
            &[
                (2, "BRI_TE", 32, 3),
                (3, "BRI_TE", 35, 3),
                (4, "BRI_NT", 38, 3),
                (5, "BRI_TE", 41, 3),
            ],
        );
        let spans = scan(d.path());
        assert_eq!(spans.len(), 5);
        assert_eq!(spans[0].alarms, ["red"]);
        assert_eq!(spans[1].line(), Some(IsdnLine::Bri));
        assert_eq!(spans[3].port, 3);
        let cards = cards(d.path(), &spans);
        assert_eq!(cards.len(), 2);
        assert_eq!(cards[1].kind, "B410P (wcb4xxp)");
        assert_eq!(cards[1].spans, [2, 3, 4, 5]);

        let cfg: Config = serde_json::from_value(serde_json::json!({
            "format": "pbx-config", "version": 1,
            "isdn_interfaces": [iface("pri", 1, "e1", "user"), iface("bri2", 3, "bri", "user"),
                     iface("briNT", 4, "bri", "network"), iface("gone", 9, "e1", "user"),
                     iface("wrong", 5, "e1", "user")]
        }))
        .unwrap();
        let (text, problems) = system_conf(&cfg, &spans);
        assert!(
            text.contains("span=1,1,0,ccs,hdb3,crc4\nbchan=1-15,17-31\ndchan=16\n"),
            "{text}"
        );
        assert!(
            text.contains("span=3,2,0,ccs,ami\nbchan=35-36\nhardhdlc=37\n"),
            "{text}"
        );
        assert!(
            text.contains("span=4,0,0,ccs,ami\nbchan=38-39\nhardhdlc=40\n"),
            "{text}"
        );
        assert!(
            !text.contains("span=9") && !text.contains("span=5"),
            "{text}"
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[1].contains("span 9 is not on this box"));
        assert!(problems[0].contains("span 5 is BRI_TE"));
        // No DAHDI at all: no spans.
        assert!(scan(&d.path().join("none")).is_empty());
    }

    #[test]
    fn a_t1_span_and_the_commands() {
        let d = tempfile::tempdir().unwrap();
        fake(d.path(), "card", "TE121", &[(1, "T1", 1, 24)]);
        let cfg: Config = serde_json::from_value(
            serde_json::json!({"format": "pbx-config", "version": 1, "isdn_interfaces": [iface("t1", 1, "t1", "network")]}),
        )
        .unwrap();
        let (text, problems) = system_conf(&cfg, &scan(d.path()));
        assert!(problems.is_empty());
        assert!(
            text.contains("span=1,0,0,esf,b8zs\nbchan=1-23\ndchan=24\n"),
            "{text}"
        );
        // The commands: a script standing in for each, writing its arguments.
        let log = d.path().join("ran");
        let script = d.path().join("cmd");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$0 $*\" >> {}\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let dahdi = Dahdi {
            sys: d.path().to_path_buf(),
            conf: d.path().join("etc/dahdi/system.conf"),
            dahdi_cfg: script.clone(),
            modprobe: script.clone(),
        };
        let mut applied = None;
        assert_eq!(dahdi.apply(&text, &mut applied), Ok(true));
        assert_eq!(
            dahdi.apply(&text, &mut applied),
            Ok(false),
            "unchanged: not run again"
        );
        dahdi.load_modules(&["wcte12xp"]).unwrap();
        dahdi.load_modules(&[]).unwrap();
        let ran = std::fs::read_to_string(&log).unwrap();
        let conf = d.path().join("etc/dahdi/system.conf");
        assert_eq!(
            ran,
            format!(
                "{s} -c {}\n{s} -a dahdi wcte12xp\n",
                conf.display(),
                s = script.display()
            )
        );
        assert_eq!(std::fs::read_to_string(conf).unwrap(), text);
    }
}
