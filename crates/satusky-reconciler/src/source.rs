//! Where desired state comes from and observed state goes: the
//! reconciler's side of [`Services`]. A trait so the loop can be driven by
//! something other than a full store (tools, tests).

use async_trait::async_trait;
use satusky_core::Services;
use satusky_core::apps::DesiredApp;
use satusky_core::bus::Notice;
use satusky_core::pagination::PageRequest;
use satusky_types::apps::AppStatus;
use satusky_types::page::Page;
use tokio::sync::broadcast;

#[async_trait]
pub trait AppSource: Send + Sync + 'static {
    /// The app's desired state, or `None` when it no longer exists.
    async fn desired_app(&self, app_id: &str) -> satusky_core::Result<Option<DesiredApp>>;
    /// Every app id, a page at a time.
    async fn app_ids(&self, page: &PageRequest) -> satusky_core::Result<Page<String>>;
    async fn record_status(&self, app_id: &str, status: AppStatus) -> satusky_core::Result<()>;
    /// The status recorded last (by this or an earlier reconciler), so a new
    /// leader continues from it instead of from nothing.
    async fn recorded_status(&self, app_id: &str) -> satusky_core::Result<Option<AppStatus>> {
        let _ = app_id;
        Ok(None)
    }
    async fn record_event(&self, app_id: &str, kind: &str, message: String, release: Option<u64>);
    /// Removes the app record once every object is gone.
    async fn finalize_app_deletion(&self, app_id: &str) -> satusky_core::Result<()>;
    /// Whether the organization still exists. `false` makes the reconciler
    /// delete the organization's namespaces, and so everything in them
    /// (volumes included): answer it only when the store says so.
    async fn org_exists(&self, org_id: &str) -> satusky_core::Result<bool>;
    /// Change notifications (`Notice::AppChanged`, `Notice::OrgDeleted`).
    fn subscribe(&self) -> broadcast::Receiver<Notice>;
}

#[async_trait]
impl AppSource for Services {
    async fn desired_app(&self, app_id: &str) -> satusky_core::Result<Option<DesiredApp>> {
        Services::desired_app(self, app_id).await
    }

    async fn app_ids(&self, page: &PageRequest) -> satusky_core::Result<Page<String>> {
        Services::app_ids(self, page).await
    }

    async fn record_status(&self, app_id: &str, status: AppStatus) -> satusky_core::Result<()> {
        Services::record_status(self, app_id, status).await
    }

    async fn recorded_status(&self, app_id: &str) -> satusky_core::Result<Option<AppStatus>> {
        Ok(self
            .store()
            .get_app_by_id(app_id)
            .await?
            .map(|app| app.status))
    }

    async fn record_event(&self, app_id: &str, kind: &str, message: String, release: Option<u64>) {
        Services::record_event(self, app_id, kind, message, release).await;
    }

    async fn finalize_app_deletion(&self, app_id: &str) -> satusky_core::Result<()> {
        Services::finalize_app_deletion(self, app_id).await
    }

    async fn org_exists(&self, org_id: &str) -> satusky_core::Result<bool> {
        Ok(self.store().get_org(org_id).await?.is_some())
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.bus().subscribe()
    }
}
