//! Machine usage, the basis of billing history: a period opens when an
//! organization claims a machine and closes when it is released,
//! decommissioned or removed. Periods are kept like audit entries, after the
//! machine and the organization are gone.

use chrono::{DateTime, Utc};
use satusky_types::machines::{MachineState, MachineUsage, MachineUsageQuery};
use satusky_types::page::Page;

use super::{Ctx, Services};
use crate::Result;
use crate::authz::Action;
use crate::machines::MachineRecord;
use crate::pagination::{PageRequest, paginate};
use crate::store::MachineUsageRecord;
use crate::{Error, ids};

/// Whether an organization holds a machine in this state.
pub(super) fn held(state: MachineState) -> bool {
    !matches!(
        state,
        MachineState::Discovered | MachineState::Decommissioned | MachineState::NeedsWipe
    )
}

/// Why a period ends when a machine reaches `state`.
fn end_reason(state: MachineState) -> &'static str {
    match state {
        MachineState::Discovered => "released",
        MachineState::Decommissioned => "decommissioned",
        _ => "removed",
    }
}

/// Seconds of `[start, end)` inside `[since, until)`.
fn seconds_within(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> u64 {
    let from = since.map_or(start, |s| s.max(start));
    let to = until.map_or(end, |u| u.min(end));
    u64::try_from((to - from).num_seconds()).unwrap_or(0)
}

impl Services {
    /// Opens or closes the machine's usage period when a state change makes
    /// its organization start or stop holding it. A failure is logged, not
    /// returned: the change it follows has happened.
    pub(super) async fn track_usage(&self, before: MachineState, m: &MachineRecord) {
        let now = self.inner.clock.now();
        let store = &self.inner.store;
        let result = match (held(before), held(m.state)) {
            (false, true) => store
                .open_machine_usage(&MachineUsageRecord {
                    id: ids::new_id(),
                    org_id: m.org_id.clone(),
                    machine_id: m.id.clone(),
                    machine_name: m.name.clone(),
                    cpu_cores: m.hardware.cpu_cores,
                    memory_bytes: m.hardware.memory_bytes,
                    gpus: m.hardware.gpus,
                    started_at: now,
                    ended_at: None,
                    end_reason: None,
                })
                .await
                .map(drop),
            (true, false) => store
                .close_machine_usage(&m.id, now, end_reason(m.state))
                .await
                .map(drop),
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!(machine.id = %m.id, error = &e as &dyn std::error::Error, "failed to record machine usage");
        }
    }

    /// The organization's machine usage periods, newest first, paginated.
    pub async fn machine_usage(
        &self,
        ctx: &Ctx,
        org: &str,
        q: &MachineUsageQuery,
    ) -> Result<Page<MachineUsage>> {
        let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
        if let (Some(s), Some(u)) = (q.since, q.until)
            && s >= u
        {
            return Err(Error::new(
                satusky_types::ErrorCode::InvalidQuery,
                "since must be before until",
            ));
        }
        let a = self.authorize(ctx, org, Action::MachinesRead).await?;
        let machine_id = match &q.machine {
            Some(key) => Some(self.find_operable(ctx, &a, key).await?.machine.id),
            None => None,
        };
        let rows = self
            .inner
            .store
            .list_machine_usage(&a.org.id, machine_id.as_deref(), q.since, q.until, &page)
            .await?;
        let now = self.inner.clock.now();
        let items = rows
            .into_iter()
            .map(|u| MachineUsage {
                seconds: seconds_within(u.started_at, u.ended_at.unwrap_or(now), q.since, q.until),
                id: u.id,
                machine_id: u.machine_id,
                machine_name: u.machine_name,
                cpu_cores: u.cpu_cores,
                memory_bytes: u.memory_bytes,
                gpus: u.gpus,
                started_at: u.started_at,
                ended_at: u.ended_at,
                end_reason: u.end_reason,
            })
            .collect();
        Ok(paginate(items, &page, |u: &MachineUsage| u.id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_organization_holds_a_machine_from_claim_until_it_lets_go() {
        assert!(!held(MachineState::Discovered));
        for s in [
            MachineState::Claimed,
            MachineState::Joined,
            MachineState::Cordoned,
            MachineState::Draining,
            MachineState::Rebooting,
            MachineState::PoweredOff,
            MachineState::Decommissioning,
        ] {
            assert!(held(s), "{s:?}");
        }
        assert!(!held(MachineState::Decommissioned));
        assert!(!held(MachineState::NeedsWipe));
        assert_eq!(end_reason(MachineState::Discovered), "released");
        assert_eq!(end_reason(MachineState::NeedsWipe), "removed");
    }

    #[test]
    fn seconds_are_clipped_to_the_window() {
        let t = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or_default();
        assert_eq!(seconds_within(t(100), t(400), None, None), 300);
        assert_eq!(seconds_within(t(100), t(400), Some(t(200)), None), 200);
        assert_eq!(
            seconds_within(t(100), t(400), Some(t(200)), Some(t(250))),
            50
        );
        assert_eq!(seconds_within(t(100), t(400), Some(t(500)), None), 0);
    }
}
