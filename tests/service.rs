//! The systemd unit an operator installs (`deploy/portico.service`):
//! systemd's own `systemd-analyze` verifies it and scores its exposure
//! (at most 2.0), and Portico gates with nftables and serves TLS on :443
//! holding only what the unit gives it, as an unprivileged user with
//! `CAP_NET_ADMIN` and `CAP_NET_BIND_SERVICE` and no new privileges (`setpriv`, in a network
//! namespace of the test's own, removed even on failure). The rest of the
//! sandbox (read-only system, system-call filter) needs systemd as PID 1,
//! which a CI machine is not.
//!
//! Where a tool is missing or the test is not root, it prints SKIPPED with
//! the reason; under `CI=true` that is a failure.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PORTICO: &str = env!("CARGO_BIN_EXE_portico");
const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/portico.service");

fn has(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

#[test]
fn systemd_verifies_the_unit_and_scores_its_exposure_at_most_2() {
    if !has("systemd-analyze") {
        return common::skip("systemd-analyze is missing (apt-get install systemd)");
    }
    let out = Command::new("systemd-analyze").args(["security", "--offline=yes", UNIT]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for portico.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no score in: {text}{}", String::from_utf8_lossy(&out.stderr)));
    println!("systemd-analyze security: exposure {score}");
    assert!(score <= 2.0, "exposure {score}:\n{text}");

    // `verify` wants the programs it starts to exist: the built binary;
    // the manual page of `Documentation=` is installed only by the package
    // (whose check, .ci/package, verifies it with the page).
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("portico.service");
    std::fs::write(&unit, std::fs::read_to_string(UNIT).unwrap().replace("/usr/bin/portico", PORTICO)).unwrap();
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&unit).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip").args(["netns", "exec", &self.0]).args(args).output().unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// The capabilities the unit grants, as `setpriv` arguments.
fn unit_capabilities() -> String {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let caps =
        unit.lines().find_map(|l| l.strip_prefix("CapabilityBoundingSet=")).expect("the unit bounds capabilities");
    caps.split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_ascii_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn portico_gates_on_443_with_only_the_units_capabilities_as_its_own_user() {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    if !root {
        return common::skip("not root (a network namespace and nftables)");
    }
    if !has("nft") || !has("setpriv") {
        return common::skip("nft or setpriv is missing (apt-get install nftables util-linux)");
    }
    let ns = Netns(format!("psvc{}", std::process::id()));
    assert!(Command::new("ip").args(["netns", "add", &ns.0]).status().unwrap().success());
    ns.exec(&["ip", "link", "set", "lo", "up"]);
    assert!(ns.exec(&["ip", "link", "add", "br-lan", "type", "bridge"]).status.success());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    // `nobody` stands in for the unit's user: it owns the state folder.
    let (uid, gid) = (65534u32, 65534u32);
    std::os::unix::fs::chown(&state, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = dir.path().join("portico.toml");
    // A certificate for the portal's name, readable by the service's user
    // (the README's renewal hook gives it group `portico`, mode 640).
    let cert = rcgen::generate_simple_self_signed(vec!["portal.example.vn".to_string()]).unwrap();
    std::fs::write(dir.path().join("fullchain.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("privkey.pem"), cert.signing_key.serialize_pem()).unwrap();
    std::os::unix::fs::chown(dir.path().join("privkey.pem"), Some(uid), Some(gid)).unwrap();
    // Port 80 for the pages and 443 for TLS: below 1024, as the shipped
    // config's `[tls]` is.
    let table = format!("psvc{}", std::process::id());
    std::fs::write(
        &config,
        format!(
            "[venue]\nname = \"Ga Thử Nghiệm\"\n\n[portal]\nlisten = \"127.0.0.1:80\"\n\
             public_url = \"https://portal.example.vn/\"\n\n\
             [tls]\nlisten = \"127.0.0.1:443\"\ncert = \"{0}/fullchain.pem\"\nkey = \"{0}/privkey.pem\"\n\n\
             [firewall]\nbackend = \"nftables\"\ninterface = \"br-lan\"\ntable = \"{table}\"\ndevice_rate = \"4mbit\"\n\n\
             [state]\ndir = \"{1}\"\n\n[admin]\nlisten = \"127.0.0.1:9090\"\n",
            dir.path().display(),
            state.display()
        ),
    )
    .unwrap();
    let caps = unit_capabilities();
    assert_eq!(caps, "+net_admin,+net_bind_service");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.0, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs"])
        .arg(format!("--inh-caps=-all,{caps}"))
        .arg(format!("--ambient-caps=-all,{caps}"))
        .arg(format!("--bounding-set=-all,{caps}"))
        .args([PORTICO, "run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
    // The table is in the kernel, put there by the unprivileged process.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = ns.exec(&["nft", "list", "table", "inet", &table]);
        if listed.status.success() && String::from_utf8_lossy(&listed.stdout).contains("limit rate over") {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("portico exited ({status}) under the unit's capabilities:\n{}", log());
        }
        assert!(Instant::now() < deadline, "no table within 10 s:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // A tap on Connect, over https on :443: the grant goes into the kernel
    // through `nft`, run by the unprivileged process with the capability it
    // inherits.
    let accept = ns.exec(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--cacert",
        &dir.path().join("fullchain.pem").to_string_lossy(),
        "--resolve",
        "portal.example.vn:443:127.0.0.1",
        "--data",
        "lang=vi",
        "https://portal.example.vn/",
    ]);
    let code = String::from_utf8_lossy(&accept.stdout).into_owned();
    let elements = ns.exec(&["nft", "list", "set", "inet", &table, "allowed_v4"]);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let stopped = child.wait().unwrap();
    let _ = ns.exec(&["nft", "delete", "table", "inet", &table]);
    assert_eq!(code, "303", "accept under the unit's capabilities:\n{}", log());
    assert!(String::from_utf8_lossy(&elements.stdout).contains("127.0.0.1"), "{}", log());
    assert!(stopped.success(), "{stopped:?}:\n{}", log());
    assert!(Path::new(&state).join("grants.journal").exists());
}
