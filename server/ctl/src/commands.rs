//! The everyday commands: ls, get, stat, create, set, delete, deleteall, tree, watch, acl,
//! members, and four-letter words. Paths are the user's: under the connection string's
//! chroot, if it has one.

use crate::conn::{error_name, Conn, ConnectString};
use crate::Cmd;
use anyhow::{bail, Context};
use std::io::Write;
use zooid_proto::*;

pub fn run(server: &str, auth: Option<&str>, cmd: Cmd) -> anyhow::Result<()> {
    let cs = ConnectString::parse(server)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        if let Cmd::Word { word } = &cmd {
            return four_letter_word(&cs, word).await;
        }
        let mut c = Conn::connect_any(&cs.servers, 30_000).await?;
        if let Some(user_password) = auth {
            c.authenticate(user_password).await?;
        }
        let result = execute(&mut c, &cs, cmd).await;
        let _ = c.call(&Request::CloseSession).await;
        result
    })
}

fn check(reply: &crate::conn::Reply, what: &str) -> anyhow::Result<()> {
    if reply.err != 0 {
        bail!("{what}: {}", error_name(reply.err));
    }
    Ok(())
}

fn print_stat(s: &Stat) {
    println!("czxid = 0x{:x}", s.czxid);
    println!("ctime = {}", s.ctime);
    println!("mzxid = 0x{:x}", s.mzxid);
    println!("mtime = {}", s.mtime);
    println!("pzxid = 0x{:x}", s.pzxid);
    println!("cversion = {}", s.cversion);
    println!("dataVersion = {}", s.version);
    println!("aclVersion = {}", s.aversion);
    println!("ephemeralOwner = 0x{:x}", s.ephemeral_owner);
    println!("dataLength = {}", s.data_length);
    println!("numChildren = {}", s.num_children);
}

async fn children(c: &mut Conn, path: &str) -> anyhow::Result<Vec<String>> {
    let r = c
        .call(&Request::GetChildren {
            path: path.into(),
            watch: false,
        })
        .await?;
    check(&r, path)?;
    let mut v = Reader::new(&r.body).vector(Reader::string)?;
    v.sort();
    Ok(v)
}

