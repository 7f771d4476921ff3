//! The lab end to end, for real: namespace, veth, nginx, TLS. Needs root (CI is root).
//! Every test holds a `LabSession`, so they run one at a time, across test threads and
//! across test processes, and each leaves no lab behind even when it fails.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quickdraw_lab::{self as lab, LabLock, LabOptions, LabPki, LabSession, LabStatus};
use quickdraw_lab::{Error, Probe, Request};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::Value;

fn session() -> LabSession {
    LabSession::start().expect("bench lab up")
}

fn up_status(session: &LabSession) -> LabStatus {
    session
        .status()
        .expect("the session brought the lab up")
        .clone()
}

/// Runs a command that prints JSON (`ip -j ...`); empty output is `null`.
fn json(program: &str, args: &[&str]) -> Value {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn sh(line: &str) {
    let status = Command::new("sh").args(["-c", line]).status().unwrap();
    assert!(status.success(), "{line}");
}

fn names(list: &Value, key: &str) -> Vec<String> {
    let items = list.as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|i| i[key].as_str().map(str::to_owned))
        .collect()
}

fn netns_names() -> Vec<String> {
    names(&json("ip", &["-j", "netns", "list"]), "name")
}

fn root_links() -> Vec<String> {
    names(&json("ip", &["-j", "link", "show"]), "ifname")
}

/// Alive and not a zombie (the nginx master is re-parented to PID 1, which reaps lazily).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !matches!(
                s.rsplit(") ").next().and_then(|r| r.chars().next()),
                Some('Z' | 'X')
            )
        })
        .unwrap_or(false)
}

fn nginx_with_our_config() -> Vec<u32> {
    let conf = format!("{}/nginx.conf", lab::STATE_DIR);
    let pids = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok());
    pids.filter(|pid: &u32| {
        fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&conf))
            && alive(*pid)
    })
    .collect()
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("qd-{tag}-{}-{nanos}", std::process::id())
}

