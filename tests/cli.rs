//! The operator's commands, run as the built binary: `check` names every bad
//! key, `firewall print` prints, and `run` stops cleanly on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const PORTICO: &str = env!("CARGO_BIN_EXE_portico");

/// `portico <command> --config <dir>/portico.toml`, the file holding `toml`.
fn with_config(dir: &Path, toml: &str, command: &[&str]) -> Output {
    let file = dir.join("portico.toml");
    std::fs::write(&file, toml).unwrap();
    Command::new(PORTICO).args(command).arg("--config").arg(&file).output().unwrap()
}

fn check(dir: &Path, toml: &str) -> Output {
    with_config(dir, toml, &["check"])
}

fn good(state: &Path) -> String {
    format!(
        r#"[venue]
name = "Ga Buôn Ma Thuột"
kind = "station"
province = "Đắk Lắk"

[portal]
listen = "127.0.0.1:0"
public_url = "https://portal.example.vn/"
session = "12h"
campaign = "bluezone"

[firewall]
backend = "none"

[state]
dir = "{}"

[admin]
listen = "127.0.0.1:0"

# TLS ends at a proxy in front (so the https public_url has a listener).
[limits]
trusted_proxies = ["127.0.0.1"]
"#,
        state.display()
    )
}

#[test]
fn check_accepts_a_good_config_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), &good(&dir.path().join("state")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().count(), 1, "one summary line: {stdout}");
    assert!(stdout.starts_with("ok: ") && stdout.contains("Bluezone") && stdout.contains("vi, en"), "{stdout}");
}

#[test]
fn check_warns_that_android_ignores_an_http_portal_api() {
    let dir = tempfile::tempdir().unwrap();
    let toml = good(&dir.path().join("state")).replace("https://portal.example.vn/", "http://10.20.0.1:8080/");
    let out = check(dir.path(), &toml);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a warning, not a problem: {stderr}");
    assert!(stderr.contains("warning: portal.public_url is http") && stderr.contains("Android"), "{stderr}");
}

#[test]
fn the_shipped_example_config_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/portico.toml");
    if let Err(problems) = portico::config::Config::load(&example) {
        panic!("deploy/portico.toml: {problems}");
    }
}

#[test]
fn check_names_the_key_of_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let base = good(&dir.path().join("state"));
    let cases = [
        (base.replace("session = \"12h\"", "sesion = \"12h\""), vec!["sesion", "line 9"]),
        (base.replace("\"12h\"", "\"12 hours\""), vec!["portal.session", "not a duration"]),
        (base.replace("\"12h\"", "12"), vec!["portal.session", "line 9"]),
        (base.replace("kind = \"station\"", "kind = \"train\""), vec!["venue.kind", "station | airport"]),
        (base.replace("public_url = \"https://portal.example.vn/\"\n", ""), vec!["portal.public_url", "missing"]),
        (base.replace("https://portal.example.vn/", "portal.example.vn"), vec!["portal.public_url", "https://"]),
        (
            base.replace("[limits]\ntrusted_proxies = [\"127.0.0.1\"]\n", ""),
            vec!["portal.public_url", "no listener serves https"],
        ),
        (
            base.replace("listen = \"127.0.0.1:0\"\npublic", "listen = \"8080\"\npublic"),
            vec!["portal.listen", "address:port"],
        ),
        (base.replace("backend = \"none\"", "backend = \"iptables\""), vec!["firewall.backend", "nftables | none"]),
        (base.replace("backend = \"none\"", "backend = \"nftables\""), vec!["firewall.interface", "required"]),
        (base.replace("campaign = \"bluezone\"", "campaign = \"covid\""), vec!["portal.campaign", "covid"]),
        (base.replace("campaign = \"bluezone\"", "campaign = \"./nowhere\""), vec!["nowhere/campaign.toml"]),
    ];
    for (toml, wanted) in cases {
        let out = check(dir.path(), &toml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{wanted:?}: {stderr}");
        for w in &wanted {
            assert!(stderr.contains(w), "expected {w:?} in: {stderr}");
        }
        assert!(stderr.contains("portico.toml"), "the file is named: {stderr}");
    }
}

#[test]
fn check_reports_every_problem_one_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let toml = good(&dir.path().join("state"))
        .replace("\"12h\"", "\"forever\"")
        .replace("kind = \"station\"", "kind = \"train\"")
        .replace("[admin]\nlisten = \"127.0.0.1:0\"", "[admin]\nlisten = \"nope\"");
    let out = check(dir.path(), &toml);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(lines.iter().any(|l| l.contains("portal.session")));
    assert!(lines.iter().any(|l| l.contains("venue.kind")));
    assert!(lines.iter().any(|l| l.contains("admin.listen")));
}

