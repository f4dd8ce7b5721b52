//! The egress policy: which URLs the `agent` preset's `fetch` may reach.
//!
//! A URL passes when its scheme, host and port are allowed and every address it connects to
//! passes [`AddressPolicy::check`]. Hosts match [`HostPattern`]s: exact names (or IP literals)
//! and `*.example.com` wildcards (which match any name below `example.com`, not `example.com`
//! itself). Addresses in the special ranges of [`special_range`] (loopback, private, link-local,
//! CGNAT, ULA, multicast, …, and their IPv4-mapped IPv6 forms) are denied even when the host
//! is allowed by name, unless an `allow_addresses` range covers them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One entry of a host allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Any host (`*`). Address checks still apply.
    Any,
    /// Exactly this name or IP literal (normalised: lower case, no trailing dot, IPv6 without
    /// brackets).
    Exact(String),
    /// Any name strictly below this domain (`*.example.com` is stored as `example.com`).
    Below(String),
}

/// Normalises a host name or IP literal for comparison.
pub fn normalize_host(host: &str) -> String {
    let h = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let unbracketed = h
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(&h);
    match unbracketed.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => h,
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl HostPattern {
    /// Parses `*`, `*.example.com`, `api.example.com`, `127.0.0.1` or `[::1]`.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let t = text.trim();
        if t == "*" {
            return Ok(HostPattern::Any);
        }
        if let Some(rest) = t.strip_prefix("*.") {
            let domain = normalize_host(rest);
            if !valid_name(&domain) || domain.parse::<IpAddr>().is_ok() {
                return Err(format!(
                    "{text:?} is not a valid wildcard (use *.example.com)"
                ));
            }
            return Ok(HostPattern::Below(domain));
        }
        let host = normalize_host(t);
        if host.parse::<IpAddr>().is_ok() || valid_name(&host) {
            Ok(HostPattern::Exact(host))
        } else {
            Err(format!(
                "{text:?} is not a host name, an IP address, *.domain or *"
            ))
        }
    }

    /// Whether `host` (normalised) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h == host,
            HostPattern::Below(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        }
    }

    /// Whether every host `other` matches is matched by `self` (used to check that a request
    /// only narrows the configured allowlist).
    pub fn covers(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Any, _) => true,
            (_, HostPattern::Any) => false,
            (_, HostPattern::Exact(h)) => self.matches(h),
            (HostPattern::Exact(_), HostPattern::Below(_)) => false,
            (HostPattern::Below(d), HostPattern::Below(o)) => {
                d == o || HostPattern::Below(d.clone()).matches(o)
            }
        }
    }
}

/// A list of host patterns.
#[derive(Debug, Clone, Default)]
pub struct HostSet(pub Vec<HostPattern>);

impl HostSet {
    /// Whether any pattern matches `host` (normalised).
    pub fn matches(&self, host: &str) -> bool {
        self.0.iter().any(|p| p.matches(host))
    }

    /// The subset a request asks for. Every entry must be covered by this set; the first that
    /// is not is returned as the error.
    pub fn narrow(&self, entries: &[String]) -> Result<HostSet, String> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let pattern = HostPattern::parse(entry)?;
            if !self.0.iter().any(|p| p.covers(&pattern)) {
                return Err(format!(
                    "{entry:?} is not covered by the service's fetch allowlist"
                ));
            }
            out.push(pattern);
        }
        Ok(HostSet(out))
    }
}

/// An IP range in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is a single host),
/// parsed and matched by `ipnet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(ipnet::IpNet);

impl Cidr {
    /// Parses `ADDRESS/PREFIX` or `ADDRESS`.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("{text:?} is not an address range like 127.0.0.1/32 or ::1/128");
        let text = text.trim();
        let net = if text.contains('/') {
            text.parse::<ipnet::IpNet>().map_err(|_| bad())?
        } else {
            ipnet::IpNet::from(text.parse::<IpAddr>().map_err(|_| bad())?)
        };
        Ok(Cidr(net))
    }

    /// Whether `ip` is in the range. An IPv4-mapped IPv6 address is compared as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as IPv4; anything else unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

