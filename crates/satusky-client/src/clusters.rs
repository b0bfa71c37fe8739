//! `/v1/clusters` (platform administrators) and `/v1/zones` (everyone).

use satusky_types::Page;
use satusky_types::clusters::{Cluster, RegisterClusterRequest, Zone};
use satusky_types::page::PageQuery;

use crate::{ALL_PAGES_LIMIT, Client, ClientError, collect_pages};

impl Client {
    /// `GET /v1/clusters`: one page of registered clusters.
    pub async fn list_clusters(&self, query: &PageQuery) -> Result<Page<Cluster>, ClientError> {
        let (req, url) = self.get(&["v1", "clusters"]);
        self.send_json(req.query(query), url).await
    }

    /// Every registered cluster, following cursors.
    pub async fn list_all_clusters(&self) -> Result<Vec<Cluster>, ClientError> {
        collect_pages(|cursor| {
            let query = PageQuery {
                limit: Some(ALL_PAGES_LIMIT),
                cursor,
            };
            async move { self.list_clusters(&query).await }
        })
        .await
    }

    /// `POST /v1/clusters`: register a cluster (its kubeconfig is sealed).
    pub async fn register_cluster(
        &self,
        body: &RegisterClusterRequest,
    ) -> Result<Cluster, ClientError> {
        let (req, url) = self.post(&["v1", "clusters"]);
        self.send_json(req.json(body), url).await
    }

    /// `DELETE /v1/clusters/{name}`.
    pub async fn delete_cluster(&self, name: &str) -> Result<(), ClientError> {
        let (req, url) = self.delete(&["v1", "clusters", name]);
        self.send_empty(req, url).await
    }

    /// `GET /v1/zones`: the zones apps can be placed in.
    pub async fn list_zones(&self) -> Result<Vec<Zone>, ClientError> {
        let (req, url) = self.get(&["v1", "zones"]);
        let page: Page<Zone> = self.send_json(req, url).await?;
        Ok(page.items)
    }
}