/// The real dnsmasq (`--test`) reads every line of `lines`.
fn dnsmasq_accepts(dir: &Path, lines: &str) {
    let conf = dir.join("portico-dhcp.conf");
    std::fs::write(&conf, lines.as_bytes()).unwrap();
    match Command::new("dnsmasq").arg("--test").arg("-C").arg(&conf).output() {
        Ok(test) => {
            assert!(test.status.success(), "dnsmasq refuses the lines: {}", String::from_utf8_lossy(&test.stderr))
        }
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("dnsmasq is needed in CI: {e}"),
        Err(e) => println!("SKIPPED: dnsmasq --test ({e}); apt-get install dnsmasq-base"),
    }
}

#[test]
fn dhcp_print_gives_dnsmasq_the_api_url_and_warns_when_android_would_ignore_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = with_config(dir.path(), &good(&dir.path().join("state")), &["dhcp", "print"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = String::from_utf8_lossy(&out.stdout);
    assert!(lines.contains("dhcp-option=114,\"https://portal.example.vn/api/captive\""), "{lines}");
    assert!(lines.contains("dhcp-option=option6:103,\"https://portal.example.vn/api/captive\""), "{lines}");
    assert!(out.stderr.is_empty(), "no warning for https: {}", String::from_utf8_lossy(&out.stderr));
    dnsmasq_accepts(dir.path(), &lines);

    let http = good(&dir.path().join("state")).replace("https://portal.example.vn/", "http://10.20.0.1/");
    let out = with_config(dir.path(), &http, &["dhcp", "print"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("dhcp-option=114,\"http://10.20.0.1/api/captive\""));
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(warning.contains("portal.public_url") && warning.contains("Android ignores"), "{warning}");
}

#[test]
fn firewall_print_names_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let out = with_config(dir.path(), &good(&dir.path().join("state")), &["firewall", "print"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("backend = \"none\""));
}

#[test]
fn run_reloads_on_sighup_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portico.toml");
    // Port 0: the kernel picks free ports; the log line says which.
    std::fs::write(&file, good(&dir.path().join("state"))).unwrap();
    let mut child = Command::new(PORTICO)
        .args(["run", "--config"])
        .arg(&file)
        .env("RUST_LOG", "portico=info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 || line.contains("Portico serving") {
            break;
        }
    }
    assert!(line.contains("Portico serving"), "never started: {line}");
    // The operator's view of the running service, through its admin port.
    let admin = line.split("admin=").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().to_owned();
    let admin_config = dir.path().join("admin.toml");
    let text = good(&dir.path().join("state"))
        .replace("[admin]\nlisten = \"127.0.0.1:0\"", &format!("[admin]\nlisten = \"{admin}\""));
    std::fs::write(&admin_config, text).unwrap();
    let list = Command::new(PORTICO).args(["clients", "list", "--config"]).arg(&admin_config).output().unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    assert!(String::from_utf8_lossy(&list.stdout).contains("0 device(s) online"));
    // SIGHUP reloads in place: the service says so and keeps running.
    assert!(Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap().success());
    line.clear();
    while Instant::now() < deadline && !line.contains("reloaded the config and campaign") {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
    }
    assert!(line.contains("reloaded the config and campaign"), "no reload: {line}");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit {exit:?}: {rest}");
    assert!(rest.contains("stopped"), "{rest}");
    assert!(dir.path().join("state/grants.journal").exists(), "the state folder was created");
}

#[test]
fn clients_says_clearly_when_portico_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = good(&dir.path().join("state"))
        .replace("[admin]\nlisten = \"127.0.0.1:0\"", &format!("[admin]\nlisten = \"127.0.0.1:{port}\""));
    let file = dir.path().join("portico.toml");
    std::fs::write(&file, text).unwrap();
    for args in [&["clients", "list", "--config"][..], &["clients", "revoke", "10.0.0.7", "--config"][..]] {
        let out = Command::new(PORTICO).args(args).arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("Portico is not running"), "{stderr}");
        assert!(stderr.contains("admin.listen"), "{stderr}");
    }
}

#[test]
fn a_missing_interface_stops_start_up_with_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let text = good(&dir.path().join("state"))
        .replace("backend = \"none\"", "backend = \"nftables\"\ninterface = \"nosuchif0\"");
    let file = dir.path().join("portico.toml");
    std::fs::write(&file, text).unwrap();
    for command in ["check", "run"] {
        let out = Command::new(PORTICO).args([command, "--config"]).arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(stderr.contains("firewall.interface") && stderr.contains("nosuchif0"), "{command}: {stderr}");
    }
}

