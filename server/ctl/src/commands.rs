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
        let mut c = Conn::connect(server, 30_000).await?;
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
        Cmd::Word { .. } | Cmd::Bench(_) => unreachable!("handled before connecting"),
    }
    Ok(())
}

fn four_letter_word(server: &str, word: &str) -> anyhow::Result<()> {
    if word.len() != 4 {
        bail!("a four-letter word has four letters: {word:?}");
    }
    let mut s =
        std::net::TcpStream::connect(server).with_context(|| format!("connecting to {server}"))?;
    s.write_all(word.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    print!("{out}");
    if !out.ends_with('\n') {
        println!();
    }
    Ok(())
}
