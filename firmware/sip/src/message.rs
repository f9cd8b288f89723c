//! Framing, normalisation and validation of SIP messages in front of rsip, plus the
//! header helpers the rest of the stack uses.
//!
//! rsip parses a start line, URIs and `Name: value` headers. It does not unfold
//! continuation lines, expand compact header names or apply Content-Length, and it
//! accepts messages that lack the headers RFC 3261 requires; this module does those.

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, SipMessage};
use std::borrow::Cow;

/// Why a message was refused, and the status to answer with when a reply is possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}")]
pub struct ParseError {
    /// 400, or 505 for a SIP version we do not speak.
    pub status: u16,
    pub reason: String,
}

fn bad(reason: impl Into<String>) -> ParseError {
    ParseError {
        status: 400,
        reason: reason.into(),
    }
}

/// Largest message accepted, on any transport.
pub const MAX_MESSAGE: usize = 65_535;

const COMPACT: &[(&str, &str)] = &[
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("e", "Content-Encoding"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("f", "From"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("t", "To"),
    ("v", "Via"),
    ("o", "Event"),
    ("u", "Allow-Events"),
];

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// A header line after unfolding: canonical name and trimmed value.
struct RawHeader {
    name: String,
    value: String,
}

/// Splits header text into unfolded headers and validates names.
fn unfold(head: &str) -> Result<(String, Vec<RawHeader>), ParseError> {
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or_default().to_string();
    let mut out: Vec<RawHeader> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            let Some(last) = out.last_mut() else {
                return Err(bad("continuation line before any header"));
            };
            let more = line.trim();
            if !more.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(more);
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad(format!("header line without a colon: {:.40}", line)));
        };
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(bad(format!("malformed header name {:.40}", name)));
        }
        let name = COMPACT
            .iter()
            .find(|(short, _)| short.eq_ignore_ascii_case(name))
            .map(|(_, long)| (*long).to_string())
            .unwrap_or_else(|| name.to_string());
        out.push(RawHeader {
            name,
            value: value.trim().to_string(),
        });
    }
    Ok((start, out))
}

fn find<'a>(headers: &'a [RawHeader], name: &str) -> impl Iterator<Item = &'a RawHeader> + 'a {
    let name = name.to_string();
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(&name))
}

fn parse_u32(field: &str, v: &str, max: u64) -> Result<u64, ParseError> {
    let v = v.trim();
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("{field} is not a number")));
    }
    let n: u64 = v
        .parse()
        .map_err(|_| bad(format!("{field} is not a number")))?;
    if n > max {
        return Err(bad(format!("{field} out of range")));
    }
    Ok(n)
}

/// How many bytes of `buf` the first complete message takes on a stream transport:
/// `Ok(None)` when more bytes are needed. Leading CRLF keep-alives are counted in.
pub fn stream_frame_len(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let mut skip = 0;
    while buf[skip..].starts_with(b"\r\n") {
        skip += 2;
    }
    let rest = &buf[skip..];
    let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
        if rest.len() > MAX_MESSAGE {
            return Err(bad("headers too long"));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&rest[..end]).map_err(|_| bad("headers are not UTF-8"))?;
    let (_, headers) = unfold(head)?;
    let len = match find(&headers, "Content-Length").next() {
        Some(h) => parse_u32("Content-Length", &h.value, MAX_MESSAGE as u64)? as usize,
        None => return Err(bad("Content-Length is required on stream transports")),
    };
    let total = skip + end + 4 + len;
    Ok(if buf.len() >= total {
        Some(total)
    } else {
        None
    })
}

