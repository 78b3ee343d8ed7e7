//! The OpenWrt package (`deploy/openwrt/`) without a router.
//!
//! - `shellcheck` passes the procd init script, and every shell script of
//!   the project (`*.sh`, `.ci/*`). Where shellcheck is missing the tests
//!   print `SKIPPED: shellcheck not installed` and pass, except under
//!   `CI=true`, where `.ci/run` installs it.
//! - The init script does what an operator relies on. It is sourced as
//!   `/etc/rc.common` sources it, by `sh` and, where it is installed, by
//!   busybox's (OpenWrt's shell), with `procd_*`, `logger`, `fw4` and `nft`
//!   as shell functions that write down their calls and a stub `portico` on
//!   PATH. Then its three paths are pointed at the stubs (`PROG=portico`,
//!   `RUNDIR` in a temp dir) and `start_service` or `reload_service` runs,
//!   each in a shell of its own as each `/etc/init.d/portico start` is.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const INIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/openwrt/files/portico.init");

/// What the stub `portico firewall print --fw4` prints at first.
const INCLUDE: &str = "iifname { \"br-guest\" } tcp dport { 8080 } accept comment \"portico: the portal\"\n";

fn has(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// `shellcheck FILES` from the project's root; false (and SKIPPED) where
/// it is not installed.
fn shellcheck(files: &[PathBuf]) -> bool {
    if !has("shellcheck") {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "shellcheck not installed: CI must run this test");
        println!("SKIPPED: shellcheck not installed");
        return false;
    }
    let out = Command::new("shellcheck").args(files).current_dir(ROOT).output().unwrap();
    assert!(
        out.status.success(),
        "shellcheck:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// The project's shell scripts: every `*.sh` outside build output and
/// node_modules, and everything in `.ci/`.
fn shell_scripts() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    walk(&path, out);
                }
            } else if kind.is_file() && name.ends_with(".sh") {
                out.push(path);
            }
        }
    }
    let mut scripts = Vec::new();
    walk(Path::new(ROOT), &mut scripts);
    for entry in std::fs::read_dir(Path::new(ROOT).join(".ci")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            scripts.push(entry.path());
        }
    }
    scripts.sort();
    scripts
}

#[test]
fn shellcheck_passes_the_init_script() {
    shellcheck(&[PathBuf::from(INIT)]);
}

#[test]
fn shellcheck_passes_every_shell_script() {
    let scripts = shell_scripts();
    assert!(scripts.iter().any(|s| s.ends_with(".ci/run")), "no .ci/run among {scripts:?}");
    assert!(scripts.iter().any(|s| s.ends_with("deploy/static/build.sh")), "no build.sh among {scripts:?}");
    if shellcheck(&scripts) {
        println!("shellcheck: {} scripts", scripts.len());
    }
}

/// The shells to source the init script with: `sh`, and busybox's where
/// it is installed.
fn shells() -> Vec<Vec<&'static str>> {
    let mut shells = vec![vec!["sh"]];
    if Command::new("busybox").arg("true").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
        shells.push(vec!["busybox", "sh"]);
    }
    shells
}

/// A router without a router: the stubs in a temp dir.
struct Router {
    dir: tempfile::TempDir,
    shell: Vec<&'static str>,
}

