//! Which addresses a callback may reach. A callback URL is chosen by a partner, so
//! without this a partner could make paycc call into its own network: the cloud
//! metadata service, the database, an admin port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address on the public internet: not loopback, private, link-local (which holds
/// the metadata service), shared, reserved, multicast or otherwise special.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 address stands for on the way out: IPv4-mapped
/// (`::ffff:a.b.c.d`) and IPv4-translated (`::ffff:0:a.b.c.d`) ones. The forms that tunnel
/// to an IPv4 address (compatible, 6to4, Teredo, NAT64) are refused whole instead.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let translated = s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0;
    ip.to_ipv4_mapped().or_else(|| {
        translated
            .then(|| Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
    })
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && c == 0) // protocol assignments
        || (a == 192 && b == 88 && c == 99) // 6to4 relays, which forward into IPv6
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240; // reserved
    !special
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let special = ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated, still routed inside sites)
        || (s[0] == 0x2001 && s[1] < 0x0200) // protocol assignments, Teredo among them
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[0] == 0x2002 // 6to4, which reaches the IPv4 address inside it
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 (well-known and local-use)
        || (s[0] == 0x0100 && s[1..4] == [0; 3]) // discard-only
        || s[..6] == [0; 6]; // IPv4-compatible (deprecated)
    !special
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
            "::ffff:0:10.0.0.1",
            "2002:7f00:1::1",
            "2002:0808:0808::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "fec0::1",
            "64:ff9b:1::a00:1",
            "100::1",
            "192.88.99.1",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "8.8.8.8",
            "203.0.114.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "::ffff:0:1.1.1.1",
            "2001:4860:4860::8888",
        ] {
            assert!(is_public(good.parse().unwrap()), "{good}");
        }
    }
}
