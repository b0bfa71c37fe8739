//! `satusky dev`'s helper (feature `dev`).

use std::time::Duration;

use anyhow::Result;
use satusky_fleet::dev::{SimMachines, SimTimings, start_sim_machines};
use satusky_types::machines::MachineState;

use crate::support::{Env, ORG, wait_for};

#[tokio::test]
async fn dev_machines_join_the_dev_organization_and_answer_talos_calls() -> Result<()> {
    let env = Env::new().await?;
    let sim = start_sim_machines(SimMachines {
        services: &env.services,
        ctx: &env.ctx,
        org: ORG,
        handle: &env.handle,
        endpoints: &env.endpoints,
        talos: &env.ports.talos_ops,
        kube: env.kube.clone(),
        count: 2,
        timings: SimTimings::fast(),
    })
    .await?;
    let machines = wait_for(
        Duration::from_secs(15),
        "two discovered machines",
        || async {
            let l = env.list().await?;
            Ok((l.len() == 2).then_some(l))
        },
    )
    .await?;
    assert!(machines.iter().all(|m| m.state == MachineState::Discovered));
    let first = &machines[0].name;
    env.services.claim_machine(&env.ctx, ORG, first).await?;
    env.wait_machine(first, "joined", Duration::from_secs(15), |m| {
        m.state == MachineState::Joined
    })
    .await?;
    let metrics = env.services.machine_metrics(&env.ctx, ORG, first).await?;
    assert!(metrics.memory_total_bytes > 0);
    sim.stop().await;
    Ok(())
}
