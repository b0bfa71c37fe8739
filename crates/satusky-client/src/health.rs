//! Probes and the API description.

use crate::{Client, ClientError};

impl Client {
    /// `GET /healthz`: the process is up.
    pub async fn healthz(&self) -> Result<(), ClientError> {
        let (req, url) = self.get(&["healthz"]);
        self.send_empty(req, url).await
    }

    /// `GET /readyz`: the server can serve requests (its database answers).
    pub async fn readyz(&self) -> Result<(), ClientError> {
        let (req, url) = self.get(&["readyz"]);
        self.send_empty(req, url).await
    }

    /// `GET /v1/openapi.json`: the OpenAPI document of the server.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        let (req, url) = self.get(&["v1", "openapi.json"]);
        self.send_json(req, url).await
    }
}
