//! What a newcomer meets first: the mistakes anyone makes on a first run each
//! get one clear `error:` line and a non-zero exit, and the server's log is
//! plain text wherever it is not read on a terminal.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tests::{one_error_line, tickets, tickets_bin, Server, TEST_SECRET};

/// Waits for `child` (at most 60 s, then kills it and fails) and returns its output.
fn finish(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// `tickets serve` with `args`, standard error captured, stopped after 60 s.
fn serve(database_url: &str, args: &[&str]) -> Output {
    let child = Command::new(tickets_bin())
        .arg("serve")
        .args(args)
        .env("TICKETS_DATABASE_URL", database_url)
        .env("TICKETS_JWT_SECRET", TEST_SECRET)
        .env_remove("TICKETS_LISTEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tickets serve");
    finish(child, "tickets serve")
}

/// A folder this process cannot create files in, even as root (CI runs as
/// root, for whom permission bits on a temporary folder do not count).
fn unwritable_folder(scratch: &Path) -> PathBuf {
    let folder = scratch.join("read-only");
    std::fs::create_dir(&folder).unwrap();
    let mut perms = std::fs::metadata(&folder).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&folder, perms).unwrap();
    if std::fs::File::create(folder.join("probe")).is_err() {
        return folder;
    }
    // sysfs refuses new files to everyone.
    PathBuf::from("/sys")
}

/// The port a server is to listen on is taken: the error names the address,
/// says it is in use, and names the flag that changes it; the process exits
/// before opening any database.
#[test]
fn a_port_already_in_use_is_one_line_naming_the_port_and_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tickets.db");
    let url = format!("sqlite://{}", db.display());
    let line = one_error_line(&serve(&url, &["--listen", &address]));
    assert!(line.contains(&address), "{line}");
    assert!(line.contains("already in use"), "{line}");
    assert!(line.contains("--listen"), "{line}");
    assert!(
        !db.exists(),
        "no database was created for a server that cannot listen"
    );
}

/// A SQLite file in a folder that does not exist: the command line and the
/// server both say which folder is missing, and create nothing.
#[test]
fn a_sqlite_file_in_a_missing_folder_is_one_line_naming_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder");
    let url = format!("sqlite://{}", missing.join("tickets.db").display());
    let created = tickets(&url, &["ticket", "create", "--request", "Printer on fire"]);
    let line = one_error_line(&created);
    assert!(line.contains("does not exist"), "{line}");
    assert!(line.contains(&missing.display().to_string()), "{line}");
    let served = one_error_line(&serve(&url, &["--listen", "127.0.0.1:0"]));
    assert!(served.contains("does not exist"), "{served}");
    assert!(!missing.exists());
}

/// A SQLite file in a folder this user may not write: the error names the file
/// and the reason.
#[test]
fn a_sqlite_file_in_an_unwritable_folder_is_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = unwritable_folder(dir.path());
    let file = folder.join("tickets-first-run-test.db");
    let url = format!("sqlite://{}", file.display());
    let line = one_error_line(&tickets(&url, &["ticket", "create", "--request", "x"]));
    assert!(line.contains(&file.display().to_string()), "{line}");
    assert!(line.contains("ermission denied"), "{line}");
    assert!(!file.exists());
}

/// A PostgreSQL URL nobody answers at: the error says so at once (no long
/// retry), names the URL that was tried, and never shows its password.
#[test]
fn a_postgres_url_nobody_answers_is_one_line_saying_what_was_tried() {
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let url = "postgres://tickets:s3cret@127.0.0.1:1/tickets";
    // Built (if need be) before the clock starts.
    tickets_bin();
    let started = Instant::now();
    let line = one_error_line(&tickets(url, &["ticket", "create", "--request", "x"]));
    assert!(
        line.contains("no PostgreSQL server answered at 127.0.0.1:1"),
        "{line}"
    );
    assert!(
        line.contains("postgres://tickets:***@127.0.0.1:1/tickets"),
        "{line}"
    );
    assert!(!line.contains("s3cret"), "{line}");
    let served = one_error_line(&serve(url, &["--listen", "127.0.0.1:0"]));
    assert!(served.contains("no PostgreSQL server answered"), "{served}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a refused connection is reported without waiting out a pool timeout"
    );
}

/// A subcommand that does not exist: clap's error, naming it, with status 2
/// (a usage error) and nothing run.
#[test]
fn an_unknown_subcommand_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tickets.db");
    let output = tickets(&format!("sqlite://{}", db.display()), &["tikcet", "create"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error:") && first.contains("'tikcet'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ticket"),
        "suggests the subcommand: {stderr}"
    );
    assert!(!db.exists());
}

/// The server's log written to a file (as under a supervisor or in a
/// container) is plain text: not one ANSI escape code.
#[test]
fn a_log_written_to_a_file_has_no_colour_codes() {
    let server = Server::start();
    let mut socket = std::net::TcpStream::connect(&server.address).unwrap();
    std::io::Write::write_all(
        &mut socket,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let log = server.log();
    assert!(log.contains("serving"), "the log has lines: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "no escape codes in a log file:\n{log}"
    );
}

/// Runs `tickets serve` on a pseudo-terminal (`script`), reads what it writes
/// until it says it is serving, stops it, and returns the terminal's text.
fn serve_on_a_terminal(no_color: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let command = format!("{} serve --listen 127.0.0.1:0", tickets_bin().display());
    let mut script = Command::new("script");
    script
        .args(["-qfec", &command, "/dev/null"])
        .env(
            "TICKETS_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("t.db").display()),
        )
        .env("TICKETS_JWT_SECRET", TEST_SECRET)
        .env("RUST_LOG", "info")
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(value) = no_color {
        script.env("NO_COLOR", value);
    }
    let mut child = script.spawn().expect("script (util-linux) runs");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.contains("serving") && Instant::now() < deadline {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
    }
    let _ = Command::new("pkill")
        .args(["-TERM", "-P", &child.id().to_string()])
        .status();
    let _ = child.kill();
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    let _ = child.wait();
    assert!(
        seen.contains("serving"),
        "the server logged on the terminal: {seen}"
    );
    seen
}

/// On a terminal the log is coloured, unless `NO_COLOR` is set.
#[test]
fn a_terminal_gets_colour_unless_no_color_is_set() {
    let coloured = serve_on_a_terminal(None);
    assert!(
        coloured.contains("\u{1b}["),
        "colour on a terminal: {coloured:?}"
    );
    let plain = serve_on_a_terminal(Some("1"));
    assert!(!plain.contains('\u{1b}'), "NO_COLOR: {plain:?}");
}
