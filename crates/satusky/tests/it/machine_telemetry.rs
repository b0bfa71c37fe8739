//! Machine telemetry end to end: `satusky dev`'s simulated Talos machines
//! answer `1ctl machine logs` (Talos `Logs`/`Dmesg` over mTLS, once and
//! followed) and `1ctl machine metrics` (a live sample, the sampled history,
//! and the WebSocket stream).

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{Dev, bin, eventually};

const WAIT: Duration = Duration::from_mins(1);

/// JSON lines printed by `1ctl … -o json` for streams and logs.
fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn machine_logs_and_metrics_come_from_the_machines() {
    let data = tempfile::tempdir().unwrap();
    let dev = Dev::start(data.path());
    dev.login();
    let machine = eventually("a joined machine", WAIT, || {
        let list = dev.ctl_json(&["machine", "list", "-o", "json"]);
        list.as_array()
            .unwrap()
            .iter()
            .find(|m| m["state"] == "joined")
            .map(|m| m["name"].as_str().unwrap().to_owned())
    });

    // Service logs and the kernel ring buffer, read once.
    let out = dev.ctl(&[
        "machine",
        "logs",
        &machine,
        "--service",
        "kubelet",
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kubelet = json_lines(&out.stdout);
    assert!(
        kubelet.iter().all(|l| l["source"] == "kubelet"),
        "{kubelet:?}"
    );
    assert!(
        kubelet.iter().any(|l| l["line"]
            .as_str()
            .unwrap()
            .contains("Successfully registered node")),
        "{kubelet:?}"
    );
    let out = dev.ctl(&[
        "machine", "logs", &machine, "--kernel", "--tail", "2", "-o", "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kernel = json_lines(&out.stdout);
    assert_eq!(kernel.len(), 2, "{kernel:?}");
    assert!(kernel.iter().all(|l| l["source"] == "kernel"));
    // Plain text by default: the lines themselves.
    let out = dev.ctl(&["machine", "logs", &machine, "--kernel"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Linux version"), "{text}");

    // A log the machine does not keep, and a name that is not one.
    let out = dev.ctl(&["machine", "logs", &machine, "--service", "nosuchd"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keeps no log named `nosuchd`"), "{err}");
    let out = dev.ctl(&["machine", "logs", &machine, "--service", "Bad/Name"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a log name"), "{err}");

    // Followed: lines written after the start arrive (the simulated kubelet
    // reports node status every few seconds).
    let mut follow = Command::new(bin("1ctl"))
        .args([
            "machine", "logs", &machine, "-s", "kubelet", "--tail", "1", "-f", "-o", "json",
        ])
        .env("SATUSKY_CONFIG_DIR", dev.home.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(follow.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let first: Value = serde_json::from_str(&first).unwrap();
    let mut next = String::new();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = reader.read_line(&mut next);
        let _ = tx.send(next);
    });
    let next = rx
        .recv_timeout(WAIT)
        .expect("a new kubelet line while following");
    let next: Value = serde_json::from_str(&next).unwrap();
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(next["source"], "kubelet");
    assert_ne!(first["line"], next["line"]);

    // One health model: link, Talos services and node conditions.
    let status = dev.ctl_json(&["machine", "status", &machine, "-o", "json"]);
    assert_eq!(status["verdict"], "healthy", "{status}");
    let types: Vec<&str> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "True")
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    for t in ["LinkUp", "TalosReachable", "ServicesHealthy", "NodeReady"] {
        assert!(types.contains(&t), "{t} in {status}");
    }
    assert!(
        status["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "kubelet"),
        "{status}"
    );

    // Placement preview: the machines a deploy would use and their room.
    let dry = dev.ctl_json(&[
        "deploy",
        "--name",
        "probe",
        "--image",
        "nginx:1",
        "--replicas",
        "2",
        "--dry-run",
        "-o",
        "json",
    ]);
    let rooms = dry["placement"]["machines"].as_array().unwrap();
    assert_eq!(rooms.len(), 3, "{dry}");
    assert!(
        rooms
            .iter()
            .all(|r| r["schedulable"] == true && r["cpu_allocatable_millis"].as_u64().unwrap() > 0),
        "{dry}"
    );
    assert_eq!(dry["placement"]["enough"], true, "{dry}");
    let (status, _) = dev.api(reqwest::Method::GET, "/v1/orgs/dev/apps/probe", None);
    assert_eq!(status, 404, "a dry run deploys nothing");

    // Metrics: a live sample, then the history the control plane samples.
    let live = dev.ctl_json(&["machine", "metrics", &machine, "-o", "json"]);
    assert!(live["memory_total_bytes"].as_u64().unwrap() > 0, "{live}");
    let history = eventually("two sampled metrics", WAIT, || {
        let h = dev.ctl_json(&["machine", "metrics", &machine, "--history", "-o", "json"]);
        (h.as_array().unwrap().len() >= 2).then_some(h)
    });
    let at: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["at"].as_str().unwrap())
        .collect();
    let mut sorted = at.clone();
    sorted.sort_unstable();
    assert_eq!(at, sorted, "oldest first");

    // Watched: the stream starts with the recent samples and follows.
    let mut watch = Command::new(bin("1ctl"))
        .args(["machine", "metrics", &machine, "--watch", "-o", "json"])
        .env("SATUSKY_CONFIG_DIR", dev.home.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(watch.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            seen.push(serde_json::from_str::<Value>(&line).unwrap());
            if tx.send(seen.clone()).is_err() {
                break;
            }
        }
    });
    let newest_before = at.last().unwrap().to_string();
    let got = loop {
        let seen = rx.recv_timeout(WAIT).expect("samples while watching");
        if seen
            .iter()
            .any(|s| s["at"].as_str().unwrap() > newest_before.as_str())
        {
            break seen;
        }
    };
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        got[0]["at"].as_str().unwrap() <= newest_before.as_str(),
        "starts with history"
    );
}
