//! Machines' SideroLink peers, persisted so that a control-plane restart
//! keeps known machines' links: the fleet runtime records the WireGuard key
//! of every admitted machine, restores the peers of live machines into its
//! endpoint when it starts, and forgets a peer it removes.

use std::collections::HashSet;

use super::Services;
use crate::Result;
use crate::machines::is_live;
use crate::pagination::PageRequest;
use crate::store::MachineLinkRecord;

/// Machines read per page while looking for live ones.
const BATCH: u32 = 500;

impl Services {
    /// Records the WireGuard peer the machine was admitted with (its public
    /// key in base64, UUID and overlay address), replacing the one before.
    pub async fn record_machine_link(
        &self,
        machine_id: &str,
        public_key: &str,
        uuid: &str,
        overlay_address: &str,
    ) -> Result<()> {
        let rec = MachineLinkRecord {
            machine_id: machine_id.to_owned(),
            public_key: public_key.to_owned(),
            uuid: uuid.to_owned(),
            overlay_address: overlay_address.to_owned(),
            last_endpoint: None,
            updated_at: self.inner.clock.now(),
        };
        self.inner.store.put_machine_link(&rec).await?;
        Ok(())
    }

    /// Records where the machine's peer (still the one with `public_key`)
    /// was last heard from (`ip:port`). Returns false when the stored peer
    /// has another key, or none.
    pub async fn record_machine_link_endpoint(
        &self,
        machine_id: &str,
        public_key: &str,
        endpoint: &str,
    ) -> Result<bool> {
        let now = self.inner.clock.now();
        Ok(self
            .inner
            .store
            .set_machine_link_endpoint(machine_id, public_key, endpoint, now)
            .await?)
    }

    /// The stored peers of live machines (not decommissioned, not removed
    /// by force), by machine id: what the fleet runtime restores.
    pub async fn live_machine_links(&self) -> Result<Vec<MachineLinkRecord>> {
        let links = self.inner.store.list_machine_links().await?;
        if links.is_empty() {
            return Ok(links);
        }
        let mut live = HashSet::new();
        let mut page = PageRequest::first(BATCH);
        loop {
            let rows = self.inner.store.list_all_machines(&page).await?;
            let more = rows.len() > BATCH as usize;
            let rows = &rows[..rows.len().min(BATCH as usize)];
            live.extend(
                rows.iter()
                    .filter(|m| is_live(m.state))
                    .map(|m| m.id.clone()),
            );
            match (more, rows.last()) {
                (true, Some(last)) => page.after = Some(last.id.clone()),
                _ => break,
            }
        }
        Ok(links
            .into_iter()
            .filter(|l| live.contains(&l.machine_id))
            .collect())
    }

    /// Forgets the machine's stored peer; with `public_key`, only when it is
    /// still the stored one (a newer admission keeps its own). Returns
    /// whether a peer was forgotten.
    pub async fn forget_machine_link(
        &self,
        machine_id: &str,
        public_key: Option<&str>,
    ) -> Result<bool> {
        Ok(self
            .inner
            .store
            .delete_machine_link(machine_id, public_key)
            .await?)
    }
}
