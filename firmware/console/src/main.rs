//! `pbx-console`: the numbered menu on the box's serial (ttyS0) and VGA (tty1) consoles,
//! respawned by init. It fits an 80x24 VT100, shows the box's addresses at the top,
//! never offers a shell, ignores Ctrl-C, Ctrl-\ and Ctrl-Z, and works while pbxd is down
//! (network settings are a file of `system`'s, not in the store). docs/console.md.
//!
//! Also run by the boot scripts: `--apply-network` puts the saved (or factory) network
//! settings into force; `--finish-factory-reset` erases the data partition when a
//! factory reset was asked for before the reboot.

use anyhow::{anyhow, Context, Result};
use nix::sys::signal::{signal, SigHandler, Signal};
use std::io::{BufRead, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use system::apply::{Applier, LinkState, Net};
use system::network::{
    check_static, mask_of, parse_addr, parse_mask, InterfaceSettings, NetworkSettings, SettingsFile,
};
use system::update::SlotStatus;

mod stick;

/// The marker a factory reset leaves on the data partition for the next boot.
const RESET_MARKER: &str = system::FACTORY_RESET_MARKER;

/// Who asked for a recovery staged at the console, as the security log shows it: pbxd
/// puts the backup's network settings in force at once for such a recovery.
const CONSOLE_RESTORE: &str = store::backup::BY_CONSOLE;

struct Opts {
    data: PathBuf,
    root: PathBuf,
    pbxctl: PathBuf,
    reboot: PathBuf,
    poweroff: PathBuf,
    rauc: PathBuf,
    nic: String,
    web_port: u16,
    /// The terminal the menu runs on; a serial one gets its line settings.
    line: Option<PathBuf>,
    /// Where the kernel's sysfs is (the disks a USB stick may be on).
    sys: PathBuf,
    /// Where a stick is mounted while its backups are looked at (each console its own:
    /// `/run/pbx-stick.<pid>`); mounts whose path begins with `stick_prefix` are sticks.
    stick_dir: PathBuf,
    stick_prefix: PathBuf,
}

fn opts() -> Result<(Opts, Option<String>)> {
    let mut o = Opts {
        data: PathBuf::from("/data"),
        root: PathBuf::from("/"),
        pbxctl: PathBuf::from("/usr/bin/pbxctl"),
        reboot: PathBuf::from("/sbin/reboot"),
        poweroff: PathBuf::from("/sbin/poweroff"),
        rauc: PathBuf::from("rauc"),
        nic: "eth0".into(),
        web_port: 4021,
        line: None,
        sys: PathBuf::from("/sys"),
        stick_dir: PathBuf::from(format!("/run/pbx-stick.{}", std::process::id())),
        stick_prefix: PathBuf::from("/run/pbx-stick"),
    };
    let mut mode = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| anyhow!("{a} needs a value"));
        match a.as_str() {
            "--data-dir" => o.data = val()?.into(),
            "--root" => o.root = val()?.into(),
            "--pbxctl" => o.pbxctl = val()?.into(),
            "--reboot-command" => o.reboot = val()?.into(),
            "--poweroff-command" => o.poweroff = val()?.into(),
            "--rauc" => o.rauc = val()?.into(),
            "--factory-nic" => o.nic = val()?,
            "--web-port" => o.web_port = val()?.parse().context("--web-port")?,
            "--line" => o.line = Some(val()?.into()),
            "--sys" => o.sys = val()?.into(),
            "--stick-dir" => {
                o.stick_dir = val()?.into();
                o.stick_prefix = o.stick_dir.clone();
            }
            "--apply-network" | "--apply-time" | "--finish-factory-reset" | "--fallback" => {
                mode = Some(a.clone())
            }
            "--help" => {
                println!(
                    "pbx-console [--data-dir D] [--root R] [--pbxctl P] [--reboot-command C] \
                     [--poweroff-command C] [--rauc R] [--factory-nic eth0] [--web-port 4021] \
                     [--line /dev/ttyS0] [--sys /sys] [--stick-dir /run/pbx-stick] [--apply-network | --apply-time | --finish-factory-reset | --fallback]"
                );
                std::process::exit(0);
            }
            _ => return Err(anyhow!("unknown argument {a}")),
        }
    }
    Ok((o, mode))
}

