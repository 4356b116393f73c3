//! `zooctl snapshot save` and `zooctl snapshot restore`: backups through a server's admin API
//! (its `snapshot` and `restore` commands).

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// The admin token: from `token_file`, else from `ZOOCTL_ADMIN_TOKEN`.
fn token(token_file: Option<&Path>) -> anyhow::Result<String> {
    match token_file {
        Some(p) => Ok(std::fs::read_to_string(p)
            .with_context(|| format!("reading the token file {}", p.display()))?
            .trim()
            .to_string()),
        None => std::env::var("ZOOCTL_ADMIN_TOKEN")
            .context("the admin token: give --token-file or set ZOOCTL_ADMIN_TOKEN"),
    }
}

/// An answer's status and headers (names in lower case); the body is left in the reader.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` with the token (and `body`, streamed, if any) and reads the answer's
/// head. Building or restoring a large snapshot takes a while before the answer comes. The
/// request is HTTP/1.0, so that a body of unknown length (a ZooKeeper-format snapshot is
/// streamed as it is encoded) comes as it is, ending when the server closes, not chunked.
fn exchange(
    admin: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<(&mut dyn Read, u64)>,
) -> anyhow::Result<(Head, BufReader<TcpStream>)> {
    let mut s = TcpStream::connect(admin).with_context(|| format!("connecting to {admin}"))?;
    s.set_read_timeout(Some(Duration::from_secs(300)))?;
    let length = body.as_ref().map_or(0, |(_, len)| *len);
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {admin}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n"
    )?;
    if let Some((body, _)) = body {
        // A server that refuses early (a wrong token, too large) may close before the whole
        // body is sent: its answer says why, so read it rather than report the broken pipe.
        let _ = std::io::copy(body, &mut s);
    }
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line)
        .with_context(|| format!("reading the answer of {admin}"))?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{admin} did not answer HTTP: {status_line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok((Head { status, headers }, r))
}

/// The JSON body of an answer, and its `error` (or the body itself if it is not JSON).
fn json_body(r: &mut impl Read) -> (serde_json::Value, String) {
    let mut body = String::new();
    let _ = r.read_to_string(&mut body);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let why = v["error"].as_str().map(str::to_string).unwrap_or(body);
    (v, why)
}

/// The format `snapshot save` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Zooid,
    Zookeeper,
}

/// Downloads the snapshot to `file` (through a temporary file beside it, renamed once whole).
pub fn save(
    admin: &str,
    token_file: Option<&Path>,
    file: &Path,
    format: Format,
) -> anyhow::Result<()> {
    let token = token(token_file)?;
    let path = match format {
        Format::Zooid => "/commands/snapshot",
        Format::Zookeeper => "/commands/snapshot?format=zookeeper",
    };
    let (head, mut r) = exchange(admin, "GET", path, &token, None)?;
    if head.status != 200 {
        let (_, why) = json_body(&mut r);
        bail!("{admin} refused the snapshot (HTTP {}): {why}", head.status);
    }
    let length = head
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok());
    let zxid = head.header("last_zxid").unwrap_or_default().to_string();
    let tmp = file.with_extension("part");
    let mut out =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let copied = std::io::copy(&mut r, &mut out)
        .with_context(|| format!("receiving the snapshot from {admin}"))?;
    if length.is_some_and(|l| l != copied) {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "the snapshot from {admin} was cut short ({copied} of {} bytes)",
            length.unwrap_or(0)
        );
    }
    out.sync_all()?;
    std::fs::rename(&tmp, file).with_context(|| format!("writing {}", file.display()))?;
    println!(
        "Saved a snapshot up to zxid {zxid} ({copied} bytes) to {}",
        file.display()
    );
    Ok(())
}

/// Uploads `file` (a saved snapshot) to the server's `restore`, which replaces the whole
/// state of its ensemble by it.
pub fn restore(admin: &str, token_file: Option<&Path>, file: &Path) -> anyhow::Result<()> {
    let token = token(token_file)?;
    let mut f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let len = f.metadata()?.len();
    let (head, mut r) = exchange(
        admin,
        "POST",
        "/commands/restore",
        &token,
        Some((&mut f, len)),
    )?;
    let (v, why) = json_body(&mut r);
    if head.status != 200 {
        bail!("{admin} refused the restore (HTTP {}): {why}", head.status);
    }
    println!(
        "Restored {} up to zxid 0x{:x}: {} nodes, digest {}",
        file.display(),
        v["last_zxid"].as_i64().unwrap_or_default(),
        v["nodes"].as_u64().unwrap_or_default(),
        v["digest"]
    );
    Ok(())
}
