//! Signed campaign bundles, end to end with the real parts: the built
//! binary packs a campaign (`portico campaign pack`), the real `minisign`
//! tool makes a key and signs the bundle, and a local https server, whose
//! certificate comes from a CA this test makes, serves it to the same
//! fetch, verify and load a gateway runs.
//!
//! Where `minisign` is missing the tests print `SKIPPED: …` and pass,
//! except under `CI=true`, where `.ci/run` installs it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

mod common;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use portico::campaign::BundleKey;
use portico::campaign::bundle::{self, MAX_BUNDLE_BYTES};
use portico::campaign::fetch::{FetchError, FetchLimits, Fetched, SYSTEM_ROOTS, Validators, fetch};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::CertificateDer;

const NAME: &str = "Tiêm chủng Đắk Lắk";

/// What a province has after packing and signing: the bundle, its
/// signature, its public key, and a key of someone else.
struct Province {
    _dir: tempfile::TempDir,
    /// Where its keys and bundles are.
    out: PathBuf,
    /// The public key as a gateway's config gives it (`RW…`).
    key_line: String,
    bundle: Vec<u8>,
    signature: String,
    key: BundleKey,
    other_key: BundleKey,
}

fn minisign(dir: &Path, args: &[&str]) {
    let out = Command::new("minisign").args(args).current_dir(dir).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "minisign {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `None` (and SKIPPED) where minisign is not installed.
fn province() -> Option<Province> {
    if Command::new("minisign").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "minisign not installed: CI must run the bundle tests");
        println!("SKIPPED: minisign not installed (apt-get install minisign)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let campaign = dir.path().join("campaign");
    copy(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/campaigns/bluezone")), &campaign);
    let toml = std::fs::read_to_string(campaign.join("campaign.toml")).unwrap();
    std::fs::write(campaign.join("campaign.toml"), toml.replace("name = \"Bluezone\"", &format!("name = {NAME:?}")))
        .unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["campaign", "pack"])
        .arg(&campaign)
        .args(["--out", "out/campaign.tar"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "campaign pack: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("campaign {NAME:?}")), "{stdout}");
    assert!(stdout.contains("minisign -Sm out/campaign.tar"), "{stdout}");
    assert!(stdout.contains("campaign.tar.minisig"), "{stdout}");

    let out_dir = dir.path().join("out");
    minisign(&out_dir, &["-G", "-W", "-p", "province.pub", "-s", "province.key"]);
    minisign(&out_dir, &["-S", "-s", "province.key", "-m", "campaign.tar"]);
    minisign(&out_dir, &["-G", "-W", "-p", "other.pub", "-s", "other.key"]);
    let line = |file: &str| std::fs::read_to_string(out_dir.join(file)).unwrap().lines().nth(1).unwrap().to_owned();
    let key = |file: &str| line(file).parse().unwrap();
    Some(Province {
        out: out_dir.clone(),
        key_line: line("province.pub"),
        bundle: std::fs::read(out_dir.join("campaign.tar")).unwrap(),
        signature: std::fs::read_to_string(out_dir.join("campaign.tar.minisig")).unwrap(),
        key: key("province.pub"),
        other_key: key("other.pub"),
        _dir: dir,
    })
}

impl Province {
    /// A new campaign named `name`, packed by the binary and signed with
    /// `key` (`province.key`, or `other.key`): what a province publishes.
    fn publish(&self, name: &str, key: &str) -> (Vec<u8>, String) {
        let folder = self.out.join(format!("campaign-{}", name.len()));
        copy(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/campaigns/bluezone")), &folder);
        let toml = std::fs::read_to_string(folder.join("campaign.toml")).unwrap();
        let toml = toml.replace("name = \"Bluezone\"", &format!("name = {name:?}"));
        std::fs::write(folder.join("campaign.toml"), toml).unwrap();
        let bundle = self.out.join(format!("{}.tar", name.len()));
        let out = Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(["campaign", "pack"])
            .arg(&folder)
            .arg("--out")
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        minisign(&self.out, &["-S", "-s", key, "-m", bundle.to_str().unwrap()]);
        let signature = std::fs::read_to_string(bundle.with_extension("tar.minisig")).unwrap();
        (std::fs::read(&bundle).unwrap(), signature)
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A CA, and a server certificate it signed for 127.0.0.1 (an IP SAN).
struct Pki {
    ca: CertificateDer<'static>,
    ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path, name: &str) -> Pki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&server_key, &issuer).unwrap();
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, server.pem()).unwrap();
    std::fs::write(&key, server_key.serialize_pem()).unwrap();
    Pki { ca: ca.der().clone(), ca_pem: ca.pem(), cert, key }
}

type Reply = Response<BoxBody<Bytes, Infallible>>;

/// A body of `left` bytes sent in 64 KiB frames, with no Content-Length.
struct Streamed {
    left: usize,
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
        let n = self.left.min(CHUNK.len());
        self.left -= n;
        Poll::Ready((n > 0).then(|| Ok(Frame::data(Bytes::from_static(&CHUNK[..n])))))
    }
}

/// A body that announces its length and never sends it.
struct Stalled;

impl Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(1000)
    }
}

