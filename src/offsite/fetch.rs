//! Reading the bucket back: the index records of a box (decrypted with the local key), and
//! clip objects downloaded to a file that is kept only once it is whole and proven: its
//! size and SHA-256 match the record, and every chunk authenticates under the local key.
//! A wrong key, a missing object and a damaged one each give an error naming the object.

use super::client::Bucket;
use super::record::{self, IndexRecord, StoredObject, hex};
use crate::store::MasterKey;
use crate::store::container::OpenReader;
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Index records fetched at once.
const PARALLEL_FETCHES: usize = 8;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

impl FetchError {
    /// An error of the bucket about `key`, naming the object (`s3://BUCKET/KEY`).
    fn bucket(bucket: &Bucket, key: &ObjectPath, e: object_store::Error) -> Self {
        let object = bucket.object_name(key);
        match e {
            object_store::Error::NotFound { .. } => {
                Self(format!("{object} is missing from the bucket"))
            }
            other => Self(format!(
                "{object}: {}",
                other.to_string().lines().next().unwrap_or_default()
            )),
        }
    }
}

/// SHA-256 of an object, streamed.
pub async fn sha256_of_object(bucket: &Bucket, key: &ObjectPath) -> Result<String, FetchError> {
    let got = bucket
        .s3
        .get(key)
        .await
        .map_err(|e| FetchError::bucket(bucket, key, e))?;
    let mut stream = got.into_stream();
    let mut sha = Sha256::new();
    while let Some(chunk) = stream.next().await {
        sha.update(chunk.map_err(|e| FetchError::bucket(bucket, key, e))?);
    }
    Ok(hex(&sha.finalize()))
}

/// Every index record of the bucket's box, by clip id. The first that cannot be read
/// (a wrong key, damage) stops the listing with its error.
pub async fn records(bucket: &Bucket, key: &MasterKey) -> Result<Vec<IndexRecord>, FetchError> {
    let folder = bucket.index_folder();
    let metas: Vec<_> = bucket
        .s3
        .list(Some(&folder))
        .try_collect()
        .await
        .map_err(|e| FetchError::bucket(bucket, &folder, e))?;
    let mut out: Vec<IndexRecord> = futures_util::stream::iter(metas)
        .map(|m| async move {
            let got = bucket
                .s3
                .get(&m.location)
                .await
                .map_err(|e| FetchError::bucket(bucket, &m.location, e))?;
            let bytes = got
                .bytes()
                .await
                .map_err(|e| FetchError::bucket(bucket, &m.location, e))?;
            let object = bucket.object_name(&m.location);
            record::unseal(&bytes, key, &object).map_err(FetchError)
        })
        .buffer_unordered(PARALLEL_FETCHES)
        .try_collect()
        .await?;
    out.sort_by_key(|r| r.clip.id);
    Ok(out)
}

/// A small sealed object (a snapshot) the record vouches for as `want`: its plaintext,
/// once its size, SHA-256 and every chunk's tag check out.
pub async fn sealed_object(
    bucket: &Bucket,
    key: &ObjectPath,
    want: &StoredObject,
    master: &MasterKey,
) -> Result<zeroize::Zeroizing<Vec<u8>>, FetchError> {
    let got = bucket
        .s3
        .get(key)
        .await
        .map_err(|e| FetchError::bucket(bucket, key, e))?;
    let bytes = got
        .bytes()
        .await
        .map_err(|e| FetchError::bucket(bucket, key, e))?;
    let named = bucket.object_name(key);
    let sha256 = hex(&Sha256::digest(&bytes));
    if bytes.len() as u64 != want.sealed_bytes || sha256 != want.sha256 {
        return Err(FetchError(format!(
            "{named} does not match its index record: it is damaged or was tampered with"
        )));
    }
    record::open_sealed(&bytes, master, &named).map_err(FetchError)
}

/// Downloads the sealed clip of `rec` to `dest` (0600), proven whole before it is renamed
/// there; nothing is left behind on failure. Returns the verified reader.
pub async fn download_clip(
    bucket: &Bucket,
    rec: &IndexRecord,
    key: &MasterKey,
    dest: &Path,
) -> Result<OpenReader, FetchError> {
    let object = bucket.clip_key(rec.clip.id);
    let partial = partial_path(dest);
    let result = download_to(bucket, &object, rec, key, &partial).await;
    match result {
        Ok(reader) => {
            std::fs::rename(&partial, dest)
                .map_err(|e| FetchError(format!("{}: {e}", dest.display())))?;
            Ok(reader)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

async fn download_to(
    bucket: &Bucket,
    object: &ObjectPath,
    rec: &IndexRecord,
    key: &MasterKey,
    partial: &Path,
) -> Result<OpenReader, FetchError> {
    let io = |e: std::io::Error| FetchError(format!("{}: {e}", partial.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(partial)
        .map_err(io)?;
    let got = bucket
        .s3
        .get(object)
        .await
        .map_err(|e| FetchError::bucket(bucket, object, e))?;
    let mut stream = got.into_stream();
    let (mut sha, mut bytes) = (Sha256::new(), 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| FetchError::bucket(bucket, object, e))?;
        sha.update(&chunk);
        bytes += chunk.len() as u64;
        file.write_all(&chunk).map_err(io)?;
    }
    let named = bucket.object_name(object);
    if bytes != rec.sealed_bytes || hex(&sha.finalize()) != rec.sha256 {
        return Err(FetchError(format!(
            "{named} does not match its index record ({bytes} bytes, expected {}, or another \
             SHA-256): it is damaged or was tampered with",
            rec.sealed_bytes
        )));
    }
    file.sync_all().map_err(io)?;
    let reader = std::fs::File::open(partial).map_err(io)?;
    let reader =
        OpenReader::open(reader, key).map_err(|e| FetchError(record::describe(&named, &e)))?;
    reader
        .copy_to(&mut std::io::sink(), |_, _| {})
        .map_err(|e| FetchError(record::describe(&named, &e)))?;
    Ok(reader)
}