/// Parses and validates one message (one datagram, or one framed stream message).
pub fn parse(bytes: &[u8]) -> Result<SipMessage, ParseError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(bad("message too large"));
    }
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no empty line after the headers"))?;
    let head = std::str::from_utf8(&bytes[..split]).map_err(|_| bad("headers are not UTF-8"))?;
    if head.contains('\0') {
        return Err(bad("NUL byte in headers"));
    }
    let mut body = &bytes[split + 4..];
    let (start, headers) = unfold(head)?;

    if let Some(h) = find(&headers, "Content-Length").next() {
        let len = parse_u32("Content-Length", &h.value, MAX_MESSAGE as u64)? as usize;
        if len > body.len() {
            return Err(bad("Content-Length is larger than the body"));
        }
        body = &body[..len];
    }
    if find(&headers, "Content-Length").count() > 1 {
        return Err(bad("more than one Content-Length"));
    }

    let is_response = start.starts_with("SIP/");
    let method = if is_response {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (may be empty)
        let mut parts = start.splitn(3, ' ');
        let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if version != "SIP/2.0" {
            return Err(bad("unsupported SIP version"));
        }
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) || code.starts_with('0') {
            return Err(bad("malformed status code"));
        }
        None
    } else {
        // Request-Line = Method SP Request-URI SP SIP-Version, single spaces, nothing more.
        let parts: Vec<&str> = start.split(' ').collect();
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad("malformed Request-Line"));
        }
        let version = parts[2];
        if version != "SIP/2.0" {
            let looks_like_version = version.strip_prefix("SIP/").is_some_and(|v| {
                v.split('.').count() == 2
                    && v.split('.')
                        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            });
            return Err(if looks_like_version {
                ParseError {
                    status: 505,
                    reason: "Version Not Supported".into(),
                }
            } else {
                bad("malformed Request-Line")
            });
        }
        if parts[0].is_empty() || !parts[0].bytes().all(is_token_char) {
            return Err(bad("malformed method"));
        }
        let ruri = parts[1];
        if ruri.contains(['<', '>', '"']) || !ruri.contains(':') {
            return Err(bad("malformed Request-URI"));
        }
        let scheme = ruri.split(':').next().unwrap_or("");
        // The exchange takes sip and sips URIs; others (tel: too, which rsip reads as
        // a host named tel) get 416 (RFC 3261 8.2.2.1, RFC 4475 3.3.2 and 3.3.3).
        // rsip read an unknown scheme's URI past the end of the line, taking lines of
        // the body for headers (found by the sip_message fuzz target).
        if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
            return Err(ParseError {
                status: 416,
                reason: "Unsupported URI Scheme".into(),
            });
        }
        if ruri.contains('?') {
            return Err(bad("headers are not allowed in the Request-URI"));
        }
        Some(parts[0].to_string())
    };

    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if find(&headers, name).next().is_none() {
            return Err(bad(format!("missing {name} header")));
        }
    }
    for name in ["From", "To", "Call-ID", "CSeq", "Max-Forwards"] {
        if find(&headers, name).count() > 1 {
            return Err(bad(format!("more than one {name} header")));
        }
    }
    let cseq = &find(&headers, "CSeq").next().expect("checked").value;
    let mut it = cseq.split_whitespace();
    let (Some(num), Some(cseq_method), None) = (it.next(), it.next(), it.next()) else {
        return Err(bad("malformed CSeq"));
    };
    parse_u32("CSeq", num, (1 << 31) - 1)?;
    if let Some(m) = &method {
        if m != cseq_method {
            return Err(bad("CSeq method does not match the request method"));
        }
    }
    if let Some(h) = find(&headers, "Max-Forwards").next() {
        parse_u32("Max-Forwards", &h.value, 255)?;
    }
    if let Some(h) = find(&headers, "Expires").next() {
        parse_u32("Expires", &h.value, u32::MAX as u64)?;
    }
    for name in ["From", "To"] {
        let v = &find(&headers, name).next().expect("checked").value;
        check_name_addr(name, v)?;
    }
    for h in find(&headers, "Via") {
        check_via(&h.value)?;
    }
    if let Some(h) = find(&headers, "Date").next() {
        if !h.value.trim_end().ends_with("GMT") {
            return Err(bad("Date must be in GMT"));
        }
    }
    for h in find(&headers, "Contact") {
        if h.value.trim() != "*" {
            for part in split_list(&h.value) {
                check_name_addr("Contact", part)?;
            }
        }
    }

    // Rebuild in canonical form for rsip.
    let mut canon = Vec::with_capacity(bytes.len() + 64);
    canon.extend_from_slice(escape_ruri_user(&start).as_bytes());
    canon.extend_from_slice(b"\r\n");
    for h in &headers {
        if h.name.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        canon.extend_from_slice(h.name.as_bytes());
        canon.extend_from_slice(b": ");
        canon.extend_from_slice(h.value.as_bytes());
        canon.extend_from_slice(b"\r\n");
    }
    canon.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    canon.extend_from_slice(body);
    if let Some(m) = &method {
        if m.parse::<rsip::Method>().is_err() {
            return Err(ParseError {
                status: 501,
                reason: "Not Implemented".into(),
            });
        }
    }
    let msg = std::panic::catch_unwind(|| SipMessage::try_from(canon.as_slice()))
        .map_err(|_| bad("unparseable message"))?
        .map_err(|e| bad(format!("unparseable message: {}", short(&e.to_string()))))?;
    if let SipMessage::Request(r) = &msg {
        if r.uri.host_with_port.host.to_string().is_empty() {
            return Err(bad("Request-URI has no host"));
        }
    }
    // rsip must have read the headers checked here, no more and no fewer: where its
    // tokenizer strays, what the exchange reads would not be what was validated.
    let kept = headers
        .iter()
        .filter(|h| !h.name.eq_ignore_ascii_case("Content-Length"))
        .count();
    let read = match &msg {
        SipMessage::Request(r) => r.headers.iter().count(),
        SipMessage::Response(r) => r.headers.iter().count(),
    };
    if read != kept + 1 {
        return Err(bad("unparseable message"));
    }
    Ok(msg)
}

