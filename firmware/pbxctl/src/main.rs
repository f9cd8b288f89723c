//! pbxctl: the technician's command line, speaking to pbxd over `DATA/control.sock`.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use system::update::UpdateState;

#[derive(Parser)]
#[command(name = "pbxctl", version, about = "Control a running pbxd")]
struct Cli {
    /// pbxd's data directory.
    #[arg(long)]
    data_dir: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum ConfCmd {
    /// Rooms and participants (the default).
    List,
    /// The others stop hearing participant CALL of ROOM.
    Mute { room: String, call: u64 },
    /// The others hear participant CALL of ROOM again.
    Unmute { room: String, call: u64 },
    /// The box hangs up on participant CALL of ROOM.
    Kick { room: String, call: u64 },
}

#[derive(Subcommand)]
enum QueueCmd {
    /// Queues with their figures, waiting callers and agents (the default).
    List,
    /// Extension EXTENSION logs in to QUEUE as an agent (a queue taking dynamic agents).
    Login { queue: String, extension: String },
    /// Extension EXTENSION logs out of QUEUE.
    Logout { queue: String, extension: String },
}

#[derive(Subcommand)]
enum Cmd {
    /// Exits 0 when the daemon is ready.
    Status,
    /// Extensions.
    Extension {
        #[command(subcommand)]
        cmd: ExtCmd,
    },
    /// SIP accounts.
    Account {
        #[command(subcommand)]
        cmd: AccountCmd,
    },
    /// Registered SIP accounts and where they are.
    Registrations,
    /// Calls in progress.
    Calls,
    /// Voicemail boxes: new and old messages, temporary greeting, the phones whose
    /// message lamps watch them.
    Voicemail,
    /// SIP interfaces and links: address, registration, keepalive, calls.
    Peers {
        /// Print the JSON answer as is.
        #[arg(long)]
        json: bool,
    },
    /// Local numbers that fall inside a link's numbers, and which side wins.
    Conflicts,
    /// Overwrites the emergency numbers with a country's preset list (Kerio 18.2).
    EmergencyPreset {
        /// ISO code or English name: CZ, DE, SK, US, GB, AT, AU, CA, ES, FR, IT, NL, PL.
        country: String,
    },
    /// Hangs up a call in progress (its ID as `calls` shows it).
    Hangup { id: u64 },
    /// Calls waiting in parking slots.
    Parked,
    /// SIP sources banned by the scanner and brute-force protection.
    Bans,
    /// Lifts a SIP ban: `192.0.2.7`, `192.0.2.7:5070` or `alice@192.0.2.7` as `bans`
    /// shows it.
    Unban { key: String },
    /// Conference rooms and who is in them; mute, unmute or put a participant out.
    Conference {
        #[command(subcommand)]
        cmd: Option<ConfCmd>,
    },
    /// Call queues: waiting callers, agents and their state, figures; log agents in
    /// and out.
    Queue {
        #[command(subcommand)]
        cmd: Option<QueueCmd>,
    },
    /// Sets a new password for the web administrator `Admin` (the recovery path), read
    /// from standard input (asked twice on a terminal). Works with pbxd stopped too.
    AdminPassword,
    /// Phone provisioning settings (Kerio 10.1).
    Provisioning {
        #[command(subcommand)]
        cmd: ProvCmd,
    },
    /// The Provisioned Phones table (Kerio 10.2-10.5).
    Phone {
        #[command(subcommand)]
        cmd: PhoneCmd,
    },
    /// The whole configuration as one JSON document.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// PRI and BRI interfaces (Kerio 7): their settings and the span's state.
    Isdn {
        #[command(subcommand)]
        cmd: IsdnCmd,
    },
    /// Firmware updates (signed RAUC bundles; docs/updates.md).
    Update {
        #[command(subcommand)]
        cmd: UpdateCmd,
    },
}

#[derive(Subcommand)]
enum UpdateCmd {
    /// Installs a bundle into the other firmware slot, showing progress, and restarts
    /// the box into it. Refused when not signed with the box's key or for another board.
    Install { file: PathBuf },
    /// Where the last update stands.
    Status,
}

#[derive(Subcommand)]
enum IsdnCmd {
    /// Lists ISDN interfaces with the D-channel's state and the calls on each span.
    List {
        /// Print the JSON answer as is.
        #[arg(long)]
        json: bool,
    },
    /// Adds an interface or replaces the one with the same name, from a JSON document
    /// of one interface (docs/isdn.md); `-` reads standard input.
    Set { file: PathBuf },
    /// Removes an interface (and takes it out of outbound routes).
    Remove { name: String },
}

#[derive(Subcommand)]
enum ExtCmd {
    /// Adds an extension; with --password also its first SIP account, named like the number.
    Add {
        number: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        password: Option<String>,
    },
    /// Lists extensions and their accounts.
    List,
    /// Removes an extension and its accounts.
    Remove { number: String },
}

#[derive(Subcommand)]
enum AccountCmd {
    /// Adds a SIP account to an extension (a strong password is generated when none is given).
    Add {
        username: String,
        #[arg(long)]
        extension: String,
        #[arg(long)]
        password: Option<String>,
    },
}

#[derive(Subcommand)]
enum ProvCmd {
    /// Sets the provisioning settings. Without --phone-password a strong one is generated
    /// the first time provisioning is enabled.
    Set {
        /// Serve configuration files to phones.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Stop serving configuration files.
        #[arg(long)]
        disable: bool,
        /// New phones get numbers from here up, skipping used ones.
        #[arg(long)]
        first_extension: Option<String>,
        /// Create an extension for every new phone (otherwise it waits, pending).
        #[arg(long)]
        auto_create: bool,
        /// The SIP password of every provisioned phone.
        #[arg(long)]
        phone_password: Option<String>,
    },
}

#[derive(Subcommand)]
enum PhoneCmd {
    /// Adds a phone by MAC address and model, with its extensions (missing ones are made).
    Add {
        mac: String,
        /// As in the CSV: 794X, 796X, SPA942, snom360, T4X, VVX, GXP21XX, ...
        #[arg(long)]
        model: String,
        #[arg(long = "extension")]
        extensions: Vec<String>,
    },
    /// Imports phones from a CSV file in Kerio's format
    /// (hwAddress;phoneManufacturer;phoneType;extension1;...), all or nothing.
    Import {
        file: PathBuf,
        /// Only check the file and list every line with its error.
        #[arg(long)]
        dry_run: bool,
    },
    /// Lists the phones.
    List,
    /// Removes a phone that has no extensions left; it is not provisioned again until
    /// added back.
    Remove { mac: String },
    /// Makes registered phones fetch their configuration and restart (all without MAC).
    Restart { macs: Vec<String> },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Writes the configuration document to standard output.
    Export,
    /// Replaces the configuration with a document (validated as a whole: all or nothing).
    Import { file: PathBuf },
}

fn call(cli: &Cli, req: Value) -> Result<Value> {
    let path = cli.data_dir.join("control.sock");
    let mut s = UnixStream::connect(&path)
        .with_context(|| format!("pbxd is not running (cannot connect to {})", path.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = req.to_string();
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(s)
        .read_line(&mut answer)
        .context("no answer from pbxd")?;
    serde_json::from_str(&answer).context("pbxd answered something that is not JSON")
}

/// Reads the new password: twice without echo on a terminal, one line otherwise.
fn read_password() -> Result<String> {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let old = tcgetattr(&stdin).context("cannot read the terminal settings")?;
    let mut quiet = old.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    let ask = |prompt: &str| -> Result<String> {
        eprint!("{prompt}");
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet)?;
        let mut line = String::new();
        let r = stdin.lock().read_line(&mut line);
        tcsetattr(&stdin, SetArg::TCSANOW, &old)?;
        eprintln!();
        r?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    };
    let a = ask("New administrator password: ")?;
    let b = ask("Again: ")?;
    if a != b {
        anyhow::bail!("the two passwords differ");
    }
    Ok(a)
}

/// With pbxd stopped, changes the store directly (it holds the store's lock otherwise).
fn admin_password_offline(cli: &Cli, password: &str) -> Result<bool> {
    let store = store::Store::open(&cli.data_dir)
        .with_context(|| format!("cannot open the store in {}", cli.data_dir.display()))?;
    let (rev, cfg) = store.config()?;
    let c = store::Configurator::new(store, std::sync::Arc::new(config::Snapshot::new(rev, cfg)));
    match web::reset_admin_password(&c, "pbxctl", password) {
        Ok(rev) => {
            println!("ok: revision {rev}; log in as Admin");
            Ok(true)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(false)
        }
    }
}

/// Starts an install and follows it until RAUC is done.
fn update_install(cli: &Cli, file: &std::path::Path) -> Result<bool> {
    let path =
        std::fs::canonicalize(file).with_context(|| format!("cannot read {}", file.display()))?;
    let answer = call(cli, json!({"cmd": "update_install", "path": path}))?;
    if answer["ok"] != json!(true) {
        for e in answer["errors"].as_array().into_iter().flatten() {
            eprintln!("error: {}", e.as_str().unwrap_or(""));
        }
        return Ok(false);
    }
    let mut last = String::new();
    // An install takes minutes; pbxd stops one after an hour, so this ends too.
    loop {
        let st = call(cli, json!({"cmd": "update_status"}))?;
        let st: UpdateState =
            serde_json::from_value(st["data"].clone()).context("pbxd answered an unknown state")?;
        match &st {
            UpdateState::Rebooting { .. } => {
                println!("{st}");
                return Ok(true);
            }
            UpdateState::Failed { .. } => {
                eprintln!("error: {st}");
                return Ok(false);
            }
            // pbxd started again meanwhile: it no longer knows this install.
            UpdateState::Idle => {
                eprintln!("error: pbxd restarted during the install; see `update status` and the slots on the console");
                return Ok(false);
            }
            UpdateState::Installing { .. } => {
                if st.to_string() != last {
                    last = st.to_string();
                    println!("{last}");
                }
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn run(cli: &Cli) -> Result<bool> {
    let req = match &cli.cmd {
        Cmd::Update {
            cmd: UpdateCmd::Install { file },
        } => return update_install(cli, file),
        Cmd::Update {
            cmd: UpdateCmd::Status,
        } => json!({"cmd": "update_status"}),
        Cmd::AdminPassword => {
            let password = read_password()?;
            if !cli.data_dir.join("control.sock").exists() {
                return admin_password_offline(cli, &password);
            }
            json!({"cmd": "admin_password", "password": password})
        }
        Cmd::Hangup { id } => json!({"cmd": "call_hangup", "id": id}),
        Cmd::Parked => json!({"cmd": "parked"}),
        Cmd::Bans => json!({"cmd": "bans"}),
        Cmd::Unban { key } => json!({"cmd": "unban", "key": key}),
        Cmd::Queue { cmd } => match cmd {
            None | Some(QueueCmd::List) => json!({"cmd": "queues"}),
            Some(QueueCmd::Login { queue, extension }) => {
                json!({"cmd": "queue_login", "queue": queue, "extension": extension})
            }
            Some(QueueCmd::Logout { queue, extension }) => {
                json!({"cmd": "queue_logout", "queue": queue, "extension": extension})
            }
        },
        Cmd::Conference { cmd } => match cmd {
            None | Some(ConfCmd::List) => json!({"cmd": "conferences"}),
            Some(ConfCmd::Mute { room, call }) => {
                json!({"cmd": "conference_mute", "room": room, "call": call, "muted": true})
            }
            Some(ConfCmd::Unmute { room, call }) => {
                json!({"cmd": "conference_mute", "room": room, "call": call, "muted": false})
            }
            Some(ConfCmd::Kick { room, call }) => {
                json!({"cmd": "conference_kick", "room": room, "call": call})
            }
        },
        Cmd::Status => json!({"cmd": "status"}),
        Cmd::Extension {
            cmd:
                ExtCmd::Add {
                    number,
                    name,
                    password,
                },
        } => json!({"cmd": "extension_add", "number": number, "name": name, "password": password}),
        Cmd::Extension { cmd: ExtCmd::List } => json!({"cmd": "extension_list"}),
        Cmd::Extension {
            cmd: ExtCmd::Remove { number },
        } => json!({"cmd": "extension_remove", "number": number}),
        Cmd::Account {
            cmd:
                AccountCmd::Add {
                    username,
                    extension,
                    password,
                },
        } => {
            json!({"cmd": "account_add", "username": username, "extension": extension, "password": password})
        }
        Cmd::Registrations => json!({"cmd": "registrations"}),
        Cmd::Peers { .. } => json!({"cmd": "peers"}),
        Cmd::Conflicts => json!({"cmd": "link_conflicts"}),
        Cmd::EmergencyPreset { country } => json!({"cmd": "emergency_preset", "country": country}),
        Cmd::Calls => json!({"cmd": "calls"}),
        Cmd::Voicemail => json!({"cmd": "voicemail"}),
        Cmd::Provisioning {
            cmd:
                ProvCmd::Set {
                    enable,
                    disable,
                    first_extension,
                    auto_create,
                    phone_password,
                },
        } => {
            let mut r = json!({"cmd": "provisioning_set", "auto_create": auto_create});
            if *enable || *disable {
                r["enabled"] = json!(*enable);
            }
            if let Some(n) = first_extension {
                r["first_extension"] = json!(n);
            }
            if let Some(p) = phone_password {
                r["phone_password"] = json!(p);
            }
            r
        }
        Cmd::Phone {
            cmd:
                PhoneCmd::Add {
                    mac,
                    model,
                    extensions,
                },
        } => json!({"cmd": "phone_add", "mac": mac, "model": model, "extensions": extensions}),
        Cmd::Phone {
            cmd: PhoneCmd::Import { file, dry_run },
        } => {
            let csv =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let csv = String::from_utf8(csv)
                .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", file.display()))?;
            json!({"cmd": "phone_import", "csv": csv, "dry_run": dry_run})
        }
        Cmd::Phone {
            cmd: PhoneCmd::List,
        } => json!({"cmd": "phone_list"}),
        Cmd::Phone {
            cmd: PhoneCmd::Remove { mac },
        } => json!({"cmd": "phone_remove", "mac": mac}),
        Cmd::Phone {
            cmd: PhoneCmd::Restart { macs },
        } => json!({"cmd": "phone_restart", "macs": macs}),
        Cmd::Config {
            cmd: ConfigCmd::Export,
        } => json!({"cmd": "config_export"}),
        Cmd::Isdn {
            cmd: IsdnCmd::List { .. },
        } => json!({"cmd": "isdn_list"}),
        Cmd::Isdn {
            cmd: IsdnCmd::Set { file },
        } => {
            let doc = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                s
            } else {
                std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let v: serde_json::Value =
                serde_json::from_str(&doc).context("the interface is not a JSON document")?;
            json!({"cmd": "isdn_set", "interface": v})
        }
        Cmd::Isdn {
            cmd: IsdnCmd::Remove { name },
        } => json!({"cmd": "isdn_remove", "name": name}),
        Cmd::Config {
            cmd: ConfigCmd::Import { file },
        } => {
            let doc = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            json!({"cmd": "config_import", "document": doc})
        }
    };
    let answer = call(cli, req)?;
    if let Cmd::Phone {
        cmd: PhoneCmd::Import { .. },
    } = &cli.cmd
    {
        // The preview comes as the data, or beside the errors of a refused import.
        print_import(answer.get("lines").unwrap_or(&answer["data"]));
    }
    if answer["ok"] != json!(true) {
        for e in answer["errors"].as_array().into_iter().flatten() {
            eprintln!("error: {}", e.as_str().unwrap_or_default());
        }
        return Ok(false);
    }
    let data = &answer["data"];
    match &cli.cmd {
        Cmd::Status => {
            println!(
                "ready: revision {}, {} extensions, {} registrations, {} calls",
                data["revision"], data["extensions"], data["registrations"], data["calls"]
            );
            for b in data["banned"].as_array().into_iter().flatten() {
                println!(
                    "banned: {} ({}; {} s left)",
                    b["key"].as_str().unwrap_or(""),
                    b["reason"].as_str().unwrap_or(""),
                    b["seconds_left"]
                );
            }
        }

        Cmd::Extension { cmd: ExtCmd::List } => {
            println!("{:<10} {:<24} {:<8} ACCOUNTS", "NUMBER", "NAME", "ENABLED");
            for e in data.as_array().into_iter().flatten() {
                let accounts: Vec<String> = e["accounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        format!(
                            "{}{}",
                            a["username"].as_str().unwrap_or(""),
                            if a["registered"] == json!(true) {
                                " (registered)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect();
                println!(
                    "{:<10} {:<24} {:<8} {}",
                    e["number"].as_str().unwrap_or(""),
                    e["name"].as_str().unwrap_or(""),
                    e["enabled"],
                    accounts.join(", ")
                );
            }
        }
        Cmd::Update {
            cmd: UpdateCmd::Status,
        } => match serde_json::from_value::<UpdateState>(data.clone()) {
            Ok(st) => println!("{}: {st}", st.name()),
            Err(_) => println!("{data}"),
        },
        Cmd::Peers { json: true }
        | Cmd::Isdn {
            cmd: IsdnCmd::List { json: true },
        } => println!("{data}"),
        Cmd::Isdn {
            cmd: IsdnCmd::List { json: false },
        } => {
            println!(
                "{:<16} {:<8} {:<5} {:<8} {:<7} {:<5} {:>5} DETAIL",
                "NAME", "ROLE", "LINE", "SWITCH", "SIDE", "LINK", "CALLS"
            );
            for r in data.as_array().into_iter().flatten() {
                let s = &r["state"];
                println!(
                    "{:<16} {:<8} {:<5} {:<8} {:<7} {:<5} {:>5} {}",
                    r["name"].as_str().unwrap_or(""),
                    r["role"].as_str().unwrap_or(""),
                    r["line"].as_str().unwrap_or(""),
                    r["switch_type"].as_str().unwrap_or(""),
                    r["side"].as_str().unwrap_or(""),
                    if s["link_up"] == json!(true) {
                        "up"
                    } else {
                        "down"
                    },
                    s["calls"],
                    [s["alarm"].as_str(), s["detail"].as_str()]
                        .into_iter()
                        .flatten()
                        .filter(|t| !t.is_empty())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
            }
        }
        Cmd::Peers { json: false } => {
            println!(
                "{:<16} {:<9} {:<22} {:<12} {:<8} {:>5} DETAIL",
                "NAME", "KIND", "ADDRESS", "REGISTRATION", "ALIVE", "CALLS"
            );
            for r in data.as_array().into_iter().flatten() {
                println!(
                    "{:<16} {:<9} {:<22} {:<12} {:<8} {:>5} {}",
                    r["name"].as_str().unwrap_or(""),
                    r["kind"].as_str().unwrap_or(""),
                    r["address"].as_str().unwrap_or("-"),
                    r["registration"].as_str().unwrap_or(""),
                    r["keepalive"].as_str().unwrap_or(""),
                    r["calls"],
                    r["detail"].as_str().unwrap_or("")
                );
            }
        }
        Cmd::Conflicts => {
            println!("{:<16} {:<10} {:<18} WINNER", "LINK", "NUMBER", "KIND");
            for r in data.as_array().into_iter().flatten() {
                println!(
                    "{:<16} {:<10} {:<18} {}",
                    r["link"].as_str().unwrap_or(""),
                    r["number"].as_str().unwrap_or(""),
                    r["kind"].as_str().unwrap_or(""),
                    r["winner"].as_str().unwrap_or("")
                );
            }
        }
        Cmd::Voicemail => {
            println!(
                "{:<10} {:>4} {:>4} {:<9} LAMP WATCHED BY",
                "EXTENSION", "NEW", "OLD", "TEMPGREET"
            );
            for b in data.as_array().into_iter().flatten() {
                let subs: Vec<&str> = b["subscribers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str())
                    .collect();
                println!(
                    "{:<10} {:>4} {:>4} {:<9} {}",
                    b["extension"].as_str().unwrap_or(""),
                    b["new"],
                    b["old"],
                    if b["temp_greeting"] == json!(true) {
                        "yes"
                    } else {
                        "no"
                    },
                    if subs.is_empty() {
                        "-".to_string()
                    } else {
                        subs.join(", ")
                    }
                );
            }
        }
        Cmd::Registrations => {
            println!(
                "{:<16} {:<10} {:<22} {:<5} CONTACT",
                "ACCOUNT", "EXTENSION", "SOURCE", "PROTO"
            );
            for r in data.as_array().into_iter().flatten() {
                println!(
                    "{:<16} {:<10} {:<22} {:<5} {}",
                    r["username"].as_str().unwrap_or(""),
                    r["extension"].as_str().unwrap_or(""),
                    r["source"].as_str().unwrap_or(""),
                    r["transport"].as_str().unwrap_or(""),
                    r["contact"].as_str().unwrap_or("")
                );
            }
        }
        Cmd::Calls => {
            println!(
                "{:<6} {:<10} {:<10} {:<9} {:>7} {:>9} {:>9} TRANSCODING",
                "ID", "CALLER", "CALLEE", "STATE", "SECONDS", "PKT A>B", "PKT B>A"
            );
            for c in data.as_array().into_iter().flatten() {
                println!(
                    "{:<6} {:<10} {:<10} {:<9} {:>7} {:>9} {:>9} {}",
                    c["id"],
                    c["caller"].as_str().unwrap_or(""),
                    c["callee"].as_str().unwrap_or(""),
                    c["state"].as_str().unwrap_or(""),
                    c["seconds"],
                    c["packets_a_to_b"],
                    c["packets_b_to_a"],
                    c["transcoding"]
                );
            }
        }
        Cmd::Config {
            cmd: ConfigCmd::Export,
        } => println!("{}", serde_json::to_string_pretty(data)?),
        Cmd::Account { .. } if data.get("password").is_some() => {
            println!(
                "revision {}; generated password: {}",
                data["revision"],
                data["password"].as_str().unwrap_or("")
            )
        }
        Cmd::EmergencyPreset { country } => {
            println!(
                "ok: revision {}; emergency numbers of {country} in place",
                data["revision"]
            )
        }
        Cmd::AdminPassword => println!("ok: revision {}; log in as Admin", data["revision"]),
        Cmd::Provisioning { .. } => println!(
            "ok: revision {}; provisioning {}, first extension {}, auto-create {}",
            data["revision"],
            if data["enabled"] == json!(true) {
                "enabled"
            } else {
                "disabled"
            },
            data["first_extension"].as_str().unwrap_or(""),
            if data["auto_create"] == json!(true) {
                "on"
            } else {
                "off"
            }
        ),
        Cmd::Phone {
            cmd: PhoneCmd::List,
        } => {
            println!(
                "{:<18} {:<10} {:<12} {:<16} {:<16} {:<20} RESTART",
                "MAC", "MODEL", "STATE", "EXTENSIONS", "IP", "LAST FETCH"
            );
            for p in data.as_array().into_iter().flatten() {
                let exts: Vec<&str> = p["extensions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!(
                    "{:<18} {:<10} {:<12} {:<16} {:<16} {:<20} {}",
                    p["mac"].as_str().unwrap_or(""),
                    p["model"].as_str().unwrap_or(""),
                    p["state"].as_str().unwrap_or(""),
                    exts.join(","),
                    p["ip"].as_str().unwrap_or("-"),
                    p["last_file"].as_str().unwrap_or("-"),
                    if p["needs_restart"] == json!(true) {
                        "needed"
                    } else {
                        ""
                    }
                );
            }
        }
        Cmd::Phone {
            cmd: PhoneCmd::Import { dry_run, .. },
        } => {
            let bad = data
                .as_array()
                .into_iter()
                .flatten()
                .filter(|l| !l["error"].is_null())
                .count();
            if *dry_run {
                if bad > 0 {
                    eprintln!("{bad} line(s) have errors; nothing would be imported");
                    return Ok(false);
                }
                println!("ok: the file can be imported");
            } else {
                println!("ok: imported");
            }
        }
        Cmd::Phone {
            cmd: PhoneCmd::Restart { .. },
        } => println!(
            "ok: {} of {} phones were registered and asked to restart",
            data["notified"], data["phones"]
        ),
        Cmd::Hangup { id } => println!("ok: call {id} hung up"),
        Cmd::Bans => {
            println!(
                "{:<32} {:<8} {:>8} {:>7} REASON",
                "BANNED", "KIND", "LEFT (s)", "OFFENCE"
            );
            for b in data.as_array().into_iter().flatten() {
                println!(
                    "{:<32} {:<8} {:>8} {:>7} {}",
                    b["key"].as_str().unwrap_or(""),
                    b["kind"].as_str().unwrap_or(""),
                    b["seconds_left"].as_u64().unwrap_or(0),
                    b["offence"].as_u64().unwrap_or(0),
                    b["reason"].as_str().unwrap_or("")
                );
            }
        }
        Cmd::Unban { key } => println!("ok: the ban on {key} is lifted"),
        Cmd::Parked => {
            println!(
                "{:<8} {:<6} {:<12} {:<10} SECONDS",
                "SLOT", "CALL", "NUMBER", "PARKED BY"
            );
            for p in data.as_array().into_iter().flatten() {
                println!(
                    "{:<8} {:<6} {:<12} {:<10} {}",
                    p["slot"].as_str().unwrap_or(""),
                    p["call"],
                    p["number"].as_str().unwrap_or(""),
                    p["parked_by"].as_str().unwrap_or(""),
                    p["seconds"]
                );
            }
        }
        Cmd::Conference {
            cmd: None | Some(ConfCmd::List),
        } => {
            println!(
                "{:<8} {:<6} {:<6} {:<10} {:<20} {:>7} MUTED",
                "ROOM", "LIMIT", "CALL", "NUMBER", "NAME", "SECONDS"
            );
            for r in data.as_array().into_iter().flatten() {
                let parts = r["participants"].as_array().cloned().unwrap_or_default();
                if parts.is_empty() {
                    println!(
                        "{:<8} {:<6} -",
                        r["number"].as_str().unwrap_or(""),
                        r["limit"]
                    );
                }
                for p in parts {
                    println!(
                        "{:<8} {:<6} {:<6} {:<10} {:<20} {:>7} {}",
                        r["number"].as_str().unwrap_or(""),
                        r["limit"],
                        p["call"],
                        p["number"].as_str().unwrap_or(""),
                        p["name"].as_str().unwrap_or(""),
                        p["seconds"],
                        if p["muted"] == true { "yes" } else { "no" }
                    );
                }
            }
        }
        Cmd::Conference {
            cmd: Some(ConfCmd::Kick { room, call }),
        } => println!("ok: call {call} put out of conference {room}"),
        Cmd::Queue {
            cmd: None | Some(QueueCmd::List),
        } => {
            for q in data.as_array().into_iter().flatten() {
                println!(
                    "queue {} {}: {} waiting, answered {}, abandoned {}, redirected {}, average wait {} s, longest {} s",
                    q["number"].as_str().unwrap_or(""),
                    q["description"].as_str().unwrap_or(""),
                    q["waiting"].as_array().map_or(0, Vec::len),
                    q["answered"],
                    q["abandoned"],
                    q["redirected"],
                    q["average_wait"],
                    q["longest_wait"]
                );
                for w in q["waiting"].as_array().into_iter().flatten() {
                    println!(
                        "  caller {:<3} call {:<6} {:<12} {:>5} s  ringing {}",
                        w["position"],
                        w["call"],
                        w["number"].as_str().unwrap_or(""),
                        w["seconds"],
                        w["ringing"]
                            .as_array()
                            .map(|a| a
                                .iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(","))
                            .unwrap_or_default()
                    );
                }
                for a in q["agents"].as_array().into_iter().flatten() {
                    println!(
                        "  agent  {:<8} {:<12} answered {:<4} missed {:<4}{}",
                        a["extension"].as_str().unwrap_or(""),
                        a["state"].as_str().unwrap_or(""),
                        a["answered"],
                        a["missed"],
                        if a["dynamic"] == true {
                            " logged in"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
        Cmd::Queue {
            cmd: Some(QueueCmd::Login { queue, extension } | QueueCmd::Logout { queue, extension }),
        } => println!(
            "ok: {extension} logged {} queue {queue}",
            if data["login"] == true {
                "in to"
            } else {
                "out of"
            }
        ),
        Cmd::Conference {
            cmd: Some(ConfCmd::Mute { room, call } | ConfCmd::Unmute { room, call }),
        } => println!(
            "ok: call {call} of conference {room}: {}",
            if data["muted"] == true {
                "muted"
            } else {
                "unmuted"
            }
        ),
        _ => println!("ok: revision {}", data["revision"]),
    }
    Ok(true)
}

/// The CSV preview, a line per phone with its error.
fn print_import(lines: &Value) {
    for l in lines.as_array().into_iter().flatten() {
        let exts: Vec<&str> = l["extensions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let what = format!(
            "line {}: {} {} {} [{}]",
            l["line"],
            l["mac"].as_str().unwrap_or(""),
            l["manufacturer"].as_str().unwrap_or(""),
            l["model"].as_str().unwrap_or(""),
            exts.join(",")
        );
        match l["error"].as_str() {
            Some(e) => println!("{what}: error: {e}"),
            None => println!("{what}: ok"),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
