//! Issue 13: an emergency notice set and cleared on a running service by
//! `portico alert`: every surface changes at once, it survives `kill -9`,
//! a bad notice is refused with its problems and changes nothing, and
//! `--open-gate` lets an ungranted phone's probes through until it is
//! cleared, with every grant as it was.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output};

const PORTICO: &str = env!("CARGO_BIN_EXE_portico");

const TYPHOON: &str = r#"languages = ["vi", "en"]

[vi]
title = "Cảnh báo bão số 3"
text = "Bão đổ bộ chiều nay. Ở trong nhà ga và làm theo hướng dẫn của nhân viên."

[en]
title = "Typhoon warning"
text = "The typhoon reaches the coast this afternoon. Stay inside the station."
"#;

fn config(state: &Path) -> String {
    format!(
        "[venue]\nname = \"Ga Huế\"\nkind = \"station\"\n\
         [portal]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1/\"\n\
         [firewall]\nbackend = \"none\"\n[state]\ndir = \"{}\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [limits]\nper_client_rps = 0\nglobal_rps = 0\n",
        state.display()
    )
}

/// A plain HTTP/1.1 GET from `from`, as a phone sends it; status line and body.
fn get(from: &str, to: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(from.parse().unwrap(), 0).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Language: en\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_owned()))
}

struct Running {
    child: std::process::Child,
    portal: SocketAddr,
    admin: SocketAddr,
    /// A config naming the running admin listener, for `portico alert`.
    cli: std::path::PathBuf,
}

/// Killed when dropped, so a failing test leaves no service behind.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// `kill -9`: no clean stop, nothing flushed.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn start(dir: &Path) -> Running {
    let config_file = dir.join("portico.toml");
    let (child, portal, admin) = common::start_binary(&config_file);
    let cli = dir.join("cli.toml");
    let text = std::fs::read_to_string(&config_file).unwrap();
    std::fs::write(&cli, text.replace("[admin]\nlisten = \"127.0.0.1:0\"", &format!("[admin]\nlisten = \"{admin}\"")))
        .unwrap();
    Running { child, portal, admin, cli }
}

fn portico(words: &[&str], config: &Path) -> Output {
    Command::new(PORTICO).args(words).arg("--config").arg(config).output().unwrap()
}

/// Every surface's title, as a phone asking for English sees it.
fn surfaces(portal: SocketAddr) -> Vec<(String, String)> {
    ["/", "/welcome", "/signage", "/poster"]
        .into_iter()
        .map(|path| {
            let (status, body) = get("127.0.0.1", portal, "127.0.0.1", path);
            assert_eq!(status, 200, "{path}");
            let title = body.split("<title>").nth(1).and_then(|t| t.split("</title>").next()).unwrap_or("").to_owned();
            (path.to_owned(), title)
        })
        .collect()
}

fn metric(admin: SocketAddr, name: &str) -> String {
    let (_, text) = get("127.0.0.1", admin, "127.0.0.1", "/metrics");
    text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).unwrap_or("absent").to_owned()
}

#[test]
fn an_alert_takes_every_surface_at_once_survives_kill_9_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("portico.toml"), config(&dir.path().join("state"))).unwrap();
    let notice = dir.path().join("typhoon.toml");
    std::fs::write(&notice, TYPHOON).unwrap();

    let running = start(dir.path());
    let before = surfaces(running.portal);
    assert!(before.iter().all(|(_, title)| !title.contains("Typhoon")), "{before:?}");

    let out = portico(&["alert", "set", "--file", notice.to_str().unwrap()], &running.cli);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("alert set: \"Cảnh báo bão số 3\" (vi, en)"));
    for (path, title) in surfaces(running.portal) {
        assert!(title.starts_with("Typhoon warning"), "{path}: {title}");
    }
    let (_, board) = get("127.0.0.1", running.portal, "127.0.0.1", "/signage");
    assert!(board.contains("/assets/signage-cycle-2.css"), "the boards cycle the notice's two languages");
    let (_, splash) = get("127.0.0.1", running.portal, "127.0.0.1", "/?lang=vi");
    assert!(splash.contains("Cảnh báo bão số 3") && splash.contains("<form"), "the Connect button stays");
    assert_eq!(metric(running.admin, "portico_alert_active"), "1");
    assert_eq!(metric(running.admin, "portico_alert_open_gate"), "0");

    // A notice with mistakes: each named, nothing sent, the alert stays.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, TYPHOON.replace("title = \"Typhoon warning\"", "title = \"\"").replace("[vi]", "[vn]"))
        .unwrap();
    let out = portico(&["alert", "set", "--file", bad.to_str().unwrap()], &running.cli);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("en.title") && stderr.contains("[vi]: missing") && stderr.contains("[vn]"), "{stderr}");
    assert!(surfaces(running.portal).iter().all(|(_, t)| t.starts_with("Typhoon warning")));

    // kill -9, then a restart: the alert is still on.
    running.kill_9();
    let running = start(dir.path());
    for (path, title) in surfaces(running.portal) {
        assert!(title.starts_with("Typhoon warning"), "after kill -9, {path}: {title}");
    }

    let out = portico(&["alert", "clear"], &running.cli);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(surfaces(running.portal), before, "every surface back to the campaign");
    assert_eq!(metric(running.admin, "portico_alert_active"), "0");
    running.kill_9();
    let running = start(dir.path());
    assert_eq!(surfaces(running.portal), before, "cleared stays cleared");
}

#[test]
fn an_open_gate_lets_every_phone_online_and_clearing_it_keeps_the_grants() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("portico.toml"), config(&dir.path().join("state"))).unwrap();
    let notice = dir.path().join("typhoon.toml");
    std::fs::write(&notice, TYPHOON).unwrap();
    let running = start(dir.path());
    let probe = |from: &str| get(from, running.portal, "connectivitycheck.gstatic.com", "/generate_204").0;

    // One phone tapped Connect before the alert; another never did.
    let (status, _) = {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&SocketAddr::new("127.0.0.2".parse().unwrap(), 0).into()).unwrap();
        socket.connect(&running.portal.into()).unwrap();
        let mut stream: TcpStream = socket.into();
        let form = "lang=vi";
        write!(
            stream,
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        (answer.get(9..12).unwrap_or("").to_owned(), ())
    };
    assert_eq!(status, "303");
    assert_eq!((probe("127.0.0.2"), probe("127.0.0.3")), (204, 302));

    let out = portico(&["alert", "set", "--open-gate", "--file", notice.to_str().unwrap()], &running.cli);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("the gate is open"));
    assert_eq!((probe("127.0.0.2"), probe("127.0.0.3")), (204, 204), "every phone is online");
    let (_, api) = get("127.0.0.3", running.portal, "127.0.0.1", "/api/captive");
    assert!(api.contains("\"captive\":false"), "{api}");
    assert_eq!(metric(running.admin, "portico_alert_open_gate"), "1");

    let out = portico(&["alert", "clear"], &running.cli);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((probe("127.0.0.2"), probe("127.0.0.3")), (204, 302), "the gate is back, the grant kept");
    let out = portico(&["clients", "list", "--json"], &running.cli);
    let grants: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(grants.as_array().map(Vec::len), Some(1), "{grants}");
    assert_eq!(grants[0]["ip"], "127.0.0.2");
}