/// The SIP URI in a name-addr (a Contact, or a From standing in for one) as a remote
/// target: the Request-URI of requests sent to it. `None` unless it is a `sip:` or
/// `sips:` URI with a host name, IPv4 address or bracketed IPv6 address and at most a
/// port of up to 65535, and nothing in it a Request-URI cannot carry; a `?headers` part
/// is left out (RFC 3261 19.1.5). A Contact with a port of `70*1` or a scheme of `si!`
/// became the Request-URI of a BYE the exchange sent (found by the exchange fuzz
/// target); the exchange treats such a Contact as absent.
pub fn target_uri(v: &str) -> Option<&str> {
    let uri = uri_part(v);
    let uri = uri.split('?').next().unwrap_or(uri);
    if uri
        .bytes()
        .any(|b| b <= b' ' || b == 0x7f || b"<>\"".contains(&b))
    {
        return None;
    }
    let (scheme, rest) = uri.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        return None;
    }
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let mut params = hostport.split(';');
    let hostport = params.next().unwrap_or("");
    // Each parameter has a name (`;:7002` is no parameter, and no parser takes it).
    for p in params {
        let name = p.split_once('=').map_or(p, |(n, _)| n);
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'+%".contains(&b))
        {
            return None;
        }
    }
    let port = if let Some(v6) = hostport.strip_prefix('[') {
        let (addr, after) = v6.split_once(']')?;
        // A link-local address may carry its zone (`%eth0`, `%25eth0`).
        let addr = addr.split('%').next().unwrap_or(addr);
        addr.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        }
    } else {
        let (host, port) = match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        // Underscores are not in RFC 1123 host names, but DNS and real devices use them.
        let label = |l: &str| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !host.trim_end_matches('.').split('.').all(label) {
            return None;
        }
        port
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse::<u16>().ok()?;
    }
    Some(uri)
}

/// rsip's URI tokenizer stops at `;` in a user part (legal per RFC 3261, e.g.
/// `sip:user;par=x@host`): hand it those characters %-escaped.
fn escape_ruri_user(start: &str) -> Cow<'_, str> {
    let mut parts = start.splitn(3, ' ');
    let (Some(m), Some(uri), Some(v)) = (parts.next(), parts.next(), parts.next()) else {
        return Cow::Borrowed(start);
    };
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Cow::Borrowed(start);
    };
    let Some((user, host)) = rest.rsplit_once('@') else {
        return Cow::Borrowed(start);
    };
    if !user.contains([';', '=', ',']) {
        return Cow::Borrowed(start);
    }
    let user = user
        .replace(';', "%3B")
        .replace('=', "%3D")
        .replace(',', "%2C");
    Cow::Owned(format!("{m} {scheme}:{user}@{host} {v}"))
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The characters of a header value outside quoted strings, with their byte offsets.
/// `\\` escapes inside quotes are skipped; `quoted` tells afterwards whether a quote was
/// left open.
struct Unquoted<'a> {
    chars: std::str::CharIndices<'a>,
    quoted: bool,
}

