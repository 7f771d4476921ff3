//! What the lab looks like right now: `LabStatus` (the JSON of `bench lab status --json`)
//! and its human rendering.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::layout::{
    LabPaths, APPLIANCE_IP, HOST_IF, KERNEL_IP, NETNS, PEER_IF, PREFIX_LEN, SERVER_NAME, TARGET_IP,
    TARGET_PORT,
};

/// Which parts of the lab exist. `up` needs all of them; `down` removes any of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabParts {
    /// The namespace `qdlab` exists.
    pub netns: bool,
    /// `qd0` exists in the root namespace.
    pub host_if: bool,
    /// `qd1` exists inside `qdlab`.
    pub peer_if: bool,
    /// The nginx master of the pid file is alive.
    pub nginx: bool,
    /// The state directory exists.
    pub state_dir: bool,
    /// ca.pem, server.pem, server.key and nginx.conf exist.
    pub files: bool,
}

impl LabParts {
    /// Every part is there.
    pub fn all(&self) -> bool {
        self.missing().is_empty()
    }

    /// Some part is there (a lab, or what is left of one).
    pub fn any(&self) -> bool {
        self.missing().len() < Self::NAMES.len()
    }

    /// The names of the missing parts.
    pub fn missing(&self) -> Vec<&'static str> {
        let present = [
            self.netns,
            self.host_if,
            self.peer_if,
            self.nginx,
            self.state_dir,
            self.files,
        ];
        Self::NAMES
            .iter()
            .zip(present)
            .filter(|(_, here)| !here)
            .map(|(name, _)| *name)
            .collect()
    }

    const NAMES: [&'static str; 6] = ["netns", "host_if", "peer_if", "nginx", "state_dir", "files"];
}

/// The lab's facts and state, as printed by `bench lab status --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabStatus {
    /// Network namespace of the target ("qdlab").
    pub netns: String,
    /// Root-namespace end of the veth ("qd0").
    pub host_if: String,
    /// Namespace end of the veth ("qd1").
    pub peer_if: String,
    /// The kernel path's address, on `host_if`.
    pub kernel_ip: Ipv4Addr,
    /// Reserved for the AF_XDP appliance, which answers ARP for it itself; on no interface.
    pub appliance_ip: Ipv4Addr,
    /// nginx's address, on `peer_if`.
    pub target_ip: Ipv4Addr,
    /// Prefix length of the lab subnet.
    pub prefix_len: u8,
    /// nginx's TLS port.
    pub target_port: u16,
    /// The name in the server certificate, to send as SNI and Host.
    pub server_name: String,
    /// The state directory holding everything below.
    pub state_dir: PathBuf,
    /// The lab CA certificate (PEM), the only root a lab client trusts.
    pub ca_cert: PathBuf,
    /// nginx's access log.
    pub access_log: PathBuf,
    /// nginx's error log.
    pub error_log: PathBuf,
    /// The nginx master's pid, when it runs.
    pub nginx_pid: Option<u32>,
    /// Which parts exist.
    pub parts: LabParts,
    /// All parts exist and nginx is alive.
    pub up: bool,
    /// The frame loss set on the peer interface (`bench lab loss`), percent of IPv4/TCP
    /// frames each way; 0 when none.
    #[serde(default)]
    pub loss_pct: u8,
}

impl LabStatus {
    /// The lab's facts with the observed `parts` and nginx pid.
    pub fn new(paths: &LabPaths, parts: LabParts, nginx_pid: Option<u32>) -> Self {
        LabStatus {
            netns: NETNS.to_owned(),
            host_if: HOST_IF.to_owned(),
            peer_if: PEER_IF.to_owned(),
            kernel_ip: KERNEL_IP,
            appliance_ip: APPLIANCE_IP,
            target_ip: TARGET_IP,
            prefix_len: PREFIX_LEN,
            target_port: TARGET_PORT,
            server_name: SERVER_NAME.to_owned(),
            state_dir: paths.state_dir.clone(),
            ca_cert: paths.ca_cert.clone(),
            access_log: paths.access_log.clone(),
            error_log: paths.error_log.clone(),
            nginx_pid,
            up: parts.all(),
            parts,
            loss_pct: 0,
        }
    }
}

impl fmt::Display for LabStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.up {
            writeln!(f, "lab: up")?;
        } else if self.parts.any() {
            let missing = self.parts.missing().join(", ");
            writeln!(
                f,
                "lab: half-made (missing: {missing}); run `bench lab down`"
            )?;
        } else {
            return writeln!(f, "lab: down");
        }
        #[rustfmt::skip]
        writeln!(f, "  {} {}/{} (kernel) <-> netns {}: {} {}/{} (nginx); appliance {}",
            self.host_if, self.kernel_ip, self.prefix_len, self.netns, self.peer_if,
            self.target_ip, self.prefix_len, self.appliance_ip)?;
        let pid = self
            .nginx_pid
            .map_or("not running".to_owned(), |p| format!("pid {p}"));
        #[rustfmt::skip]
        writeln!(f, "  target: https://{}/ at {}:{} (nginx {pid})",
            self.server_name, self.target_ip, self.target_port)?;
        writeln!(f, "  ca: {}", self.ca_cert.display())?;
        if self.loss_pct > 0 {
            #[rustfmt::skip]
            writeln!(f, "  loss: {}% of TCP frames each way on {} (`bench lab loss 0` removes it)",
                self.loss_pct, self.peer_if)?;
        }
        writeln!(f, "  access log: {}", self.access_log.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn all_parts() -> LabParts {
        LabParts {
            netns: true,
            host_if: true,
            peer_if: true,
            nginx: true,
            state_dir: true,
            files: true,
        }
    }

    #[test]
    fn json_has_the_documented_shape() {
        let paths = LabPaths::standard();
        let status = LabStatus::new(&paths, all_parts(), Some(4242));
        let v: Value = serde_json::to_value(&status).unwrap();
        let expected = json!({
            "netns": "qdlab", "host_if": "qd0", "peer_if": "qd1",
            "kernel_ip": "198.18.0.1", "appliance_ip": "198.18.0.10",
            "target_ip": "198.18.0.2", "target_port": 443, "server_name": "target.lab",
            "ca_cert": "/run/quickdraw-lab/ca.pem",
            "access_log": "/run/quickdraw-lab/access.log",
            "up": true, "loss_pct": 0,
        });
        for (key, want) in expected.as_object().unwrap() {
            assert_eq!(&v[key], want, "field {key}");
        }
        assert_eq!(v["nginx_pid"], 4242);
        let back: LabStatus = serde_json::from_value(v).unwrap();
        assert_eq!(back, status);
    }

    #[test]
    fn up_needs_every_part() {
        let paths = LabPaths::standard();
        let mut parts = all_parts();
        parts.nginx = false;
        let status = LabStatus::new(&paths, parts, None);
        assert!(!status.up);
        assert!(parts.any());
        assert_eq!(parts.missing(), ["nginx"]);
        assert!(status.to_string().contains("missing: nginx"));
        let nothing = LabStatus::new(&paths, LabParts::default(), None);
        assert!(!nothing.parts.any());
        assert_eq!(nothing.to_string(), "lab: down\n");
        assert_eq!(serde_json::to_value(&nothing).unwrap()["up"], false);
    }
}