/// The province's web server, and the paths it was asked for.
struct Server {
    addr: SocketAddr,
    ca: CertificateDer<'static>,
    ca_pem: String,
    /// What `/live.tar` serves now.
    published: Arc<Mutex<Published>>,
    requests: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(province: &Province) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "province");
    let acceptor = portico::tls::acceptor(&pki.cert, &pki.key).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (bundle, signature) = (Bytes::from(province.bundle.clone()), Bytes::from(province.signature.clone()));
    let mut tampered = province.bundle.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    let tampered = Bytes::from(tampered);
    let log = requests.clone();
    let published = Arc::new(Mutex::new(Published {
        bundle: bundle.clone(),
        signature: signature.clone(),
        version: 1,
        stalled: false,
        down: false,
    }));
    let live = published.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, log, live) = (acceptor.clone(), log.clone(), live.clone());
            let (bundle, signature, tampered) = (bundle.clone(), signature.clone(), tampered.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    log.lock().unwrap().push(req.uri().path().to_owned());
                    let reply = match req.uri().path() {
                        "/live.tar" | "/live.tar.minisig" => live.lock().unwrap().answer(&req),
                        _ => answer(&req, addr, &bundle, &signature, &tampered),
                    };
                    async move { Ok::<_, Infallible>(reply) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
            });
        }
    });
    Server { addr, ca: pki.ca, ca_pem: pki.ca_pem, published, requests, _dir: dir }
}

/// The bundle a province has published at `/live.tar`, with an ETag of
/// its version; `stalled`, the server accepts and then sends nothing.
struct Published {
    bundle: Bytes,
    signature: Bytes,
    version: u32,
    stalled: bool,
    /// The server answers 503 to everything.
    down: bool,
}

impl Published {
    fn set(&mut self, bundle: Vec<u8>, signature: String) {
        (self.bundle, self.signature) = (Bytes::from(bundle), Bytes::from(signature));
        self.version += 1;
    }

    fn answer(&self, req: &Request<Incoming>) -> Reply {
        if self.down {
            return Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).body(Empty::new().boxed()).unwrap();
        }
        if self.stalled {
            return Response::new(Stalled.boxed());
        }
        if req.uri().path().ends_with(".minisig") {
            return Response::new(Full::new(self.signature.clone()).boxed());
        }
        let etag = format!("\"v{}\"", self.version);
        if req.headers().get("if-none-match").is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
            return Response::builder().status(StatusCode::NOT_MODIFIED).body(Empty::new().boxed()).unwrap();
        }
        Response::builder().header("etag", etag).body(Full::new(self.bundle.clone()).boxed()).unwrap()
    }
}