impl<'a> Unquoted<'a> {
    fn new(v: &'a str) -> Self {
        Unquoted {
            chars: v.char_indices(),
            quoted: false,
        }
    }
}

impl Iterator for Unquoted<'_> {
    type Item = (usize, char);
    fn next(&mut self) -> Option<(usize, char)> {
        loop {
            let (i, c) = self.chars.next()?;
            match (self.quoted, c) {
                (true, '\\') => {
                    self.chars.next();
                }
                (true, '"') => self.quoted = false,
                (true, _) => {}
                (false, '"') => self.quoted = true,
                (false, _) => return Some((i, c)),
            }
        }
    }
}

/// Byte offsets of the `<` and `>` around a name-addr's URI, outside quoted strings (a
/// display name or a parameter such as RFC 5626's `+sip.instance="<urn:...>"` may hold
/// angle brackets of its own).
fn angle_span(v: &str) -> Option<(usize, usize)> {
    let mut open = None;
    for (i, c) in Unquoted::new(v) {
        match (c, open) {
            ('<', None) => open = Some(i),
            ('>', Some(a)) => return Some((a, i)),
            _ => {}
        }
    }
    None
}

/// The `;`-separated parts of a parameter list, ignoring `;` inside quoted strings.
fn split_params(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in Unquoted::new(v) {
        if c == ';' {
            out.push(&v[start..i]);
            start = i + 1;
        }
    }
    out.push(&v[start..]);
    out
}

