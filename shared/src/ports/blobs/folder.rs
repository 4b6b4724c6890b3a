//! The embedded blob store: one file per key under `<data_dir>/blobs/`.
//!
//! Writes go to a temporary file in `<data_dir>/blobs/.tmp/` and are renamed into place, so a
//! reader sees either nothing or the whole blob. Presigned uploads are URLs served by
//! `plexe serve` itself (`PUT {public_base_url}/uploads/{token}`), the token carrying the key and
//! an expiry signed with HMAC-SHA256 under a secret kept beside the data.

use super::{BlobError, Blobs, validate_key};
use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

type HmacSha256 = Hmac<Sha256>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub struct FolderBlobs {
    root: PathBuf,
    tmp: PathBuf,
    public_base_url: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for FolderBlobs {
    // Hand-written so the upload secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderBlobs")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn io_err(context: &str, err: std::io::Error) -> BlobError {
    BlobError::other(crate::ports::failed(context, err))
}

/// A new file only the service user can read (0600).
pub async fn private_create(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await
}

async fn set_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).await?;
    }
    Ok(())
}

fn random_hex(bytes: usize) -> String {
    use rand::Rng as _;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

impl FolderBlobs {
    /// Blobs under `<data_dir>/blobs/`; upload URLs start with `public_base_url` (the address
    /// clients reach `plexe serve` at). Creates the folders and, on first use, the upload secret
    /// `<data_dir>/upload.secret` (mode 0600).
    pub fn open(data_dir: &Path, public_base_url: &str) -> Result<Self, BlobError> {
        let root = data_dir.join("blobs");
        let tmp = root.join(".tmp");
        for dir in [&root, &tmp] {
            crate::config::private_dir(dir).map_err(|e| io_err("creating blob folder", e))?;
        }
        let secret = load_or_create_secret(&data_dir.join("upload.secret"))?;
        Ok(FolderBlobs {
            root,
            tmp,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            secret,
        })
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, BlobError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    fn temp_path(&self) -> PathBuf {
        self.tmp.join(random_hex(16))
    }

    /// A fresh path in the blob folder's temporary directory (same file system as the blobs),
    /// for a caller that writes a blob itself (the upload endpoint streams a request body
    /// there) and then stores it with [`FolderBlobs::commit_temp`].
    pub fn new_temp_path(&self) -> PathBuf {
        self.temp_path()
    }

    /// Moves a complete file written at a [`FolderBlobs::new_temp_path`] into place under `key`
    /// (a rename: no copy). On failure the temporary file is removed.
    pub async fn commit_temp(&self, temp: &Path, key: &str) -> Result<(), BlobError> {
        let dest = match self.path_of(key) {
            Ok(dest) => dest,
            Err(e) => {
                let _ = tokio::fs::remove_file(temp).await;
                return Err(e);
            }
        };
        self.commit(temp, &dest).await
    }

    /// Moves a complete temporary file into place under `key`.
    async fn commit(&self, temp: &Path, dest: &Path) -> Result<(), BlobError> {
        if let Some(parent) = dest.parent() {
            let mut builder = tokio::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            builder.mode(0o700);
            builder
                .create(parent)
                .await
                .map_err(|e| io_err("creating blob folder", e))?;
        }
        if let Err(e) = tokio::fs::rename(temp, dest).await {
            let _ = tokio::fs::remove_file(temp).await;
            return Err(io_err("storing blob", e));
        }
        Ok(())
    }

    fn sign(&self, payload: &str) -> Result<HmacSha256, BlobError> {
        let mut mac = HmacSha256::new_from_slice(&self.secret)
            .map_err(|_| BlobError::other("upload secret unusable"))?;
        mac.update(payload.as_bytes());
        Ok(mac)
    }

    /// An upload token for `key` valid until `expires_at` (epoch seconds), for a file of exactly
    /// `size` bytes when given.
    fn token(&self, key: &str, expires_at: i64, size: Option<u64>) -> Result<String, BlobError> {
        let size = size.map(|n| n.to_string()).unwrap_or_default();
        let payload = format!("{expires_at}:{size}:{key}");
        let tag = self.sign(&payload)?.finalize().into_bytes();
        Ok(format!(
            "{}.{}",
            B64.encode(payload.as_bytes()),
            B64.encode(tag)
        ))
    }

    /// Checks a token from an upload URL (signature, then expiry) and returns the blob key the
    /// upload may write and the file's size when the session declared one. The HTTP layer calls
    /// this before accepting `PUT /uploads/{token}`.
    pub fn verify_upload_token(&self, token: &str) -> Result<(String, Option<u64>), BlobError> {
        let invalid = || BlobError::other("invalid upload token");
        let (payload_b64, tag_b64) = token.split_once('.').ok_or_else(invalid)?;
        let payload = B64.decode(payload_b64).map_err(|_| invalid())?;
        let tag = B64.decode(tag_b64).map_err(|_| invalid())?;
        let payload = String::from_utf8(payload).map_err(|_| invalid())?;
        // Constant-time comparison (hmac uses `subtle`), so the tag cannot be guessed bytewise.
        self.sign(&payload)?
            .verify_slice(&tag)
            .map_err(|_| invalid())?;
        let mut parts = payload.splitn(3, ':');
        let (Some(expires_at), Some(size), Some(key)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let expires_at: i64 = expires_at.parse().map_err(|_| invalid())?;
        if crate::ids::now_epoch() >= expires_at {
            return Err(BlobError::other("upload token expired"));
        }
        let size = match size {
            "" => None,
            n => Some(n.parse::<u64>().map_err(|_| invalid())?),
        };
        validate_key(key)?;
        Ok((key.to_owned(), size))
    }
}

/// Reads the upload secret, creating it if absent. Creation writes a complete temporary file
/// and hard-links it into place, which fails if another process won the race; then its secret is
/// read instead, so every process signs with the same key.
fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, BlobError> {
    match std::fs::read_to_string(path) {
        Ok(text) => return decode_secret(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("reading upload secret", e)),
    }
    let temp = path.with_extension(format!("tmp-{}", random_hex(8)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&temp)?;
        file.write_all(random_hex(32).as_bytes())?;
        file.sync_all()?;
        match std::fs::hard_link(&temp, path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    })();
    let _ = std::fs::remove_file(&temp);
    result.map_err(|e| io_err("creating upload secret", e))?;
    let text = std::fs::read_to_string(path).map_err(|e| io_err("reading upload secret", e))?;
    decode_secret(&text)
}

fn decode_secret(text: &str) -> Result<Vec<u8>, BlobError> {
    let secret =
        hex::decode(text.trim()).map_err(|_| BlobError::other("upload secret file is corrupt"))?;
    if secret.len() < 16 {
        return Err(BlobError::other("upload secret file is too short"));
    }
    Ok(secret)
}

#[async_trait]
impl Blobs for FolderBlobs {
    #[tracing::instrument(name = "blobs.put", level = "debug", skip(self, bytes), fields(bytes = bytes.len()))]
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        let dest = self.path_of(key)?;
        let temp = self.temp_path();
        let written = async {
            let mut file = private_create(&temp).await?;
            tokio::io::AsyncWriteExt::write_all(&mut file, &bytes).await?;
            tokio::io::AsyncWriteExt::flush(&mut file).await
        };
        if let Err(e) = written.await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(io_err("writing blob", e));
        }
        self.commit(&temp, &dest).await
    }

    #[tracing::instrument(name = "blobs.put_file", level = "debug", skip(self))]
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        let dest = self.path_of(key)?;
        let temp = self.temp_path();
        // fs::copy streams in the kernel (copy_file_range where available); it copies the
        // source's mode, so the copy is made private after.
        let copied = async {
            tokio::fs::copy(path, &temp).await?;
            set_private(&temp).await
        };
        if let Err(e) = copied.await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(io_err("copying file into blob", e));
        }
        self.commit(&temp, &dest).await
    }

    #[tracing::instrument(name = "blobs.get", level = "debug", skip(self))]
    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        let path = self.path_of(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::NotFound(key.to_owned()))
            }
            Err(e) => Err(io_err("reading blob", e)),
        }
    }

    #[tracing::instrument(name = "blobs.get_to_file", level = "debug", skip(self))]
    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64, BlobError> {
        let src = self.path_of(key)?;
        // Opening first tells "no such blob" apart from "cannot write the destination".
        let mut reader = match tokio::fs::File::open(&src).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(key.to_owned()));
            }
            Err(e) => return Err(io_err("reading blob", e)),
        };
        let mut writer = tokio::fs::File::create(path)
            .await
            .map_err(|e| io_err("creating destination file", e))?;
        set_private(path)
            .await
            .map_err(|e| io_err("creating destination file", e))?;
        let n = tokio::io::copy(&mut reader, &mut writer)
            .await
            .map_err(|e| io_err("copying blob to file", e))?;
        tokio::io::AsyncWriteExt::flush(&mut writer)
            .await
            .map_err(|e| io_err("copying blob to file", e))?;
        Ok(n)
    }

    #[tracing::instrument(name = "blobs.size", level = "debug", skip(self))]
    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("reading blob size", e)),
        }
    }

    #[tracing::instrument(name = "blobs.delete", level = "debug", skip(self))]
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("deleting blob", e)),
        }
    }

    #[tracing::instrument(name = "blobs.presign_put", level = "debug", skip(self))]
    async fn presign_put(
        &self,
        key: &str,
        expires_in: Duration,
        size: Option<u64>,
    ) -> Result<String, BlobError> {
        validate_key(key)?;
        let expires_in = i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX);
        let expires_at = crate::ids::now_epoch().saturating_add(expires_in);
        Ok(format!(
            "{}/uploads/{}",
            self.public_base_url,
            self.token(key, expires_at, size)?
        ))
    }

    #[tracing::instrument(name = "blobs.delete_older_than", level = "debug", skip(self))]
    async fn delete_older_than(&self, prefix: &str, age: Duration) -> Result<u64, BlobError> {
        let prefix = prefix.trim_end_matches('/');
        let dir = self.path_of(prefix)?;
        tokio::task::spawn_blocking(move || {
            let cutoff = std::time::SystemTime::now()
                .checked_sub(age)
                .unwrap_or(std::time::UNIX_EPOCH);
            delete_files_older_than(&dir, cutoff)
        })
        .await
        .map_err(|e| BlobError::other(crate::ports::failed("sweeping blobs", e)))?
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path_of(key).ok()
    }
}

/// Deletes the files under `dir` (recursively) last modified before `cutoff`, and the folders
/// that leaves empty; an absent `dir` is nothing to do.
fn delete_files_older_than(dir: &Path, cutoff: std::time::SystemTime) -> Result<u64, BlobError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err("sweeping blobs", e)),
    };
    let mut deleted = 0;
    for entry in entries {
        let entry = entry.map_err(|e| io_err("sweeping blobs", e))?;
        // `file_type` does not follow symlinks: only the folder's own files and folders count.
        let file_type = entry.file_type().map_err(|e| io_err("sweeping blobs", e))?;
        let path = entry.path();
        if file_type.is_dir() {
            deleted += delete_files_older_than(&path, cutoff)?;
            // Fails while the folder still holds something; that is the point.
            let _ = std::fs::remove_dir(&path);
        } else if file_type.is_file() {
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .map_err(|e| io_err("sweeping blobs", e))?;
            if modified < cutoff {
                match std::fs::remove_file(&path) {
                    Ok(()) => deleted += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("sweeping blobs", e)),
                }
            }
        }
    }
    Ok(deleted)
}