async fn execute(c: &mut Conn, cs: &ConnectString, cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Ls { path } => {
            for child in children(c, &cs.full(&path)?).await? {
                println!("{child}");
            }
        }
        Cmd::Get { path } => {
            let r = c
                .call(&Request::GetData {
                    path: cs.full(&path)?,
                    watch: false,
                })
                .await?;
            check(&r, &path)?;
            match Reader::new(&r.body).buffer()? {
                Some(d) => {
                    std::io::stdout().write_all(&d)?;
                    println!();
                }
                None => println!("null"),
            }
        }
        Cmd::Stat { path } => {
            let r = c
                .call(&Request::Exists {
                    path: cs.full(&path)?,
                    watch: false,
                })
                .await?;
            check(&r, &path)?;
            print_stat(&Stat::decode(&mut Reader::new(&r.body))?);
        }
        Cmd::Create {
            path,
            data,
            ephemeral,
            sequential,
            container,
            ttl,
        } => {
            let mode = match (ephemeral, sequential, container, ttl.is_some()) {
                (_, _, true, _) if sequential => bail!("a container cannot be sequential"),
                (_, _, true, _) => CreateMode::Container,
                (_, false, _, true) => CreateMode::PersistentWithTtl,
                (_, true, _, true) => CreateMode::PersistentSequentialWithTtl,
                (false, false, ..) => CreateMode::Persistent,
                (true, false, ..) => CreateMode::Ephemeral,
                (false, true, ..) => CreateMode::PersistentSequential,
                (true, true, ..) => CreateMode::EphemeralSequential,
            };
            let (op, ttl) = match (mode, ttl) {
                (CreateMode::Container, _) => (OpCode::CreateContainer, -1),
                (_, Some(t)) if t <= 0 => bail!("--ttl must be a positive number of ms"),
                (_, Some(t)) => (OpCode::CreateTtl, t),
                _ => (OpCode::Create, -1),
            };
            let r = c
                .call(&Request::Create(CreateRequest {
                    op,
                    path: cs.full(&path)?,
                    data: Some(data.into_bytes()),
                    acl: Acl::open(),
                    flags: mode.flags(),
                    ttl,
                }))
                .await?;
            check(&r, &path)?;
            let created = Reader::new(&r.body).string()?;
            println!("Created {}", cs.strip(&created));
        }
        Cmd::Set {
            path,
            data,
            version,
        } => {
            let r = c
                .call(&Request::SetData {
                    path: cs.full(&path)?,
                    data: Some(data.into_bytes()),
                    version,
                })
                .await?;
            check(&r, &path)?;
        }
        Cmd::Delete { path, version } => {
            let r = c
                .call(&Request::Delete {
                    path: cs.full(&path)?,
                    version,
                })
                .await?;
            check(&r, &path)?;
        }
        Cmd::Deleteall { path } => {
            if path == "/" || path == "/zookeeper" || path.starts_with("/zookeeper/") {
                bail!("{path}: ZooKeeper's own nodes cannot be deleted");
            }
            let nodes = subtree(c, &cs.full(&path)?).await?;
            // Deepest first: a node goes once its children are gone.
            for node in nodes.iter().rev() {
                let r = c
                    .call(&Request::Delete {
                        path: node.clone(),
                        version: -1,
                    })
                    .await?;
                // Gone meanwhile (an ephemeral, another client): what was asked holds.
                if r.err != ErrorCode::NoNode as i32 {
                    check(&r, cs.strip(node))?;
                }
            }
        }
        Cmd::Tree { path } => {
            for node in subtree(c, &cs.full(&path)?).await? {
                println!("{}", cs.strip(&node));
            }
        }
        Cmd::Watch {
            path,
            recursive,
            count,
        } => watch(c, cs, &path, recursive, count).await?,
        Cmd::Acl { cmd } => acl(c, cs, cmd).await?,
        Cmd::Members {
            change,
            from_version,
        } => members(c, change, from_version).await?,
        Cmd::Word { .. }
        | Cmd::Bench(_)
        | Cmd::ScaleRegister(_)
        | Cmd::Register(_)
        | Cmd::Discover(_)
        | Cmd::ScaleWatch(_)
        | Cmd::WriteGaps(_)
        | Cmd::Status
        | Cmd::Digest { .. }
        | Cmd::Snapshot { .. } => {
            unreachable!("handled before connecting")
        }
    }
    Ok(())
}

/// `path` and every node below it, parents before children, siblings in name order.
async fn subtree(c: &mut Conn, path: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![path.to_string()];
    while let Some(p) = stack.pop() {
        let mut kids = children(c, &p).await?;
        kids.reverse();
        for k in kids {
            stack.push(if p == "/" {
                format!("/{k}")
            } else {
                format!("{p}/{k}")
            });
        }
        out.push(p);
    }
    Ok(out)
}

/// `zooctl watch`: a persistent (or persistent recursive) watch, its events printed as
/// `<EventType> <path>` as they come.
async fn watch(
    c: &mut Conn,
    cs: &ConnectString,
    path: &str,
    recursive: bool,
    count: Option<u64>,
) -> anyhow::Result<()> {
    let mode = if recursive {
        AddWatchMode::PersistentRecursive
    } else {
        AddWatchMode::Persistent
    };
    let r = c
        .call(&Request::AddWatch {
            path: cs.full(path)?,
            mode: mode as i32,
        })
        .await?;
    check(&r, path)?;
    println!("Watching {path}");
    let mut seen = 0;
    // Pings keep the session alive while nothing happens.
    let mut ping = tokio::time::interval(std::time::Duration::from_secs(5));
    ping.tick().await;
    while count.is_none_or(|n| seen < n) {
        tokio::select! {
            frame = c.read_frame() => {
                let reply = Conn::parse_reply(frame?)?;
                if reply.xid != XID_NOTIFICATION {
                    continue;
                }
                let e = WatcherEvent::decode(&mut Reader::new(&reply.body))?;
                let kind = match e.event_type {
                    1 => "NodeCreated",
                    2 => "NodeDeleted",
                    3 => "NodeDataChanged",
                    4 => "NodeChildrenChanged",
                    _ => "Event",
                };
                println!("{kind} {}", cs.strip(&e.path));
                seen += 1;
            }
            _ = ping.tick() => {
                c.send_with_xid(XID_PING, &Request::Ping).await?;
            }
        }
    }
    Ok(())
}