fn answer(req: &Request<Incoming>, addr: SocketAddr, bundle: &Bytes, signature: &Bytes, tampered: &Bytes) -> Reply {
    let full = |bytes: &Bytes| Full::new(bytes.clone()).boxed();
    let status = |code: StatusCode| Response::builder().status(code).body(Empty::new().boxed()).unwrap();
    let redirect = |to: String| {
        Response::builder().status(StatusCode::FOUND).header("location", to).body(Empty::new().boxed()).unwrap()
    };
    match req.uri().path() {
        "/campaign.tar" => {
            if req.headers().get("if-none-match").is_some_and(|v| v == "\"v1\"") {
                return status(StatusCode::NOT_MODIFIED);
            }
            Response::builder().header("etag", "\"v1\"").body(full(bundle)).unwrap()
        }
        "/campaign.tar.minisig" | "/tampered.tar.minisig" => Response::new(full(signature)),
        "/tampered.tar" => Response::new(full(tampered)),
        "/unsigned.tar" => Response::new(full(bundle)),
        "/big.tar" => Response::new(Full::new(Bytes::from(vec![b'x'; MAX_BUNDLE_BYTES + 1])).boxed()),
        "/streamed.tar" => Response::new(Streamed { left: MAX_BUNDLE_BYTES + 1 }.boxed()),
        "/stalled.tar" => Response::new(Stalled.boxed()),
        "/moved.tar" => redirect("/campaign.tar".into()),
        "/moved.tar.minisig" => redirect(format!("https://{addr}/campaign.tar.minisig")),
        "/to-http.tar" => redirect(format!("http://{addr}/campaign.tar")),
        "/loop.tar" => redirect("/loop.tar".into()),
        _ => status(StatusCode::NOT_FOUND),
    }
}

#[tokio::test]
async fn a_signed_bundle_is_fetched_verified_and_loaded_then_not_modified() {
    let Some(province) = province() else { return };
    let server = serve(&province).await;
    let ca = [server.ca.clone()];
    let url = server.url("/campaign.tar");
    let Fetched::New { bundle, signature, validators } =
        fetch(&url, Some(&ca), None, &FetchLimits::default()).await.unwrap()
    else {
        panic!("a first fetch is never NotModified");
    };
    assert_eq!(bundle, province.bundle);
    bundle::verify(&bundle, &signature, &province.key).unwrap();
    let campaign = bundle::load(&bundle, &url).unwrap();
    assert_eq!(campaign.name, NAME);
    assert_eq!(campaign.locales.len(), 8);
    assert_eq!(validators, Validators { etag: Some("\"v1\"".into()), last_modified: None });
    assert_eq!(server.requests(), ["/campaign.tar", "/campaign.tar.minisig"]);

    // Unchanged: a 304, and the signature is not asked for again.
    let again = fetch(&url, Some(&ca), Some(&validators), &FetchLimits::default()).await.unwrap();
    assert!(matches!(again, Fetched::NotModified), "{again:?}");
    assert_eq!(server.requests().len(), 3);

    // Published behind a redirect (a CDN, a release page): followed, and
    // the signature is the same bundle's.
    let Fetched::New { bundle, signature, .. } =
        fetch(&server.url("/moved.tar"), Some(&ca), None, &FetchLimits::default()).await.unwrap()
    else {
        panic!("no validators were sent");
    };
    bundle::verify(&bundle, &signature, &province.key).unwrap();
}

#[tokio::test]
async fn a_server_whose_certificate_the_ca_did_not_sign_is_not_trusted() {
    let Some(province) = province() else { return };
    let server = serve(&province).await;
    let dir = tempfile::tempdir().unwrap();
    let stranger = pki(dir.path(), "stranger").ca;
    let url = server.url("/campaign.tar");
    let e = fetch(&url, Some(&[stranger]), None, &FetchLimits::default()).await.unwrap_err();
    assert!(matches!(e, FetchError::Untrusted { .. }), "{e}");
    assert!(e.to_string().starts_with("127.0.0.1: the server's certificate is not trusted"), "{e}");
    // With the system's roots alone: untrusted too, or, on a machine with
    // no roots at all, refused for that.
    let e = fetch(&url, None, None, &FetchLimits::default()).await.unwrap_err();
    let has_roots = SYSTEM_ROOTS.iter().any(|p| Path::new(p).exists());
    assert!(matches!(e, FetchError::Untrusted { .. }) || !has_roots && matches!(e, FetchError::NoTrustRoots), "{e}");
    assert!(server.requests().is_empty(), "nothing was sent to an untrusted server");
}

