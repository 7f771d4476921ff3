//! nginx inside the lab namespace: its own config file (never the system one), start,
//! readiness, and stop — including nginx processes a half-failed `up` left behind.

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddrV4;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::command::run;
use super::{netns, process};
use crate::layout::{
    LabOptions, LabPaths, HOST_IF, KERNEL_IP, NETNS, SERVER_NAME, TARGET_IP, TARGET_PORT,
};
use crate::{probe, Error};

/// How long `up` waits for nginx to accept TCP.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reload gets for its old workers to close their idle connections and exit.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long nginx gets to exit after SIGTERM (its fast shutdown), then after SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);
const KILL_GRACE: Duration = Duration::from_secs(1);

/// The lab's nginx configuration. Every path is in the state directory, so nothing of the
/// system's nginx (/etc/nginx, /var/log/nginx, /var/lib/nginx, /run/nginx.pid) is touched.
pub(crate) fn config(paths: &LabPaths, options: &LabOptions) -> String {
    let p = |path: &Path| path.display().to_string();
    let tmp = p(&paths.temp_dir);
    let keepalive = nginx_time(options.keepalive_timeout);
    format!(
        r#"# The quickdraw lab's nginx, written by `bench lab up` (rewritten on every up).
daemon on;
master_process on;
# One worker: this is a 2-core machine and core 1 belongs to the datapath.
worker_processes 1;
pid {pid};
error_log {error_log} notice;

events {{
    worker_connections 1024;
}}

http {{
    default_type application/octet-stream;
    server_tokens off;
    # Debian's build keeps these in a system directory; the lab keeps its own.
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    # $msec first, so a line can be matched to a fire by time; the idempotency key ties it
    # to an arm; connection:requests shows whether a warm connection was reused; last,
    # "r" when the connection's TLS session was resumed from a ticket, "." when not.
    log_format quickdraw '$msec $remote_addr:$remote_port "$request" $status '
                         '$body_bytes_sent "$http_idempotency_key" $request_id '
                         '$connection:$connection_requests $request_time '
                         '$ssl_session_reused';
    access_log {access_log} quickdraw;

    # Connections are kept warm by the client; keepalive_requests high enough that nginx
    # never closes one of them for having served too many.
    keepalive_timeout {keepalive};
    keepalive_requests {keepalive_requests};

    server {{
        listen {target_ip}:{target_port} ssl;
        server_name {server_name};
        ssl_certificate {server_cert};
        ssl_certificate_key {server_key};
        ssl_protocols TLSv1.3;
        # TLS 1.3 tickets sealed with a key of our own rather than one made per start: they
        # stay valid across reloads and restarts until the lab replaces the key.
        ssl_session_ticket_key {ticket_key};

        location = /api/order {{
            if ($request_method != POST) {{
                add_header Allow "POST" always;
                return 405;
            }}
            default_type application/json;
            return 200 '{{"status":"accepted","request_id":"$request_id"}}\n';
        }}

        location = /api/stock {{
            if ($request_method !~ ^(GET|HEAD)$) {{
                add_header Allow "GET, HEAD" always;
                return 405;
            }}
            default_type application/json;
            return 200 '{{"sku":"lab-1","available":100}}\n';
        }}

        location = /healthz {{
            return 204;
        }}

        location / {{
            return 404;
        }}
    }}
}}
"#,
        pid = p(&paths.nginx_pid),
        error_log = p(&paths.error_log),
        access_log = p(&paths.access_log),
        server_cert = p(&paths.server_cert),
        server_key = p(&paths.server_key),
        ticket_key = p(&paths.ticket_key),
        keepalive_requests = options.keepalive_requests,
        target_ip = TARGET_IP,
        target_port = TARGET_PORT,
        server_name = SERVER_NAME,
    )
}

