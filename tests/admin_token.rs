//! The admin listener is not an open door (issue 12). A listener other
//! machines can reach needs `admin.token_file`, which `check` enforces; a
//! configured token is required on loopback too, which is how these tests
//! reach it without an address the machine may not have. The numbers
//! (`/metrics`, `/healthz`, the status page) stay open; `/clients…` wants
//! `Authorization: Bearer`; `portico clients` sends the token of its
//! config; a flood of wrong tokens shuts out its own address only; a
//! reload rotates the token.

#![forbid(unsafe_code)]

mod common;

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Reply, TestPortal};
use hyper::StatusCode;
use tokio::task::JoinHandle;

const PORTICO: &str = env!("CARGO_BIN_EXE_portico");
const TOKEN: &str = "4f1c2a9e7b3d5f60a1b2c3d4e5f60718";

/// A Portico in-process whose admin listener (on a pre-bound loopback
/// port) has a token.
struct Guarded {
    portal: TestPortal,
    dir: PathBuf,
    token_file: PathBuf,
}

fn write_token(path: &Path, token: &str, mode: u32) {
    std::fs::write(path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A config for the service, its state in `dir/state`; `admin` is the
/// whole `[admin]` table.
fn config_text(dir: &Path, port: u16, admin: &str) -> String {
    TestPortal::builder(&dir.join("state")).portal("").admin(admin).config_text(port)
}

impl Guarded {
    async fn start(dir: &Path) -> Guarded {
        let token_file = dir.join("admin.token");
        write_token(&token_file, TOKEN, 0o600);
        let admin = format!("listen = \"127.0.0.1:0\"\ntoken_file = \"{}\"", token_file.display());
        let portal = TestPortal::builder(&dir.join("state")).portal("").admin(&admin).start().await;
        Guarded { portal, dir: dir.to_owned(), token_file }
    }

    /// `GET path` from 127.0.0.1, with this `Authorization` header if any.
    async fn get(&self, path: &str, authorization: Option<&str>) -> Reply {
        self.get_from("127.0.0.1".parse().unwrap(), path, authorization).await
    }

    async fn get_from(&self, from: IpAddr, path: &str, authorization: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = authorization.map(|a| ("authorization", a)).into_iter().collect();
        common::send_from(from, self.portal.admin, "GET", "127.0.0.1", path, &headers, Bytes::new()).await
    }

    async fn post(&self, path: &str, authorization: Option<&str>, body: &str) -> Reply {
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(authorization.map(|a| ("authorization", a)));
        common::send(self.portal.admin, "POST", "127.0.0.1", path, &headers, Bytes::from(body.to_owned())).await
    }

    /// A config file for `portico clients`: the service's admin listener,
    /// with this `[admin]` tail after `listen`.
    fn cli_config(&self, name: &str, tail: &str) -> PathBuf {
        let file = self.dir.join(name);
        let admin = format!("listen = \"{}\"\n{tail}", self.portal.admin);
        std::fs::write(&file, config_text(&self.dir, 8080, &admin)).unwrap();
        file
    }

    async fn reload(&self) {
        self.portal.reload().await;
    }

    async fn stop(self) {
        self.portal.stop().await;
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Runs the built binary off the runtime's thread, which serves the portal.
async fn portico(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || Command::new(PORTICO).args(args).output().unwrap()).await.unwrap()
}

fn args(words: &[&str], config: &Path) -> Vec<String> {
    words.iter().map(|w| w.to_string()).chain([config.display().to_string()]).collect()
}

#[tokio::test]
async fn the_numbers_stay_open_and_every_control_endpoint_wants_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let portal = Guarded::start(dir.path()).await;

    for path in ["/metrics", "/healthz", "/"] {
        let reply = portal.get(path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path} without a token");
    }
    // The status page is counts, never a device.
    assert!(portal.get("/", None).await.text().contains("Devices online now"));

    for path in ["/clients", "/clients/trusted", "/nowhere"] {
        let reply = portal.get(path, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path} without a token");
        assert_eq!(reply.header("www-authenticate"), r#"Bearer realm="portico""#, "{path}");
        assert!(reply.text().contains("admin.token_file"), "{}", reply.text());
    }
    let wrong = format!("Bearer {}", TOKEN.replace('4', "5"));
    for authorization in [wrong.as_str(), "Bearer short", &format!("Basic {TOKEN}"), "Bearer", TOKEN] {
        let reply = portal.get("/clients", Some(authorization)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{authorization}");
        assert!(reply.header("www-authenticate").starts_with(r#"Bearer realm="portico""#), "{authorization}");
    }
    let reply = portal.get("/clients", Some(&wrong)).await;
    assert_eq!(reply.header("www-authenticate"), r#"Bearer realm="portico", error="invalid_token""#);

    let reply = portal.get("/clients", Some(&bearer(TOKEN))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&reply.body).unwrap(), serde_json::json!([]));
    let reply = portal.get("/clients/trusted", Some(&format!("bearer {TOKEN}"))).await;
    assert_eq!(reply.status, StatusCode::OK, "the scheme in any case");

    // Changes: refused without the token, taken with it.
    let screen = r#"{"mac": "02:00:00:00:5c:01", "name": "hall screen"}"#;
    for authorization in [None, Some(wrong.as_str())] {
        let reply = portal.post("/clients/trust", authorization, screen).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        let reply = portal.post("/clients/revoke?target=10.0.0.7", authorization, "").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{authorization:?}");
    }
    let listed = portal.get("/clients/trusted", Some(&bearer(TOKEN))).await;
    assert_eq!(listed.text().trim(), "[]", "nothing was trusted without the token");
    let reply = portal.post("/clients/trust", Some(&bearer(TOKEN)), screen).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let reply = portal.post("/clients/untrust?mac=02:00:00:00:5c:01", Some(&bearer(TOKEN)), "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    portal.stop().await;
}

#[tokio::test]
async fn portico_clients_sends_the_token_of_its_config_and_says_what_to_do_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let portal = Guarded::start(dir.path()).await;
    let with_token = portal.cli_config("with.toml", &format!("token_file = \"{}\"", portal.token_file.display()));

    let out = portico(args(&["clients", "list", "--config"], &with_token)).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 device(s) online"));
    let out = portico(args(&["clients", "trust", "02:00:00:00:5c:01", "--config"], &with_token)).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A config without the token: the service says 401, the command why.
    let without = portal.cli_config("without.toml", "");
    for words in [&["clients", "list", "--config"][..], &["clients", "revoke", "10.0.0.7", "--config"]] {
        let out = portico(args(words, &without)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{words:?}");
        assert!(stderr.contains("401") && stderr.contains("admin.token_file is not set"), "{stderr}");
    }

    // Another token than the service's.
    let other = dir.path().join("other.token");
    write_token(&other, &TOKEN.replace('4', "5"), 0o600);
    let stale = portal.cli_config("stale.toml", &format!("token_file = \"{}\"", other.display()));
    let out = portico(args(&["clients", "list", "--config"], &stale)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("refused the token"), "{stderr}");

    // A token file this user may not read (as root, every file is readable,
    // and there is nothing to show).
    let locked = dir.path().join("locked.token");
    write_token(&locked, TOKEN, 0o000);
    if std::fs::read(&locked).is_err() {
        let config = portal.cli_config("locked.toml", &format!("token_file = \"{}\"", locked.display()));
        let out = portico(args(&["clients", "list", "--config"], &config)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("admin.token_file: cannot read") && stderr.contains("sudo"), "{stderr}");
        assert!(stderr.contains("locked.toml"), "the config file is named: {stderr}");
    }
    portal.stop().await;
}

#[tokio::test]
async fn a_flood_of_wrong_tokens_shuts_out_its_own_address_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let portal = Arc::new(Guarded::start(dir.path()).await);
    let wrong = bearer(&TOKEN.replace('4', "5"));

    let flood = {
        let (portal, wrong) = (portal.clone(), wrong.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..8 {
                let wave = (0..40).map(|_| {
                    let (portal, wrong) = (portal.clone(), wrong.clone());
                    tokio::spawn(async move { portal.get("/clients", Some(&wrong)).await })
                });
                for reply in futures_join(wave.collect()).await {
                    statuses.push(reply.status);
                }
            }
            statuses
        })
    };
    // The supervisor's and Prometheus's view all through the flood.
    while !flood.is_finished() {
        assert_eq!(portal.get("/healthz", None).await.status, StatusCode::OK);
        assert_eq!(portal.get("/metrics", None).await.status, StatusCode::OK);
    }
    let statuses = flood.await.unwrap();
    assert!(statuses.iter().all(|s| [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(s)));
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "320 guesses in a moment are cut off");
    // The operator sees the guessing in the metrics, by how it was refused.
    let metrics = portal.get("/metrics", None).await.text();
    let count = |reason: &str| {
        let series = format!("portico_rejected_total{{reason=\"{reason}\"}} ");
        let line = metrics.lines().find(|l| l.starts_with(&series)).unwrap_or_else(|| panic!("{series} in {metrics}"));
        line[series.len()..].parse::<usize>().unwrap()
    };
    let refused = |status| statuses.iter().filter(|s| **s == status).count();
    assert!(count("admin_token") >= refused(StatusCode::UNAUTHORIZED), "{metrics}");
    assert!(count("admin_attempts") >= refused(StatusCode::TOO_MANY_REQUESTS), "{metrics}");

    // The flooding address is shut out before its token is compared, so a
    // guesser cannot tell a right one; another address is not. (Its budget
    // refills by one every 100 ms: spend it again just before asking.)
    let mut shut_out = None;
    for _ in 0..5 {
        while portal.get("/clients", Some(&wrong)).await.status != StatusCode::TOO_MANY_REQUESTS {}
        let reply = portal.get("/clients", Some(&bearer(TOKEN))).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            shut_out = Some(reply);
            break;
        }
    }
    let reply = shut_out.expect("the right token is refused too while the address is shut out");
    assert!(reply.header("retry-after").parse::<u64>().is_ok_and(|s| s >= 1), "{:?}", reply.headers);
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    assert_eq!(portal.get_from(other, "/clients", Some(&bearer(TOKEN))).await.status, StatusCode::OK);
    // And it comes back once its budget refills.
    let deadline = Instant::now() + Duration::from_secs(5);
    while portal.get("/clients", Some(&bearer(TOKEN))).await.status != StatusCode::OK {
        assert!(Instant::now() < deadline, "the flooding address was never let back in");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Arc::into_inner(portal).expect("the flood is over").stop().await;
}

/// Every task's reply, in order.
async fn futures_join(tasks: Vec<JoinHandle<Reply>>) -> Vec<Reply> {
    let mut replies = Vec::with_capacity(tasks.len());
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}

#[tokio::test]
async fn a_reload_rotates_the_token_and_a_bad_token_file_is_refused_keeping_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let portal = Guarded::start(dir.path()).await;
    const ROTATED: &str = "9d8c7b6a5f4e3d2c1b0a99887766554433221100";
    write_token(&portal.token_file, ROTATED, 0o600);
    portal.reload().await;
    // Polled no faster than the address's attempts refill.
    let deadline = Instant::now() + Duration::from_secs(10);
    while portal.get("/clients", Some(&bearer(ROTATED))).await.status != StatusCode::OK {
        assert!(Instant::now() < deadline, "the rotated token was never taken");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(portal.get("/clients", Some(&bearer(TOKEN))).await.status, StatusCode::UNAUTHORIZED);

    write_token(&portal.token_file, "", 0o600);
    portal.reload().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = portal.get("/metrics", None).await.text();
        // The one reload that was not `ok`, whatever its result is called.
        let failed = metrics
            .lines()
            .any(|l| l.starts_with("portico_reloads_total{") && !l.contains(r#"result="ok""#) && l.ends_with(" 1"));
        if failed {
            break;
        }
        assert!(Instant::now() < deadline, "the reload with an empty token file was not refused:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(portal.get("/clients", Some(&bearer(ROTATED))).await.status, StatusCode::OK, "the old token holds");
    portal.stop().await;
}

fn check(dir: &Path, admin: &str) -> Output {
    let file = dir.join("portico.toml");
    std::fs::write(&file, config_text(dir, 8080, admin)).unwrap();
    Command::new(PORTICO).args(["check", "--config"]).arg(&file).output().unwrap()
}

#[test]
fn check_refuses_an_admin_listener_off_loopback_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    for listen in ["0.0.0.0:9090", "[::]:9090"] {
        let out = check(dir.path(), &format!("listen = \"{listen}\""));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("admin.token_file") && stderr.contains("admin.listen"), "{stderr}");
        assert!(stderr.contains("portico.toml"), "the file is named: {stderr}");
    }

    let token = dir.path().join("admin.token");
    write_token(&token, TOKEN, 0o600);
    let with_token = format!("listen = \"0.0.0.0:9090\"\ntoken_file = \"{}\"", token.display());
    let out = check(dir.path(), &with_token);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("admin.token_file"), "no warning for a file only its owner reads: {stderr}");

    // Others may read it: taken, with a warning saying so.
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = check(dir.path(), &with_token);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a warning, not a problem: {stderr}");
    assert!(stderr.contains("warning: admin.token_file") && stderr.contains("mode 0644"), "{stderr}");

    for (text, wanted) in [("", "is empty"), ("letmein", "at least 16")] {
        write_token(&token, text, 0o600);
        let out = check(dir.path(), &with_token);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("admin.token_file") && stderr.contains(wanted), "{stderr}");
        assert!(!stderr.contains("letmein"), "the token is never shown: {stderr}");
    }
}