#[tokio::test]
async fn a_tampered_bundle_another_key_and_a_missing_signature_are_refused() {
    let Some(province) = province() else { return };
    let server = serve(&province).await;
    let ca = [server.ca.clone()];
    let Fetched::New { bundle, signature, .. } =
        fetch(&server.url("/tampered.tar"), Some(&ca), None, &FetchLimits::default()).await.unwrap()
    else {
        panic!("no validators were sent");
    };
    let e = bundle::verify(&bundle, &signature, &province.key).unwrap_err();
    assert!(e.contains("changed after signing"), "{e}");

    let e = bundle::verify(&province.bundle, &province.signature, &province.other_key).unwrap_err();
    assert!(e.contains("signed with another key"), "{e}");

    let url = server.url("/unsigned.tar");
    let e = fetch(&url, Some(&ca), None, &FetchLimits::default()).await.unwrap_err();
    assert_eq!(e.to_string(), format!("{url}.minisig: the server answered 404 Not Found"));
}

#[tokio::test]
async fn a_bundle_over_the_limit_is_refused() {
    let Some(province) = province() else { return };
    let server = serve(&province).await;
    let ca = [server.ca.clone()];
    // Announced by Content-Length, and streamed without one.
    for path in ["/big.tar", "/streamed.tar"] {
        let e = fetch(&server.url(path), Some(&ca), None, &FetchLimits::default()).await.unwrap_err();
        assert!(matches!(e, FetchError::TooLarge { limit: MAX_BUNDLE_BYTES, .. }), "{path}: {e}");
    }
    // A lower limit applies to the real bundle too.
    let limits = FetchLimits { max_bytes: province.bundle.len() - 1, ..FetchLimits::default() };
    let e = fetch(&server.url("/campaign.tar"), Some(&ca), None, &limits).await.unwrap_err();
    assert!(e.to_string().contains(&format!("more than {} bytes", province.bundle.len() - 1)), "{e}");
}

