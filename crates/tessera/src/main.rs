//! The `tessera` binary: the server, and the admin commands that work on its store.

mod cli;
mod output;
mod token;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tessera_core::ManageError;
use tessera_proto::{
    ApplicationCreate, ApplicationList, ApplicationPatch, AuditList, IssueToken, KeyRotate,
    QuotaView, RealmCreate, RealmPatch, SecretRotate,
};
use tessera_server::operations::{self, Actor};
use tessera_server::{AdminKeySource, Config};

use crate::cli::{AppCommand, AppSettings, Cli, Command, RealmCommand, RealmSettings};
use crate::output::Output;

/// A request allocates and frees a few dozen small buffers; mimalloc does that in a
/// fraction of glibc's time (bench/README.md has the before and after).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Gives the pages mimalloc holds free back to the system now, instead of on later
/// allocations (which a server gone quiet after a flood does not make). The only
/// `unsafe` in the workspace: `mi_collect` takes no pointer and may be called from any
/// thread at any time.
#[allow(unsafe_code)]
fn release_free_memory() {
    // SAFETY: a plain C call with no arguments to uphold; it only walks the
    // allocator's own structures under its own synchronisation.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

fn main() -> ExitCode {
    tessera_server::memory::on_release(release_free_memory);
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Bad arguments (a field that did not parse) exit 2, like clap's own errors.
            let usage = err
                .downcast_ref::<ManageError>()
                .is_some_and(|e| matches!(e, ManageError::Invalid(_)));
            eprintln!("error: {err:#}");
            if usage {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref(), |name| std::env::var(name).ok())
        .context("invalid configuration")?;
    let out = Output { json: cli.json };
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let url = tessera_server::migrate(&config).await?;
            out.done(&format!("The database schema is up to date: {url}"));
            Ok(())
        }
        Command::Realm(command) => realm(&config, command, &out).await,
        Command::App(command) => app(&config, command, &out).await,
        Command::Audit {
            realm,
            client_id,
            limit,
            before,
        } => {
            let authority = authority(&config).await?;
            let query = AuditList {
                limit: Some(limit.to_string()),
                before: before.map(|b| b.to_string()),
                realm,
                client_id,
            };
            let page = operations::list_audit(&authority, query).await?;
            out.audit(&page.items);
            if let Some(next) = page.next.and_then(|n| n.before) {
                out.more(&format!("--before {next}"));
            }
            Ok(())
        }
        Command::Token(args) => token::run(*args, out.json).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(&config.log);
    // Every open connection holds a file descriptor: allow as many as the system lets
    // this process have, so that the connection caps, not the descriptor limit, decide.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "file descriptor limit"),
        Err(err) => tracing::warn!(error = %err, "could not raise the file descriptor limit"),
    }
    let data_dir = config.data_dir.clone();
    let running = tessera_server::start(config).await?;
    tracing::info!(
        public = %running.public_addr,
        admin = %running.admin_addr,
        issuer = %running.public_url,
        "tessera is serving"
    );
    println!("Tessera is serving tokens.");
    println!(
        "  public endpoints: http://{}  (issuer {})",
        running.public_addr, running.public_url
    );
    println!("  admin API:        http://{}", running.admin_addr);
    println!("  store:            {}", running.database_url);
    println!("  data directory:   {}", data_dir.display());
    match &running.admin_key_source {
        AdminKeySource::Environment => println!("  admin key:        from TESSERA_ADMIN_KEY"),
        AdminKeySource::File(path) => {
            println!("  admin key:        in {} (owner-only)", path.display())
        }
    }
    println!("Create a client:  tessera app create --name billing --scopes \"read write\"");
    shutdown_signal().await;
    tracing::info!("stopping: finishing in-flight requests");
    running.shutdown();
    running.wait().await?;
    Ok(())
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn authority(config: &Config) -> anyhow::Result<std::sync::Arc<tessera_core::Authority>> {
    let url = tessera_server::public_url_for(config, config.listen);
    Ok(tessera_server::open_authority(config, url).await?)
}

async fn realm(config: &Config, command: RealmCommand, out: &Output) -> anyhow::Result<()> {
    let authority = authority(config).await?;
    let authority = authority.as_ref();
    match command {
        RealmCommand::Create { name, settings } => {
            let input = RealmCreate {
                name,
                hosts: (!settings.hosts.is_empty()).then_some(settings.hosts),
                public_url: settings.public_url,
                token_format: settings.token_format,
                signing_alg: settings.signing_alg,
                token_prefix: settings.token_prefix,
                token_type: settings.token_type,
                key_rotation: settings.key_rotation,
            };
            out.realm(&operations::create_realm(authority, &Actor::cli(), input).await?);
        }
        RealmCommand::List => out.realms(&operations::list_realms(authority)),
        RealmCommand::Show { name } => out.realm(&operations::show_realm(authority, &name)?),
        RealmCommand::Update {
            name,
            settings,
            clear_public_url,
            no_key_rotation,
        } => {
            let RealmSettings {
                hosts,
                public_url,
                token_format,
                signing_alg,
                token_prefix,
                token_type,
                key_rotation,
            } = settings;
            let patch = RealmPatch {
                hosts: (!hosts.is_empty()).then_some(hosts),
                public_url: if clear_public_url {
                    Some(None)
                } else {
                    public_url.map(Some)
                },
                token_format,
                signing_alg,
                token_prefix,
                token_type,
                key_rotation: if no_key_rotation {
                    Some(None)
                } else {
                    key_rotation.map(Some)
                },
            };
            out.realm(&operations::update_realm(authority, &Actor::cli(), &name, patch).await?);
        }
        RealmCommand::RotateKeys { name, activate_in } => {
            let input = KeyRotate {
                activate_in: Some(activate_in),
            };
            out.realm(&operations::rotate_keys(authority, &Actor::cli(), &name, input).await?);
        }
        RealmCommand::Delete { name } => {
            operations::delete_realm(authority, &Actor::cli(), &name).await?;
            out.done(&format!("Deleted realm {name}"));
        }
    }
    Ok(())
}

