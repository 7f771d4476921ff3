//! From a validated [`Config`] to what the daemon starts: the datapath's configuration
//! (backend, core, targets) and, per target, what arming needs (its request template and
//! caps). The per-target TLS client and warm request, and the AF_XDP engine's shape, come
//! from `quickdraw_datapath::setup`, shared with the bench. Nothing is started here.

use anyhow::{bail, Context};
use quickdraw_config::{Backend, Config, Target};
use quickdraw_datapath::http::RequestTemplate;
use quickdraw_datapath::poll::Idle;
use quickdraw_datapath::runner::{BackendConfig, DatapathConfig};
use quickdraw_datapath::setup;
use std::net::SocketAddrV4;
use std::time::Duration;

/// Arms the datapath holds at once: the ceiling of `limits.max_open_arms`, which the
/// daemon enforces below it.
const MAX_ARMS: usize = quickdraw_config::OPEN_ARMS_CEILING as usize;
/// Capacity of each datapath queue: room for every pool change and outcome of a burst
/// many times over, so the datapath never has to hold events back.
const QUEUE_LEN: usize = 1024;

/// What `control up` may change about the configured appliance.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// Run this backend instead of `appliance.backend`.
    pub backend: Option<Backend>,
    /// Leave the datapath thread unpinned (tests on a shared machine).
    pub no_pin: bool,
}

/// What arming an order on a target needs to know.
#[derive(Debug, Clone)]
pub struct TargetPlan {
    pub name: String,
    /// Host header value (the TLS server name).
    pub host: String,
    pub port: u16,
    /// The server's address: caps are per address, whatever the target is called.
    pub address: SocketAddrV4,
    pub template: RequestTemplate,
    /// Connections in the warm pool: a burst cannot be wider.
    pub connections: usize,
    pub max_fires_per_arm: usize,
    /// Requests per minute, sent and armed together.
    pub max_fires_per_minute: usize,
    pub response_timeout: Duration,
}

/// Everything the daemon starts with.
#[derive(Debug)]
pub struct Plan {
    pub datapath: DatapathConfig,
    pub targets: Vec<TargetPlan>,
    /// The configured event sources' names, by datapath source index.
    pub sources: Vec<String>,
}

/// The request template of a configured target.
pub fn template(target: &Target) -> RequestTemplate {
    setup::template(target)
}

/// Builds the plan; reads each target's CA file, so a missing lab CA fails here.
pub fn plan(config: &Config, overrides: Overrides) -> anyhow::Result<Plan> {
    let a = &config.appliance;
    let backend = match overrides.backend.unwrap_or(a.backend) {
        Backend::AfXdp => {
            // Each SSE event source holds a connection of its own.
            let streams = config
                .event_sources
                .iter()
                .filter(|s| s.kind == quickdraw_config::EventKind::Sse)
                .count();
            let connections = config
                .targets
                .iter()
                .map(|t| t.connections as usize)
                .sum::<usize>()
                + streams;
            BackendConfig::AfXdp(setup::engine_config(config, connections))
        }
        // Bound to the appliance's interface so the baseline leaves by the same wire.
        Backend::Kernel => BackendConfig::Kernel {
            interface: Some(a.interface.clone()),
        },
    };
    let mut specs = Vec::with_capacity(config.targets.len());
    let mut targets = Vec::with_capacity(config.targets.len());
    for t in &config.targets {
        let (spec, plan) = target(t).with_context(|| format!("target {}", t.name))?;
        specs.push(spec);
        targets.push(plan);
    }
    let datapath = DatapathConfig {
        backend,
        core: (!overrides.no_pin).then_some(a.core),
        scheduling: quickdraw_datapath::placement::Scheduling {
            realtime_priority: a.realtime_priority,
            lock_memory: a.lock_memory,
            keep_code_in_place: a.keep_code_in_place,
        },
        targets: specs,
        max_arms: MAX_ARMS,
        queue_len: QUEUE_LEN,
        // The production mode: an armed order must not wait for a thread to wake.
        idle: Idle::Spin,
        profile_steps: false,
        warming: quickdraw_datapath::setup::warming(config),
        sources: config
            .event_sources
            .iter()
            .map(|s| setup::event_source(s).map(|spec| (spec, 0)))
            .collect::<Result<_, _>>()?,
    };
    let sources = config
        .event_sources
        .iter()
        .map(|s| s.name.clone())
        .collect();
    Ok(Plan {
        datapath,
        targets,
        sources,
    })
}

