//! The `tickets` command line, driven as a user would on the embedded default.

use serde_json::Value;
use tests::{stdout_ok, tickets};

fn db() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tickets.db").display());
    (dir, url)
}

/// A newcomer's first session: create a ticket, assign it, read its history, and
/// see each event with the fields it changed, folded from the log.
#[test]
fn a_created_and_assigned_ticket_shows_its_history_with_field_changes() {
    let (_dir, url) = db();
    assert_eq!(
        stdout_ok(&tickets(
            &url,
            &["user", "bob", "--role", "AGENT", "--team", "support"]
        ))
        .trim(),
        "recorded bob"
    );
    let created = stdout_ok(&tickets(
        &url,
        &[
            "ticket",
            "create",
            "--request",
            "Printer on fire",
            "--priority",
            "HIGH",
            "--tag",
            " Hardware ",
        ],
    ));
    let mut words = created.split_whitespace();
    assert_eq!(words.next(), Some("TCK-000001"));
    let id = words.next().expect("ticket id").to_string();

    let assigned = stdout_ok(&tickets(&url, &["ticket", "assign", "TCK-000001", "bob"]));
    assert_eq!(assigned.trim(), "TCK-000001 now at version 1");

    let history = stdout_ok(&tickets(&url, &["ticket", "history", &id, "--json"]));
    let events: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(events.len(), 2, "{history}");
    assert_eq!(events[0]["eventType"], "CREATED");
    assert_eq!(events[0]["version"], 0);
    let tags = events[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "tags")
        .expect("tags change on creation");
    assert_eq!(tags["newValue"], serde_json::json!(["hardware"]));
    assert_eq!(events[1]["eventType"], "ASSIGNED");
    let changes = events[1]["changes"].as_array().unwrap();
    let assignee = changes
        .iter()
        .find(|c| c["field"] == "assignedTo")
        .expect("assignedTo change");
    assert_eq!(assignee["oldValue"], Value::Null);
    assert_eq!(assignee["newValue"], "bob");
}

/// Assigning the current assignee again appends nothing; assigning an unknown
/// user is refused with a message and leaves the history as it was.
#[test]
fn a_no_op_or_invalid_command_appends_nothing() {
    let (_dir, url) = db();
    stdout_ok(&tickets(&url, &["user", "bob", "--role", "AGENT"]));
    stdout_ok(&tickets(
        &url,
        &["ticket", "create", "--request", "VPN drops"],
    ));
    stdout_ok(&tickets(&url, &["ticket", "assign", "TCK-000001", "bob"]));

    let again = stdout_ok(&tickets(&url, &["ticket", "assign", "TCK-000001", "bob"]));
    assert_eq!(again.trim(), "TCK-000001 unchanged (version 1)");

    let unknown = tickets(&url, &["ticket", "assign", "TCK-000001", "carol"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .to_lowercase()
            .contains("carol"),
        "the error names the user: {}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    let history = stdout_ok(&tickets(
        &url,
        &["ticket", "history", "TCK-000001", "--json"],
    ));
    assert_eq!(history.lines().count(), 2, "{history}");
}

/// References are sequential and resolve to the ticket they were given to.
#[test]
fn references_are_sequential_and_resolve_to_their_ticket() {
    let (_dir, url) = db();
    let first = stdout_ok(&tickets(&url, &["ticket", "create", "--request", "one"]));
    let second = stdout_ok(&tickets(&url, &["ticket", "create", "--request", "two"]));
    assert!(first.starts_with("TCK-000001 "), "{first}");
    assert!(second.starts_with("TCK-000002 "), "{second}");
    let shown = stdout_ok(&tickets(&url, &["ticket", "show", "TCK-000002"]));
    let ticket: Value = serde_json::from_str(&shown).expect("ticket JSON");
    assert_eq!(ticket["request"], "two");
    assert_eq!(ticket["reference"], "TCK-000002");
    let missing = tickets(&url, &["ticket", "show", "TCK-000009"]);
    assert!(!missing.status.success());
}

/// A request that breaks a rule (an empty summary) is refused and writes nothing.
#[test]
fn an_invalid_create_is_refused_without_burning_a_reference() {
    let (_dir, url) = db();
    let bad = tickets(&url, &["ticket", "create", "--request", "   "]);
    assert!(!bad.status.success());
    let ok = stdout_ok(&tickets(&url, &["ticket", "create", "--request", "fine"]));
    assert!(ok.starts_with("TCK-000001 "), "{ok}");
}

/// `tickets schema` prints the served SDL, and it keeps every promise of the
/// contract (checked by the contract's own script when `shared/` is beside the
/// repository, as in CI).
#[test]
fn the_printed_schema_keeps_the_contract() {
    let (_dir, url) = db();
    let sdl = stdout_ok(&tickets(&url, &["schema"]));
    assert!(sdl.contains("type SupportTicket"), "{sdl}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("shared/contract/check_schema.py");
    if !script.exists() {
        eprintln!("skipped the contract check: {} not found", script.display());
        return;
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &sdl).unwrap();
    let check = std::process::Command::new("python3")
        .arg(&script)
        .arg(file.path())
        .output()
        .expect("run python3");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && report.contains(", 0 broken"),
        "{report}"
    );
}

/// An operator rebuilds a read model from the log and sees it caught up: the
/// rebuild reports the position it reached, and status shows no lag.
#[test]
fn projections_rebuild_then_status_shows_the_model_caught_up() {
    let (_dir, url) = db();
    stdout_ok(&tickets(&url, &["ticket", "create", "--request", "one"]));
    stdout_ok(&tickets(&url, &["ticket", "create", "--request", "two"]));
    let rebuilt = stdout_ok(&tickets(&url, &["projections", "rebuild", "tickets"]));
    let reached = rebuilt
        .trim()
        .strip_prefix("rebuilt tickets up to position ")
        .unwrap_or_else(|| panic!("unexpected output: {rebuilt}"));
    assert!(reached.parse::<u64>().expect("a position") > 0);

    let status = stdout_ok(&tickets(&url, &["projections", "status"]));
    let row = status
        .lines()
        .find(|l| l.starts_with("tickets "))
        .unwrap_or_else(|| panic!("no tickets row in:\n{status}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], reached, "{row}");
    assert_eq!(cols[2], "0", "lag: {row}");
    assert_eq!(cols[3], "running", "{row}");

    // Without a name every projection is rebuilt from one reading of the log,
    // and each reports the position it reached.
    let all = stdout_ok(&tickets(&url, &["projections", "rebuild"]));
    for name in ["tickets", "users", "queue_metrics", "notifications"] {
        let line = all
            .lines()
            .find_map(|l| l.strip_prefix(&format!("rebuilt {name} up to position ")))
            .unwrap_or_else(|| panic!("no line for {name} in:\n{all}"));
        assert_eq!(line, reached, "{name} in:\n{all}");
    }

    let unknown = tickets(&url, &["projections", "rebuild", "nope"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("known: tickets, users"));
}