impl Router {
    fn new(shell: &[&'static str]) -> Router {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("bin")).unwrap();
        // `check` fails while `check-fails` exists, `firewall print` while
        // `print-fails` does; `firewall print` prints the file `include`.
        let stub = format!(
            r#"#!/bin/sh
d='{d}'
echo "portico $*" >>"$d/calls"
case "$1" in
check)
	if [ -e "$d/check-fails" ]; then
		echo '/etc/portico/portico.toml: firewall.interface: there is no interface "br-guest" on this machine' >&2
		exit 1
	fi
	echo 'ok: /etc/portico/portico.toml' ;;
firewall)
	[ -e "$d/print-fails" ] && exit 1
	cat "$d/include" ;;
*)
	exit 2 ;;
esac
"#,
            d = d.display()
        );
        std::fs::write(d.join("bin/portico"), stub).unwrap();
        Command::new("chmod").arg("+x").arg(d.join("bin/portico")).status().unwrap();
        std::fs::write(d.join("include"), INCLUDE).unwrap();
        Router { dir, shell: shell.to_vec() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn set(&self, marker: &str, on: bool) {
        if on {
            std::fs::write(self.path(marker), "").unwrap();
        } else {
            let _ = std::fs::remove_file(self.path(marker));
        }
    }

    /// Sources the init script with the stubs and runs `function`; its
    /// status is written down as `FUNCTION -> N`.
    fn run(&self, function: &str) {
        let d = self.dir.path().display().to_string();
        let harness = format!(
            r#"calls='{d}/calls'
procd_open_instance() {{ echo "procd_open_instance $*" >>"$calls"; }}
procd_set_param() {{ echo "procd_set_param $*" >>"$calls"; }}
procd_close_instance() {{ echo "procd_close_instance $*" >>"$calls"; }}
procd_send_signal() {{ echo "procd_send_signal $*" >>"$calls"; }}
logger() {{
	tag=
	while [ "$#" -gt 0 ]; do
		case "$1" in
		-s) shift ;;
		-t) tag=$2; shift 2 ;;
		*) break ;;
		esac
	done
	if [ "$#" -gt 0 ]; then echo "logger[$tag] $*"; else sed "s/^/logger[$tag] /"; fi >>"$calls"
}}
fw4() {{ echo "fw4 $*" >>"$calls"; }}
nft() {{ echo "nft $*" >>"$calls"; [ -e '{d}/fw4-loaded' ]; }}
. '{INIT}'
PROG=portico
RUNDIR='{d}/run'
{function}
echo "{function} -> $?" >>"$calls"
"#
        );
        let path = format!("{d}/bin:{}", std::env::var("PATH").unwrap_or_default());
        let out = Command::new(self.shell[0])
            .args(&self.shell[1..])
            .args(["-c", &harness])
            .env("PATH", path)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{} {function}: {}\n{}\ncalls:\n{}",
            self.shell.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.calls().join("\n")
        );
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("calls")).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    fn count(&self, prefix: &str) -> usize {
        self.calls().iter().filter(|c| c.starts_with(prefix)).count()
    }

    fn include(&self) -> Option<String> {
        std::fs::read_to_string(self.path("run/fw4-input.nft")).ok()
    }

    /// What is in RUNDIR: the include and nothing else (no temp file left).
    fn rundir(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path("run"))
            .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

#[test]
fn the_scripts_paths_are_openwrts() {
    let script = std::fs::read_to_string(INIT).unwrap();
    for line in [
        "#!/bin/sh /etc/rc.common",
        "USE_PROCD=1",
        "PROG=/usr/bin/portico",
        "CONFIG=/etc/portico/portico.toml",
        "RUNDIR=/var/run/portico",
    ] {
        assert!(script.lines().any(|l| l.trim() == line), "the init script has no line {line:?}");
    }
    let makefile = std::fs::read_to_string(Path::new(ROOT).join("deploy/openwrt/Makefile")).unwrap();
    assert!(
        makefile.contains("$(LN) /var/run/portico/fw4-input.nft $(1)/usr/share/nftables.d/chain-pre/input/portico.nft"),
        "the package's link is not to the file the init script writes"
    );
}

#[test]
fn start_registers_portico_run_respawned_with_hup_as_its_reload_signal() {
    for shell in shells() {
        let router = Router::new(&shell);
        router.run("start_service");
        let calls = router.calls();
        let procd: Vec<&String> = calls.iter().filter(|c| c.starts_with("procd_")).collect();
        let context = format!("{}: {calls:#?}", shell.join(" "));
        assert_eq!(procd.first().map(|c| c.trim()), Some("procd_open_instance"), "{context}");
        assert_eq!(procd.last().map(|c| c.trim()), Some("procd_close_instance"), "{context}");
        for param in [
            "procd_set_param command portico run --config /etc/portico/portico.toml",
            "procd_set_param reload_signal HUP",
            "procd_set_param file /etc/portico/portico.toml",
            "procd_set_param term_timeout 20",
            "procd_set_param limits nofile=8192 8192",
            "procd_set_param stdout 1",
            "procd_set_param stderr 1",
        ] {
            assert_eq!(procd.iter().filter(|c| c.as_str() == param).count(), 1, "{param:?} once: {context}");
        }
        let respawn: Vec<&str> = procd
            .iter()
            .find_map(|c| c.strip_prefix("procd_set_param respawn "))
            .unwrap_or_else(|| panic!("no respawn: {context}"))
            .split(' ')
            .collect();
        assert!(respawn.len() == 3 && respawn.iter().all(|n| n.parse::<u32>().is_ok()), "respawn: {context}");
        assert!(calls.contains(&"portico check --config /etc/portico/portico.toml".to_owned()), "{context}");
        assert!(calls.contains(&"start_service -> 0".to_owned()), "{context}");
    }
}