fn main() {
    let code = match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("pbx-console: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run() -> Result<()> {
    let (o, mode) = opts()?;
    match mode.as_deref() {
        Some("--apply-network") => {
            let s = saved_or_factory(&o).0;
            for n in block_on(apply(&o, &s))? {
                println!("{n}");
            }
            Ok(())
        }
        Some("--finish-factory-reset") => {
            if o.data.join(RESET_MARKER).exists() {
                erase(&o.data)?;
                println!("factory reset: {} erased", o.data.display());
            }
            Ok(())
        }
        Some("--fallback") => fallback(&o),
        Some("--apply-time") => {
            // The saved zone and NTP servers (or UTC, NTP off) into /etc at every boot:
            // the root slot an update brings has the factory files.
            let f = system::time::TimeFile::in_data_dir(&o.data);
            let s = match f.load() {
                Ok(s) => s.unwrap_or_default(),
                Err(e) => {
                    eprintln!("pbx-console: {e}; UTC and no NTP until saved again");
                    Default::default()
                }
            };
            for n in system::time::apply(&s, &o.root).map_err(|e| anyhow!(e))? {
                println!("{n}");
            }
            Ok(())
        }
        _ => {
            if let Some(line) = o.line.as_deref().filter(|l| board::serial::is_serial(l)) {
                let name = line.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let baud = board::Profile::detect(&o.root)
                    .and_then(|p| p.console_speed(name))
                    .filter(|b| *b > 0)
                    .unwrap_or(115_200);
                if let Err(e) = board::serial::configure(line, baud) {
                    eprintln!("pbx-console: line settings: {e}");
                }
            }
            // The technician's keys must never end the menu or reach a shell.
            for sig in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTSTP] {
                // SAFETY: ignoring a signal installs no handler code.
                unsafe { signal(sig, SigHandler::SigIgn) }.context("ignoring signals")?;
            }
            Menu::new(o).run()
        }
    }
}

fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

fn applier(o: &Opts) -> Applier {
    Applier {
        root: o.root.clone(),
        ..Applier::default()
    }
}

async fn apply(o: &Opts, s: &NetworkSettings) -> Result<Vec<String>> {
    let net = Net::open()?;
    Ok(net.apply(&applier(o), s).await?)
}

/// The box's interfaces by name, and the default gateway.
async fn links() -> Result<(Vec<LinkState>, Option<Ipv4Addr>)> {
    let net = Net::open()?;
    let mut l = net.links().await?;
    l.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((l, net.default_gateway().await?))
}

/// The saved settings, or the factory ones, and a warning when the file is damaged.
fn saved_or_factory(o: &Opts) -> (NetworkSettings, Option<String>) {
    match SettingsFile::in_data_dir(&o.data).load() {
        Ok(Some(s)) => (s, None),
        Ok(None) => (factory(o), None),
        Err(e) => (
            factory(o),
            Some(format!(
                "{e}; the factory settings are used until you save new ones"
            )),
        ),
    }
}

/// The image's factory settings (`/etc/pbx/network.json`, eth0 at 10.10.10.1/24), or
/// the built-in ones when the image has none or they do not validate.
fn factory(o: &Opts) -> NetworkSettings {
    std::fs::read(o.root.join("etc/pbx/network.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<NetworkSettings>(&b).ok())
        .filter(|s| s.validate().is_ok())
        .unwrap_or_else(|| NetworkSettings::factory(&o.nic))
}

/// pbxd failed to stay up. On a slot RAUC has not marked good (a fresh update whose
/// pbxd cannot start) the box reboots and GRUB's boot counter goes back to the previous
/// slot; on a confirmed slot pbxd is started again a minute later.
fn fallback(o: &Opts) -> Result<()> {
    let status = Command::new(&o.rauc)
        .args(["status", "--output-format=shell"])
        .output()
        .context("running rauc")?;
    let slots = SlotStatus::parse(&String::from_utf8_lossy(&status.stdout));
    if slots.booted_unconfirmed() {
        eprintln!("pbx-console: pbxd cannot start on a slot never marked good: rebooting");
        Command::new(&o.reboot).status().context("rebooting")?;
    } else {
        std::thread::sleep(std::time::Duration::from_secs(60));
        Command::new("systemctl")
            .args(["reset-failed", "pbxd.service"])
            .status()?;
        Command::new("systemctl")
            .args(["start", "--no-block", "pbxd.service"])
            .status()?;
    }
    Ok(())
}

/// Removes everything on the data partition (configuration, voicemail, certificates,
/// logs, network settings); the firmware lives elsewhere and stays.
/// The reset marker goes last, so a reset cut short (power lost, a file that would not
/// go) is finished at the next boot.
fn erase(data: &Path) -> Result<()> {
    let marker = data.join(RESET_MARKER);
    for e in std::fs::read_dir(data).with_context(|| format!("reading {}", data.display()))? {
        let p = e?.path();
        if p == marker {
            continue;
        }
        let r = if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.with_context(|| format!("removing {}", p.display()))?;
    }
    match std::fs::remove_file(&marker) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", marker.display()))
        }
        _ => Ok(()),
    }
}