#[tokio::test]
async fn a_server_that_stalls_is_refused_within_the_deadline() {
    let Some(province) = province() else { return };
    let server = serve(&province).await;
    let ca = [server.ca.clone()];
    // One that accepts and never says anything, and one that sends its
    // headers and then no body.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("https://{}/campaign.tar", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            held.push(tcp);
        }
    });
    let limits = FetchLimits { total_timeout: Duration::from_millis(500), ..FetchLimits::default() };
    for url in [silent_url, server.url("/stalled.tar")] {
        let started = Instant::now();
        let e = fetch(&url, Some(&ca), None, &limits).await.unwrap_err();
        assert!(matches!(e, FetchError::Timeout { .. }), "{url}: {e}");
        assert!(started.elapsed() < Duration::from_secs(3), "{url}: refused only after {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn http_urls_and_redirects_to_http_or_in_a_loop_are_refused() {
    let Some(province) = province() else { return };
    let server = serve(&province).await;
    let ca = [server.ca.clone()];
    let e = fetch(&format!("http://{}/campaign.tar", server.addr), Some(&ca), None, &FetchLimits::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("http:// is refused"), "{e}");
    assert!(server.requests().is_empty());

    let e = fetch(&server.url("/to-http.tar"), Some(&ca), None, &FetchLimits::default()).await.unwrap_err();
    assert!(matches!(e, FetchError::Redirect { .. }) && e.to_string().contains("http:// is refused"), "{e}");
    let e = fetch(&server.url("/loop.tar"), Some(&ca), None, &FetchLimits::default()).await.unwrap_err();
    assert!(e.to_string().contains("more than 3 redirects"), "{e}");
    assert_eq!(server.requests().iter().filter(|p| *p == "/loop.tar").count(), 4);
}

/// The splash's campaign, as the built-in campaign's or a province's name.
async fn on_the_air(portal: &common::TestPortal) -> String {
    // The provinces' campaigns are copies of the built-in one (their texts
    // say Bluezone too): their own names first.
    let splash = portal.page("/", &[]).await.text();
    let name = [NAME, "Phòng chống bão 2026", "Bluezone"].into_iter().find(|name| splash.contains(name));
    name.unwrap_or("none").to_owned()
}

/// Waits (at most `within`) until `name` is on the air; how long it took.
async fn wait_for(portal: &common::TestPortal, name: &str, within: Duration) -> Duration {
    let start = Instant::now();
    while on_the_air(portal).await != name {
        assert!(start.elapsed() < within, "{name} not on the air after {within:?}: {}", on_the_air(portal).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

fn fetches(metrics: &str, result: &str) -> u64 {
    let series = format!("portico_campaign_bundle_fetches_total{{result=\"{result}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |n| n.parse().unwrap())
}

async fn metrics(portal: &common::TestPortal) -> String {
    common::send(portal.admin, "GET", "127.0.0.1", "/metrics", &[], Bytes::new()).await.text()
}

/// Issue 13 end to end on a running gateway: the province's bundle goes on
/// the air within a poll, a newer one replaces it, a tampered one, one
/// signed by another key, one over the size limit and a server that
/// stalls are each refused while the campaign on the air stays, and a
/// restart with the province's server unreachable shows the last good
/// bundle at once.
#[tokio::test]
async fn a_gateway_keeps_its_bundle_current_refuses_bad_ones_and_boots_offline_with_the_last_good() {
    let Some(province) = province() else { return };
    let server = serve(&province).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("province-ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let portal_lines = format!(
        "session = \"12h\"\ncampaign = \"{}\"\ncampaign_key = \"{}\"\ncampaign_ca = \"{}\"\ncampaign_poll = \"1s\"",
        server.url("/live.tar"),
        province.key_line,
        ca.display()
    );
    let state = dir.path().join("state");
    let started = Instant::now();
    let portal = common::TestPortal::builder(&state).portal(&portal_lines).start().await;
    let first = wait_for(&portal, NAME, Duration::from_secs(20)).await;
    println!("the first bundle was on the air {:?} after start", started.elapsed().max(first));

    let (storm, signature) = province.publish("Phòng chống bão 2026", "province.key");
    server.published.lock().unwrap().set(storm.clone(), signature.clone());
    let took = wait_for(&portal, "Phòng chống bão 2026", Duration::from_secs(20)).await;
    println!("a new bundle was on the air {took:?} after it was published (poll 1s)");
    assert_eq!(fetches(&metrics(&portal).await, "new"), 2);
    // Asked again every second, and answered 304 while nothing changes.
    let start = Instant::now();
    while fetches(&metrics(&portal).await, "not_modified") == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "no conditional request was answered 304");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fetches(&metrics(&portal).await, "new"), 2, "an unchanged bundle is not taken again");

    // Each refused, the storm campaign staying on the air throughout.
    let mut tampered = storm.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    let (other, other_signature) = province.publish(NAME, "other.key");
    let big = vec![0u8; bundle::MAX_BUNDLE_BYTES + 1];
    let cases: [(&str, Vec<u8>, String, &str); 3] = [
        ("tampered", tampered, signature.clone(), "refused"),
        ("another key", other, other_signature, "refused"),
        ("over the limit", big, signature.clone(), "failed"),
    ];
    for (what, bundle, signature, result) in cases {
        let before = fetches(&metrics(&portal).await, result);
        server.published.lock().unwrap().set(bundle, signature);
        let start = Instant::now();
        while fetches(&metrics(&portal).await, result) == before {
            assert!(start.elapsed() < Duration::from_secs(20), "the {what} bundle was never refused");
            assert_eq!(on_the_air(&portal).await, "Phòng chống bão 2026", "{what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(on_the_air(&portal).await, "Phòng chống bão 2026", "{what}");
    }
    // A server that accepts and then sends nothing: the fetch is cut off,
    // and the splash is answered all the while.
    server.published.lock().unwrap().stalled = true;
    let before = fetches(&metrics(&portal).await, "failed");
    let start = Instant::now();
    while fetches(&metrics(&portal).await, "failed") == before {
        assert!(start.elapsed() < Duration::from_secs(30), "a stalled fetch was never cut off");
        let asked = Instant::now();
        assert_eq!(on_the_air(&portal).await, "Phòng chống bão 2026");
        assert!(asked.elapsed() < Duration::from_secs(2), "the splash waited for the fetch");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    portal.stop().await;

    // Offline: the province's server answers nothing useful. The last good
    // bundle is on the air from the first request and stays.
    {
        let mut published = server.published.lock().unwrap();
        (published.stalled, published.down) = (false, true);
    }
    let portal = common::TestPortal::builder(&state).portal(&portal_lines).start().await;
    assert_eq!(on_the_air(&portal).await, "Phòng chống bão 2026", "the kept copy after an offline restart");
    let start = Instant::now();
    while fetches(&metrics(&portal).await, "failed") == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "the offline server was never asked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(on_the_air(&portal).await, "Phòng chống bão 2026");
    portal.stop().await;
}
