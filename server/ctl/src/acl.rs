//! ACLs as zkCli writes them: `scheme:id:perms`, perms a subset of `cdrwa`.

use anyhow::bail;
use zooid_proto::{perms, Acl, Id};

const LETTERS: [(char, i32); 5] = [
    ('c', perms::CREATE),
    ('d', perms::DELETE),
    ('r', perms::READ),
    ('w', perms::WRITE),
    ('a', perms::ADMIN),
];

/// Parses `scheme:id:perms`. The id may itself hold colons (`digest:user:hash`), so the
/// scheme ends at the first colon and the perms start after the last.
pub fn parse(s: &str) -> anyhow::Result<Acl> {
    let (Some((scheme, rest)), Some((_, letters))) = (s.split_once(':'), s.rsplit_once(':')) else {
        bail!("ACL {s:?} is not scheme:id:perms");
    };
    let id = rest.rsplit_once(':').map_or("", |(id, _)| id);
    if scheme.is_empty() || rest == letters {
        bail!("ACL {s:?} is not scheme:id:perms");
    }
    let mut p = 0;
    for ch in letters.chars() {
        match LETTERS.iter().find(|(l, _)| *l == ch) {
            Some((_, bit)) => p |= bit,
            None => bail!("ACL {s:?}: {ch:?} is not one of the permissions cdrwa"),
        }
    }
    Ok(Acl {
        perms: p,
        id: Id {
            scheme: scheme.into(),
            id: id.into(),
        },
    })
}

/// `scheme:id:perms`.
pub fn format(acl: &Acl) -> String {
    let letters: String = LETTERS
        .iter()
        .filter(|(_, bit)| acl.perms & bit != 0)
        .map(|(l, _)| *l)
        .collect();
    format!("{}:{}:{letters}", acl.id.scheme, acl.id.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acls_round_trip_as_zkcli_writes_them() {
        for s in [
            "world:anyone:cdrwa",
            "digest:bob:abc=:r",
            "ip:10.0.0.0/8:rw",
            "auth::cdrwa",
        ] {
            assert_eq!(format(&parse(s).unwrap()), s);
        }
        let a = parse("digest:bob:x:y:ra").unwrap();
        assert_eq!(
            (a.id.id.as_str(), a.perms),
            ("bob:x:y", perms::READ | perms::ADMIN)
        );
        for bad in ["world", "world:anyone", ":x:r", "world:anyone:q"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
