//! Issue 12's fleet kit (deploy/prometheus, deploy/grafana) against the real
//! tools. promtool checks the province's config, the agent's config and the
//! alert rules, and runs the rules' unit tests. A real Prometheus server,
//! with the kit's rules loaded, scrapes a whole Portico in-process that
//! three phones visit: the Grafana dashboard's own queries give back what
//! they did (devices shown, connected, splash views, per venue and the
//! venue's date, under the venue's name), a healthy Portico raises no
//! alert, and a refused reload raises one that names the venue.
//!
//! Where Debian's `prometheus` package (promtool and the server) is not
//! installed the tests say SKIPPED and pass, except under CI, where they
//! must run.

#![forbid(unsafe_code)]

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{Form, TestPortal, encode};
use hyper::StatusCode;
use serde_json::Value;

const KIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus");
const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/portico-province.json");
const VENUE: &str = "Cảng Cầu Đá";
const PROVINCE: &str = "Khánh Hòa";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 Chrome/120 Mobile Safari/537.36";

/// Whether `tool` (from Debian's `prometheus` package) can be run; where
/// it cannot, says so and passes, except under CI.
fn installed(tool: &str) -> bool {
    match Command::new(tool).arg("--version").output() {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            common::skip(&format!("{tool} not installed (apt-get install prometheus)"));
            false
        }
        Err(e) => panic!("cannot run {tool}: {e}"),
    }
}

/// `promtool ARGS` in the kit's folder, which must succeed.
fn promtool(args: &[&str]) {
    let out = Command::new("promtool").args(args).current_dir(KIT).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {} ({}):\n{said}", args.join(" "), out.status);
}

#[test]
fn the_kit_passes_promtool_and_its_rules_their_unit_tests() {
    if !installed("promtool") {
        return;
    }
    let lint = ["--lint=all", "--lint-fatal"];
    promtool(&[&["check", "config"][..], &lint, &["prometheus.yml"]].concat());
    promtool(&[&["check", "config", "--agent"][..], &lint, &["agent.yml"]].concat());
    promtool(&[&["check", "rules"][..], &lint, &["portico.rules.yml"]].concat());
    // Every unit-test file of the folder, so that a new one cannot be forgotten.
    let mut tests: Vec<String> = std::fs::read_dir(KIT)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".test.yml"))
        .collect();
    tests.sort();
    assert!(tests.contains(&"portico.rules.test.yml".to_owned()), "{tests:?}");
    let tests: Vec<&str> = tests.iter().map(String::as_str).collect();
    promtool(&[&["test", "rules"][..], &tests].concat());
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).unwrap();
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

fn panels(dashboard: &Value) -> Vec<&Value> {
    dashboard["panels"].as_array().expect("panels").iter().collect()
}

fn panel<'a>(dashboard: &'a Value, title: &str) -> &'a Value {
    let found: Vec<_> = panels(dashboard).into_iter().filter(|p| p["title"] == title).collect();
    assert_eq!(found.len(), 1, "one panel titled {title:?}");
    found[0]
}

/// The query of `panel`'s target `ref_id`, with the dashboard's variables
/// as Grafana fills them in: `$province` and `$venue` with the regex of
/// what is selected (`.*` for All), the time range as 1h.
fn query(panel: &Value, ref_id: &str, province: &str, venue: &str) -> String {
    let targets = panel["targets"].as_array().unwrap();
    let target = targets.iter().find(|t| t["refId"] == ref_id).unwrap_or_else(|| panic!("{ref_id} in {panel}"));
    substitute(target["expr"].as_str().unwrap(), province, venue)
}

fn substitute(expr: &str, province: &str, venue: &str) -> String {
    let expr = expr
        .replace("$province", province)
        .replace("$venue", venue)
        .replace("$__range", "1h")
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "1m");
    assert!(!expr.contains('$'), "a variable this test does not know: {expr}");
    expr
}