/// `zooctl acl get|set`.
async fn acl(c: &mut Conn, cs: &ConnectString, cmd: crate::AclCmd) -> anyhow::Result<()> {
    match cmd {
        crate::AclCmd::Get { path } => {
            let r = c
                .call(&Request::GetAcl {
                    path: cs.full(&path)?,
                })
                .await?;
            check(&r, &path)?;
            for a in Acl::decode_list(&mut Reader::new(&r.body))? {
                println!("{}", crate::acl::format(&a));
            }
        }
        crate::AclCmd::Set { path, acl, version } => {
            let acl = acl
                .iter()
                .flat_map(|a| a.split(','))
                .map(crate::acl::parse)
                .collect::<anyhow::Result<Vec<_>>>()?;
            let r = c
                .call(&Request::SetAcl {
                    path: cs.full(&path)?,
                    acl,
                    version,
                })
                .await?;
            check(&r, &path)?;
        }
    }
    Ok(())
}

/// Sends `word` to every server of the connection string (each answer under its address
/// when there are several).
async fn four_letter_word(cs: &ConnectString, word: &str) -> anyhow::Result<()> {
    if word.len() != 4 {
        bail!("a four-letter word has four letters: {word:?}");
    }
    let servers = &cs.servers;
    for server in servers {
        let out = crate::conn::four_letter(server, word).await?;
        if servers.len() > 1 {
            println!("== {server}");
        }
        print!("{out}");
        if !out.ends_with('\n') {
            println!();
        }
    }
    Ok(())
}

/// `zooctl members`: prints `/zookeeper/config`, or changes it with a reconfig and prints
/// what it became.
async fn members(
    c: &mut Conn,
    change: Option<crate::MembersCmd>,
    from_version: Option<String>,
) -> anyhow::Result<()> {
    use crate::MembersCmd;
    let cur_config_id = match from_version {
        None => -1,
        Some(v) => i64::from_str_radix(v.trim_start_matches("0x"), 16)
            .with_context(|| format!("--from-version {v:?} is not a hex version"))?,
    };
    let servers = |list: Vec<String>| -> anyhow::Result<String> {
        for s in &list {
            if !s.starts_with("server.") || !s.contains('=') {
                bail!(
                    "{s:?} is not server.N=host:quorumPort:electionPort[:role];[host:]clientPort"
                );
            }
        }
        Ok(list.join(","))
    };
    let (joining, leaving, new_members) = match change.unwrap_or(MembersCmd::Show) {
        MembersCmd::Show => {
            let r = c
                .call(&Request::GetData {
                    path: "/zookeeper/config".into(),
                    watch: false,
                })
                .await?;
            check(&r, "/zookeeper/config")?;
            let data = Reader::new(&r.body).buffer()?.unwrap_or_default();
            if data.is_empty() {
                bail!("the server is not part of an ensemble (its /zookeeper/config is empty)");
            }
            println!("{}", String::from_utf8_lossy(&data));
            return Ok(());
        }
        MembersCmd::Add { servers: s } => (Some(servers(s)?), None, None),
        MembersCmd::Remove { ids } => (
            None,
            Some(ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")),
            None,
        ),
        MembersCmd::Set { servers: s } => (None, None, Some(servers(s)?)),
    };
    let r = c
        .call(&Request::Reconfig {
            joining,
            leaving,
            new_members,
            cur_config_id,
        })
        .await?;
    if r.err == ErrorCode::ReconfigDisabled as i32 {
        bail!("reconfig is disabled on this ensemble (set reconfigEnabled=true in zoo.cfg)");
    }
    if r.err == ErrorCode::BadVersion as i32 {
        bail!("the membership is no longer at version {cur_config_id:x}: read it again");
    }
    if r.err == ErrorCode::NoAuth as i32 {
        bail!(
            "only the super user may change the membership: give --auth user:password \
             (DigestAuthenticationProvider.superDigest names the user)"
        );
    }
    if r.err == ErrorCode::NewConfigNoQuorum as i32 {
        bail!("a new participant is not running or did not catch up: nothing changed");
    }
    check(&r, "reconfig")?;
    let data = Reader::new(&r.body).buffer()?.unwrap_or_default();
    println!("{}", String::from_utf8_lossy(&data));
    Ok(())
}
