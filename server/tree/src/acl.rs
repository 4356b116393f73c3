//! Who may do what to a node: ZooKeeper's permission check (`ZooKeeperServer.checkACL`) and
//! its schemes' `matches`, as pure functions of a node's ACL and a request's identities.
//!
//! A request's identities are its connection's: `ip:<address>` from the accept, plus what
//! its auth packets (or its TLS certificate) proved. `super` passes every check.

use std::net::IpAddr;
use zooid_proto::{Acl, ErrorCode, Id};

/// Whether identities `ids` hold permission `perm` (one of [`zooid_proto::perms`]) under
/// `acl`: an empty ACL lets anyone, `super` anything; otherwise an entry with the bit must
/// be `world:anyone` or match one of the ids of its scheme.
pub fn permits(acl: &[Acl], ids: &[Id], perm: i32) -> bool {
    if acl.is_empty() || ids.iter().any(|i| i.scheme == "super") {
        return true;
    }
    acl.iter().filter(|a| a.perms & perm != 0).any(|a| {
        (a.id.scheme == "world" && a.id.id == "anyone")
            || ids
                .iter()
                .any(|i| i.scheme == a.id.scheme && matches(&a.id.scheme, &i.id, &a.id.id))
    })
}

/// [`permits`], as the error ZooKeeper answers when it does not.
pub fn check(acl: &[Acl], ids: &[Id], perm: i32) -> Result<(), ErrorCode> {
    if permits(acl, ids, perm) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// A scheme's `matches(id, aclId)`: `ip` by address and prefix, the others by equality.
fn matches(scheme: &str, id: &str, acl_id: &str) -> bool {
    match scheme {
        "ip" => ip_matches(id, acl_id),
        _ => id == acl_id,
    }
}

/// An `ip` ACL id: an IPv4 or IPv6 address, with an optional `/bits` prefix length.
fn ip_acl(acl_id: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match acl_id.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (acl_id, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(b) => b.parse::<u32>().ok().filter(|b| *b <= max)?,
    };
    Some((addr, bits))
}

/// Whether an `ip` ACL id is well formed (ZooKeeper's `isValid`).
pub fn valid_ip(acl_id: &str) -> bool {
    ip_acl(acl_id).is_some()
}

/// Whether the client address `addr` falls within the `ip` ACL id `acl_id`. Addresses of
/// different families never match, as in ZooKeeper.
pub fn ip_matches(addr: &str, acl_id: &str) -> bool {
    let (Some((net, bits)), Ok(addr)) = (ip_acl(acl_id), addr.parse::<IpAddr>()) else {
        return false;
    };
    let (net, addr) = match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => (
            u128::from(u32::from(n)) << 96,
            u128::from(u32::from(a)) << 96,
        ),
        (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a)),
        _ => return false,
    };
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    net & mask == addr & mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use zooid_proto::perms::*;

    fn id(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    fn acl(perms: i32, scheme: &str, i: &str) -> Acl {
        Acl {
            perms,
            id: id(scheme, i),
        }
    }

    #[test]
    fn world_anyone_grants_its_bits_only() {
        let a = [acl(READ | WRITE, "world", "anyone")];
        let me = [id("ip", "10.0.0.1")];
        assert!(permits(&a, &me, READ));
        assert!(permits(&a, &me, WRITE));
        assert!(!permits(&a, &me, DELETE));
        assert_eq!(check(&a, &me, ADMIN), Err(ErrorCode::NoAuth));
        assert!(permits(&a, &[], READ), "no identity at all");
    }

    #[test]
    fn an_empty_acl_and_super_let_everything() {
        assert!(permits(&[], &[], ADMIN));
        let a = [acl(READ, "digest", "alice:x")];
        assert!(!permits(&a, &[id("digest", "bob:y")], READ));
        assert!(permits(&a, &[id("super", "")], ADMIN));
    }

    #[test]
    fn digest_and_other_schemes_match_by_equality_within_their_scheme() {
        let a = [acl(ALL, "digest", "alice:hash")];
        assert!(permits(&a, &[id("digest", "alice:hash")], DELETE));
        assert!(!permits(&a, &[id("digest", "alice:other")], DELETE));
        assert!(!permits(&a, &[id("x509", "alice:hash")], DELETE));
        let x = [acl(READ, "x509", "CN=client,O=zooid")];
        assert!(permits(&x, &[id("x509", "CN=client,O=zooid")], READ));
    }

    #[test]
    fn ip_matches_addresses_and_prefixes_of_one_family() {
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(!ip_matches("127.0.0.2", "127.0.0.1"));
        assert!(ip_matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!ip_matches("11.1.2.3", "10.0.0.0/8"));
        assert!(ip_matches("192.168.7.9", "192.168.4.0/22"));
        assert!(!ip_matches("192.168.8.1", "192.168.4.0/22"));
        assert!(ip_matches("8.8.8.8", "0.0.0.0/0"));
        assert!(ip_matches("::1", "::1"));
        assert!(ip_matches("2001:db8::42", "2001:db8::/32"));
        assert!(!ip_matches("2001:db9::42", "2001:db8::/32"));
        assert!(!ip_matches("127.0.0.1", "::1"), "families never match");
        assert!(!ip_matches("127.0.0.1", "127.0.0.1/33"));
        assert!(!ip_matches("127.0.0.1", "localhost"));
        let a = [acl(READ, "ip", "127.0.0.0/8")];
        assert!(permits(&a, &[id("ip", "127.0.0.1")], READ));
    }

    #[test]
    fn ip_acl_ids_are_validated() {
        for ok in [
            "1.2.3.4",
            "1.2.3.4/0",
            "1.2.3.4/32",
            "::1",
            "fe80::/10",
            "::/128",
        ] {
            assert!(valid_ip(ok), "{ok}");
        }
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4/33",
            "1.2.3.4/x",
            "::1/129",
            "host",
            "1.2.3.4/-1",
        ] {
            assert!(!valid_ip(bad), "{bad}");
        }
    }
}