#[test]
fn the_include_is_written_and_fw4_reloaded_only_when_it_changed() {
    for shell in shells() {
        let router = Router::new(&shell);
        router.set("fw4-loaded", true);
        let context = || format!("{}: {:#?}", shell.join(" "), router.calls());

        // The first start after a boot: the file is new, fw4 reads it.
        router.run("start_service");
        assert_eq!(router.include().as_deref(), Some(INCLUDE), "{}", context());
        assert!(
            router.calls().contains(&"portico firewall print --config /etc/portico/portico.toml --fw4".to_owned()),
            "{}",
            context()
        );
        assert_eq!(router.count("fw4 "), 1, "{}", context());
        assert_eq!(router.calls().iter().filter(|c| c.as_str() == "fw4 -q reload").count(), 1, "{}", context());
        assert_eq!(router.rundir(), ["fw4-input.nft"], "{}", context());

        // Started again, and reloaded, with the same config: no fw4 reload.
        router.run("start_service");
        router.run("reload_service");
        assert_eq!(router.count("fw4 "), 1, "{}", context());
        assert_eq!(router.include().as_deref(), Some(INCLUDE), "{}", context());
        assert_eq!(router.rundir(), ["fw4-input.nft"], "{}", context());
        assert!(router.calls().contains(&"procd_send_signal portico * HUP".to_owned()), "{}", context());

        // A TLS port added: reload rewrites the include, fw4 reads it again,
        // Portico gets its HUP.
        let tls = INCLUDE.replace("{ 8080 }", "{ 8080, 8443 }");
        std::fs::write(router.path("include"), &tls).unwrap();
        router.run("reload_service");
        assert_eq!(router.include().as_deref(), Some(tls.as_str()), "{}", context());
        assert_eq!(router.count("fw4 -q reload"), 2, "{}", context());
        assert_eq!(router.count("procd_send_signal portico * HUP"), 2, "{}", context());
        assert!(router.calls().contains(&"reload_service -> 0".to_owned()), "{}", context());
    }
}

#[test]
fn without_fw4_loaded_the_include_is_written_and_fw4_left_alone() {
    for shell in shells() {
        let router = Router::new(&shell);
        router.run("start_service");
        let context = format!("{}: {:#?}", shell.join(" "), router.calls());
        assert_eq!(router.include().as_deref(), Some(INCLUDE), "{context}");
        assert_eq!(router.count("fw4 "), 0, "{context}");
        assert_eq!(router.count("procd_open_instance"), 1, "{context}");
    }
}

#[test]
fn a_config_that_fails_check_is_not_started_nor_sent_to_the_running_one() {
    for shell in shells() {
        let router = Router::new(&shell);
        router.set("fw4-loaded", true);
        router.set("check-fails", true);
        router.run("start_service");
        let context = || format!("{}: {:#?}", shell.join(" "), router.calls());
        assert!(router.calls().contains(&"start_service -> 1".to_owned()), "{}", context());
        assert_eq!(router.count("procd_"), 0, "no instance opened: {}", context());
        assert_eq!(router.include(), None, "{}", context());
        assert_eq!(router.count("fw4 "), 0, "{}", context());
        // What the operator reads in `logread`: why, with check's own words.
        assert!(router.count("logger[portico] not starting: /etc/portico/portico.toml") == 1, "{}", context());
        assert!(
            router.calls().iter().any(|c| c.starts_with("logger[portico] ") && c.contains("no interface \"br-guest\""))
        );

        // Running on a good config, then edited into a bad one: reload
        // leaves Portico and the include as they are.
        router.set("check-fails", false);
        router.run("start_service");
        router.set("check-fails", true);
        std::fs::write(router.path("include"), "# changed\n").unwrap();
        router.run("reload_service");
        assert!(router.calls().contains(&"reload_service -> 1".to_owned()), "{}", context());
        assert_eq!(router.count("procd_send_signal"), 0, "{}", context());
        assert_eq!(router.include().as_deref(), Some(INCLUDE), "{}", context());
        assert_eq!(router.count("logger[portico] not reloading: "), 1, "{}", context());
    }
}

#[test]
fn a_failing_firewall_print_leaves_the_include_as_it_was() {
    for shell in shells() {
        let router = Router::new(&shell);
        router.set("fw4-loaded", true);
        router.run("start_service");
        router.set("print-fails", true);
        std::fs::write(router.path("include"), "# changed\n").unwrap();
        router.run("start_service");
        let context = format!("{}: {:#?}", shell.join(" "), router.calls());
        assert_eq!(router.include().as_deref(), Some(INCLUDE), "{context}");
        assert_eq!(router.rundir(), ["fw4-input.nft"], "{context}");
        assert_eq!(router.count("fw4 "), 1, "{context}");
        assert_eq!(router.count("logger[portico] portico firewall print --fw4 failed"), 1, "{context}");
        // Portico still starts: its own table gates whatever fw4 does.
        assert_eq!(router.count("procd_open_instance"), 2, "{context}");
    }
}
