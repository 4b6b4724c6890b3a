//! `plexe admin create-account` and `plexe admin create-key`: print the new key once (one JSON
//! line with `--json`). They go through the store like the server does, so they work while a
//! server runs on the same data directory.

use super::CliError;
use crate::config::{Backends, Config};
use crate::domain::DomainError;
use crate::domain::accounts::{self, NewAccount, Tier};
use crate::domain::api_keys::{self, IssuedKey, Scope};
use clap::Subcommand;

/// Admin commands need no public URL (they create no upload URLs).
const UNUSED_PUBLIC_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an account and its first admin key.
    CreateAccount {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "basic", value_parser = ["basic", "pro", "enterprise"])]
        tier: String,
        /// Requests per minute for this account, overriding its tier's (enterprise custom limits).
        #[arg(long)]
        requests_per_minute: Option<u32>,
        #[command(flatten)]
        config: Config,
        /// Print {"account_id","key_id","api_key"} on one line.
        #[arg(long)]
        json: bool,
    },
    /// Create a key for an existing account.
    CreateKey {
        #[arg(long)]
        account: String,
        /// Comma-separated: read, write, predict, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        config: Config,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: AdminCommand) -> Result<(), CliError> {
    match command {
        AdminCommand::CreateAccount {
            name,
            tier,
            requests_per_minute,
            config,
            json,
        } => {
            let tier: Tier = tier.parse()?;
            let backends = Backends::open(&config, UNUSED_PUBLIC_URL).await?;
            let (account, issued) = accounts::create_account_with_admin_key(
                backends.store.as_ref(),
                NewAccount {
                    name,
                    tier,
                    rate_limit_per_minute: requests_per_minute,
                },
            )
            .await?;
            if !json {
                println!(
                    "Created account {} ({:?}, tier {}).",
                    account.account_id,
                    account.name,
                    account.tier.as_str()
                );
            }
            print_key(&issued, json);
            Ok(())
        }
        AdminCommand::CreateKey {
            account,
            scopes,
            name,
            config,
            json,
        } => {
            let scopes = Scope::parse_list(&scopes)?;
            let backends = Backends::open(&config, UNUSED_PUBLIC_URL).await?;
            if accounts::get_account(backends.store.as_ref(), &account)
                .await?
                .is_none()
            {
                return Err(DomainError::not_found(format!("account {account} not found")).into());
            }
            let issued =
                api_keys::create_key(backends.store.as_ref(), &account, &name, scopes).await?;
            print_key(&issued, json);
            Ok(())
        }
    }
}

fn print_key(issued: &IssuedKey, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "account_id": issued.key.account_id,
                "key_id": issued.key.key_id,
                "api_key": issued.secret,
            })
        );
    } else {
        let scopes: Vec<&str> = issued.key.scopes.iter().map(|s| s.as_str()).collect();
        println!(
            "Created key {} (scopes {}). It is shown only this once:\n{}",
            issued.key.key_id,
            scopes.join(","),
            issued.secret
        );
    }
}