fn temp_file(tag: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(unique(tag));
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn up_reports_the_lab_and_a_second_up_is_harmless() {
    let mut session = session();
    let status = up_status(&session);
    let v = serde_json::to_value(&status).unwrap();
    for (key, want) in [
        ("netns", "qdlab"),
        ("host_if", "qd0"),
        ("peer_if", "qd1"),
        ("kernel_ip", "198.18.0.1"),
        ("appliance_ip", "198.18.0.10"),
        ("target_ip", "198.18.0.2"),
        ("server_name", "target.lab"),
    ] {
        assert_eq!(v[key], want, "{key}");
    }
    assert_eq!(v["target_port"], 443);
    assert_eq!(v["up"], true);
    assert_eq!(lab::status().unwrap(), status);

    let dir = Path::new(lab::STATE_DIR);
    for file in [
        "ca.pem",
        "server.pem",
        "server.key",
        "nginx.conf",
        "nginx.pid",
    ] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    assert!(status.access_log.is_file());
    let key_mode = fs::metadata(dir.join("server.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let roots: Vec<_> = CertificateDer::pem_file_iter(&status.ca_cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(roots.len(), 1);
    let chain = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .count();
    assert_eq!(chain, 2, "server.pem is leaf + CA");

    // The wiring the datapath relies on: one queue each way, IPv6 off, no TX checksum
    // offload on the peer, 198.18.0.10 on no interface.
    let qd0 = json("ip", &["-d", "-j", "addr", "show", "dev", "qd0"]);
    assert_eq!(qd0[0]["num_tx_queues"], 1);
    assert_eq!(qd0[0]["num_rx_queues"], 1);
    let qd0_addrs: Vec<_> = qd0[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["local"].clone())
        .collect();
    assert_eq!(
        qd0_addrs,
        [Value::from("198.18.0.1")],
        "no IPv6 link-local, no appliance address"
    );
    let qd1 = json(
        "ip",
        &["-n", "qdlab", "-d", "-j", "addr", "show", "dev", "qd1"],
    );
    assert_eq!(qd1[0]["num_tx_queues"], 1);
    assert_eq!(qd1[0]["num_rx_queues"], 1);
    assert_eq!(qd1[0]["addr_info"][0]["local"], "198.18.0.2");
    assert_eq!(qd1[0]["addr_info"].as_array().unwrap().len(), 1);
    let offloads = json(
        "ip",
        &["netns", "exec", "qdlab", "ethtool", "--json", "-k", "qd1"],
    );
    assert_eq!(offloads[0]["tx-checksumming"]["active"], false);
    let lo = json("ip", &["-n", "qdlab", "-j", "link", "show", "dev", "lo"]);
    assert_eq!(
        lo[0]["operstate"], "UNKNOWN",
        "lo is up (loopback reports UNKNOWN)"
    );
    let v6 = fs::read_to_string("/proc/sys/net/ipv6/conf/qd0/disable_ipv6").unwrap();
    assert_eq!(v6.trim(), "1");

    // Nobody else gets the lab while this session holds it.
    assert!(LabLock::try_acquire_at(Path::new(lab::LOCK_PATH))
        .unwrap()
        .is_none());

    // A second up changes nothing: same nginx, same CA.
    let ca_before = fs::read(&status.ca_cert).unwrap();
    let again = session.up().unwrap().clone();
    assert_eq!(again, status);
    assert_eq!(fs::read(&status.ca_cert).unwrap(), ca_before);
}

#[test]
fn probe_gets_204_over_tls13_with_the_lab_ca() {
    let session = session();
    let report = session.probe().healthz().unwrap();
    assert_eq!(report.status, 204);
    assert_eq!(report.protocol, "TLSv1.3");
    assert!(
        report.cipher_suite.starts_with("TLS13_"),
        "{}",
        report.cipher_suite
    );
    assert_eq!(report.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(report.local.ip().to_string(), "198.18.0.1");
    assert_eq!(report.target.to_string(), "198.18.0.2:443");
    assert!(
        report.handshake_us > 0 && report.request_us > 0,
        "{report:?}"
    );
    assert!(report.body.is_empty());
}

#[test]
fn probe_refuses_a_server_not_vouched_for_by_its_roots() {
    let session = session();
    let stranger = LabPki::generate("target.lab").unwrap();
    let other_ca = temp_file("other-ca", &stranger.ca_pem);
    let probe = Probe {
        ca_cert: other_ca.clone(),
        ..session.probe()
    };
    let err = probe.healthz().unwrap_err();
    fs::remove_file(&other_ca).unwrap();
    assert!(
        matches!(err, Error::Tls(rustls::Error::InvalidCertificate(_))),
        "{err:?}"
    );

    // The right CA but the wrong name is refused too.
    let probe = Probe {
        server_name: "other.lab".to_owned(),
        ..session.probe()
    };
    let err = probe.healthz().unwrap_err();
    assert!(
        matches!(err, Error::Tls(rustls::Error::InvalidCertificate(_))),
        "{err:?}"
    );
}

#[test]
fn order_is_accepted_and_logged_with_its_idempotency_key() {
    let session = session();
    let status = up_status(&session);
    let key = unique("idem");
    let order = Request::post("/api/order", br#"{"sku":"lab-1","qty":1}"#)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", &key);
    let report = session.probe().send(&order).unwrap();
    assert_eq!(report.status, 200, "{report:?}");
    let body: Value = serde_json::from_str(&report.body).unwrap();
    assert_eq!(body["status"], "accepted");
    assert!(body["request_id"].as_str().is_some_and(|id| id.len() == 32));

    // nginx logs after it has sent the response: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    let line = loop {
        let log = fs::read_to_string(&status.access_log).unwrap();
        if let Some(line) = log.lines().find(|l| l.contains(&key)) {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "{key} not in access log:\n{log}");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(line.contains(r#""POST /api/order HTTP/1.1" 200"#), "{line}");
    assert!(line.contains(&format!("\"{key}\"")), "{line}");
    assert!(
        line.contains(&format!("198.18.0.1:{}", report.local.port())),
        "{line}"
    );
    let msec: f64 = line.split(' ').next().unwrap().parse().unwrap();
    assert!(msec > 1.6e9, "{line}");

    let probe = session.probe();
    assert_eq!(probe.send(&Request::get("/api/order")).unwrap().status, 405);
    let stock = probe.send(&Request::get("/api/stock")).unwrap();
    assert_eq!(stock.status, 200);
    assert!(
        serde_json::from_str::<Value>(&stock.body).is_ok(),
        "{}",
        stock.body
    );
    assert_eq!(probe.send(&Request::get("/nope")).unwrap().status, 404);
}

#[test]
fn down_removes_everything_and_a_second_down_is_harmless() {
    let mut session = session();
    let status = up_status(&session);
    let master = status.nginx_pid.unwrap();
    assert!(alive(master));
    session.down().unwrap();

    assert!(!netns_names().contains(&"qdlab".to_owned()));
    let links = root_links();
    assert!(!links.contains(&"qd0".to_owned()) && !links.contains(&"qd1".to_owned()));
    assert!(!alive(master));
    assert!(nginx_with_our_config().is_empty());
    assert!(!Path::new(lab::STATE_DIR).exists());

    session.down().unwrap();
    assert!(!lab::status().unwrap().parts.any());
    // With the lab down the probe fails before sending anything: qd0 and 198.18.0.1 are
    // gone, and 198.18.0.0/24 would otherwise route to the default gateway.
    let ca = temp_file("ca", &LabPki::generate("target.lab").unwrap().ca_pem);
    let err = Probe {
        ca_cert: ca.clone(),
        ..session.probe()
    }
    .healthz()
    .unwrap_err();
    fs::remove_file(&ca).unwrap();
    assert!(matches!(err, Error::Net { .. }), "{err:?}");
}

#[test]
fn down_cleans_a_half_made_lab_and_up_works_after() {
    let mut session = LabSession::locked(LabOptions::default()).unwrap();
    session.down().unwrap();

    // Only the namespace.
    sh("ip netns add qdlab");
    assert!(lab::status().unwrap().parts.netns);
    session.down().unwrap();
    assert!(!lab::status().unwrap().parts.any());

    // Only a veth, both ends in the root namespace, made the default (multi-queue) way.
    sh("ip link add qd0 type veth peer name qd1");
    session.down().unwrap();
    let links = root_links();
    assert!(!links.contains(&"qd0".to_owned()) && !links.contains(&"qd1".to_owned()));

    // Only a state directory with junk in it.
    fs::create_dir_all(lab::STATE_DIR).unwrap();
    fs::write(Path::new(lab::STATE_DIR).join("ca.pem"), "junk").unwrap();
    session.down().unwrap();
    assert!(!Path::new(lab::STATE_DIR).exists());

    let status = session.up().unwrap().clone();
    assert!(status.up);
    assert_eq!(session.probe().healthz().unwrap().status, 204);

    // `up` also clears leftovers by itself.
    session.down().unwrap();
    sh("ip netns add qdlab && ip link add qd0 type veth peer name qd1");
    assert!(session.up().unwrap().up);
    assert_eq!(session.probe().healthz().unwrap().status, 204);
}

#[test]
fn a_failed_up_tears_down_what_it_made() {
    let options = LabOptions {
        nginx: PathBuf::from("/nonexistent/nginx"),
        ..LabOptions::default()
    };
    let mut session = LabSession::locked(options).unwrap();
    let err = session.up().unwrap_err();
    assert!(err.to_string().contains("/nonexistent/nginx"), "{err}");
    let status = lab::status().unwrap();
    assert!(!status.parts.any(), "{status:?}");
}

#[test]
fn down_finds_nginx_in_a_namespace_that_lost_its_name() {
    let mut session = session();
    let master = up_status(&session).nginx_pid.unwrap();
    // nginx keeps the namespace (and the veth) alive after its name is gone.
    sh("ip netns del qdlab");
    assert!(alive(master));
    session.down().unwrap();
    assert!(!alive(master));
    assert!(nginx_with_our_config().is_empty());
    assert!(!root_links().contains(&"qd0".to_owned()));
    assert!(!lab::status().unwrap().parts.any());
}

#[test]
fn a_panicking_session_holder_leaves_no_lab_and_no_lock() {
    let result = std::panic::catch_unwind(|| {
        let _session = session();
        panic!("the test body failed");
    });
    assert!(result.is_err());
    // Taking the lock again proves it was released; holding it keeps other tests out while
    // we look.
    let _held = LabSession::locked(LabOptions::default()).unwrap();
    assert!(!lab::status().unwrap().parts.any());
}
