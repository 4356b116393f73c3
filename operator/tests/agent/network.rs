//! Pod networking for the test node agent: a bridge in the test's own network namespace
//! (scripts/e2e-operator.sh runs the tests in one) and a network namespace per pod with a
//! veth pair to it, so that each pod has an address of its own and binds its ports as in a
//! real pod. The test process, the control plane and the operator reach pods through the
//! bridge.

use std::net::Ipv4Addr;
use std::process::Command;

/// The bridge and its address: the pods' gateway, and where pods reach the test's host.
pub const BRIDGE: &str = "zooid-e2e";
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Checks that the bridge is there: scripts/e2e-operator.sh makes it before the control
/// plane starts, since the API server advertises its address to pods.
pub fn bridge() -> Result<(), String> {
    ip(&["link", "show", BRIDGE])
        .map_err(|e| format!("{e}: run the tests through scripts/e2e-operator.sh"))
}

/// A pod's network namespace, `zp<n>`, with the `n`th address (10.88.0.2 onwards) on its
/// eth0; removed when dropped.
pub struct Sandbox {
    pub name: String,
    pub addr: Ipv4Addr,
}

impl Sandbox {
    pub fn create(n: u32) -> Result<Sandbox, String> {
        let host = n + 1;
        let addr = Ipv4Addr::new(10, 88, (host / 250) as u8, (host % 250 + 1) as u8);
        let name = format!("zp{n}");
        ip(&["netns", "add", &name])?;
        let sandbox = Sandbox { name, addr };
        let (netns, outer) = (sandbox.name.as_str(), format!("zv{n}"));
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", "eth0", "netns", netns,
        ])?;
        ip(&["link", "set", &outer, "master", BRIDGE, "up"])?;
        ip(&[
            "-n",
            netns,
            "addr",
            "add",
            &format!("{addr}/16"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", netns, "link", "set", "eth0", "up"])?;
        ip(&["-n", netns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            netns,
            "route",
            "add",
            "default",
            "via",
            &GATEWAY.to_string(),
        ])?;
        Ok(sandbox)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Deleting the namespace takes its end of the veth pair, and so the other end.
        let _ = ip(&["netns", "delete", &self.name]);
    }
}
