//! Deleting an organization with `1ctl` takes its namespace out of the
//! cluster, as `kubectl` sees it.

use std::time::Duration;

use crate::support::{Dev, eventually};

const WAIT: Duration = Duration::from_mins(1);

#[test]
fn deleting_an_org_with_1ctl_deletes_its_namespace_from_the_cluster() {
    let data = tempfile::tempdir().unwrap();
    let dev = Dev::start(data.path());
    dev.login();
    let org = dev.ctl_json(&["org", "create", "acme", "-o", "json"]);
    assert_eq!(org["namespace"], "org-acme");
    dev.ctl_json(&["org", "switch", "acme", "-o", "json"]);
    let out = dev.ctl(&[
        "deploy",
        "--name",
        "web",
        "--image",
        "nginx:1.27",
        "--port",
        "80",
        "--volume-size",
        "1Gi",
        "--volume-mount",
        "/data",
        "--wait",
        "--timeout",
        "60s",
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "deploy --wait failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ns = dev.kubectl_json(&["get", "namespace", "org-acme"]);
    assert_eq!(ns["metadata"]["labels"]["satusky.com/org"], "acme");
    let claims = dev.kubectl_json(&["-n", "org-acme", "get", "persistentvolumeclaims"]);
    assert_eq!(claims["items"].as_array().unwrap().len(), 1, "{claims}");
    // A look-alike made by hand is not the platform's to delete.
    let made = dev.kubectl(&["create", "namespace", "org-acme-x"]);
    assert!(made.status.success());

    let out = dev.ctl(&["org", "delete", "acme", "--yes"]);
    assert!(
        out.status.success(),
        "org delete failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("its namespace is being deleted in every cluster"),
        "{said}"
    );
    eventually("namespace org-acme to be gone", WAIT, || {
        let out = dev.kubectl(&["get", "namespace", "org-acme"]);
        let err = String::from_utf8_lossy(&out.stderr);
        (!out.status.success() && err.contains("NotFound")).then_some(())
    });
    let kept = dev.kubectl_json(&["get", "namespace", "org-acme-x"]);
    assert_eq!(kept["status"]["phase"], "Active");
    assert!(kept["metadata"]["deletionTimestamp"].is_null());
    // The organization is gone for 1ctl as well.
    let orgs = dev.ctl_json(&["org", "list", "-o", "json"]);
    let slugs: Vec<&str> = orgs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["slug"].as_str())
        .collect();
    assert_eq!(slugs, ["dev"]);
}