/// What a finished command printed, its standard output then its errors.
fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Menu {
    o: Opts,
    input: std::io::StdinLock<'static>,
    out: std::io::Stdout,
}

/// What the technician chose on a stick's list.
enum Picked {
    /// Nothing: back to the menu (`true`), or the end of input (`false`).
    Back(bool),
    /// The backup at this index, confirmed.
    This(usize),
}

/// What a prompt got.
enum Answer {
    Line(String),
    /// End of input: the menu ends (init starts it again).
    Eof,
}

impl Menu {
    fn new(o: Opts) -> Menu {
        Menu {
            o,
            input: std::io::stdin().lock(),
            out: std::io::stdout(),
        }
    }

    fn say(&mut self, s: &str) {
        let _ = write!(self.out, "{}\r\n", s.replace('\n', "\r\n"));
        let _ = self.out.flush();
    }

    fn ask(&mut self, prompt: &str) -> Answer {
        let _ = write!(self.out, "{prompt}");
        let _ = self.out.flush();
        let mut line = String::new();
        loop {
            match self.input.read_line(&mut line) {
                Ok(0) => return Answer::Eof,
                Ok(_) => return Answer::Line(line.trim().to_string()),
                // A signal (ignored) may interrupt the read: read on.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Answer::Eof,
            }
        }
    }

    /// Asks until `f` accepts the answer; `None` on an empty answer when `back` (go
    /// back) or at the end of input.
    fn ask_valid<T>(
        &mut self,
        prompt: &str,
        mut f: impl FnMut(&str) -> Result<T, String>,
    ) -> Option<T> {
        loop {
            let Answer::Line(l) = self.ask(prompt) else {
                return None;
            };
            match f(&l) {
                Ok(v) => return Some(v),
                Err(e) => self.say(&format!("  {e}")),
            }
        }
    }

    fn pause(&mut self) -> bool {
        matches!(
            self.ask("Press Enter to go back to the menu."),
            Answer::Line(_)
        )
    }

    fn header(&mut self) {
        let version = env!("CARGO_PKG_VERSION");
        // Clear the screen and home the cursor (VT100).
        let _ = write!(self.out, "\x1b[2J\x1b[H");
        self.say(&format!("PBX appliance, firmware {version}"));
        self.say(&"=".repeat(79));
        match block_on(links()) {
            Ok((l, _)) => {
                let addrs: Vec<String> = l
                    .iter()
                    .flat_map(|x| x.addresses.iter().map(|(a, _)| a.to_string()))
                    .collect();
                if addrs.is_empty() {
                    self.say("The box has no network address yet.");
                }
                for a in addrs.iter().take(3) {
                    self.say(&format!(
                        "Web administration: https://{a}:{}/admin",
                        self.o.web_port
                    ));
                }
            }
            Err(e) => self.say(&format!("Network state unknown: {e}")),
        }
        if let (_, Some(w)) = saved_or_factory(&self.o) {
            self.say(&format!("WARNING: {w}"));
        }
        self.say(&"-".repeat(79));
    }

