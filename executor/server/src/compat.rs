//! TEMPORARY until the ObjectService client lands.
use ferry_sdk::ByteStream;
use ferry_sdk::client::{DriverClient, Location};
pub(crate) trait Ext {
    async fn stat(&self, l: &Location) -> ferry_sdk::Result<Option<u64>>;
    async fn open_range(&self, l: &Location, o: u64, n: u64) -> ferry_sdk::Result<Option<ByteStream>>;
}
impl Ext for DriverClient {
    async fn stat(&self, _l: &Location) -> ferry_sdk::Result<Option<u64>> {
        Ok(None)
    }
    async fn open_range(&self, _l: &Location, _o: u64, _n: u64) -> ferry_sdk::Result<Option<ByteStream>> {
        Ok(None)
    }
}