/// A copy of the built-in campaign folder and a config that uses it.
fn campaign_config(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let campaign = common::campaign_folder(dir, "campaign");
    let config = dir.join("portico.toml");
    let text = good(&dir.join("state")).replace("campaign = \"bluezone\"", "campaign = \"./campaign\"");
    std::fs::write(&config, text).unwrap();
    (campaign, config)
}

fn replace_in(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn check_accepts_a_campaign_folder_and_names_each_problem_in_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let (campaign, config) = campaign_config(dir.path());
    let run = || Command::new(PORTICO).args(["check", "--config"]).arg(&config).output().unwrap();
    let out = run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("vi, en, zh-Hans, zh-Hant, ko, ja, ru, fr"));

    // Three breakages at once: each is its own line naming file and key.
    replace_in(&campaign.join("locales/ja.toml"), "slogan = ", "# slogan removed: ");
    replace_in(&campaign.join("campaign.toml"), "website = \"https://", "website = \"http://");
    std::fs::remove_file(campaign.join("images/logo.svg")).unwrap();
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(lines.iter().any(|l| l.contains("locales/ja.toml") && l.contains("slogan")), "{stderr}");
    assert!(lines.iter().any(|l| l.contains("campaign.toml: website") && l.contains("https://")), "{stderr}");
    assert!(lines.iter().any(|l| l.contains("images.logo") && l.contains("images/logo.svg")), "{stderr}");
}

