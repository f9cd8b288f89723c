//! Directory users (Kerio 11) against a real OpenLDAP (Debian's `slapd`, started by the
//! test in its own directory on loopback): the users and their extensions are taken
//! from the directory, log in to the portal with the directory's password (and not with
//! an empty one or an old one), and a user removed from the directory is disabled at the
//! next synchronisation. The bind password never comes back from the API. Over ldaps,
//! the directory's certificate is trusted once its CA is added under Certificates.

use e2e::*;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PW: &str = "Directory-Admin-1!";
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PW: &str = "Ldap-Root-Secret-1";

struct Slapd {
    child: Child,
    _dir: tempfile::TempDir,
    url: String,
    /// The same directory over TLS, with a certificate of the test's own CA.
    ldaps: String,
    ca_pem: String,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(c: &mut Command) -> String {
    let o = c.output().expect("run");
    assert!(
        o.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn slapd() -> Slapd {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("db")).unwrap();
    let (issuer, ca_pem) = test_ca();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(d.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(d.join("key.pem"), key.serialize_pem()).unwrap();
    let conf = format!(
        r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {d}/slapd.pid
TLSCertificateFile {d}/cert.pem
TLSCertificateKeyFile {d}/key.pem
database mdb
maxsize 10485760
directory {d}/db
suffix "dc=example,dc=org"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
"#,
        d = d.display()
    );
    std::fs::write(d.join("slapd.conf"), conf).unwrap();
    let ldif = "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n\
dn: uid=alice,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice Smith\nsn: Smith\ntelephoneNumber: +1 (555) 0301\nmail: alice@example.org\nuserPassword: Alice-Pass-1\n\n\
dn: uid=bob,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: bob\ncn: Bob Jones\nsn: Jones\ntelephoneNumber: 302\nuserPassword: Bob-Pass-1\n";
    std::fs::write(d.join("data.ldif"), ldif).unwrap();
    run(Command::new("slapadd")
        .arg("-f")
        .arg(d.join("slapd.conf"))
        .arg("-l")
        .arg(d.join("data.ldif")));
    let port = free_port();
    let url = format!("ldap://127.0.0.1:{port}");
    let ldaps = format!("ldaps://127.0.0.1:{}", free_port());
    let child = Command::new("slapd")
        .arg("-f")
        .arg(d.join("slapd.conf"))
        .args(["-h", &format!("{url}/ {ldaps}/"), "-d", "0"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("stderr")).unwrap())
        .spawn()
        .expect("slapd (Debian's slapd)");
    let up = wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(
        up,
        "slapd did not listen: {}",
        std::fs::read_to_string(d.join("stderr")).unwrap_or_default()
    );
    Slapd {
        child,
        _dir: dir,
        url,
        ldaps,
        ca_pem,
    }
}

fn ldap_tool(s: &Slapd, tool: &str, args: &[&str], input: &str) {
    use std::io::Write;
    let mut c = Command::new(tool)
        .args(["-x", "-H", &s.url, "-D", ROOT_DN, "-w", ROOT_PW])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(tool);
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn portal_login(pbx: &Pbxd, user: &str, password: &str) -> u16 {
    let body = json!({"username": user, "password": password}).to_string();
    pbx.https("POST", "/api/v1/login", Some(&body), &[]).status
}

#[test]
fn directory_users_log_in_with_the_directorys_password() {
    let s = slapd();
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    // Bad settings are refused with the field.
    let bad = json!({"enabled": true, "url": "http://nope", "base_dn": ""});
    let r = pbx.https("PUT", "/api/v1/directory", Some(&bad.to_string()), &h);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.body.contains("url") && r.body.contains("base_dn"),
        "{r:?}"
    );
    // A bind the directory refuses: the sync says why, nothing changes.
    let settings = |pw: &str| {
        json!({"enabled": false, "url": s.url, "bind_dn": ROOT_DN, "bind_password": pw,
               "base_dn": "ou=people,dc=example,dc=org"})
    };
    let r = pbx.https(
        "PUT",
        "/api/v1/directory",
        Some(&settings("wrong").to_string()),
        &h,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let r = pbx.https("POST", "/api/v1/directory/sync", None, &h);
    assert_eq!(r.status, 422, "{r:?}");
    assert!(r.body.contains("refused the box's bind"), "{r:?}");
    let r = pbx.https(
        "PUT",
        "/api/v1/directory",
        Some(&settings(ROOT_PW).to_string()),
        &h,
    );
    let v: Value = r.json();
    assert_eq!(v["settings"]["bind_password"], "****", "{v}");
    assert!(!r.body.contains(ROOT_PW));
    // "****" keeps the password there is.
    let r = pbx.https(
        "PUT",
        "/api/v1/directory",
        Some(&settings("****").to_string()),
        &h,
    );
    assert_eq!(r.status, 200, "{r:?}");

    let r = pbx.https("POST", "/api/v1/directory/sync", None, &h);
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["created"], json!(["alice", "bob"]), "{v}");
    let users = pbx.https("GET", "/api/v1/users", None, &h).json();
    let alice = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .unwrap()
        .clone();
    assert_eq!(alice["full_name"], "Alice Smith", "{alice}");
    assert_eq!(alice["extensions"], json!(["15550301"]), "{alice}");
    assert_eq!(alice["directory"], true);
    assert_eq!(alice["role"], "user");
    assert!(pbx.ctl_ok(&["extension", "list"]).contains("302"));

    // The directory's password, and only it.
    assert_eq!(portal_login(&pbx, "alice", "Alice-Pass-1"), 200);
    assert_eq!(portal_login(&pbx, "alice", "wrong"), 401);
    assert_eq!(portal_login(&pbx, "alice", ""), 401);
    // A new password in the directory: the old one no longer works.
    ldap_tool(
        &s,
        "ldapmodify",
        &[],
        "dn: uid=alice,ou=people,dc=example,dc=org\nchangetype: modify\nreplace: userPassword\nuserPassword: Alice-Pass-2\n",
    );
    assert_eq!(portal_login(&pbx, "alice", "Alice-Pass-1"), 401);
    assert_eq!(portal_login(&pbx, "alice", "Alice-Pass-2"), 200);
    let u = pbx.login("alice", "Alice-Pass-2");
    let u: Vec<&str> = u.iter().map(String::as_str).collect();
    let me = pbx.https("GET", "/api/v1/me", None, &u);
    assert_eq!(me.status, 200, "{me:?}");
    assert!(me.body.contains("15550301"), "{me:?}");

    // Her password is changed in the directory, not on the box.
    let r = pbx.https(
        "PUT",
        "/api/v1/me",
        Some(r#"{"password": "Local-Pass-123!"}"#),
        &u,
    );
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.body.contains("the directory's"), "{r:?}");

    // Bob leaves the directory: disabled at the next synchronisation, kept on the box.
    assert_eq!(portal_login(&pbx, "bob", "Bob-Pass-1"), 200);
    ldap_tool(
        &s,
        "ldapdelete",
        &["uid=bob,ou=people,dc=example,dc=org"],
        "",
    );
    let r = pbx.https("POST", "/api/v1/directory/sync", None, &h);
    assert_eq!(r.json()["disabled"], json!(["bob"]), "{r:?}");
    assert_eq!(portal_login(&pbx, "bob", "Bob-Pass-1"), 401);
    let users = pbx.https("GET", "/api/v1/users", None, &h).json();
    let bob = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap()
        .clone();
    assert_eq!(bob["enabled"], false, "{bob}");
    let cfg = pbx.https("GET", "/api/v1/logs/config", None, &h).body;
    assert!(cfg.contains("synchronised the directory users"), "{cfg}");
}

/// Chromium on the Users page (tests/web/directory.mjs): the directory settings and a
/// synchronisation from the page.
#[test]
fn the_users_page_sets_up_the_directory() {
    let s = slapd();
    let pbx = Pbxd::start();
    pbx.admin_session(PW);
    browser_via(
        &pbx,
        &[],
        "directory.mjs",
        &[
            ("ADMIN_PW", PW),
            ("LDAP_URL", &s.url),
            ("ROOT_DN", ROOT_DN),
            ("ROOT_PW", ROOT_PW),
        ],
    );
    let exts = pbx.ctl_ok(&["extension", "list"]);
    assert!(exts.contains("15550301") && exts.contains("302"), "{exts}");
}

/// ldaps:// checks the directory's certificate against the system's authorities and the
/// CAs added under Certificates (issue 21.5): refused before the test's CA is trusted,
/// synchronised after.
#[test]
fn ldaps_trusts_the_cas_the_administrator_added() {
    let s = slapd();
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let settings = json!({"enabled": false, "url": s.ldaps, "bind_dn": ROOT_DN,
        "bind_password": ROOT_PW, "base_dn": "ou=people,dc=example,dc=org"});
    let r = pbx.https("PUT", "/api/v1/directory", Some(&settings.to_string()), &h);
    assert_eq!(r.status, 200, "{r:?}");
    let r = pbx.https("POST", "/api/v1/directory/sync", None, &h);
    assert_eq!(r.status, 422, "{r:?}");
    assert!(
        r.body.contains("cannot reach") && r.body.contains("certificate"),
        "{r:?}"
    );
    let r = pbx.https("PUT", "/api/v1/certificates/trusted", Some(&s.ca_pem), &h);
    assert_eq!(r.status, 200, "{r:?}");
    let r = pbx.https("POST", "/api/v1/directory/sync", None, &h);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["created"], json!(["alice", "bob"]), "{r:?}");
}