fn target(t: &Target) -> anyhow::Result<(quickdraw_datapath::TargetSpec, TargetPlan)> {
    let spec = setup::target_spec(t)?;
    if t.max_fires_per_arm == 0 {
        bail!("max_fires_per_arm is 0: nothing could ever be fired");
    }
    let response_timeout = Duration::from_millis(t.response_timeout_ms);
    let port = t.address.port();
    let template = template(t);
    let plan = TargetPlan {
        name: t.name.clone(),
        host: t.server_name.clone(),
        port,
        address: t.address,
        template,
        connections: t.connections as usize,
        max_fires_per_arm: t.max_fires_per_arm as usize,
        max_fires_per_minute: t.max_fires_per_minute as usize,
        response_timeout,
    };
    Ok((spec, plan))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    const LAB: &str = include_str!("../../config/lab.toml");

    /// A throwaway CA certificate in a fresh directory: the lab's CA only exists while
    /// the lab is up, and these tests must not need it.
    pub(crate) fn scratch_ca(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("qd-control-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, cert.pem()).unwrap();
        path
    }

    /// The lab config, trusting `ca` instead of the lab CA.
    pub(crate) fn lab_config(ca: &Path) -> Config {
        let text = LAB.replace("/run/quickdraw-lab/ca.pem", ca.to_str().unwrap());
        Config::from_toml(&text).unwrap()
    }

    #[test]
    fn lab_config_maps_to_a_kernel_datapath() {
        let ca = scratch_ca("setup");
        let config = lab_config(&ca);
        let overrides = Overrides {
            backend: Some(Backend::Kernel),
            no_pin: false,
        };
        let plan = plan(&config, overrides).unwrap();
        let d = &plan.datapath;
        match &d.backend {
            BackendConfig::Kernel { interface } => assert_eq!(interface.as_deref(), Some("qd0")),
            other => panic!("{other:?}"),
        }
        assert_eq!(d.core, Some(1));
        assert_eq!(d.idle, Idle::Spin);
        assert_eq!(d.targets.len(), 1);
        let t = &d.targets[0];
        assert_eq!(t.name, "lab");
        assert_eq!(t.address.to_string(), "198.18.0.2:443");
        assert_eq!(
            t.server_name,
            rustls_pki_types::ServerName::try_from("target.lab").unwrap()
        );
        assert_eq!(t.connections, 8);
        assert_eq!(t.warm_interval_ns, 5_000_000_000);
        assert_eq!(t.response_timeout_ns, 5_000_000_000);
        let warm = String::from_utf8(t.warm_request.to_vec()).unwrap();
        assert!(
            warm.starts_with("GET /healthz HTTP/1.1\r\nHost: target.lab\r\n"),
            "{warm}"
        );
        assert!(
            t.tls.enable_secret_extraction,
            "the datapath needs the traffic secrets"
        );
        assert_eq!(t.tls.alpn_protocols, vec![b"http/1.1".to_vec()]);

        let p = &plan.targets[0];
        assert_eq!(
            (p.host.as_str(), p.port, p.connections, p.max_fires_per_arm),
            ("target.lab", 443, 8, 8)
        );
        assert_eq!(p.template.path, "/api/order");
        std::fs::remove_dir_all(ca.parent().unwrap()).unwrap();
    }

    #[test]
    fn af_xdp_is_the_configured_backend_and_no_pin_unpins() {
        let ca = scratch_ca("setup-xdp");
        let config = lab_config(&ca);
        let plan = plan(
            &config,
            Overrides {
                backend: None,
                no_pin: true,
            },
        )
        .unwrap();
        assert_eq!(plan.datapath.core, None);
        let BackendConfig::AfXdp(e) = &plan.datapath.backend else {
            panic!("af_xdp expected")
        };
        assert_eq!(
            (e.interface.as_str(), e.queue, e.prefix_len),
            ("qd0", 0, 24)
        );
        assert_eq!(e.ip, std::net::Ipv4Addr::new(198, 18, 0, 10));
        assert_eq!(e.xdp_mode, quickdraw_bpf::AttachMode::Native);
        assert!(e.sockets >= 16);
        std::fs::remove_dir_all(ca.parent().unwrap()).unwrap();
    }

    #[test]
    fn missing_ca_is_a_clear_error() {
        let config = lab_config(Path::new("/nonexistent/qd-ca.pem"));
        let err = format!("{:#}", plan(&config, Overrides::default()).unwrap_err());
        assert!(
            err.contains("target lab") && err.contains("/nonexistent/qd-ca.pem"),
            "{err}"
        );
    }
}
