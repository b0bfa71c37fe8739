//! Placement previews: which visible machines a selector matches, and how
//! many replicas of a request each has room for now.

use futures::StreamExt as _;
use satusky_types::ErrorCode;
use satusky_types::apps::{DEFAULT_CPU_REQUEST, DEFAULT_MEMORY_REQUEST};
use satusky_types::machines::{MachineRoom, PlacementPreview, PlacementQuery};

use super::{Ctx, Services, ops_message};
use crate::apps::parse_quantity;
use crate::authz::Action;
use crate::fleet::NodeCapacity;
use crate::fleet::labels;
use crate::pagination::PageRequest;
use crate::{Error, Result};

/// Nodes asked at once.
const CONCURRENCY: usize = 16;
/// Replicas a preview may ask about.
const MAX_REPLICAS: u32 = 1000;
/// Machines a preview looks at, at most.
const MAX_MACHINES: usize = 5000;

/// Replicas of (`cpu` millicores, `memory` bytes) that fit in what is left
/// of `cap`; zero when it is not schedulable.
pub(super) fn fits(cap: &NodeCapacity, cpu: u64, memory: u64) -> u32 {
    if !cap.schedulable {
        return 0;
    }
    let free = |total: u64, used: u64, each: u64| {
        let left = total.saturating_sub(used);
        left.checked_div(each).unwrap_or(u64::MAX)
    };
    let by_cpu = free(cap.cpu_allocatable_millis, cap.cpu_requested_millis, cpu);
    let by_memory = free(
        cap.memory_allocatable_bytes,
        cap.memory_requested_bytes,
        memory,
    );
    let by_pods = u64::from(cap.pods_allocatable.saturating_sub(cap.pods));
    u32::try_from(by_cpu.min(by_memory).min(by_pods)).unwrap_or(u32::MAX)
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "validated positive quantities far below u64::MAX"
)]
fn request(field: &str, q: &str, scale: f64) -> Result<u64> {
    let v = parse_quantity(field, q).map_err(|e| Error::new(ErrorCode::InvalidQuery, e.message))?;
    if v <= 0.0 {
        return Err(Error::new(
            ErrorCode::InvalidQuery,
            format!("{field} must be more than zero, got `{q}`"),
        ));
    }
    Ok((v * scale).ceil() as u64)
}

impl Services {
    /// Where `replicas` of a (cpu, memory) request would fit among the
    /// visible machines `selector` matches.
    pub async fn placement_preview(
        &self,
        ctx: &Ctx,
        org: &str,
        q: &PlacementQuery,
    ) -> Result<PlacementPreview> {
        let cpu_request = q
            .cpu
            .clone()
            .unwrap_or_else(|| DEFAULT_CPU_REQUEST.to_owned());
        let memory_request = q
            .memory
            .clone()
            .unwrap_or_else(|| DEFAULT_MEMORY_REQUEST.to_owned());
        let cpu = request("cpu", &cpu_request, 1000.0)?;
        let memory = request("memory", &memory_request, 1.0)?;
        let replicas = q.replicas.unwrap_or(1);
        if replicas == 0 || replicas > MAX_REPLICAS {
            return Err(Error::new(
                ErrorCode::InvalidQuery,
                format!("replicas must be between 1 and {MAX_REPLICAS}, got {replicas}"),
            ));
        }
        let selector = q
            .selector
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(labels::machine_selector)
            .transpose()?;
        let a = self.authorize(ctx, org, Action::MachinesRead).await?;
        let capacity = self.inner.config.capacity.clone();

        let store = &self.inner.store;
        let mut machines = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let rows = match &selector {
                Some(s) => {
                    store
                        .list_machines_selected(&a.org.id, true, s, &page)
                        .await?
                }
                None => store.list_machines(&a.org.id, true, &page).await?,
            };
            let more = rows.len() > 500;
            page.after = rows.get(499).map(|m| m.id.clone());
            machines.extend(
                rows.into_iter()
                    .take(500)
                    .filter(|m| m.org_id != a.org.id || Self::sees_own(ctx, &a, m)),
            );
            if !more || machines.len() >= MAX_MACHINES {
                break;
            }
        }
        machines.truncate(MAX_MACHINES);