#[test]
fn every_panel_of_the_dashboard_queries_the_templated_prometheus() {
    let dashboard = dashboard();
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let variable = |name: &str| variables.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("${name}"));
    assert_eq!(variable("DS_PROMETHEUS")["type"], "datasource");
    assert_eq!(variable("DS_PROMETHEUS")["query"], "prometheus");
    for name in ["province", "venue"] {
        let v = variable(name);
        assert_eq!((v["type"].as_str(), v["includeAll"].as_bool()), (Some("query"), Some(true)), "{v}");
        assert!(v["definition"].as_str().unwrap().starts_with("label_values(portico_venue_info"), "{v}");
    }
    let datasource = serde_json::json!({ "type": "prometheus", "uid": "${DS_PROMETHEUS}" });
    let panels = panels(&dashboard);
    assert!(panels.len() >= 6, "{}", panels.len());
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert_eq!(panel["datasource"], datasource, "{title}");
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{title} has no targets"));
        assert!(!targets.is_empty(), "{title} has no targets");
        for target in targets {
            assert_eq!(target["datasource"], datasource, "{title}");
            assert!(target["expr"].as_str().is_some_and(|e| !e.is_empty()), "{title}: {target}");
        }
    }
}

/// A Portico of a port in Khánh Hòa, with `[tls]` (a certificate good
/// until 2031), started in-process on loopback ports. No neighbour table:
/// each loopback address is a device of its own.
async fn start(dir: &Path) -> TestPortal {
    let (cert, key) = common::write_certificate(dir, &common::certificate("portal.test", Some((2031, 3, 1))));
    let venue = format!("name = \"{VENUE}\"\nkind = \"port\"\nprovince = \"{PROVINCE}\"");
    TestPortal::builder(&dir.join("state")).venue(&venue).portal("").tls(&cert, &key).start().await
}

/// A phone at `from` loads the splash in `lang`.
async fn splash(portal: &TestPortal, from: &str, lang: &str) -> common::Reply {
    let host = format!("127.0.0.1:{}", portal.addr.port());
    let headers = [("user-agent", ANDROID), ("accept-language", lang)];
    let reply = common::send_from(ip(from), portal.addr, "GET", &host, "/", &headers, Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::OK, "the splash for {from}");
    reply
}