fn split_scopes(text: Option<String>) -> Option<Vec<String>> {
    text.map(|t| t.split_whitespace().map(str::to_owned).collect())
}

fn read_public_key(path: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    path.map(|p| {
        std::fs::read_to_string(p)
            .with_context(|| format!("cannot read public key {}", p.display()))
    })
    .transpose()
}

async fn app(config: &Config, command: AppCommand, out: &Output) -> anyhow::Result<()> {
    let authority = authority(config).await?;
    let authority = authority.as_ref();
    match command {
        AppCommand::Create {
            realm,
            name,
            client_id,
            settings,
        } => {
            let AppSettings {
                scopes,
                default_scopes,
                scope_required,
                token_ttl,
                token_format,
                refresh_token_ttl,
                auth_methods,
                public_key,
                audiences,
                roles,
                quota_per_minute,
                quota_per_day,
            } = settings;
            let quota =
                (quota_per_minute.is_some() || quota_per_day.is_some()).then_some(QuotaView {
                    per_minute: quota_per_minute,
                    per_day: quota_per_day,
                });
            let input = ApplicationCreate {
                name,
                client_id,
                scopes: split_scopes(scopes),
                default_scopes: split_scopes(default_scopes),
                scope_required,
                token_ttl,
                token_format,
                refresh_token_ttl,
                auth_methods,
                public_key: read_public_key(public_key.as_deref())?,
                jwks: None,
                audiences,
                roles,
                quota,
                enabled: None,
            };
            let created =
                operations::create_application(authority, &Actor::cli(), &realm.realm, input)
                    .await?;
            out.created_app(&created);
        }
        AppCommand::List {
            realm,
            limit,
            after,
            search,
        } => {
            let query = ApplicationList {
                limit: Some(limit.to_string()),
                after,
                q: search,
            };
            let page = operations::list_applications(authority, &realm.realm, query).await?;
            out.apps(&page.items);
            if let Some(next) = page.next.and_then(|n| n.after) {
                out.more(&format!("--after {next}"));
            }
        }
        AppCommand::Show { client_id, realm } => {
            out.app(&operations::show_application(authority, &realm.realm, &client_id).await?);
        }
        AppCommand::Update {
            client_id,
            realm,
            name,
            settings,
            enable,
            disable,
            no_quota,
        } => {
            let AppSettings {
                scopes,
                default_scopes,
                scope_required,
                token_ttl,
                token_format,
                refresh_token_ttl,
                auth_methods,
                public_key,
                audiences,
                roles,
                quota_per_minute,
                quota_per_day,
            } = settings;
            // A flag changes its own limit and keeps the other one.
            let quota = if no_quota {
                Some(None)
            } else if quota_per_minute.is_some() || quota_per_day.is_some() {
                let current = operations::show_application(authority, &realm.realm, &client_id)
                    .await?
                    .quota
                    .unwrap_or_default();
                Some(Some(QuotaView {
                    per_minute: quota_per_minute.or(current.per_minute),
                    per_day: quota_per_day.or(current.per_day),
                }))
            } else {
                None
            };
            let patch = ApplicationPatch {
                name,
                scopes: split_scopes(scopes),
                default_scopes: split_scopes(default_scopes).map(Some),
                scope_required,
                token_ttl,
                token_format: token_format.map(Some),
                refresh_token_ttl: refresh_token_ttl.map(Some),
                auth_methods,
                public_key: read_public_key(public_key.as_deref())?.map(Some),
                jwks: None,
                audiences,
                roles,
                quota,
                enabled: if enable {
                    Some(true)
                } else if disable {
                    Some(false)
                } else {
                    None
                },
            };
            let view = operations::update_application(
                authority,
                &Actor::cli(),
                &realm.realm,
                &client_id,
                patch,
            )
            .await?;
            out.app(&view);
        }
        AppCommand::Delete { client_id, realm } => {
            operations::delete_application(authority, &Actor::cli(), &realm.realm, &client_id)
                .await?;
            out.done(&format!("Deleted application {client_id}"));
        }
        AppCommand::RotateSecret {
            client_id,
            realm,
            grace_period,
        } => {
            let input = SecretRotate {
                grace_period: Some(grace_period),
            };
            out.rotated(
                &operations::rotate_secret(
                    authority,
                    &Actor::cli(),
                    &realm.realm,
                    &client_id,
                    input,
                )
                .await?,
            );
        }
        AppCommand::IssueToken {
            client_id,
            realm,
            ttl,
            scopes,
        } => {
            let input = IssueToken {
                ttl,
                scopes: split_scopes(scopes),
            };
            out.token(
                &operations::issue_token(authority, &Actor::cli(), &realm.realm, &client_id, input)
                    .await?,
            );
        }
        AppCommand::RevokeTokens { client_id, realm } => {
            out.revoked(
                &operations::revoke_tokens(authority, &Actor::cli(), &realm.realm, &client_id)
                    .await?,
            );
        }
    }
    Ok(())
}
