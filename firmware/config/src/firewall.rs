//! The firewall's settings (Kerio 22.2): each of the box's services allowed from an IP
//! address group, or from anywhere. `system::firewall` turns them into nftables rules;
//! the web server holds the web admin, the user portal and provisioning over HTTPS to
//! their own groups, since the three share one port.

use serde::{Deserialize, Serialize};

/// Each service's allowed IP address group; empty: from anywhere (no restriction, what
/// a new box and a document written before the firewall have).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Firewall {
    /// SIP over UDP (5060).
    pub sip_udp: String,
    /// SIP over TCP (5060).
    pub sip_tcp: String,
    /// SIP over TLS (5061).
    pub sip_tls: String,
    /// The web admin and the API's administrator sessions (HTTPS 4021).
    pub web_admin: String,
    /// The user portal (HTTPS 4021; its users' API sessions).
    pub user_portal: String,
    /// Phone provisioning: TFTP (69) and `/prov/` over HTTPS.
    pub provisioning: String,
    /// The media relay's RTP port range.
    pub rtp: String,
}

/// A service the firewall knows: its key in [`Firewall`] and its name on the page.
pub const FIREWALL_SERVICES: [(&str, &str); 7] = [
    ("sip_udp", "SIP over UDP"),
    ("sip_tcp", "SIP over TCP"),
    ("sip_tls", "SIP over TLS"),
    ("web_admin", "Web admin"),
    ("user_portal", "User portal"),
    ("provisioning", "Phone provisioning (TFTP, HTTPS)"),
    ("rtp", "Calls' audio (RTP)"),
];

impl Firewall {
    /// The group a service (a key of [`FIREWALL_SERVICES`]) is allowed from; `None` for
    /// an unknown key.
    pub fn group(&self, service: &str) -> Option<&str> {
        Some(match service {
            "sip_udp" => &self.sip_udp,
            "sip_tcp" => &self.sip_tcp,
            "sip_tls" => &self.sip_tls,
            "web_admin" => &self.web_admin,
            "user_portal" => &self.user_portal,
            "provisioning" => &self.provisioning,
            "rtp" => &self.rtp,
            _ => return None,
        })
    }

    /// The service's group, to change.
    pub fn group_mut(&mut self, service: &str) -> Option<&mut String> {
        Some(match service {
            "sip_udp" => &mut self.sip_udp,
            "sip_tcp" => &mut self.sip_tcp,
            "sip_tls" => &mut self.sip_tls,
            "web_admin" => &mut self.web_admin,
            "user_portal" => &mut self.user_portal,
            "provisioning" => &mut self.provisioning,
            "rtp" => &mut self.rtp,
            _ => return None,
        })
    }

    /// Whether any service is restricted.
    pub fn restricts(&self) -> bool {
        FIREWALL_SERVICES
            .iter()
            .any(|(k, _)| self.group(k).is_some_and(|g| !g.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_has_its_own_field() {
        let mut f = Firewall::default();
        assert!(!f.restricts());
        for (i, (k, _)) in FIREWALL_SERVICES.iter().enumerate() {
            *f.group_mut(k).unwrap() = format!("g{i}");
        }
        let distinct: std::collections::HashSet<_> = FIREWALL_SERVICES
            .iter()
            .map(|(k, _)| f.group(k).unwrap().to_string())
            .collect();
        assert_eq!(distinct.len(), FIREWALL_SERVICES.len());
        assert!(f.restricts());
        assert!(f.group("ssh").is_none());
        let back: Firewall = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        assert!(serde_json::from_str::<Firewall>(r#"{"ssh":"x"}"#).is_err());
    }
}