/// A phone at `from` loads the splash and taps Connect.
async fn connect(portal: &TestPortal, from: &str, lang: &str) {
    let form = Form::parse(&splash(portal, from, lang).await.text()).expect("the splash has a post form");
    let host = format!("127.0.0.1:{}", portal.addr.port());
    let headers = [("user-agent", ANDROID), ("content-type", "application/x-www-form-urlencoded")];
    let body = Bytes::from(form.body());
    let reply = common::send_from(ip(from), portal.addr, "POST", &host, &form.action, &headers, body).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "the accept of {from}");
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A Prometheus server on a free loopback port with its database in a
/// temporary folder, killed when dropped, so even when the test fails.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One sample of an instant query: its labels and value.
#[derive(Debug)]
struct Sample {
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Prometheus {
    /// Starts `prometheus` scraping `target` every second, with the kit's
    /// rules evaluated every second, and waits until it is ready. Never on
    /// :9090, which a packaged server may hold.
    async fn start(dir: &Path, target: SocketAddr) -> Prometheus {
        let config = dir.join("prometheus.yml");
        let text = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - '{KIT}/portico.rules.yml'\n\
             scrape_configs:\n  - job_name: portico\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(&config, text).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut prometheus = Prometheus { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok()
                && common::send(addr, "GET", "127.0.0.1", "/-/ready", &[], Bytes::new()).await.status == StatusCode::OK
            {
                return prometheus;
            }
            if let Some(status) = prometheus.child.try_wait().unwrap() {
                panic!("prometheus exited ({status}):\n{}", prometheus.log());
            }
            assert!(Instant::now() < deadline, "prometheus not ready after 15 s:\n{}", prometheus.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` of the HTTP API: its `data`, once it answered `success`.
    async fn api(&self, path: &str) -> Value {
        let reply = common::send(self.addr, "GET", "127.0.0.1", path, &[], Bytes::new()).await;
        let body: Value = serde_json::from_slice(&reply.body)
            .unwrap_or_else(|e| panic!("{path}: {e}: {}\n{}", reply.text(), self.log()));
        assert_eq!(body["status"], "success", "{path}: {body}");
        body["data"].clone()
    }

    /// The instant query `expr` at `at` (Unix seconds), or now.
    async fn query(&self, expr: &str, at: Option<f64>) -> Vec<Sample> {
        let time = at.map(|t| format!("&time={t:.3}")).unwrap_or_default();
        let data = self.api(&format!("/api/v1/query?query={}{time}", encode(expr))).await;
        assert_eq!(data["resultType"], "vector", "{expr}: {data}");
        let samples = data["result"].as_array().unwrap().iter().map(|r| Sample {
            labels: serde_json::from_value(r["metric"].clone()).unwrap(),
            value: r["value"][1].as_str().unwrap().parse().unwrap(),
        });
        samples.collect()
    }

    /// The one value of `expr` now, once it has one, waiting up to 10 s.
    async fn value_when(&self, expr: &str, ready: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let [sample] = &self.query(expr, None).await[..]
                && ready(sample.value)
            {
                return sample.value;
            }
            assert!(Instant::now() < deadline, "{expr}: {:?}\n{}", self.query(expr, None).await, self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// When the kit's rules were first evaluated after `t` (Unix seconds),
    /// once that evaluation is written.
    async fn evaluated_after(&self, t: f64) -> f64 {
        self.value_when("timestamp(instance:portico_venue_info:last_seen)", |at| at > t).await
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// `samples` as (labels, value), sorted, for a readable comparison.
fn values(samples: Vec<Sample>) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut values: Vec<_> = samples.into_iter().map(|s| (s.labels, s.value)).collect();
    values.sort_by(|a, b| a.0.cmp(&b.0));
    values
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_portico_and_the_dashboard_reads_back_the_traffic() {
    if !installed("prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let portico = start(dir.path()).await;
    let prometheus = Prometheus::start(dir.path(), portico.admin).await;
    // Scraped once before any phone comes: every counter starts from a
    // sample at zero, so `increase` over the range is exact, not
    // extrapolated.
    prometheus.value_when(r#"up{job="portico"}"#, |up| up == 1.0).await;

    // Three phones are shown the notice, two tap Connect, and the third
    // reopens the page four more times: 7 splash views, 6 in Vietnamese.
    connect(&portico, "127.0.0.2", "vi").await;
    connect(&portico, "127.0.0.3", "en").await;
    for _ in 0..5 {
        splash(&portico, "127.0.0.4", "vi").await;
    }
    let traffic_done = unix_now();

    // A scrape that began after the traffic, and the rules evaluated after
    // it. The dashboard's queries are asked at that scrape's own time, as
    // a dashboard refreshed just then would be.
    let at = prometheus.value_when(r#"timestamp(up{job="portico"})"#, |t| t > traffic_done).await;
    let evaluated = prometheus.evaluated_after(at).await;
    // The venue's day (venue.timezone's default), not UTC's.
    let scraped = jiff::Timestamp::from_millisecond((at * 1000.0).round() as i64).unwrap();
    let date = jiff::tz::get!("Asia/Ho_Chi_Minh").to_datetime(scraped).date().to_string();

    let dashboard = dashboard();
    // Every query of the dashboard is one Prometheus takes, with All selected.
    for panel in panels(&dashboard) {
        for target in panel["targets"].as_array().unwrap() {
            let expr = substitute(target["expr"].as_str().unwrap(), ".*", ".*");
            prometheus.query(&expr, Some(at)).await;
        }
    }
    // The selectors list the province, and in it the venue: each variable's
    // `label_values(selector, label)` asked as Grafana asks it.
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    for (name, expected) in [("province", PROVINCE), ("venue", VENUE)] {
        let variable = variables.iter().find(|v| v["name"] == name).unwrap();
        let definition = variable["definition"].as_str().unwrap();
        let args = definition.strip_prefix("label_values(").and_then(|d| d.strip_suffix(')')).unwrap();
        let (selector, label) = args.rsplit_once(", ").unwrap();
        let selector = encode(&substitute(selector, PROVINCE, VENUE));
        let listed = prometheus.api(&format!("/api/v1/label/{label}/values?match[]={selector}")).await;
        assert_eq!(listed, serde_json::json!([expected]), "{definition}");
    }

    // The province and the venue selected, as the province's staff would.
    let ask = |title: &str, ref_id: &str| {
        let expr = query(panel(&dashboard, title), ref_id, PROVINCE, VENUE);
        let prometheus = &prometheus;
        async move { values(prometheus.query(&expr, Some(at)).await) }
    };
    let venue_day = labels(&[("venue", VENUE), ("date", &date)]);
    for (ref_id, what, expected) in [
        ("A", "devices shown", 3.0),
        ("B", "devices connected", 2.0),
        ("C", "devices returning", 0.0),
        ("D", "splash views", 7.0),
    ] {
        assert_eq!(ask("Per venue and day", ref_id).await, [(venue_day.clone(), expected)], "{what}");
    }
    let day = labels(&[("date", &date)]);
    assert_eq!(ask("Devices shown and connected per day", "A").await, [(day.clone(), 3.0)], "devices shown");
    assert_eq!(ask("Devices shown and connected per day", "B").await, [(day, 2.0)], "devices connected");
    let shown: Vec<_> = ask("Splash views by language", "A").await.into_iter().filter(|(_, v)| *v != 0.0).collect();
    assert_eq!(shown, [(labels(&[("lang", "en")]), 1.0), (labels(&[("lang", "vi")]), 6.0)]);
    assert_eq!(ask("Devices online now, by venue", "A").await, [(labels(&[("venue", VENUE)]), 2.0)]);
    assert_eq!(ask("Gateways up", "A").await, [(labels(&[]), 1.0)], "up");
    assert_eq!(ask("Gateways up", "B").await, [(labels(&[]), 1.0)], "known");
    let version = labels(&[("version", env!("CARGO_PKG_VERSION"))]);
    assert_eq!(ask("Portico versions", "A").await, [(version, 1.0)]);
    let per_hour = ask("Splash views per hour, by venue", "A").await;
    assert!(matches!(&per_hour[..], [(l, v)] if *l == labels(&[("venue", VENUE)]) && *v > 0.0), "{per_hour:?}");
    // Another province selected: none of this venue's numbers.
    let elsewhere = query(panel(&dashboard, "Per venue and day"), "A", "Hà Nội", ".*");
    assert!(prometheus.query(&elsewhere, Some(at)).await.is_empty(), "{elsewhere}");

    // Every rule evaluates without error against a real Portico's series,
    // and a healthy Portico has no alert, not even a pending one.
    prometheus.evaluated_after(evaluated).await;
    let groups = prometheus.api("/api/v1/rules").await;
    let rules: Vec<&Value> =
        groups["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).collect();
    assert_eq!(rules.len(), 10, "{groups}");
    for rule in rules {
        assert_eq!(rule["health"], "ok", "{rule}");
    }
    let alerts = values(prometheus.query("ALERTS", None).await);
    assert!(alerts.is_empty(), "a healthy Portico raised {alerts:?}");
    assert!(ask("Firing alerts", "A").await.is_empty());

    // A reload refused: the dashboard's alert table names the venue, and
    // so does the alert's summary.
    std::fs::write(&portico.config_file, "[venue]\nname = 1\n").unwrap();
    portico.reload().await;
    let expected = labels(&[("alertname", "PorticoReloadFailed"), ("severity", "warning"), ("venue", VENUE)]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let firing = query(panel(&dashboard, "Firing alerts"), "A", PROVINCE, VENUE);
    loop {
        let alerts = values(prometheus.query(&firing, None).await);
        if alerts == [(expected.clone(), 1.0)] {
            break;
        }
        assert!(alerts.is_empty(), "{alerts:?}");
        assert!(Instant::now() < deadline, "no PorticoReloadFailed:\n{}", prometheus.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alerts = prometheus.api("/api/v1/alerts").await;
    let alerts = alerts["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["annotations"]["summary"], format!("Portico at {VENUE} refused its last reload"));
    assert_eq!(alerts[0]["labels"]["province"], PROVINCE);

    drop(prometheus);
    portico.stop().await;
}