/// Splits a comma-separated header value, ignoring commas inside quotes and `<>`.
pub fn split_list(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in Unquoted::new(v) {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                out.push(v[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(v[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// Checks one Via header value: `SIP / 2.0 / TRANSPORT host[:port] *(; param)`, comma lists.
fn check_via(v: &str) -> Result<(), ParseError> {
    if v.trim().is_empty() || v.trim_end().ends_with(',') || v.contains(",,") {
        return Err(bad("malformed Via"));
    }
    for part in split_list(v) {
        let mut params = part.split(';');
        let sent = params.next().unwrap_or("");
        // Protocol: three tokens around two slashes, LWS allowed around them.
        let mut it = sent.splitn(3, '/');
        let (Some(name), Some(version), Some(rest)) = (it.next(), it.next(), it.next()) else {
            return Err(bad("malformed Via"));
        };
        if !name.trim().eq_ignore_ascii_case("SIP") {
            return Err(bad("malformed Via"));
        }
        if version.trim() != "2.0" {
            return Err(ParseError {
                status: 505,
                reason: "Version Not Supported".into(),
            });
        }
        let mut words = rest.split_whitespace();
        let (Some(transport), Some(host)) = (words.next(), words.next()) else {
            return Err(bad("malformed Via"));
        };
        if !transport.bytes().all(is_token_char) || words.next().is_some() || host.is_empty() {
            return Err(bad("malformed Via"));
        }
        for p in params {
            let p = p.trim();
            if p.is_empty() || p.starts_with('=') {
                return Err(bad("malformed Via parameter"));
            }
        }
    }
    Ok(())
}

/// Checks the shape of a name-addr / addr-spec (From, To, Contact).
fn check_name_addr(field: &str, v: &str) -> Result<(), ParseError> {
    let (mut lt, mut gt) = (0, 0);
    let mut scan = Unquoted::new(v);
    for (_, c) in scan.by_ref() {
        match c {
            '<' => lt += 1,
            '>' => gt += 1,
            _ => {}
        }
    }
    let quoted = scan.quoted;
    if quoted {
        return Err(bad(format!("unbalanced quotes in {field}")));
    }
    if lt != gt || lt > 1 {
        return Err(bad(format!("malformed {field}")));
    }
    let malformed = || bad(format!("malformed {field}"));
    let params = if lt == 1 {
        let Some((a, b)) = angle_span(v) else {
            return Err(malformed());
        };
        let inner = &v[a + 1..b];
        if inner.trim() != inner || inner.contains(char::is_whitespace) {
            return Err(bad(format!("whitespace inside the {field} URI")));
        }
        // An unquoted display name is tokens separated by whitespace.
        let display = v[..a].trim();
        if !display.starts_with('"')
            && !display
                .bytes()
                .all(|b| is_token_char(b) || b == b' ' || b == b'\t')
        {
            return Err(bad(format!("display name of {field} must be quoted")));
        }
        &v[b + 1..]
    } else {
        if v.contains('"') {
            return Err(bad(format!("display name without <> in {field}")));
        }
        let uri = v.split(';').next().unwrap_or("");
        // Without <>, the URI cannot carry its own parameters, headers or commas.
        if uri.contains(['?', ',']) || uri.trim().contains(char::is_whitespace) {
            return Err(malformed());
        }
        &v[uri.len()..]
    };
    let uri = uri_part(v);
    if !uri.contains(':') {
        return Err(bad(format!("{field} has no URI")));
    }
    if !params.trim().is_empty() {
        if !params.trim_start().starts_with(';') {
            return Err(malformed());
        }
        if split_params(&params.trim_start()[1..])
            .iter()
            .any(|p| p.trim().is_empty() || p.trim().starts_with('='))
        {
            return Err(bad(format!("empty parameter in {field}")));
        }
    }
    Ok(())
}

/// The URI inside a name-addr: between `<` and `>` if present, else up to the first `;`.
pub fn uri_part(v: &str) -> &str {
    if let Some((a, b)) = angle_span(v) {
        return v[a + 1..b].trim();
    }
    v.split(';').next().unwrap_or("").trim()
}

/// The value of `;name=value` among the parameters after the URI of a name-addr.
pub fn header_param<'a>(v: &'a str, name: &str) -> Option<&'a str> {
    let params = match angle_span(v) {
        Some((_, i)) => &v[i + 1..],
        None => v.find(';').map(|i| &v[i..]).unwrap_or(""),
    };
    split_params(params).into_iter().skip(1).find_map(|p| {
        let (k, val) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| val.trim())
    })
}

/// User part of a `sip:` URI string.
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':')?.1;
    let (user, _) = rest.split_once('@')?;
    Some(
        user.split(';')
            .next()
            .unwrap_or(user)
            .split(':')
            .next()
            .unwrap_or(user),
    )
}

/// Canonical header name and its value.
pub fn name_value(h: &Header) -> (Cow<'_, str>, &str) {
    macro_rules! arms {
        ($($v:ident => $n:literal),* $(,)?) => {
            match h {
                $(Header::$v(x) => (Cow::Borrowed($n), x.value()),)*
                Header::Other(k, v) => (Cow::Borrowed(k.as_str()), v.as_str()),
            }
        };
    }
    arms!(
        Accept => "Accept", AcceptEncoding => "Accept-Encoding", AcceptLanguage => "Accept-Language",
        AlertInfo => "Alert-Info", Allow => "Allow", AuthenticationInfo => "Authentication-Info",
        Authorization => "Authorization", CSeq => "CSeq", CallId => "Call-ID", CallInfo => "Call-Info",
        Contact => "Contact", ContentDisposition => "Content-Disposition",
        ContentEncoding => "Content-Encoding", ContentLanguage => "Content-Language",
        ContentLength => "Content-Length", ContentType => "Content-Type", Date => "Date",
        ErrorInfo => "Error-Info", Event => "Event", Expires => "Expires", From => "From",
        InReplyTo => "In-Reply-To", MaxForwards => "Max-Forwards", MimeVersion => "MIME-Version",
        MinExpires => "Min-Expires", Organization => "Organization", Priority => "Priority",
        ProxyAuthenticate => "Proxy-Authenticate", ProxyAuthorization => "Proxy-Authorization",
        ProxyRequire => "Proxy-Require", RecordRoute => "Record-Route", ReplyTo => "Reply-To",
        Require => "Require", RetryAfter => "Retry-After", Route => "Route", Server => "Server",
        Subject => "Subject", SubscriptionState => "Subscription-State", Supported => "Supported",
        Timestamp => "Timestamp", To => "To", Unsupported => "Unsupported",
        UserAgent => "User-Agent", Via => "Via", Warning => "Warning",
        WwwAuthenticate => "WWW-Authenticate",
    )
}

/// First value of the named header.
pub fn get<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .map(name_value)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// All values of the named header, comma lists split, in order.
pub fn get_all<'a>(headers: &'a Headers, name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .map(name_value)
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| split_list(v))
        .collect()
}

