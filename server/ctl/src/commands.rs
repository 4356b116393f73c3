//! The everyday commands: ls, get, stat, create, set, delete, tree, and four-letter words.

use crate::conn::{error_name, Conn};
use crate::Cmd;
use anyhow::{bail, Context};
use std::io::{Read, Write};
use zooid_proto::*;

pub fn run(server: &str, cmd: Cmd) -> anyhow::Result<()> {
    if let Cmd::Word { word } = &cmd {
        return four_letter_word(server, word);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut c = Conn::connect_any(server, 30_000).await?;
        let result = execute(&mut c, cmd).await;
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

async fn execute(c: &mut Conn, cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Ls { path } => {
            for child in children(c, &path).await? {
                println!("{child}");
            }
        }
        Cmd::Get { path } => {
            let r = c
                .call(&Request::GetData {
                    path: path.clone(),
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
                    path: path.clone(),
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
        } => {
            let flags = match (ephemeral, sequential) {
                (false, false) => CreateMode::Persistent,
                (true, false) => CreateMode::Ephemeral,
                (false, true) => CreateMode::PersistentSequential,
                (true, true) => CreateMode::EphemeralSequential,
            };
            let r = c
                .call(&Request::Create(CreateRequest {
                    op: OpCode::Create,
                    path: path.clone(),
                    data: Some(data.into_bytes()),
                    acl: Acl::open(),
                    flags: flags.flags(),
                    ttl: -1,
                }))
                .await?;
            check(&r, &path)?;
            println!("Created {}", Reader::new(&r.body).string()?);
        }
        Cmd::Set {
            path,
            data,
            version,
        } => {
            let r = c
                .call(&Request::SetData {
                    path: path.clone(),
                    data: Some(data.into_bytes()),
                    version,
                })
                .await?;
            check(&r, &path)?;
        }
        Cmd::Delete { path, version } => {
            let r = c
                .call(&Request::Delete {
                    path: path.clone(),
                    version,
                })
                .await?;
            check(&r, &path)?;
        }
        Cmd::Tree { path } => {
            let mut stack = vec![path];
            while let Some(p) = stack.pop() {
                println!("{p}");
                let mut kids = children(c, &p).await?;
                kids.reverse();
                for k in kids {
                    stack.push(if p == "/" {
                        format!("/{k}")
                    } else {
                        format!("{p}/{k}")
                    });
                }
            }
        }
        Cmd::Members {
            change,
            from_version,
        } => members(c, change, from_version).await?,
        Cmd::Word { .. } | Cmd::Bench(_) => unreachable!("handled before connecting"),
    }
    Ok(())
}

/// Sends `word` to every server of the connection string (each answer under its address
/// when there are several).
fn four_letter_word(connect_string: &str, word: &str) -> anyhow::Result<()> {
    if word.len() != 4 {
        bail!("a four-letter word has four letters: {word:?}");
    }
    let servers = crate::conn::servers(connect_string)?;
    for server in &servers {
        let mut s = std::net::TcpStream::connect(server)
            .with_context(|| format!("connecting to {server}"))?;
        s.write_all(word.as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
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
    if r.err == ErrorCode::NewConfigNoQuorum as i32 {
        bail!("a new participant is not running or did not catch up: nothing changed");
    }
    check(&r, "reconfig")?;
    let data = Reader::new(&r.body).buffer()?.unwrap_or_default();
    println!("{}", String::from_utf8_lossy(&data));
    Ok(())
}