#[test]
fn check_refuses_unknown_keys_missing_languages_and_oversized_images() {
    let dir = tempfile::tempdir().unwrap();
    let (campaign, config) = campaign_config(dir.path());
    replace_in(&campaign.join("locales/fr.toml"), "slogan = ", "slogon = \"x\"\nslogan = ");
    replace_in(&campaign.join("campaign.toml"), "default_language = \"vi\"", "default_language = \"de\"");
    std::fs::write(campaign.join("images/logo.svg"), format!("<svg>{}</svg>", " ".repeat(20_000))).unwrap();
    std::fs::remove_file(campaign.join("locales/ko.toml")).unwrap();
    let out = Command::new(PORTICO).args(["check", "--config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for wanted in ["locales/fr.toml: unknown field `slogon`", "default_language", "locales/ko.toml", "bytes; at most"] {
        assert!(stderr.contains(wanted), "expected {wanted:?} in: {stderr}");
    }
}

#[test]
fn check_refuses_a_campaign_logo_that_could_run_a_script_naming_the_file() {
    // A script in the SVG namespace under a prefix: a filter looking for
    // the text `<script` let it through, to be served from the portal's origin.
    let dir = tempfile::tempdir().unwrap();
    let (campaign, config) = campaign_config(dir.path());
    let bypass = r#"<svg xmlns="http://www.w3.org/2000/svg"><s:script xmlns:s="http://www.w3.org/2000/svg">alert(1)</s:script></svg>"#;
    std::fs::write(campaign.join("images/logo.svg"), bypass).unwrap();
    let out = Command::new(PORTICO).args(["check", "--config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr.lines().find(|l| l.contains("images/logo.svg")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("images.logo"), "{line}");
    assert!(line.contains("element <s:script> is not allowed (line 1, column 41)"), "{line}");
}

/// `good` gating on nftables, with `extra` appended.
fn gated(state: &Path, extra: &str) -> String {
    good(state).replace("backend = \"none\"", "backend = \"nftables\"\ninterface = \"lo\"") + extra
}

#[test]
fn check_refuses_every_probe_host_in_the_walled_garden_naming_the_key() {
    // DESIGN.md's probe table, and front ends that answer probes on the same addresses.
    let refused = [
        "captive.apple.com",
        "www.apple.com",
        "connectivitycheck.gstatic.com",
        "www.gstatic.com",
        "www.google.com",
        "play.googleapis.com",
        "clients3.google.com",
        "connectivitycheck.android.com",
        "connect.rom.miui.com",
        "connectivitycheck.platform.hicloud.com",
        "www.msftconnecttest.com",
        "ipv6.msftconnecttest.com",
        "www.msftncsi.com",
        "detectportal.firefox.com",
        "nmcheck.gnome.org",
        "connectivity-check.ubuntu.com",
        "fedoraproject.org",
        "spectrum.s3.amazonaws.com",
        "google.com",
        "gstatic.com",
        "apple.com",
        "icloud.com",
        "www.youtube.com",
        "msftconnecttest.com",
    ];
    let dir = tempfile::tempdir().unwrap();
    let hosts: Vec<String> = refused.iter().map(|h| format!("{h:?}")).collect();
    let garden = format!("\n[walled_garden]\nhosts = [\"bluezone.gov.vn\", {}]\n", hosts.join(", "));
    let out = check(dir.path(), &gated(&dir.path().join("state"), &garden));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for host in refused {
        let line =
            stderr.lines().find(|l| l.contains(&format!("{host:?}"))).unwrap_or_else(|| panic!("{host}: {stderr}"));
        assert!(line.contains("walled_garden.hosts") && line.contains("splash"), "{line}");
    }
    assert!(!stderr.contains("\"bluezone.gov.vn\""), "the campaign's site is let in: {stderr}");
    assert_eq!(stderr.lines().filter(|l| l.contains("walled_garden.hosts")).count(), refused.len(), "{stderr}");
}

#[test]
fn a_walled_garden_reaches_dnsmasq_as_an_nftset_line_it_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "\n[walled_garden]\nhosts = [\"bluezone.gov.vn\", \"moh.gov.vn\"]\nports = [80, 443]\n";
    let config = gated(&dir.path().join("state"), extra);
    let out = check(dir.path(), &config);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("walled garden of 2 name(s)"));
    let out = with_config(dir.path(), &config, &["dhcp", "print"]);
    let lines = String::from_utf8_lossy(&out.stdout);
    assert!(
        lines.contains("\nnftset=/bluezone.gov.vn/moh.gov.vn/4#inet#portico#garden_v4,6#inet#portico#garden_v6\n"),
        "{lines}"
    );
    dnsmasq_accepts(dir.path(), &lines);
    // The sets the line names are in the printed ruleset.
    let ruleset =
        String::from_utf8_lossy(&with_config(dir.path(), &config, &["firewall", "print"]).stdout).into_owned();
    assert!(ruleset.contains("set garden_v4 {") && ruleset.contains("set garden_v6 {"), "{ruleset}");
}

#[test]
fn check_names_bad_rates_and_trusted_devices() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "\n[[trusted]]\nmac = \"02:00:00:00:00:zz\"\nname = \"hall screen A\"\n\n[[trusted]]\nmac = \"02:00:00:00:00:01\"\n\n[[trusted]]\nmac = \"02:00:00:00:00:01\"\n";
    let config = gated(&dir.path().join("state"), extra)
        .replace("interface = \"lo\"", "interface = \"lo\"\ndevice_rate = \"4mbps\"\ndevice_upload_rate = \"1mbit\"");
    let out = check(dir.path(), &config);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.contains("firewall.device_rate") && l.contains("\"4mbps\" is not a rate")),
        "{stderr}"
    );
    assert!(!stderr.contains("device_upload_rate"), "{stderr}");
    assert!(stderr.lines().any(|l| l.contains("trusted.mac") && l.contains("not a MAC address")), "{stderr}");
    assert!(stderr.lines().any(|l| l.contains("trusted.mac") && l.contains("listed twice")), "{stderr}");
}

#[test]
fn run_tells_systemd_ready_reloading_stopping_and_feeds_the_watchdog() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portico.toml");
    std::fs::write(&file, good(&dir.path().join("state"))).unwrap();
    // What systemd does for Type=notify with WatchdogSec=: a datagram socket.
    let socket_path = dir.path().join("notify");
    let systemd = UnixDatagram::bind(&socket_path).unwrap();
    systemd.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut child = Command::new(PORTICO)
        .args(["run", "--config"])
        .arg(&file)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut next = || {
        let mut buf = [0; 256];
        let n = systemd.recv(&mut buf).expect("a notification within 10 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next(), "READY=1");
    // Half the interval: two keep-alives within a second.
    let started = Instant::now();
    assert_eq!((next(), next()), ("WATCHDOG=1".to_owned(), "WATCHDOG=1".to_owned()));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?} for two keep-alives", started.elapsed());
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let reloading = std::iter::repeat_with(&mut next).find(|m| m != "WATCHDOG=1").unwrap();
    assert!(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{reloading:?}");
    assert_eq!(std::iter::repeat_with(&mut next).find(|m| m != "WATCHDOG=1").unwrap(), "READY=1");
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert_eq!(std::iter::repeat_with(&mut next).find(|m| m != "WATCHDOG=1").unwrap(), "STOPPING=1");
    assert!(child.wait().unwrap().success());
}
