//! A port that a function's endpoint group never uses (the keys function's blob store and
//! queues), so the function does not build it and its binary does not link that AWS SDK. Every
//! call is an error naming what is missing; a group whose [`UsedPorts`] are right never makes
//! one.
//!
//! [`UsedPorts`]: crate::config::UsedPorts

use super::{BlobError, Blobs, Cause, Queue, QueueError, QueueMessage};
use async_trait::async_trait;
use bytes::Bytes;
use std::path::Path;
use std::time::Duration;

/// Stands in for the port named `port` ("blob store", "build queue").
pub struct Absent {
    pub port: &'static str,
}

impl Absent {
    fn cause(&self) -> Cause {
        format!(
            "this function has no {}: its endpoint group does not use one",
            self.port
        )
        .into()
    }

    fn blobs(&self) -> BlobError {
        BlobError::other(self.cause())
    }

    fn queue(&self) -> QueueError {
        QueueError::other(self.cause())
    }
}

#[async_trait]
impl Blobs for Absent {
    async fn put(&self, _key: &str, _bytes: Bytes) -> Result<(), BlobError> {
        Err(self.blobs())
    }

    async fn put_file(&self, _key: &str, _path: &Path) -> Result<(), BlobError> {
        Err(self.blobs())
    }

    async fn get(&self, _key: &str) -> Result<Bytes, BlobError> {
        Err(self.blobs())
    }

    async fn get_to_file(&self, _key: &str, _path: &Path) -> Result<u64, BlobError> {
        Err(self.blobs())
    }

    async fn size(&self, _key: &str) -> Result<Option<u64>, BlobError> {
        Err(self.blobs())
    }

    async fn delete(&self, _key: &str) -> Result<(), BlobError> {
        Err(self.blobs())
    }

    async fn presign_put(
        &self,
        _key: &str,
        _expires_in: Duration,
        _size: Option<u64>,
    ) -> Result<String, BlobError> {
        Err(self.blobs())
    }

    async fn delete_older_than(&self, _prefix: &str, _age: Duration) -> Result<u64, BlobError> {
        Err(self.blobs())
    }
}

#[async_trait]
impl Queue for Absent {
    async fn send(&self, _body: &str) -> Result<String, QueueError> {
        Err(self.queue())
    }

    async fn receive(
        &self,
        _max: usize,
        _visibility: Duration,
        _wait: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError> {
        Err(self.queue())
    }

    async fn ack(&self, _receipt: &str) -> Result<(), QueueError> {
        Err(self.queue())
    }

    async fn hand_back(&self, _receipt: &str, _after: Duration) -> Result<(), QueueError> {
        Err(self.queue())
    }

    async fn dead_letters(&self, _max: usize) -> Result<Vec<QueueMessage>, QueueError> {
        Err(self.queue())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_call_says_which_port_is_missing() {
        let blobs = Absent { port: "blob store" };
        let err = blobs.get("datasets/x").await.expect_err("no blob store");
        assert!(
            err.to_string().contains("no blob store"),
            "{err}: names the port"
        );
        let queue = Absent {
            port: "build queue",
        };
        let err = queue.send("{}").await.expect_err("no queue");
        assert!(err.to_string().contains("no build queue"), "{err}");
    }
}
