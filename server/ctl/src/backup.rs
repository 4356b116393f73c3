//! `zooctl snapshot save`: a backup through a server's admin API (its `snapshot` command).

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// Downloads the snapshot to `file` (through a temporary file beside it, renamed once whole).
pub fn save(admin: &str, token_file: Option<&Path>, file: &Path) -> anyhow::Result<()> {
    let token = match token_file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading the token file {}", p.display()))?
            .trim()
            .to_string(),
        None => std::env::var("ZOOCTL_ADMIN_TOKEN")
            .context("the admin token: give --token-file or set ZOOCTL_ADMIN_TOKEN")?,
    };
    let mut s = TcpStream::connect(admin).with_context(|| format!("connecting to {admin}"))?;
    // Building a large snapshot takes a while before the first byte comes.
    s.set_read_timeout(Some(Duration::from_secs(300)))?;
    write!(
        s,
        "GET /commands/snapshot HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line)
        .with_context(|| format!("reading the answer of {admin}"))?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{admin} did not answer HTTP: {status_line:?}"))?;
    let (mut length, mut zxid) = (None, String::new());
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse::<u64>().ok(),
                "last_zxid" => zxid = v.trim().to_string(),
                _ => {}
            }
        }
    }
    if status != 200 {
        let mut body = String::new();
        let _ = r.read_to_string(&mut body);
        let why = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(body);
        bail!("{admin} refused the snapshot (HTTP {status}): {why}");
    }
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
