use prost::Message;
use satusky_machines::{EventPayload, MachineStage, RebootMode, events::Action};
use satusky_proto::events::EventRequest;
use satusky_proto::events::event_sink_service_client::EventSinkServiceClient;
use talos_sim::{Fleet, Stage, Timings};

use crate::support::{T, client, start_sink};

#[tokio::test]
async fn a_reboot_through_the_talos_api_produces_events_in_the_sink() {
    let (sink_addr, mut rx) = start_sink().await;
    let fleet = Fleet::builder()
        .event_sink(sink_addr.to_string())
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    let m = fleet.machine(0);
    m.wait_for_stage(Stage::Running, T).await.unwrap();
    let actor = client(&fleet, m).reboot(RebootMode::Default).await.unwrap();
    assert!(!actor.is_empty());

    let mut saw_sequence = false;
    let mut saw_rebooting = false;
    let mut saw_running_again = false;
    let deadline = tokio::time::Instant::now() + T;
    while !(saw_sequence && saw_rebooting && saw_running_again) {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("sink events in time")
            .unwrap();
        match ev.event.payload {
            EventPayload::Sequence {
                ref sequence,
                action: Action::Start,
                ..
            } if sequence == "reboot" => {
                assert_eq!(ev.event.actor_id, actor);
                saw_sequence = true;
            }
            EventPayload::MachineStatus {
                stage: MachineStage::Rebooting,
                ..
            } => saw_rebooting = true,
            EventPayload::MachineStatus {
                stage: MachineStage::Running,
                ready: true,
                ..
            } if saw_rebooting => saw_running_again = true,
            _ => {}
        }
        // The machine is identified by the source address of its events.
        assert_eq!(ev.peer.unwrap().ip(), m.management_ip());
    }
    fleet.stop().await;
}

#[tokio::test]
async fn the_sink_drops_replayed_event_ids() {
    let (sink_addr, mut rx) = start_sink().await;
    let mut c = EventSinkServiceClient::connect(format!("http://{sink_addr}"))
        .await
        .unwrap();
    let payload = satusky_proto::machine::MachineStatusEvent {
        stage: 4,
        status: None,
    };
    let req = EventRequest {
        data: Some(prost_types::Any {
            type_url: "type.googleapis.com/machine.MachineStatusEvent".into(),
            value: payload.encode_to_vec(),
        }),
        id: "d4kq9b0vvq8c73a0t8n0".into(),
        actor_id: String::new(),
    };
    c.publish(req.clone()).await.unwrap();
    c.publish(req).await.unwrap();
    let first = rx.recv().await.unwrap();
    assert!(matches!(
        first.event.payload,
        EventPayload::MachineStatus {
            stage: MachineStage::Running,
            ..
        }
    ));
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), rx.recv())
            .await
            .is_err(),
        "duplicate was forwarded"
    );
}

#[tokio::test]
async fn kernel_logs_arrive_as_json_lines_from_the_machine_address() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(satusky_machines::KmsgReceiver::new(tx).serve(l, std::future::pending()));
    let fleet = Fleet::builder()
        .kernel_log(format!("tcp://{addr}"))
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    let m = fleet.machine(0);
    let deadline = tokio::time::Instant::now() + T;
    let mut last_seq = 0;
    loop {
        let r = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("kernel log in time")
            .unwrap();
        assert_eq!(r.peer.ip(), m.management_ip());
        assert!(r.time.is_some());
        let seq = r.seq.unwrap();
        assert!(seq > last_seq, "ordered");
        last_seq = seq;
        if r.msg.contains("Linux version") {
            assert_eq!(r.facility, "kern");
            break;
        }
    }
    fleet.stop().await;
}
