//! Directory users (Kerio 11): users and their extensions mapped from an LDAP server or
//! Active Directory, synchronised periodically; such a user logs in with the
//! directory's password (the box never stores it).

use serde::{Deserialize, Serialize};

/// The directory server and how its entries map to users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Directory {
    pub enabled: bool,
    /// `ldap://host[:389]` or `ldaps://host[:636]` (TLS, the certificate checked against
    /// the system's authorities).
    pub url: String,
    /// Who the box binds as to read the directory.
    pub bind_dn: String,
    pub bind_password: String,
    /// Where the users are (`ou=people,dc=example,dc=org`).
    pub base_dn: String,
    /// Which entries are users.
    pub filter: String,
    /// The attribute holding the user name (`uid`; Active Directory: `sAMAccountName`).
    pub username_attribute: String,
    pub name_attribute: String,
    /// The attribute holding the extension number (`telephoneNumber`; its digits).
    pub extension_attribute: String,
    pub email_attribute: String,
    /// Minutes between synchronisations (5-1440).
    pub sync_minutes: u32,
}

impl Default for Directory {
    fn default() -> Self {
        Directory {
            enabled: false,
            url: String::new(),
            bind_dn: String::new(),
            bind_password: String::new(),
            base_dn: String::new(),
            filter: "(objectClass=inetOrgPerson)".into(),
            username_attribute: "uid".into(),
            name_attribute: "cn".into(),
            extension_attribute: "telephoneNumber".into(),
            email_attribute: "mail".into(),
            sync_minutes: 60,
        }
    }
}

fn attribute_ok(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 64
        && a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && a.as_bytes()[0].is_ascii_alphabetic()
}

impl Directory {
    /// Problems, as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        let url_ok = (self.url.starts_with("ldap://") || self.url.starts_with("ldaps://"))
            && self.url.len() > 8
            && !self
                .url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control());
        if !url_ok && (self.enabled || !self.url.is_empty()) {
            p.push((
                "url",
                "must be ldap://host[:port] or ldaps://host[:port]".into(),
            ));
        }
        if self.enabled && self.base_dn.trim().is_empty() {
            p.push(("base_dn", "is needed to find the users".into()));
        }
        let parenthesised = self.filter.starts_with('(') && self.filter.ends_with(')');
        if !self.filter.is_empty() && !parenthesised {
            p.push(("filter", "must be an LDAP filter in parentheses".into()));
        }
        for (field, a) in [
            ("username_attribute", &self.username_attribute),
            ("name_attribute", &self.name_attribute),
            ("extension_attribute", &self.extension_attribute),
            ("email_attribute", &self.email_attribute),
        ] {
            if !attribute_ok(a) {
                p.push((field, "must be an attribute name".into()));
            }
        }
        if !(5..=1440).contains(&self.sync_minutes) {
            p.push(("sync_minutes", "must be 5-1440".into()));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_off_and_bad_values_are_named() {
        let d = Directory::default();
        assert!(d.problems().is_empty());
        let bad = Directory {
            enabled: true,
            url: "http://x".into(),
            filter: "uid=*".into(),
            username_attribute: "u id".into(),
            sync_minutes: 1,
            ..Directory::default()
        };
        let f: Vec<&str> = bad.problems().iter().map(|(f, _)| *f).collect();
        assert_eq!(
            f,
            [
                "url",
                "base_dn",
                "filter",
                "username_attribute",
                "sync_minutes"
            ]
        );
    }
}