    fn run(mut self) -> Result<()> {
        loop {
            self.header();
            for l in [
                " 1  Network status",
                " 2  Network configuration",
                " 3  Reset the web administrator password",
                " 4  Ping a host",
                " 5  Version and firmware update state",
                " 6  Switch back to the previous firmware",
                " 7  Reboot",
                " 8  Shut down",
                " 9  Factory reset",
                "10  Restore a backup from a USB stick",
            ] {
                self.say(l);
            }
            self.say("");
            let Answer::Line(choice) = self.ask("Choose 1-10 and press Enter: ") else {
                return Ok(());
            };
            let go_on = match choice.as_str() {
                "" => true,
                "1" => self.status(),
                "2" => self.network(),
                "3" => self.admin_password(),
                "4" => self.ping(),
                "5" => self.version(),
                "6" => self.previous_slot(),
                "7" => self.power("reboot", "Reboot the box now?"),
                "8" => self.power("poweroff", "Shut the box down now?"),
                "9" => self.factory_reset(),
                "10" => self.restore_from_stick(),
                other => {
                    self.say(&format!(
                        "{other:?} is not in the menu: type a number 1-10."
                    ));
                    self.pause()
                }
            };
            if !go_on {
                return Ok(());
            }
        }
    }

    fn status(&mut self) -> bool {
        self.say("");
        match block_on(links()) {
            Ok((links, gw)) => {
                let saved = saved_or_factory(&self.o).0;
                for l in &links {
                    let how = match saved.interface(&l.name) {
                        Some(i) if i.dhcp => "DHCP",
                        Some(_) => "static",
                        None => "not configured",
                    };
                    let addrs: Vec<String> = l
                        .addresses
                        .iter()
                        .map(|(a, p)| format!("{a}/{p} (mask {})", mask_of(*p)))
                        .collect();
                    self.say(&format!(
                        "{:<10} {:<5} {:<15} {}",
                        l.name,
                        if l.up { "up" } else { "down" },
                        how,
                        if addrs.is_empty() {
                            "no address".to_string()
                        } else {
                            addrs.join(", ")
                        }
                    ));
                }
                self.say(&format!(
                    "Default gateway: {}",
                    gw.map(|g| g.to_string()).unwrap_or_else(|| "none".into())
                ));
                let dns = std::fs::read_to_string(self.o.root.join("etc/resolv.conf"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.strip_prefix("nameserver "))
                    .map(str::to_string)
                    .collect::<Vec<_>>();
                self.say(&format!(
                    "DNS servers: {}",
                    if dns.is_empty() {
                        "none".into()
                    } else {
                        dns.join(", ")
                    }
                ));
                self.say(&format!("Host name: {}", saved.hostname));
            }
            Err(e) => self.say(&format!("Cannot read the network state: {e}")),
        }
        self.pause()
    }

    fn network(&mut self) -> bool {
        let names: Vec<String> = match block_on(links()) {
            Ok((l, _)) => l.into_iter().map(|x| x.name).collect(),
            Err(e) => {
                self.say(&format!("Cannot read the network interfaces: {e}"));
                return self.pause();
            }
        };
        self.say("");
        for (n, name) in names.iter().enumerate() {
            self.say(&format!(" {}  {name}", n + 1));
        }
        let Some(pick) = self.ask_valid("Interface number (Enter to go back): ", |s| {
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<usize>()
                .ok()
                .filter(|n| (1..=names.len()).contains(n))
                .map(|n| Some(n - 1))
                .ok_or_else(|| format!("type a number 1-{}", names.len()))
        }) else {
            return false;
        };
        let Some(pick) = pick else { return true };
        let name = names[pick].clone();
        let (mut settings, _) = saved_or_factory(&self.o);
        let current = settings.interface(&name).cloned();
        self.say(" 1  Obtain the configuration automatically (DHCP)");
        self.say(" 2  Use a static IP address");
        let Some(dhcp) = self.ask_valid("Choose 1 or 2: ", |s| match s {
            "1" => Ok(true),
            "2" => Ok(false),
            _ => Err("type 1 or 2".into()),
        }) else {
            return false;
        };
        let new = if dhcp {
            InterfaceSettings {
                name: name.clone(),
                dhcp: true,
                address: None,
                prefix: 0,
                gateway: None,
            }
        } else {
            let cur = current.filter(|c| !c.dhcp);
            let Some(i) = self.ask_static(&name, cur) else {
                return false;
            };
            i
        };
        if !dhcp {
            let cur_dns: Vec<String> = settings.dns.iter().map(|d| d.to_string()).collect();
            let prompt = format!("DNS servers, separated by spaces [{}]: ", cur_dns.join(" "));
            let Some(dns) = self.ask_valid(&prompt, |s| {
                if s.is_empty() {
                    return Ok(settings.dns.clone());
                }
                if s == "-" {
                    return Ok(Vec::new());
                }
                s.split_whitespace()
                    .map(|d| parse_addr("dns", d).map_err(|e| e.message))
                    .collect()
            }) else {
                return false;
            };
            settings.dns = dns;
        }
        settings.set_interface(new);
        if let Err(e) = settings.validate() {
            self.say(&format!("Not saved: {e}"));
            return self.pause();
        }
        let Some(yes) = self.yes_no("Save and apply these settings now? (y/n): ") else {
            return false;
        };
        if !yes {
            self.say("Nothing changed.");
            return self.pause();
        }
        if let Err(e) = SettingsFile::in_data_dir(&self.o.data).save(&settings) {
            self.say(&format!("Not saved: {e}"));
            return self.pause();
        }
        match block_on(apply(&self.o, &settings)) {
            Ok(notes) => {
                for n in notes {
                    self.say(&n);
                }
                self.say("Saved and applied.");
            }
            Err(e) => self.say(&format!("Saved, but applying failed: {e}")),
        }
        self.pause()
    }

    fn ask_static(
        &mut self,
        name: &str,
        cur: Option<InterfaceSettings>,
    ) -> Option<InterfaceSettings> {
        loop {
            let cur_a = cur.as_ref().and_then(|c| c.address);
            let cur_p = cur.as_ref().map(|c| c.prefix).unwrap_or(24);
            let cur_g = cur.as_ref().and_then(|c| c.gateway);
            let show = |a: Option<Ipv4Addr>| a.map(|a| a.to_string()).unwrap_or_default();
            let a = self.ask_valid(&format!("IP address [{}]: ", show(cur_a)), |s| {
                if s.is_empty() {
                    return cur_a.ok_or_else(|| "type the box's address".to_string());
                }
                parse_addr("address", s).map_err(|e| e.message)
            })?;
            let p = self.ask_valid(&format!("Mask [{}]: ", mask_of(cur_p)), |s| {
                if s.is_empty() {
                    return Ok(cur_p);
                }
                parse_mask(s).map_err(|e| e.message)
            })?;
            let g = self.ask_valid(
                &format!("Default gateway (- for none) [{}]: ", show(cur_g)),
                |s| match s {
                    "" => Ok(cur_g),
                    "-" => Ok(None),
                    _ => parse_addr("gateway", s).map(Some).map_err(|e| e.message),
                },
            )?;
            match check_static(a, p, g) {
                Ok(()) => {
                    return Some(InterfaceSettings {
                        name: name.into(),
                        dhcp: false,
                        address: Some(a),
                        prefix: p,
                        gateway: g,
                    })
                }
                Err(e) => self.say(&format!("  {e}; please type them again.")),
            }
        }
    }

    fn yes_no(&mut self, prompt: &str) -> Option<bool> {
        self.ask_valid(prompt, |s| match s.to_ascii_lowercase().as_str() {
            "y" | "yes" => Ok(true),
            "n" | "no" => Ok(false),
            _ => Err("type y or n".into()),
        })
    }

    /// Reads a line without echo (a password).
    fn secret(&mut self, prompt: &str) -> Option<String> {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut quiet = t.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
        }
        let a = self.ask(prompt);
        if let Some(t) = &saved {
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, t);
        }
        self.say("");
        match a {
            Answer::Line(l) => Some(l),
            Answer::Eof => None,
        }
    }

    fn admin_password(&mut self) -> bool {
        self.say("A new password for the web administrator Admin (at least 10 characters).");
        let Some(p1) = self.secret("New password: ") else {
            return false;
        };
        if p1.is_empty() {
            self.say("Nothing changed.");
            return self.pause();
        }
        let Some(p2) = self.secret("The same again: ") else {
            return false;
        };
        if p1 != p2 {
            self.say("The two passwords differ; nothing changed.");
            return self.pause();
        }
        let run = Command::new(&self.o.pbxctl)
            .arg("--data-dir")
            .arg(&self.o.data)
            .arg("admin-password")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                if let Some(mut i) = c.stdin.take() {
                    let _ = writeln!(i, "{p1}");
                }
                c.wait_with_output()
            });
        match run {
            Ok(out) => {
                self.say(output_text(&out).trim());
                if out.status.success() {
                    self.say("The web administrator's password is changed; log in as Admin.");
                }
            }
            Err(e) => self.say(&format!("Cannot run {}: {e}", self.o.pbxctl.display())),
        }
        self.pause()
    }

    fn ping(&mut self) -> bool {
        let Some(host) = self.ask_valid("Host name or IP address (Enter to go back): ", |s| {
            let ok = s.is_empty()
                || (s.len() <= 253
                    && !s.starts_with('-')
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
            if ok {
                Ok(s.to_string())
            } else {
                Err(format!("{s:?} is not a host name or address"))
            }
        }) else {
            return false;
        };
        if host.is_empty() {
            return true;
        }
        // Three echoes, two seconds each at most: it always ends.
        match Command::new("ping")
            .args(["-c", "3", "-W", "2", "--", &host])
            .output()
        {
            Ok(out) => self.say(output_text(&out).trim_end()),
            Err(e) => self.say(&format!("Cannot run ping: {e}")),
        }
        self.pause()
    }

    fn rauc(&self, args: &[&str]) -> Result<String, String> {
        match Command::new(&self.o.rauc).args(args).output() {
            Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).to_string()),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Err(format!(
                "firmware updates are not available on this system ({}: {e})",
                self.o.rauc.display()
            )),
        }
    }

    fn version(&mut self) -> bool {
        match std::fs::read_to_string(self.o.root.join("etc/pbx-release")) {
            Ok(r) => {
                for l in r.lines().take(4) {
                    self.say(l);
                }
            }
            Err(_) => self.say(&format!("Firmware version {}", env!("CARGO_PKG_VERSION"))),
        }
        match self.rauc(&["status", "--output-format=shell"]) {
            Ok(text) => {
                for l in SlotStatus::parse(&text).lines() {
                    self.say(&l);
                }
            }
            Err(e) => self.say(&format!("Update state: {e}")),
        }
        self.pause()
    }

    fn previous_slot(&mut self) -> bool {
        let Some(yes) = self.yes_no("Boot the previous firmware from now on and reboot? (y/n): ")
        else {
            return false;
        };
        if !yes {
            return true;
        }
        match self.rauc(&["status", "mark-active", "other"]) {
            Ok(_) => {
                self.say("The previous firmware is active; rebooting.");
                self.run_power("reboot")
            }
            Err(e) => {
                self.say(&format!("Not switched: {e}"));
                self.pause()
            }
        }
    }

    fn run_power(&mut self, what: &str) -> bool {
        let cmd = if what == "reboot" {
            self.o.reboot.clone()
        } else {
            self.o.poweroff.clone()
        };
        match Command::new(&cmd).status() {
            Ok(s) if s.success() => {
                self.say(if what == "reboot" {
                    "The box is restarting."
                } else {
                    "The box is shutting down. On a 3000-series box, wait until the web \
                     administration stops answering, then switch it off."
                });
                // init stops us; wait for it rather than redraw the menu.
                std::thread::sleep(std::time::Duration::from_secs(2));
                true
            }
            Ok(s) => {
                self.say(&format!("{} failed ({s})", cmd.display()));
                self.pause()
            }
            Err(e) => {
                self.say(&format!("Cannot run {}: {e}", cmd.display()));
                self.pause()
            }
        }
    }

    fn power(&mut self, what: &str, question: &str) -> bool {
        match self.yes_no(&format!("{question} (y/n): ")) {
            None => false,
            Some(false) => true,
            Some(true) => self.run_power(what),
        }
    }

    fn factory_reset(&mut self) -> bool {
        self.say("Factory reset erases the configuration, voicemail, certificates, logs and");
        self.say("network settings, keeps the firmware, and restarts the box at 10.10.10.1.");
        let Answer::Line(word) = self.ask("Type RESET to go on, anything else to go back: ") else {
            return false;
        };
        if word != "RESET" {
            self.say("Factory reset cancelled; nothing changed.");
            return self.pause();
        }
        if let Err(e) = std::fs::write(self.o.data.join(RESET_MARKER), b"console\n") {
            self.say(&format!("Cannot mark the reset: {e}"));
            return self.pause();
        }
        self.say("The data partition is erased while the box restarts.");
        self.run_power("reboot")
    }

    /// Kerio 20 without a browser: a backup on a USB stick (FAT, exFAT or ext4; at its
    /// top or one directory down) is checked, staged, and put in place as the box
    /// restarts, the backup's network settings with it. The stick is only read.
    fn restore_from_stick(&mut self) -> bool {
        self.say("Looking for a USB stick...");
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = stick::own_disks(&mountinfo, &self.o.sys, &self.o.stick_prefix);
        let devices = stick::candidates(&self.o.sys, &own);
        if devices.is_empty() {
            self.say("No USB stick found. Plug one in (FAT, exFAT or ext4, the backup at its");
            self.say("top or one directory down), wait a few seconds, and choose 10 again.");
            return self.pause();
        }
        let mut problems = Vec::new();
        for dev in devices {
            let mounted =
                match stick::Mounted::new(&Path::new("/dev").join(&dev), &self.o.stick_dir) {
                    Ok(m) => m,
                    Err(e) => {
                        problems.push(e);
                        continue;
                    }
                };
            let found = stick::backups(&mounted.dir);
            let readable = found.iter().filter(|f| f.manifest.is_ok()).count();
            if readable == 0 {
                problems.push(format!(
                    "no backup the box reads on {dev} ({}; {} other .tar.gz files)",
                    mounted.fstype,
                    found.len()
                ));
                continue;
            }
            let picked = self.pick(&dev, &found);
            let staged = match picked {
                Picked::Back(go_on) => return go_on,
                Picked::This(i) => self.stage(&dev, &found[i]),
            };
            // The stick is let go of before anything else happens.
            drop(mounted);
            return match staged {
                Ok(()) => {
                    self.say("The backup is checked; it is put in place while the box restarts.");
                    self.run_power("reboot")
                }
                Err(e) => {
                    self.say(&format!("Not restored, nothing changed: {e}"));
                    self.pause()
                }
            };
        }
        self.say("No backup found:");
        for p in problems {
            self.say(&format!("  {p}"));
        }
        self.pause()
    }

    /// Lists the files of a mounted stick, newest backup first, and asks which one to
    /// restore (and whether, really).
    fn pick(&mut self, dev: &str, found: &[stick::Found]) -> Picked {
        const SHOWN: usize = 8;
        self.say(&format!("On the USB stick ({dev}):"));
        for (i, f) in found.iter().take(SHOWN).enumerate() {
            self.say(&format!("{:>2}  {}", i + 1, stick::line(f)));
        }
        if found.len() > SHOWN {
            self.say(&format!(
                "    and {} more files (the newest backups are shown first)",
                found.len() - SHOWN
            ));
        }
        let n = found.len().min(SHOWN);
        let pick = self.ask_valid(
            &format!("Which one (1-{n}, Enter to go back): "),
            |s| match s.parse::<usize>() {
                _ if s.is_empty() => Ok(None),
                Ok(i) if (1..=n).contains(&i) => Ok(Some(i - 1)),
                _ => Err(format!("type a number 1-{n}, or nothing to go back")),
            },
        );
        let Some(pick) = pick else {
            return Picked::Back(false);
        };
        let Some(pick) = pick else {
            return Picked::Back(true);
        };
        if let Err(e) = &found[pick].manifest {
            let name = stick::printable(&found[pick].name);
            self.say(&format!("{name} is not a backup the box reads: {e}"));
            return Picked::Back(self.pause());
        }
        self.say("The backup's parts replace the box's: configuration, users and passwords,");
        self.say("certificates and network settings, voicemail... Parts it does not hold stay.");
        match self.yes_no("Restore it and restart the box? (y/n): ") {
            None => Picked::Back(false),
            Some(false) => {
                self.say("Nothing changed.");
                Picked::Back(self.pause())
            }
            Some(true) => Picked::This(pick),
        }
    }

    /// Checks a backup on the stick whole and stages it for the next start.
    fn stage(&mut self, dev: &str, f: &stick::Found) -> Result<(), String> {
        self.say("Checking and unpacking the backup...");
        let file = std::fs::File::open(&f.path)
            .map_err(|e| format!("cannot read {}: {e}", stick::printable(&f.name)))?;
        store::backup::stage(
            &self.o.data,
            std::io::BufReader::new(file),
            &format!("{CONSOLE_RESTORE} {dev}"),
        )
        .map(|_| ())
        .map_err(|e| stick::printable(&e.to_string()))
    }
}
