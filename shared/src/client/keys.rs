//! `GET /me` and the account's API keys.

use super::{Client, ClientError, Page};
use crate::api::keys::{ApiKeyList, ApiKeyView, CreateKeyRequest, CreatedKey, Me};

impl Client {
    /// The calling key and its account.
    pub async fn me(&self) -> Result<Me, ClientError> {
        self.get(&["me"], &[]).await
    }

    /// The account's keys, without secrets (admin).
    pub async fn list_keys(&self, page: Page) -> Result<ApiKeyList, ClientError> {
        self.get(&["api-keys"], &page.pairs()).await
    }

    /// A new key; its secret is in the answer and nowhere else (admin).
    pub async fn create_key(&self, request: &CreateKeyRequest) -> Result<CreatedKey, ClientError> {
        self.post(&["api-keys"], request).await
    }

    /// Revokes a key at once (admin).
    pub async fn revoke_key(&self, key_id: &str) -> Result<ApiKeyView, ClientError> {
        self.delete(&["api-keys", key_id]).await
    }
}
