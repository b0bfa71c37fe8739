//! Spot checks that field numbers match the public Talos and SideroLink APIs.

use prost::Message;
use satusky_proto::{events, machine, sidero::link, storage};

fn tag(field: u32, wire_type: u8) -> u8 {
    ((field << 3) as u8) | wire_type
}

#[test]
fn provision_request_join_token_is_field_three() {
    let req = link::ProvisionRequest {
        join_token: Some("t".into()),
        ..Default::default()
    };
    assert_eq!(req.encode_to_vec(), vec![tag(3, 2), 1, b't']);
}

#[test]
fn old_clients_read_the_last_server_endpoint_as_a_single_string() {
    // Before late 2023 `server_endpoint` was `string`; repeated is wire compatible.
    #[derive(Clone, PartialEq, prost::Message)]
    struct OldResponse {
        #[prost(string, tag = "1")]
        server_endpoint: String,
    }
    let resp = link::ProvisionResponse {
        server_endpoint: vec!["b:1".into(), "a:1".into()],
        ..Default::default()
    };
    let old = OldResponse::decode(resp.encode_to_vec().as_slice()).unwrap();
    assert_eq!(old.server_endpoint, "a:1");
}

#[test]
fn event_request_actor_id_is_field_three() {
    let req = events::EventRequest {
        actor_id: "x".into(),
        ..Default::default()
    };
    assert_eq!(req.encode_to_vec(), vec![tag(3, 2), 1, b'x']);
}

#[test]
fn meminfo_directmap1g_is_field_forty_eight() {
    let m = machine::MemInfo {
        directmap1g: 1,
        ..Default::default()
    };
    // field 48, varint: tag = 48 << 3 = 384 = 0x80 0x03
    assert_eq!(m.encode_to_vec(), vec![0x80, 0x03, 1]);
}

#[test]
fn disk_readonly_is_field_thirteen_and_cd_is_five() {
    let d = storage::Disk {
        readonly: true,
        r#type: storage::disk::DiskType::Cd as i32,
        ..Default::default()
    };
    assert_eq!(d.encode_to_vec(), vec![tag(9, 0), 5, tag(13, 0), 1]);
}

#[test]
fn reset_request_mode_is_field_five() {
    let r = machine::ResetRequest {
        mode: machine::reset_request::WipeMode::UserDisks as i32,
        ..Default::default()
    };
    assert_eq!(r.encode_to_vec(), vec![tag(5, 0), 2]);
}

#[test]
fn event_type_urls_strip_to_the_message_name() {
    assert_eq!(
        satusky_proto::event_message_name("type.googleapis.com/machine.MachineStatusEvent"),
        satusky_proto::event_names::MACHINE_STATUS
    );
    assert_eq!(
        satusky_proto::event_message_name("talos/runtime/machine.SequenceEvent"),
        satusky_proto::event_names::SEQUENCE
    );
}
