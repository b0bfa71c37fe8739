//! The checked-in code in `src/gen` must be exactly what `protox` + `tonic-build`
//! produce from `proto/`. Set `PROTO_BLESS=1` to rewrite it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const PROTOS: &[&str] = &[
    "common/common.proto",
    "events/events.proto",
    "machine/machine.proto",
    "siderolink/provision.proto",
    "storage/storage.proto",
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate_into(out: &Path) {
    let proto_dir = crate_dir().join("proto");
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| proto_dir.join(p)).collect();
    let fds = protox::compile(&files, [&proto_dir]).expect("protos compile");
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        .emit_rerun_if_changed(false)
        .out_dir(out)
        .compile_fds(fds)
        .expect("code generation succeeds");
}

fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    fs::read_dir(dir)
        .expect("directory is readable")
        .map(|e| e.expect("directory entry"))
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read_to_string(e.path()).expect("file is readable"),
            )
        })
        .collect()
}

#[test]
fn checked_in_generated_code_matches_the_protos() {
    let tmp = tempfile::tempdir().expect("tempdir");
    generate_into(tmp.path());
    let fresh = read_dir(tmp.path());
    let gen_dir = crate_dir().join("src/gen");

    if std::env::var_os("PROTO_BLESS").is_some() {
        for (name, text) in &fresh {
            fs::write(gen_dir.join(name), text).expect("write generated file");
        }
        return;
    }

    let checked_in = read_dir(&gen_dir);
    let fresh_names: Vec<_> = fresh.keys().collect();
    let checked_names: Vec<_> = checked_in.keys().collect();
    assert_eq!(
        fresh_names, checked_names,
        "generated file set differs; rerun with PROTO_BLESS=1"
    );
    for (name, text) in &fresh {
        assert!(
            checked_in.get(name) == Some(text),
            "src/gen/{name} is stale; rerun `PROTO_BLESS=1 cargo test -p satusky-proto`"
        );
    }
}