/// nginx time syntax: whole seconds as "75s", anything finer in milliseconds.
fn nginx_time(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Starts nginx inside the lab namespace with the lab's config; returns once it daemonised.
pub(crate) fn start(paths: &LabPaths, options: &LabOptions) -> Result<(), Error> {
    // nginx wants the prefix to end with '/'.
    let prefix = format!("{}/", paths.state_dir.display());
    let conf = paths.nginx_conf.display().to_string();
    let error_log = paths.error_log.display().to_string();
    let nginx = options.nginx.display().to_string();
    // -e: errors before the config is read go to our log too (Debian's default is stderr).
    #[rustfmt::skip]
    run("ip", &[
        "netns", "exec", NETNS, &nginx, "-p", &prefix, "-c", &conf, "-e", &error_log,
    ])?;
    Ok(())
}

/// Waits until nginx has written its pid file and accepts TCP on the target address.
pub(crate) fn wait_ready(paths: &LabPaths) -> Result<(), Error> {
    let target = SocketAddrV4::new(TARGET_IP, TARGET_PORT);
    let started = Instant::now();
    loop {
        if master_pid(paths).is_some()
            && probe::connect(KERNEL_IP, Some(HOST_IF), target, Duration::from_millis(250)).is_ok()
        {
            return Ok(());
        }
        if started.elapsed() >= READY_TIMEOUT {
            return Err(Error::NginxNotReady {
                addr: target.into(),
                waited_ms: started.elapsed().as_millis() as u64,
                log_tail: log_tail(&paths.error_log, 20),
            });
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// Reloads nginx (SIGHUP to the master, as `nginx -s reload`): it reads its config, its
/// certificate and its ticket key again, starts new workers, and the old workers close
/// their idle keep-alive connections and exit. Returns once every old worker is gone and
/// a new one runs; a reload nginx refused (it keeps the old workers) times out.
pub(crate) fn reload(paths: &LabPaths) -> Result<(), Error> {
    let started = Instant::now();
    let failed = |started: Instant| Error::NginxReload {
        waited_ms: started.elapsed().as_millis() as u64,
        log_tail: log_tail(&paths.error_log, 20),
    };
    let master = BTreeSet::from([master_pid(paths).ok_or_else(|| failed(started))?]);
    let old = process::children_of(&master);
    process::signal(&master, "HUP")?;
    loop {
        let workers = process::children_of(&master);
        let old_gone = old.iter().all(|&pid| !process::alive(pid));
        if old_gone && workers.iter().any(|pid| !old.contains(pid)) {
            return Ok(());
        }
        if started.elapsed() >= RELOAD_TIMEOUT {
            return Err(failed(started));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The master's pid from the pid file, if that process is alive and is an nginx.
pub(crate) fn master_pid(paths: &LabPaths) -> Option<u32> {
    let pid = fs::read_to_string(&paths.nginx_pid)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // A stale pid file can name a recycled pid: trust it only for an nginx.
    (process::alive(pid) && process::cmdline(pid).is_some_and(|c| is_nginx(&c))).then_some(pid)
}

/// Stops every nginx of the lab: the pid file's, any whose command line names our config,
/// any living in the lab namespace, and their workers. SIGTERM first, SIGKILL if needed.
pub(crate) fn stop(paths: &LabPaths) -> Result<(), Error> {
    let pids = lab_nginx(paths);
    if pids.is_empty() {
        return Ok(());
    }
    // SIGTERM is nginx's fast shutdown: the master stops its workers and removes its pid.
    process::signal(&pids, "TERM")?;
    let survivors = process::wait_gone(&pids, TERM_GRACE);
    if survivors.is_empty() {
        return Ok(());
    }
    process::signal(&survivors, "KILL")?;
    let survivors = process::wait_gone(&survivors, KILL_GRACE);
    if survivors.is_empty() {
        Ok(())
    } else {
        Err(Error::NginxSurvived {
            pids: survivors.into_iter().collect(),
        })
    }
}

/// The nginx processes that belong to the lab.
fn lab_nginx(paths: &LabPaths) -> BTreeSet<u32> {
    let conf = paths.nginx_conf.display().to_string();
    let lab_netns = netns::netns_inode();
    let mut masters: BTreeSet<u32> = master_pid(paths).into_iter().collect();
    for pid in process::all_pids() {
        let Some(cmd) = process::cmdline(pid) else {
            continue;
        };
        let ours = is_nginx(&cmd)
            && (cmd.contains(&conf)
                || (lab_netns.is_some() && process::netns_inode(pid) == lab_netns));
        if ours && process::alive(pid) {
            masters.insert(pid);
        }
    }
    // Workers: their title ("nginx: worker process") does not name the config, and after a
    // half-failed `up` their namespace may have lost its name.
    let workers = process::children_of(&masters);
    masters.extend(workers);
    masters
}

/// An nginx process: "nginx: master process ...", "nginx: worker process", or one that has
/// not renamed itself yet ("/usr/sbin/nginx -p ...").
fn is_nginx(cmdline: &str) -> bool {
    cmdline.starts_with("nginx:")
        || cmdline
            .split(' ')
            .next()
            .is_some_and(|argv0| argv0 == "nginx" || argv0.ends_with("/nginx"))
}

/// The last `lines` lines of a log file, or a note saying why there are none.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::LabPki;
    use std::process::Command;

    fn paths() -> LabPaths {
        LabPaths::under(Path::new("/run/quickdraw-lab"))
    }

    #[test]
    fn config_serves_the_lab_endpoints_over_tls13_only() {
        let text = config(&paths(), &LabOptions::default());
        for needle in [
            "daemon on;",
            "worker_processes 1;",
            "pid /run/quickdraw-lab/nginx.pid;",
            "error_log /run/quickdraw-lab/error.log notice;",
            "listen 198.18.0.2:443 ssl;",
            "server_name target.lab;",
            "ssl_certificate /run/quickdraw-lab/server.pem;",
            "ssl_certificate_key /run/quickdraw-lab/server.key;",
            "ssl_protocols TLSv1.3;",
            "ssl_session_ticket_key /run/quickdraw-lab/ticket.key;",
            "'$ssl_session_reused';",
            "keepalive_timeout 75s;",
            "keepalive_requests 100000;",
            "location = /api/order {",
            "if ($request_method != POST) {",
            "return 405;",
            r#"return 200 '{"status":"accepted","request_id":"$request_id"}\n';"#,
            "location = /api/stock {",
            "location = /healthz {",
            "return 204;",
            "access_log /run/quickdraw-lab/access.log quickdraw;",
            "$msec $remote_addr:$remote_port \"$request\" $status",
            "\"$http_idempotency_key\"",
            "client_body_temp_path /run/quickdraw-lab/tmp/client_body;",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        for forbidden in ["/etc/nginx", "/var/log/nginx", "/var/lib/nginx", "include "] {
            assert!(!text.contains(forbidden), "{forbidden:?} in\n{text}");
        }
    }

    #[test]
    fn keepalive_timeout_is_configurable() {
        let mut options = LabOptions {
            keepalive_timeout: Duration::from_secs(5),
            ..LabOptions::default()
        };
        assert!(config(&paths(), &options).contains("keepalive_timeout 5s;"));
        options.keepalive_timeout = Duration::from_millis(1500);
        assert!(config(&paths(), &options).contains("keepalive_timeout 1500ms;"));
    }

    #[test]
    fn nginx_titles_are_recognised() {
        assert!(is_nginx(
            "nginx: master process /usr/sbin/nginx -p /run/x/ -c /run/x/nginx.conf"
        ));
        assert!(is_nginx("nginx: worker process"));
        assert!(is_nginx("/usr/sbin/nginx -p /run/x/"));
        assert!(!is_nginx("vim /run/quickdraw-lab/nginx.conf"));
        assert!(!is_nginx("/usr/bin/nginxwatch"));
    }

    /// Outside truth: the real nginx parses the config (`nginx -t`, no root, no network).
    #[test]
    fn nginx_accepts_the_config() {
        let dir = std::env::temp_dir().join(format!("qd-bench-nginx-{}", std::process::id()));
        let paths = LabPaths::under(&dir);
        fs::create_dir_all(&paths.temp_dir).unwrap();
        LabPki::generate(SERVER_NAME)
            .unwrap()
            .write(&paths)
            .unwrap();
        crate::pki::write_ticket_key(&paths).unwrap();
        fs::write(&paths.nginx_conf, config(&paths, &LabOptions::default())).unwrap();
        // `nginx -t` binds the listen address: give it a private network namespace (user
        // namespace too, so no root is needed) with 198.18.0.2 on its loopback.
        let setup =
            format!("ip link set lo up && ip addr add {TARGET_IP}/32 dev lo && exec \"$@\"");
        let out = Command::new("unshare")
            .args([
                "--user",
                "--map-root-user",
                "--net",
                "sh",
                "-c",
                &setup,
                "sh",
            ])
            .arg(&LabOptions::default().nginx)
            .arg("-t")
            // Only root is mapped in that user namespace: nginx could not chown its temp
            // paths to the default unprivileged worker user.
            .args(["-g", "user root;"])
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&paths.nginx_conf)
            .arg("-e")
            .arg(&paths.error_log)
            .output()
            .expect("nginx is installed");
        fs::remove_dir_all(&dir).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("test is successful"), "{stderr}");
    }
}
