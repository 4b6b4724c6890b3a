//! `plexe keys list|create|revoke` (an admin key's commands).

use super::CliError;
use super::datasets::print_more;
use super::output::{Table, or_dash, print_fields, print_json};
use super::remote::RemoteArgs;
use crate::api::keys::CreateKeyRequest;
use crate::client::Page;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the account's keys (never their secrets).
    List {
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        offset: Option<u32>,
    },
    /// Create a key; its secret is printed once.
    #[command(after_help = "Example:\n  plexe keys create ci --scopes read,predict")]
    Create {
        /// A label for the key.
        name: String,
        /// Comma-separated: read, write, predict, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
    },
    /// Revoke a key at once.
    Revoke { key_id: String },
}

pub async fn run(remote: RemoteArgs, command: KeysCommand) -> Result<(), CliError> {
    let client = remote.client()?;
    match command {
        KeysCommand::List { limit, offset } => {
            let list = client.list_keys(Page { limit, offset }).await?;
            if remote.json {
                return print_json(&list);
            }
            let mut table = Table::new(&["KEY_ID", "NAME", "SCOPES", "CREATED", "REVOKED"]);
            for k in &list.api_keys {
                table.row(vec![
                    k.key_id.clone(),
                    k.name.clone(),
                    scopes(&k.scopes),
                    k.created_at.clone(),
                    or_dash(k.revoked_at.as_deref()),
                ]);
            }
            table.print();
            print_more(
                list.pagination.total,
                list.api_keys.len(),
                list.pagination.offset,
            );
        }
        KeysCommand::Create {
            name,
            scopes: wanted,
        } => {
            let created = client
                .create_key(&CreateKeyRequest {
                    name,
                    scopes: wanted,
                })
                .await?;
            if remote.json {
                return print_json(&created);
            }
            print_fields(&[
                ("key_id", created.key_id.clone()),
                ("name", created.name.clone()),
                ("scopes", scopes(&created.scopes)),
                ("api_key", created.api_key.clone()),
            ]);
            println!("Store the api_key now: it is not shown again.");
        }
        KeysCommand::Revoke { key_id } => {
            let key = client.revoke_key(&key_id).await?;
            if remote.json {
                return print_json(&key);
            }
            println!("Revoked {} ({}).", key.key_id, key.name);
        }
    }
    Ok(())
}

fn scopes(scopes: &[crate::domain::api_keys::Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