        let rooms: Vec<MachineRoom> = futures::stream::iter(machines)
            .map(|m| {
                let capacity = capacity.clone();
                async move {
                    let asked = match (&m.node_name, &capacity) {
                        (Some(node), Some(c)) => Some(c.capacity(node).await),
                        (Some(_), None) => Some(Err(crate::fleet::OpsError::failed(
                            "node capacity is not readable on this installation",
                        ))),
                        (None, _) => None,
                    };
                    let (cap, reason) = match asked {
                        None => (
                            NodeCapacity::default(),
                            Some("not joined to the cluster".to_owned()),
                        ),
                        Some(Ok(None)) => (
                            NodeCapacity::default(),
                            Some("its node does not exist".to_owned()),
                        ),
                        Some(Err(e)) => (NodeCapacity::default(), Some(ops_message(&e))),
                        Some(Ok(Some(c))) => {
                            let reason = c.reason.clone();
                            (c, reason)
                        }
                    };
                    MachineRoom {
                        fits: fits(&cap, cpu, memory),
                        id: m.id,
                        name: m.name,
                        state: m.state,
                        node_name: m.node_name,
                        schedulable: cap.schedulable,
                        reason,
                        cpu_allocatable_millis: cap.cpu_allocatable_millis,
                        cpu_requested_millis: cap.cpu_requested_millis,
                        memory_allocatable_bytes: cap.memory_allocatable_bytes,
                        memory_requested_bytes: cap.memory_requested_bytes,
                        pods_allocatable: cap.pods_allocatable,
                        pods: cap.pods,
                    }
                }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let total = rooms.iter().fold(0u32, |n, r| n.saturating_add(r.fits));
        Ok(PlacementPreview {
            selector: q.selector.clone().filter(|s| !s.trim().is_empty()),
            cpu_request,
            memory_request,
            replicas,
            fits: total,
            enough: total >= replicas,
            machines: rooms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(
        cpu: u64,
        used_cpu: u64,
        mem: u64,
        used_mem: u64,
        pods: u32,
        used_pods: u32,
    ) -> NodeCapacity {
        NodeCapacity {
            cpu_allocatable_millis: cpu,
            cpu_requested_millis: used_cpu,
            memory_allocatable_bytes: mem,
            memory_requested_bytes: used_mem,
            pods_allocatable: pods,
            pods: used_pods,
            schedulable: true,
            reason: None,
        }
    }

    #[test]
    fn the_scarcest_resource_decides() {
        // 4 cores with 1 used: 12 of 250m; 8 GiB with 7 used: 8 of 128Mi; 110 pods.
        assert_eq!(
            fits(&cap(4000, 1000, 8 << 30, 7 << 30, 110, 10), 250, 128 << 20),
            8
        );
        assert_eq!(
            fits(&cap(4000, 1000, 8 << 30, 0, 110, 10), 250, 128 << 20),
            12
        );
        assert_eq!(fits(&cap(4000, 0, 8 << 30, 0, 12, 10), 250, 128 << 20), 2);
        // Overcommitted nodes have no room, not a negative one.
        assert_eq!(fits(&cap(1000, 1500, 8 << 30, 0, 110, 0), 100, 1), 0);
        let mut cordoned = cap(4000, 0, 8 << 30, 0, 110, 0);
        cordoned.schedulable = false;
        assert_eq!(fits(&cordoned, 100, 1), 0);
    }

    #[test]
    fn requests_are_positive_quantities() {
        assert_eq!(request("cpu", "250m", 1000.0).ok(), Some(250));
        assert_eq!(request("cpu", "1.5", 1000.0).ok(), Some(1500));
        assert_eq!(request("memory", "128Mi", 1.0).ok(), Some(128 << 20));
        assert!(request("cpu", "0", 1000.0).is_err());
        assert!(request("cpu", "lots", 1000.0).is_err());
    }
}
