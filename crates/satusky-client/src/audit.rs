//! `/v1/orgs/{slug}/audit`: an organization's audit log.

use satusky_types::Page;
use satusky_types::orgs::{AuditEntry, AuditQuery};

use crate::{Client, ClientError};

impl Client {
    /// `GET /v1/orgs/{slug}/audit`: one page of entries matching `query`,
    /// newest first.
    pub async fn list_audit(
        &self,
        slug: &str,
        query: &AuditQuery,
    ) -> Result<Page<AuditEntry>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", slug, "audit"]);
        self.send_json(req.query(query), url).await
    }

    /// `GET /v1/orgs/{slug}/audit/{id}`.
    pub async fn get_audit_entry(&self, slug: &str, id: &str) -> Result<AuditEntry, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", slug, "audit", id]);
        self.send_json(req, url).await
    }
}
