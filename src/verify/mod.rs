//! `trunkd verify <trunk>`: a one-shot check of one trunk against its carrier, for the
//! operator who just added it. It prints one line per step and exits non-zero on failure:
//!
//! ```text
//!  config ─► dns ─► transport ─► options ─► register (+ un-REGISTER) ─► nat ─► allowlist
//! ```
//!
//! It runs beside a running daemon without disturbing it: it never binds the configured
//! listen ports (its UDP socket is ephemeral, its TCP/TLS connections are its own), its
//! REGISTER has its own Call-ID and a Contact naming that ephemeral socket, and it removes
//! exactly that Contact again (Expires: 0), so the daemon's binding stays. The SIP work is
//! done by the daemon's own sans-IO machines (`trunk::keepalive::Keepalive`,
//! `trunk::registration::Registration`) driven in real time here, so what verify sees is
//! what the daemon would see.
//!
//! The report never contains a secret: no password, no Authorization header, no nonce.
//!
//! One file a concern: `report` (the lines and the exit status), `dns`, `transport` (the
//! connection the SIP steps share), `drive` (a sans-IO machine run in real time behind
//! the `Probe` trait), `options` and `register` (the two probes), and `checks` (the steps
//! that only compare: config, NAT, allowlist).

mod checks;
mod dns;
mod drive;
mod options;
mod register;
mod report;
mod transport;

use std::net::SocketAddr;
use std::path::Path;

use crate::config::{self, Config, LoadOptions, Trunk};

use checks::{allowlist_step, config_step, nat_step};
use dns::resolve;
use drive::Observed;
use options::options_step;
use register::register_steps;
use report::{Report, Status, Step};
use transport::connect;

/// Exit status: every step passed (warnings allowed).
pub const EXIT_OK: u8 = 0;
/// Exit status: at least one step failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: no trunk with that id in the config.
pub const EXIT_UNKNOWN_TRUNK: u8 = 2;

/// Loads the config, checks trunk `trunk_id` step by step and prints the report to stdout.
/// Returns the exit status: [`EXIT_OK`], [`EXIT_FAILED`] or [`EXIT_UNKNOWN_TRUNK`].
pub fn run(config_path: &Path, trunk_id: &str, options: &LoadOptions) -> u8 {
    let mut report = Report::default();
    let config = match config::load(config_path, options) {
        Ok(config) => config,
        Err(errors) => {
            let mut step = Step::new(
                Status::Fail,
                "config",
                format!(
                    "{}: invalid: {}",
                    config_path.display(),
                    crate::io::count_of(errors.0.len(), "error")
                ),
            );
            step.details = errors.0.iter().map(ToString::to_string).collect();
            report.add(step);
            return report.finish();
        }
    };
    let Some(trunk) = config.trunks.get(trunk_id).cloned() else {
        let ids: Vec<&str> = config.trunks.keys().map(String::as_str).collect();
        let known = if ids.is_empty() {
            "it defines no trunks".to_owned()
        } else {
            format!("trunks: {}", ids.join(", "))
        };
        report.add(Step::new(
            Status::Fail,
            "config",
            format!(
                "no trunk \"{trunk_id}\" in {}; {known}",
                config_path.display()
            ),
        ));
        report.finish();
        return EXIT_UNKNOWN_TRUNK;
    };
    report.add(config_step(&config, &trunk));

    // One crypto provider for the process, as `run` does; client_config also passes it
    // explicitly, so an already installed one is fine.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            report.add(Step::new(
                Status::Fail,
                "runtime",
                format!("cannot start the runtime: {error}"),
            ));
            return report.finish();
        }
    };
    runtime.block_on(verify(&config, &trunk, &mut report));
    report.finish()
}

/// Steps 2 to 7, each printed as it finishes.
async fn verify(config: &Config, trunk: &Trunk, report: &mut Report) {
    let timers = config.daemon.timers;
    let public_ip = config
        .daemon
        .public_address
        .as_ref()
        .and_then(|host| host.ip());
    let has_credentials = trunk.username.is_some() && trunk.password.is_some();

    let register_skipped = |why: &str| {
        if has_credentials {
            Step::new(Status::Skip, "register", why)
        } else {
            no_credentials_step(trunk)
        }
    };
    let Some(resolution) = resolve(config, trunk, report).await else {
        let why = "no next hop (dns failed)";
        report.add(Step::new(Status::Skip, "transport", why));
        report.add(Step::new(Status::Skip, "options", why));
        report.add(register_skipped(why));
        report.add(Step::new(Status::Skip, "nat", why));
        report.add(Step::new(Status::Skip, "allowlist", why));
        return;
    };

    let mut observed = Observed::default();
    let mut link = match connect(config, trunk, &resolution, public_ip).await {
        Ok((link, step)) => {
            report.add(step);
            link
        }
        Err(step) => {
            report.add(step);
            report.add(Step::new(Status::Skip, "options", "no connection"));
            report.add(register_skipped("no connection"));
            report.add(Step::new(Status::Skip, "nat", "no response to compare"));
            report.add(allowlist_step(trunk, &resolution.targets, &[]));
            return;
        }
    };

    report.add(options_step(trunk, &resolution, &mut link, timers, &mut observed).await);
    if has_credentials {
        for step in register_steps(config, trunk, &resolution, &mut link, &mut observed).await {
            report.add(step);
        }
    } else {
        report.add(no_credentials_step(trunk));
    }
    report.add(nat_step(
        trunk.transport,
        link.advertised,
        public_ip.is_some(),
        config.daemon.public_address.as_ref(),
        &observed.vias,
    ));
    let sources: Vec<SocketAddr> = observed.vias.iter().map(|via| via.source).collect();
    report.add(allowlist_step(trunk, &resolution.targets, &sources));
}

fn no_credentials_step(trunk: &Trunk) -> Step {
    let mut step = Step::new(
        Status::Skip,
        "register",
        "the trunk has no username and password",
    );
    if trunk.register {
        step.status = Status::Warn;
        step.summary = "register = true but the trunk has no username and password".into();
    }
    step
}

/// A per-process seed from the OS-seeded keys of std's hasher (as the daemon's).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

fn user_agent() -> String {
    format!("trunkd/{} (verify)", env!("CARGO_PKG_VERSION"))
}
