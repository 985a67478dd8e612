//! A complete Argo artifact driver that keeps objects in memory.
use bytes::Bytes;
use ferry_sdk::{ArtifactKey, ByteStream, Driver, Error, Result};
use futures::{StreamExt, TryStreamExt};
use std::{collections::BTreeMap, sync::Mutex};

/// Every object, by key.
#[derive(Default)]
pub struct Memory(Mutex<BTreeMap<ArtifactKey, Bytes>>);

impl Driver for Memory {
    type Target = ();

    async fn connect(&self, _configuration: &str) -> Result<()> {
        Ok(())
    }

    async fn open_stream(&self, _: &(), key: &ArtifactKey) -> Result<ByteStream> {
        let data = self.0.lock().unwrap().get(key).cloned();
        let data = data.ok_or_else(|| Error::not_found(format!("no object at {key}")))?;
        Ok(futures::stream::once(async { Ok(data) }).boxed())
    }

    async fn save_stream(&self, _: &(), key: &ArtifactKey, data: ByteStream) -> Result<()> {
        let chunks: Vec<Bytes> = data.try_collect().await?;
        self.0.lock().unwrap().insert(key.clone(), chunks.concat().into());
        Ok(())
    }

    async fn delete_object(&self, _: &(), key: &ArtifactKey) -> Result<()> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }

    async fn list(&self, _: &(), key: &ArtifactKey) -> Result<Vec<ArtifactKey>> {
        Ok(self.0.lock().unwrap().keys().filter(|k| key.relative(k).is_some()).cloned().collect())
    }
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    ferry_sdk::run(Memory::default())
}