/// Makes a header from a name and a value, typed where rsip knows the name.
pub fn header(name: &str, value: impl Into<String>) -> Header {
    use rsip::headers::*;
    let v = value.into();
    match name {
        "Via" => Header::Via(Via::new(v)),
        "From" => Header::From(From::new(v)),
        "To" => Header::To(To::new(v)),
        "Call-ID" => Header::CallId(CallId::new(v)),
        "CSeq" => Header::CSeq(CSeq::new(v)),
        "Contact" => Header::Contact(Contact::new(v)),
        "Max-Forwards" => Header::MaxForwards(MaxForwards::new(v)),
        "Content-Type" => Header::ContentType(ContentType::new(v)),
        "Content-Length" => Header::ContentLength(ContentLength::new(v)),
        "Expires" => Header::Expires(Expires::new(v)),
        "Min-Expires" => Header::MinExpires(MinExpires::new(v)),
        "WWW-Authenticate" => Header::WwwAuthenticate(WwwAuthenticate::new(v)),
        "Proxy-Authenticate" => Header::ProxyAuthenticate(ProxyAuthenticate::new(v)),
        "Allow" => Header::Allow(Allow::new(v)),
        "Supported" => Header::Supported(Supported::new(v)),
        "User-Agent" => Header::UserAgent(UserAgent::new(v)),
        "Server" => Header::Server(Server::new(v)),
        "Route" => Header::Route(Route::new(v)),
        "Record-Route" => Header::RecordRoute(RecordRoute::new(v)),
        "Accept" => Header::Accept(Accept::new(v)),
        _ => Header::Other(name.into(), v),
    }
}

/// The parts of a request or response the stack keys on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub call_id: String,
    pub from_tag: String,
    pub to_tag: String,
    pub cseq: u32,
    pub cseq_method: String,
    /// Branch of the top Via.
    pub branch: String,
}

/// Reads [`Key`] from a validated message.
pub fn key(headers: &Headers) -> Key {
    let cseq = get(headers, "CSeq").unwrap_or("");
    let mut it = cseq.split_whitespace();
    let num = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let via = get_all(headers, "Via").first().copied().unwrap_or("");
    Key {
        call_id: get(headers, "Call-ID").unwrap_or("").to_string(),
        from_tag: get(headers, "From")
            .and_then(|v| header_param(v, "tag"))
            .unwrap_or("")
            .to_string(),
        to_tag: get(headers, "To")
            .and_then(|v| header_param(v, "tag"))
            .unwrap_or("")
            .to_string(),
        cseq: num,
        cseq_method: it.next().unwrap_or("").to_string(),
        branch: via_param(via, "branch").unwrap_or("").to_string(),
    }
}

/// A parameter of a Via value (`branch`, `rport`, `received`).
pub fn via_param<'a>(via: &'a str, name: &str) -> Option<&'a str> {
    via.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Answers a message we could not parse, if enough of it is readable to address a reply
/// (the one answer not written by [`crate::build`], which needs a parsed request).
/// Responses and ACKs are never answered.
pub fn reject_unparsed(bytes: &[u8], err: &ParseError) -> Option<Vec<u8>> {
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    let head = std::str::from_utf8(&bytes[..head_end]).ok()?;
    if head.starts_with("SIP/") || head.starts_with("ACK ") {
        return None;
    }
    // Be lenient here: junk lines are skipped, so a request broken in one header still
    // gets its 400 when the headers that address the reply are readable.
    let headers: Vec<RawHeader> = head
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.starts_with([' ', '\t']))
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            let n = n.trim();
            let n = COMPACT
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(n))
                .map(|(_, long)| *long)
                .unwrap_or(n);
            Some(RawHeader {
                name: n.to_string(),
                value: v.trim().to_string(),
            })
        })
        .collect();
    let mut out = format!("SIP/2.0 {} {}\r\n", err.status, sanitize(&err.reason));
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        let mut found = false;
        for h in find(&headers, name) {
            out.push_str(&format!("{}: {}\r\n", name, sanitize(&h.value)));
            found = true;
        }
        if !found {
            return None;
        }
    }
    if matches!(err.status, 405 | 501) {
        out.push_str(&format!("Allow: {}\r\n", crate::build::ALLOW));
    }
    out.push_str(&format!("Server: {}\r\n", crate::build::AGENT));
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

