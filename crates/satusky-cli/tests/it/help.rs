//! Snapshots of help text, so any change to the command surface is seen in review.

use crate::support::TestEnv;

fn help(args: &[&str]) -> String {
    let env = TestEnv::new();
    let mut cmd = env.command();
    // Help shows env values; keep the configuration dir out of snapshots.
    cmd.env_remove("SATUSKY_CONFIG_DIR").args(args);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn top_level_help_lists_every_command_group() {
    insta::assert_snapshot!(help(&["--help"]));
}

#[test]
fn auth_login_help_shows_both_ways_to_log_in() {
    insta::assert_snapshot!(help(&["auth", "login", "--help"]));
}

#[test]
fn org_help_lists_org_commands() {
    insta::assert_snapshot!(help(&["org", "--help"]));
}

#[test]
fn org_team_help_takes_an_org_flag() {
    insta::assert_snapshot!(help(&["org", "team", "--help"]));
}

#[test]
fn token_create_help_documents_expiry() {
    insta::assert_snapshot!(help(&["token", "create", "--help"]));
}

#[test]
fn audit_list_help_documents_filters() {
    insta::assert_snapshot!(help(&["audit", "list", "--help"]));
}

#[test]
fn version_prints_on_stdout_and_exits_zero() {
    let out = TestEnv::new().run(&["--version"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("1ctl "), "{}", out.stdout);
}

#[test]
fn deploy_help_documents_precedence_defaults_and_older_placement_flags() {
    insta::assert_snapshot!(help(&["deploy", "--help"]));
}

#[test]
fn app_help_lists_app_commands() {
    insta::assert_snapshot!(help(&["app", "--help"]));
}

#[test]
fn machine_help_lists_machine_commands_and_how_references_resolve() {
    insta::assert_snapshot!(help(&["machine", "--help"]));
}

#[test]
fn machine_drain_help_documents_selector_and_wait() {
    insta::assert_snapshot!(help(&["machine", "drain", "--help"]));
}

#[test]
fn machine_cancel_help_says_what_can_still_be_stopped() {
    insta::assert_snapshot!(help(&["machine", "cancel", "--help"]));
}

#[test]
fn logs_help_documents_follow_and_stream() {
    insta::assert_snapshot!(help(&["logs", "--help"]));
}
