//! The manual pages and shell completions of the Debian package, made from
//! the command line itself (`portico::cli::Cli`), so they cannot drift from
//! it: `portico.1`, one page per subcommand (`portico-firewall-print.1`),
//! and the bash, zsh and fish completions (`portico.bash`, `_portico`,
//! `portico.fish`), all written into the folder given as the only argument.
//!
//! `cargo run --example portico-docs -- target/docs`, then `cargo deb`
//! (`.ci/package` does both): Cargo.toml's `[package.metadata.deb]` takes
//! them from `target/docs/`.

#![forbid(unsafe_code)]

use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        anyhow::bail!("usage: portico-docs FOLDER");
    };
    let out = Path::new(&out);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;

    // No page for `help`: every page says what `--help` says.
    let mut cli = portico::cli::Cli::command().disable_help_subcommand(true);
    cli.build();
    let mut pages = 0;
    write_pages(&cli, &[], out, &mut pages)?;

    let mut cli = portico::cli::Cli::command();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cli, "portico", out)
            .with_context(|| format!("writing the {shell} completion into {}", out.display()))?;
    }
    println!("{pages} manual pages and 3 shell completions in {}", out.display());
    Ok(())
}

/// The page of `cmd` (its name as clap displays it: `portico-firewall-print`)
/// and those of its subcommands; `parents` are the pages above it.
fn write_pages(cmd: &clap::Command, parents: &[String], out: &Path, pages: &mut usize) -> anyhow::Result<()> {
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name()).to_owned();
    let mut page = Vec::new();
    Man::new(cmd.clone())
        .date(date())
        .source(format!("portico {}", env!("CARGO_PKG_VERSION")))
        .manual("Portico")
        .render(&mut page)?;

    let mut extra = Roff::new();
    if parents.is_empty() {
        files_section(&mut extra);
    }
    // SEE ALSO: the pages above and below this one, then the tools it drives.
    let mut see_also: Vec<String> = parents.iter().map(|p| format!("{p}(1)")).collect();
    see_also.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).map(|s| format!("{name}-{}(1)", s.get_name())));
    let tools: &[&str] = if parents.is_empty() {
        &["nft(8)", "dnsmasq(8)", "systemctl(1)"]
    } else if name.starts_with("portico-firewall") {
        &["nft(8)"]
    } else if name.starts_with("portico-dhcp") {
        &["dnsmasq(8)"]
    } else {
        &[]
    };
    see_also.extend(tools.iter().map(|t| t.to_string()));
    extra.control("SH", ["SEE ALSO"]);
    extra.text([roman(see_also.join(", "))]);
    page.extend_from_slice(extra.render().as_bytes());

    let path = out.join(format!("{name}.1"));
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    *pages += 1;

    let mut parents = parents.to_vec();
    parents.push(name);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, &parents, out, pages)?;
    }
    Ok(())
}

/// The pages' date, YYYY-MM-DD: that of `SOURCE_DATE_EPOCH` (.ci/package sets
/// it to the changelog's), or today's.
fn date() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    });
    // Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil, inverted).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Where the Debian package puts what `portico run` reads and writes.
fn files_section(roff: &mut Roff) {
    roff.control("SH", ["FILES"]);
    for (file, what) in [
        ("/etc/portico/portico.toml", "The service's config; portico check --config FILE says what is wrong with it."),
        ("/usr/lib/systemd/system/portico.service", "The systemd unit, not enabled on install."),
        ("/var/lib/portico", "The grants and trusted devices (the unit's state folder)."),
        ("/usr/share/doc/portico/README.md", "The configuration keys, the gate and the wiring of dnsmasq."),
    ] {
        roff.control("TP", []);
        roff.text([bold(file)]);
        roff.text([roman(what)]);
    }
}