fn v4_in(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    ipnet::Ipv4Net::new(Ipv4Addr::from(net), prefix).is_ok_and(|n| n.contains(&ip))
}

fn v6_in(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    ipnet::Ipv6Net::new(net, prefix).is_ok_and(|n| n.contains(&ip))
}

/// The special-purpose range `ip` falls in, or `None` for an ordinary public address.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: [([u8; 4], u8, &str); 16] = [
        (
            [0, 0, 0, 0],
            8,
            "an unspecified or \"this network\" address",
        ),
        ([127, 0, 0, 0], 8, "a loopback address"),
        ([10, 0, 0, 0], 8, "a private address (RFC 1918)"),
        ([172, 16, 0, 0], 12, "a private address (RFC 1918)"),
        ([192, 168, 0, 0], 16, "a private address (RFC 1918)"),
        ([169, 254, 0, 0], 16, "a link-local address"),
        ([100, 64, 0, 0], 10, "in the shared address space (CGNAT)"),
        ([192, 0, 0, 0], 24, "an IETF protocol assignment"),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        ([198, 18, 0, 0], 15, "a benchmarking address"),
        ([192, 88, 99, 0], 24, "a 6to4 relay anycast address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([255, 255, 255, 255], 32, "the broadcast address"),
        ([240, 0, 0, 0], 4, "a reserved address"),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| v4_in(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return special_v4(v4);
    }
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // IPv4-compatible (deprecated, ::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed
    // an IPv4 address that the network may route to: judge them by it.
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if seg[..6] == [0; 6] {
        return special_v4(embedded(seg[6], seg[7])).or(Some("an IPv4-compatible address"));
    }
    if v6_in(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        return special_v4(embedded(seg[6], seg[7]));
    }
    // IPv4-translated (::ffff:0:0/96, RFC 2765): a translator maps it to the IPv4 address.
    if seg[..4] == [0; 4] && seg[4] == 0xffff && seg[5] == 0 {
        return special_v4(embedded(seg[6], seg[7])).or(Some("an IPv4-translated address"));
    }
    if v6_in(ip, Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48) {
        return Some("a local-use NAT64 address");
    }
    if seg[0] == 0x2002 {
        if let Some(why) = special_v4(embedded(seg[1], seg[2])) {
            return Some(why);
        }
    }
    const RANGES: [(Ipv6Addr, u8, &str); 7] = [
        (
            Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
            7,
            "a unique local address (ULA)",
        ),
        (
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
            10,
            "a link-local address",
        ),
        (
            Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
            10,
            "a site-local address",
        ),
        (
            Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
            8,
            "a multicast address",
        ),
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
            32,
            "a documentation address",
        ),
        (
            Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
            64,
            "a discard-only address",
        ),
        (
            Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
            23,
            "an IETF protocol assignment",
        ),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| v6_in(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

/// Which addresses a fetch may connect to: every public address, and special ones only when
/// an allowed range covers them.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    /// Ranges allowed despite being special (`fetch.allow_addresses`).
    pub allow: Vec<Cidr>,
}

impl AddressPolicy {
    /// `Ok` when `ip` may be connected to, otherwise why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        if self.allow.iter().any(|c| c.contains(ip)) {
            return Ok(());
        }
        match special_range(ip) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn special_ranges_are_denied_by_default() {
        let policy = AddressPolicy::default();
        for denied in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:192.168.0.1",
            "::ffff:100.64.0.1",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "2002:7f00:1::1",
            "64:ff9b:1::1",
            "::ffff:0:7f00:1",
            "::ffff:0:a9fe:a9fe",
            "::ffff:0:808:808",
        ] {
            assert!(
                policy.check(ip(denied)).is_err(),
                "{denied} should be denied"
            );
        }
    }

    #[test]
    fn public_addresses_pass() {
        let policy = AddressPolicy::default();
        for allowed in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "192.167.255.255",
            "11.0.0.1",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(policy.check(ip(allowed)), Ok(()), "{allowed} should pass");
        }
    }

    #[test]
    fn allowed_ranges_open_special_addresses_and_nothing_else() {
        let policy = AddressPolicy {
            allow: vec![Cidr::parse("127.0.0.1/32").unwrap()],
        };
        assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("::ffff:127.0.0.1")), Ok(()));
        assert!(policy.check(ip("127.0.0.2")).is_err());
        assert!(policy.check(ip("::1")).is_err());
        assert!(policy.check(ip("10.0.0.1")).is_err());
        let wide = AddressPolicy {
            allow: vec![
                Cidr::parse("10.0.0.0/8").unwrap(),
                Cidr::parse("fd00::/8").unwrap(),
            ],
        };
        assert_eq!(wide.check(ip("10.1.2.3")), Ok(()));
        assert_eq!(wide.check(ip("fd00::5")), Ok(()));
        assert!(wide.check(ip("fc00::5")).is_err());
        assert!(wide.check(ip("192.168.0.1")).is_err());
    }

    #[test]
    fn cidr_parsing() {
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("10.1.2.3/8")
            .unwrap()
            .contains(ip("10.200.0.1")));
        assert!(!Cidr::parse("10.0.0.0/8").unwrap().contains(ip("11.0.0.1")));
        assert!(Cidr::parse(" fd00::/8 ").unwrap().contains(ip("fdff::1")));
        assert!(Cidr::parse("127.0.0.0/8")
            .unwrap()
            .contains(ip("::ffff:127.0.0.5")));
        for bad in [
            "",
            "127.0.0.1/33",
            "::1/129",
            "localhost",
            "10.0.0.0/x",
            "1.2.3/8",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_patterns_match_exactly_or_below_the_wildcard() {
        let exact = HostPattern::parse("API.Example.com.").unwrap();
        assert!(exact.matches("api.example.com"));
        assert!(!exact.matches("example.com"));
        assert!(!exact.matches("x.api.example.com"));
        assert!(!exact.matches("api.example.com.evil.net"));
        let wild = HostPattern::parse("*.example.com").unwrap();
        assert!(wild.matches("api.example.com"));
        assert!(wild.matches("a.b.example.com"));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("badexample.com"));
        assert!(!wild.matches("example.com.evil.net"));
        assert!(!wild.matches(".example.com"));
        let v6 = HostPattern::parse("[::1]").unwrap();
        assert!(v6.matches(&normalize_host("[0:0::1]")));
        assert!(HostPattern::parse("127.0.0.1")
            .unwrap()
            .matches("127.0.0.1"));
        assert!(HostPattern::parse("*").unwrap().matches("anything.test"));
        for bad in [
            "",
            "*.",
            "*.*.example.com",
            "exa mple.com",
            "http://x",
            "*.10.0.0.1",
            "a..b",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn requests_only_narrow_the_allowlist() {
        let config = HostSet(vec![
            HostPattern::parse("*.example.com").unwrap(),
            HostPattern::parse("api.other.net").unwrap(),
        ]);
        let narrowed = config
            .narrow(&["a.example.com".into(), "*.b.example.com".into()])
            .unwrap();
        assert!(narrowed.matches("a.example.com"));
        assert!(narrowed.matches("x.b.example.com"));
        assert!(!narrowed.matches("c.example.com"));
        assert!(!narrowed.matches("api.other.net"));
        for widening in ["evil.com", "*.other.net", "example.com", "*", "other.net"] {
            assert!(config.narrow(&[widening.into()]).is_err(), "{widening}");
        }
        let any = HostSet(vec![HostPattern::Any]);
        assert!(any.narrow(&["*".into(), "x.y".into()]).is_ok());
        assert!(HostSet::default()
            .narrow(&["a.example.com".into()])
            .is_err());
    }
}
