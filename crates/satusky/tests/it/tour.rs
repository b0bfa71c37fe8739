//! Runs the README's five-minute tour exactly as written, against a real
//! `satusky dev`, so the README cannot drift from what works.

use std::path::Path;
use std::process::Command;

use crate::support::Dev;

/// The commands of the README block between `<!-- tour:begin -->` and `<!-- tour:end -->`.
fn tour_commands() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let start = readme
        .find("<!-- tour:begin -->")
        .expect("README has a tour block");
    let end = readme
        .find("<!-- tour:end -->")
        .expect("README tour block ends");
    readme[start..end]
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("1ctl ") || l.starts_with("kubectl "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_tour_works_as_written() {
    let commands = tour_commands();
    assert!(commands.len() >= 10, "the tour is there: {commands:?}");
    let data = tempfile::tempdir().unwrap();
    let dev = Dev::start(data.path());
    let onectl = std::path::PathBuf::from(env!("CARGO_BIN_EXE_satusky")).with_file_name("1ctl");
    for line in &commands {
        // The README shows the defaults a newcomer sees; this run has its own port, token and data dir.
        let line = line
            .replace("http://127.0.0.1:8080", &dev.api)
            .replace("sk_pat_…", &dev.token)
            .replace("~/.local/share/satusky/dev/kubeconfig", &dev.kubeconfig);
        let words: Vec<&str> = line.split_whitespace().collect();
        let program = if words[0] == "1ctl" {
            onectl.as_os_str().to_owned()
        } else {
            words[0].into()
        };
        let out = Command::new(program)
            .args(&words[1..])
            .env("SATUSKY_CONFIG_DIR", dev.home.path())
            .env("NO_COLOR", "1")
            .env_remove("SATUSKY_TOKEN")
            .env_remove("SATUSKY_API_URL")
            .env_remove("SATUSKY_PROFILE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tour step `{line}` failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
