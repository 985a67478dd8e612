//! `ferry.v1.ObjectService`, Ferry's optional extension, on the same
//! [`DriverService`] as Argo's contract: an object's size and a byte range
//! of it, for servers that answer HTTP `Content-Length` and `Range`. Argo
//! never calls it. A driver without [`Driver::size`] or
//! [`Driver::open_range`] answers `UNIMPLEMENTED`, so callers fall back to
//! OpenStream.

use super::frames::FrameStream;
use super::service::{DriverService, key_of};
use crate::driver::Driver;
use crate::error::ErrorKind;
use ferry_proto::ferry_v1::object_service_server::ObjectService;
use ferry_proto::ferry_v1::{ReadRangeRequest, ReadRangeResponse, StatRequest, StatResponse};
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl<D: Driver> ObjectService for DriverService<D> {
    async fn stat(&self, request: Request<StatRequest>) -> std::result::Result<Response<StatResponse>, Status> {
        let _call = self.enter();
        let measured = crate::metrics::Call::start("stat");
        let req = request.into_inner();
        let key = key_of(req.artifact.as_ref());
        let result = async {
            let (target, key) = self.locate(req.artifact.as_ref()).await?;
            self.driver().size(&target, &key).await
        }
        .await;
        measured.finish(result.as_ref().err().map(crate::error::Error::kind));
        match result {
            Ok(size) => {
                tracing::info!(op = "stat", key, size, "ok");
                Ok(Response::new(StatResponse { size }))
            }
            // Expected answers, not faults: a missing key, a driver without the extension.
            Err(err) if matches!(err.kind(), ErrorKind::NotFound | ErrorKind::Unsupported) => {
                tracing::info!(op = "stat", key, kind = %err.kind(), error = %err, "refused");
                Err(err.into())
            }
            Err(err) => {
                tracing::warn!(op = "stat", key, kind = %err.kind(), error = %err, "failed");
                Err(err.into())
            }
        }
    }

    type ReadRangeStream = FrameStream<ReadRangeResponse>;

    async fn read_range(
        &self,
        request: Request<ReadRangeRequest>,
    ) -> std::result::Result<Response<Self::ReadRangeStream>, Status> {
        let req = request.into_inner();
        // Past u64::MAX is past any object's end: clamped like any range that is.
        let range = req.offset..req.offset.saturating_add(req.length);
        self.stream(req.artifact.as_ref(), |driver, target, key| async move {
            driver.open_range(&target, &key, range).await
        })
        .await
    }
}
