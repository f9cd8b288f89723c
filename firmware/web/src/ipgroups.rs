//! IP address groups (Kerio 26) on the page `/admin/routing/ip-groups`: a table form
//! whose items are short lines a technician reads aloud (`192.168.15.3 (jsmith's PC);
//! 10.1.0.0/16; 172.16.0.10-172.16.0.20; group Admins`). The API is
//! `/api/v1/routing/ip_groups`.

use crate::attendant_pages::{table, typed_rows};
use crate::pages::{csrf_field, fields, layout, outcome, page_response, Note};
use crate::{ApiError, App, Caller};
use config::{IpGroup, IpItem};
use maud::html;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::reply::Response;

type Form = [(String, String)];

const COLS: [&str; 3] = ["ig_name", "ig_items", "ig_description"];

/// One item as the page writes it.
pub(crate) fn item_text(i: &IpItem) -> String {
    let (what, d) = match i {
        IpItem::Host {
            address,
            description,
        } => (address.clone(), description),
        IpItem::Network {
            network,
            description,
        } => (network.clone(), description),
        IpItem::Range {
            from,
            to,
            description,
        } => (format!("{from}-{to}"), description),
        IpItem::Group { group, description } => (format!("group {group}"), description),
    };
    if d.is_empty() {
        what
    } else {
        format!("{what} ({d})")
    }
}

/// One item as typed: an address, a network with its prefix, a range `first-last`, or
/// `group <name>`; a description in parentheses after it.
pub(crate) fn parse_item(s: &str) -> Result<IpItem, String> {
    let s = s.trim();
    let (what, description) = match s.split_once(" (") {
        Some((w, d)) if d.ends_with(')') => (w.trim(), d[..d.len() - 1].trim().to_string()),
        _ => (s, String::new()),
    };
    let item = if let Some(g) = what.strip_prefix("group ") {
        IpItem::Group {
            group: g.trim().into(),
            description,
        }
    } else if what.contains('/') {
        IpItem::Network {
            network: what.into(),
            description,
        }
    } else if let Some((f, t)) = what.split_once('-') {
        IpItem::Range {
            from: f.trim().into(),
            to: t.trim().into(),
            description,
        }
    } else if what.parse::<std::net::IpAddr>().is_ok() {
        IpItem::Host {
            address: what.into(),
            description,
        }
    } else {
        return Err(format!(
            "{what:?}: an item is an address, address/prefix, first-last or group <name>"
        ));
    };
    Ok(item)
}

/// Routes `/admin/routing/ip-groups`.
pub(crate) async fn handle(app: &Arc<App>, c: &Caller, get: bool, form: &Form) -> Response {
    if get {
        return page(app, c, Note::None, StatusCode::OK, None);
    }
    let r = save(app, &c.user.username, form).await;
    let (note, st) = outcome(r, |()| {
        match crate::firewall::seconds_left(app) {
        Some(s) => format!("IP address groups saved. The firewall's rules changed with them and are on trial: confirm them on the Firewall page within {s} seconds, or they are rolled back."),
        None => "IP address groups saved.".into(),
    }
    });
    let typed = (st != StatusCode::OK).then_some(form);
    page(app, c, note, st, typed)
}

async fn save(app: &Arc<App>, who: &str, form: &Form) -> Result<(), ApiError> {
    let mut v = Vec::new();
    for (i, name) in fields(form, COLS[0]).iter().enumerate() {
        let col = |n: &str| fields(form, n).get(i).map_or("", |s| s.trim()).to_string();
        let items = col(COLS[1]);
        if name.trim().is_empty() && items.is_empty() {
            continue;
        }
        let items = items
            .split(';')
            .filter(|s| !s.trim().is_empty())
            .map(parse_item)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| ApiError::bad("ip_groups", m))?;
        v.push(IpGroup {
            name: name.trim().into(),
            description: col(COLS[2]),
            items,
        });
    }
    crate::ops::change(app, who, "changed IP address groups".into(), move |c| {
        c.ip_groups = v;
        Ok(())
    })
    .await
}

fn page(
    app: &Arc<App>,
    c: &Caller,
    note: Note,
    status: StatusCode,
    typed: Option<&Form>,
) -> Response {
    let snap = app.cfg.snapshot();
    let write = c.can_write_admin();
    let rows: Vec<Vec<String>> = match typed {
        Some(f) => typed_rows(f, &COLS),
        None => snap
            .config
            .ip_groups
            .iter()
            .map(|g| {
                vec![
                    g.name.clone(),
                    g.items.iter().map(item_text).collect::<Vec<_>>().join("; "),
                    g.description.clone(),
                ]
            })
            .collect(),
    };
    page_response(
        status,
        layout(
            "IP address groups",
            Some(c),
            true,
            &note,
            html! {
                p.hint { "Named sets of computers, networks, address ranges and other groups, defined once and chosen wherever access is decided. Items separated by ; — 192.168.15.3 (jsmith's PC); 10.1.0.0/16; 172.16.0.10-172.16.0.20; group Admins." }
                form method="post" action="/admin/routing/ip-groups" id="ip-groups" {
                    (csrf_field(c))
                    fieldset disabled[!write] {
                        (table("ip-group-list", &COLS, &["Name", "Items", "Description"], &[10, 50, 16], &rows, if write { 2 } else { 0 }, ""))
                        @if write { button type="submit" { "Save IP address groups" } }
                    }
                }
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_read_back_what_the_page_writes() {
        for s in [
            "192.168.15.3 (jsmith's computer)",
            "2001:db8::1",
            "10.1.0.0/16",
            "172.16.0.10-172.16.0.20",
            "group Admins (the IT room)",
        ] {
            assert_eq!(item_text(&parse_item(s).unwrap()), s);
        }
        assert!(parse_item("printer").is_err());
        assert!(parse_item("").is_err());
    }
}