pub(crate) fn sanitize(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsip::message::HasHeaders;

    const REG: &str = "REGISTER sip:pbx SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa;rport\r\nf: <sip:101@pbx>;tag=x\r\nt: <sip:101@pbx>\r\ni: abc\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nm: <sip:101@10.0.0.2:5060>\r\nl: 0\r\n\r\n";

    #[test]
    fn compact_names_expand() {
        let m = parse(REG.as_bytes()).unwrap();
        let k = key(m.headers());
        assert_eq!(k.call_id, "abc");
        assert_eq!(k.from_tag, "x");
        assert_eq!(k.branch, "z9hG4bKa");
        assert_eq!(get(m.headers(), "Contact"), Some("<sip:101@10.0.0.2:5060>"));
    }

    #[test]
    fn an_unknown_request_uri_scheme_gets_416() {
        // RFC 4475 3.3.2 and 3.3.3; and a scheme rsip reads past the end of the line,
        // which made lines of the body headers (the sip_message fuzz target's find).
        for uri in [
            "nobodyKnowsThisScheme:totallyopaquecontent",
            "soap.beep://192.0.2.103:3002",
            "zsip:kumiko@example.org",
            "tel:+1-201-555-0123",
        ] {
            let m = REG.replace(
                "REGISTER sip:pbx SIP/2.0",
                &format!("REGISTER {uri} SIP/2.0"),
            );
            let m =
                format!("{m}x INVITE sip:101@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n");
            assert_eq!(parse(m.as_bytes()).unwrap_err().status, 416, "{uri}");
        }
    }

    #[test]
    fn a_remote_target_is_a_reachable_sip_uri() {
        for (v, want) in [
            (
                "<sip:101@10.0.0.2:5060;transport=tcp?Subject=x>",
                Some("sip:101@10.0.0.2:5060;transport=tcp"),
            ),
            (
                "\"A\" <SIP:101@Example.COM>;expires=60",
                Some("SIP:101@Example.COM"),
            ),
            (
                "<sips:101@[2001:db8::1]:5061;lr>",
                Some("sips:101@[2001:db8::1]:5061;lr"),
            ),
            (
                "<sip:101;phone-context=x@pbx.example.>",
                Some("sip:101;phone-context=x@pbx.example."),
            ),
            (
                "<sip:ln@10.0.0.9;pn-prid=ab:cd;pn-provider=fcm>",
                Some("sip:ln@10.0.0.9;pn-prid=ab:cd;pn-provider=fcm"),
            ),
            ("sip:101@10.0.0.2;expires=60", Some("sip:101@10.0.0.2")),
            ("<sip:101@10.0.0.2:70*1>", None),
            // Found by the exchange fuzz target: a 200's Contact became an ACK's
            // Request-URI that no parser takes.
            ("<sip:102@127.0.0.;:7002>", None),
            ("<sip:102@127.0.0.1;=x>", None),
            (
                "<sip:102@127.0.0.1;lr;transport=tls>",
                Some("sip:102@127.0.0.1;lr;transport=tls"),
            ),
            ("<sip:101@10.0.0.2:65536>", None),
            ("<sip:101@10.0.0.2:>", None),
            ("<si!:101@10.0.0.2>", None),
            ("<tel:+123>", None),
            ("<sip:101@[2001:db8::1>", None),
            ("<sip:101@bad host>", None),
            (
                "<sip:101@dev_1.example.com>",
                Some("sip:101@dev_1.example.com"),
            ),
            (
                "<sip:101@[fe80::1%eth0]:5060>",
                Some("sip:101@[fe80::1%eth0]:5060"),
            ),
            ("<sip:J\u{f6}rg@10.0.0.2>", Some("sip:J\u{f6}rg@10.0.0.2")),
        ] {
            assert_eq!(target_uri(v), want, "{v}");
        }
    }

    /// linphone 5 registers with RFC 5626's instance id, a quoted `<urn:...>`; the box
    /// answered 400 "malformed Contact" and lost the `expires` before it.
    #[test]
    fn linphone_contact_with_sip_instance() {
        let contact = "<sip:103@127.0.0.1:15090;transport=udp>;expires=600;+sip.instance=\"<urn:uuid:b5837b56-332b-0055-a35d-c51a564dc8ce>\";reg-id=1";
        let reg = REG.replace("m: <sip:101@10.0.0.2:5060>", &format!("Contact: {contact}"));
        let m = parse(reg.as_bytes()).unwrap();
        let c = get(m.headers(), "Contact").unwrap();
        assert_eq!(uri_part(c), "sip:103@127.0.0.1:15090;transport=udp");
        assert_eq!(header_param(c, "expires"), Some("600"));
        assert_eq!(header_param(c, "reg-id"), Some("1"));
        assert_eq!(
            header_param(c, "+sip.instance"),
            Some("\"<urn:uuid:b5837b56-332b-0055-a35d-c51a564dc8ce>\"")
        );
        // A display name with brackets in its quotes is fine too; two URIs are not.
        assert_eq!(uri_part("\"A <b>\" <sip:a@b>;tag=1"), "sip:a@b");
        let two = REG.replace("m: <sip:101@10.0.0.2:5060>", "Contact: <sip:a@b> <sip:c@d>");
        assert!(parse(two.as_bytes()).is_err());
    }

    #[test]
    fn missing_and_bad_headers_are_refused() {
        let no_callid = REG.replace("i: abc\r\n", "");
        assert!(parse(no_callid.as_bytes())
            .unwrap_err()
            .reason
            .contains("Call-ID"));
        let mismatch = REG.replace("CSeq: 1 REGISTER", "CSeq: 1 INVITE");
        assert!(parse(mismatch.as_bytes()).is_err());
        let long = REG.replace("l: 0", "l: 99");
        assert!(parse(long.as_bytes()).is_err());
        assert!(parse(b"garbage").is_err());
        assert!(parse(b"\r\n\r\n").is_err());
        assert!(parse(&[0xff; 300]).is_err());
    }

    #[test]
    fn reply_to_unparsed_request() {
        let bad_cseq = REG.replace("CSeq: 1 REGISTER", "CSeq: x REGISTER");
        let e = parse(bad_cseq.as_bytes()).unwrap_err();
        let reply = reject_unparsed(bad_cseq.as_bytes(), &e).unwrap();
        assert!(String::from_utf8(reply)
            .unwrap()
            .starts_with("SIP/2.0 400 CSeq is not a number"));
    }

    #[test]
    fn reply_despite_a_junk_header_line() {
        let junk = REG.replace(
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\nthis line has no colon\r\n",
        );
        let e = parse(junk.as_bytes()).unwrap_err();
        let reply = String::from_utf8(reject_unparsed(junk.as_bytes(), &e).unwrap()).unwrap();
        assert!(
            reply.starts_with("SIP/2.0 400 header line without a colon"),
            "{reply}"
        );
        assert!(reply.contains("Call-ID: abc"));
    }

    #[test]
    fn stream_framing() {
        let two = format!("\r\n\r\n{REG}{REG}");
        let n = stream_frame_len(two.as_bytes()).unwrap().unwrap();
        assert_eq!(n, 4 + REG.len());
        assert_eq!(stream_frame_len(&two.as_bytes()[..10]).unwrap(), None);
    }

    #[test]
    fn list_and_params() {
        assert_eq!(
            split_list("\"a,b\" <sip:x>, <sip:y;p=1,2>"),
            vec!["\"a,b\" <sip:x>", "<sip:y;p=1,2>"]
        );
        assert_eq!(
            header_param("\"A\" <sip:a@b;x=y>;tag=12;expires=30", "expires"),
            Some("30")
        );
        assert_eq!(uri_user("sip:101@pbx:5060;transport=udp"), Some("101"));
    }
}
