//! The reference web client in a real browser: a headless Chromium (driven
//! over the DevTools protocol by [`cdp`]) against a real `tickets serve` in
//! development mode on a fresh database, as agents and requesters use it.
//! Each scenario saves screenshots under `target/browser-screenshots/`.

mod cdp;

use serde_json::json;
use tests::Server;

use crate::helpers::{create, introduce, ok, Client};
use cdp::{Browser, Tab};

/// A server in development mode (no secret): the page offers its one-click
/// sign-in, and `Server::token` signs with the development secret.
fn dev_server() -> Server {
    Server::start_with(&[("TICKETS_JWT_SECRET", "")])
}

/// Signs a tab in by pasting `token`, and waits for the live socket.
async fn sign_in(tab: &Tab<'_>, token: &str) {
    tab.wait_for("document.querySelector('#token')", "the sign-in form")
        .await;
    tab.fill("#token", token).await;
    tab.eval("document.querySelector('#token').form.requestSubmit()")
        .await;
    connected(tab).await;
}

async fn connected(tab: &Tab<'_>) {
    tab.wait_for(
        "document.querySelector('#connection').dataset.state === 'connected'",
        "the connection indicator to say connected",
    )
    .await;
}

/// Opens a view of the client (`#/ticket/<id>`, `#/board`...).
async fn open(tab: &Tab<'_>, hash: &str) {
    tab.eval(&format!("location.hash = {}", json!(hash))).await;
}

/// A script: whether the element `selector` is displayed (CSS counts, not
/// only the `hidden` attribute).
fn shown(selector: &str) -> String {
    format!("getComputedStyle(document.querySelector('{selector}')).display !== 'none'")
}

fn hidden(selector: &str) -> String {
    format!("getComputedStyle(document.querySelector('{selector}')).display === 'none'")
}

fn card(reference: &str) -> String {
    format!("document.querySelector('.card[data-reference=\"{reference}\"]')")
}

/// Creates a ticket as `requester` over HTTP and waits until `board` shows
/// it: from then on the board's live stream is known to be running.
async fn board_is_live(board: &Tab<'_>, requester: &Client, request: &str) -> String {
    let (_, result) = create(requester, request, "support").await;
    let reference = result["ticket"]["reference"].as_str().unwrap().to_string();
    board
        .wait_for(&card(&reference), "the ticket on the board")
        .await;
    reference
}

/// A requester creates a ticket in their browser; the agent's board, open in
/// another browser profile, shows it live in its OPEN column, with a toast.
#[tokio::test]
async fn a_ticket_a_requester_creates_appears_live_on_the_agent_board_with_a_toast() {
    let server = dev_server();
    let browser = Browser::launch().await;
    let agent = browser
        .tab(&browser.context().await, &server.url("/"))
        .await;
    sign_in(&agent, &server.token("kim", &["AGENT"], &["support"])).await;
    agent
        .wait_for("location.hash === '#/board'", "the board")
        .await;
    let other = Client::new(&server, Some(server.token("olga", &[], &[])));
    board_is_live(&agent, &other, "Warming up the board").await;

    let requester = browser
        .tab(&browser.context().await, &server.url("/"))
        .await;
    sign_in(&requester, &server.token("rita", &[], &[])).await;
    requester
        .wait_for(
            "document.querySelector('#new-request')",
            "the new ticket form",
        )
        .await;
    requester
        .fill("#new-request", "Printer on fire in room 4")
        .await;
    requester.click("#create").await;
    requester
        .wait_for(
            "document.querySelector('.card a')?.innerText.includes('Printer on fire in room 4')",
            "the new ticket in the requester's list",
        )
        .await;
    let reference = requester
        .eval("document.querySelector('.card').dataset.reference")
        .await
        .as_str()
        .unwrap()
        .to_string();

    agent
        .wait_for(
            &format!(
                "document.querySelector('.column[data-status=\"OPEN\"] .card[data-reference=\"{reference}\"]')"
            ),
            "the requester's ticket in the board's OPEN column",
        )
        .await;
    agent
        .wait_for(
            &format!("[...document.querySelectorAll('.toast')].some(t => t.innerText.includes('{reference}'))"),
            "a toast naming the new ticket",
        )
        .await;
    agent.screenshot("a-board-live").await;
    requester.screenshot("a-requester-my-tickets").await;
}

/// An agent's internal note shows on the agent's page, marked; the
/// requester's page of the same ticket shows the agent's public reply live
/// and never the note.
#[tokio::test]
async fn an_internal_note_shows_for_the_agent_and_never_on_the_requester_page() {
    let server = dev_server();
    let rita = Client::new(&server, Some(server.token("rita", &[], &[])));
    let (id, result) = create(&rita, "VPN drops every hour", "support").await;
    let reference = result["ticket"]["reference"].as_str().unwrap().to_string();
    let browser = Browser::launch().await;

    let agent = browser
        .tab(&browser.context().await, &server.url("/"))
        .await;
    sign_in(&agent, &server.token("kim", &["AGENT"], &["support"])).await;
    open(&agent, &format!("#/ticket/{id}")).await;
    let requester = browser
        .tab(&browser.context().await, &server.url("/"))
        .await;
    sign_in(&requester, &server.token("rita", &[], &[])).await;
    open(&requester, &format!("#/ticket/{id}")).await;
    for tab in [&agent, &requester] {
        tab.wait_for(
            &format!("document.querySelector('h1')?.innerText.includes('{reference}') && document.querySelector('#comment')"),
            "the ticket page",
        )
        .await;
    }
    assert!(
        requester.eval("!document.querySelector('#internal')").await == json!(true),
        "a requester is offered no internal notes"
    );

    agent.click("#internal").await;
    agent
        .fill("#comment", "Customer seems upset; check the invoice first")
        .await;
    agent
        .eval("document.querySelector('#comment-form').requestSubmit()")
        .await;
    agent
        .wait_for(
            "[...document.querySelectorAll('.comment.internal')].some(c => c.innerText.includes('Internal note') && c.innerText.includes('check the invoice first'))",
            "the internal note, marked, on the agent's page",
        )
        .await;
    agent
        .wait_for(
            "!document.querySelector('#comment').value",
            "the comment box emptied",
        )
        .await;
    agent.click("#internal").await;
    agent.fill("#comment", "We are on it").await;
    agent
        .eval("document.querySelector('#comment-form').requestSubmit()")
        .await;

    requester
        .wait_for(
            "[...document.querySelectorAll('.comment')].some(c => c.innerText.includes('We are on it'))",
            "the agent's public reply, live, on the requester's page",
        )
        .await;
    let text = requester.eval("document.body.innerText").await;
    let text = text.as_str().unwrap();
    assert!(!text.contains("check the invoice"), "{text}");
    assert!(
        requester
            .eval("document.querySelectorAll('.comment.internal').length")
            .await
            == json!(0)
    );
    agent
        .wait_for(
            "[...document.querySelectorAll('#history li')].some(e => e.innerText.includes('COMMENTED'))",
            "the comments in the agent's history",
        )
        .await;
    agent.screenshot("b-ticket-agent").await;
    requester.screenshot("b-ticket-requester").await;
}

/// Assigning an agent raises the unread badge on both of their tabs; marking
/// everything read on one tab clears the badge on the other.
#[tokio::test]
async fn assigning_an_agent_raises_their_badge_and_reading_on_one_tab_clears_the_other() {
    let server = dev_server();
    let ben = Client::new(&server, Some(server.token("ben", &["AGENT"], &["support"])));
    introduce(&ben).await;
    // Ben is an agent of the ticket's queue: only the assignment should
    // raise his badge, not the queue alert of the new ticket.
    ben.data(
        "mutation { updateNotificationPreferences(input: {mutedReasons: [QUEUE]}) { mutedReasons } }",
        json!({}),
    )
    .await;
    let rita = Client::new(&server, Some(server.token("rita", &[], &[])));
    let (id, _) = create(&rita, "Laptop will not boot", "support").await;
    let browser = Browser::launch().await;
    let context = browser.context().await;

    // The development sign-in: ben is listed, one click signs in.
    let first = browser.tab(&context, &server.url("/")).await;
    first
        .wait_for(
            "document.querySelector('button[data-user=\"ben\"]')",
            "ben in the development sign-in",
        )
        .await;
    first.click("button[data-user=\"ben\"]").await;
    connected(&first).await;
    // A second tab of the same browser shares the session.
    let second = browser.tab(&context, &server.url("/")).await;
    connected(&second).await;
    for tab in [&first, &second] {
        tab.wait_for(&shown("#bell"), "the bell").await;
        tab.wait_for(&hidden("#badge"), "no unread badge yet").await;
    }

    let kim = Client::new(&server, Some(server.token("kim", &["AGENT"], &["support"])));
    ok(kim
        .mutate(
            "assignSupportTicket(id: $id, assigneeId: \"ben\")",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await);
    for tab in [&first, &second] {
        tab.wait_for(
            &format!(
                "{} && document.querySelector('#badge').innerText === '1'",
                shown("#badge")
            ),
            "the unread badge at 1",
        )
        .await;
    }
    first
        .wait_for(
            "[...document.querySelectorAll('.toast')].length > 0",
            "a toast for the assignment",
        )
        .await;
    first.click("#bell").await;
    first
        .wait_for(
            "document.querySelector('#inbox li.unread')",
            "the unread notification in the list",
        )
        .await;
    first.screenshot("c-inbox-open").await;
    // The keyboard: opening the inbox puts the focus in it, Escape closes it
    // and gives the focus back to the bell.
    assert_eq!(
        first
            .eval("document.querySelector('#inbox').contains(document.activeElement)")
            .await,
        json!(true)
    );
    first.press("Escape", 27).await;
    first
        .wait_for(&hidden("#inbox"), "the inbox closed by Escape")
        .await;
    assert_eq!(first.eval("document.activeElement.id").await, json!("bell"));
    first.click("#bell").await;
    // Delete is offered exactly when the server serves deleteNotifications.
    let served = ben
        .data(
            "{ __schema { mutationType { fields { name } } } }",
            json!({}),
        )
        .await;
    let deletes = served["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "deleteNotifications");
    let offered = first
        .eval("[...document.querySelectorAll('#inbox button')].some(b => b.innerText === 'Delete')")
        .await;
    assert_eq!(
        offered,
        json!(deletes),
        "a Delete button where served, none elsewhere"
    );
    first.click("#mark-all-read").await;
    first
        .wait_for(&hidden("#badge"), "the badge cleared on the first tab")
        .await;
    second
        .wait_for(&hidden("#badge"), "the badge cleared on the second tab")
        .await;
    second.screenshot("c-second-tab-cleared").await;
}

/// The server restarts under an open board: the indicator says
/// reconnecting, then connected, and the board shows the ticket created
/// while it was away, resumed from the last position it had seen.
#[tokio::test]
async fn after_a_server_restart_the_board_reconnects_and_shows_what_happened_meanwhile() {
    let server = dev_server();
    let token = server.token("kim", &["AGENT"], &["support"]);
    let requester_token = server.token("rita", &[], &[]);
    let browser = Browser::launch().await;
    let agent = browser
        .tab(&browser.context().await, &server.url("/"))
        .await;
    sign_in(&agent, &token).await;
    agent
        .wait_for("location.hash === '#/board'", "the board")
        .await;
    let rita = Client::new(&server, Some(requester_token.clone()));
    board_is_live(&agent, &rita, "Before the restart").await;

    let stopped = server.stop_for_restart();
    agent
        .wait_for(
            "document.querySelector('#connection').dataset.state === 'reconnecting'",
            "the indicator to say reconnecting",
        )
        .await;
    agent.screenshot("d-reconnecting").await;
    let server = stopped.start();
    let rita = Client::new(&server, Some(requester_token));
    let (_, result) = create(&rita, "Created while the board was away", "support").await;
    let reference = result["ticket"]["reference"].as_str().unwrap().to_string();
    connected(&agent).await;
    agent
        .wait_for(&card(&reference), "the ticket created during the restart")
        .await;
    let shown = agent
        .eval("document.querySelectorAll('.card').length")
        .await;
    assert_eq!(shown, json!(2), "each ticket once, none doubled");
    agent.screenshot("d-after-restart").await;
}

/// An agent starts a comment, somebody else changes the ticket meanwhile;
/// sending answers CONFLICT and the page says what changed, old -> new.
#[tokio::test]
async fn a_stale_edit_shows_the_conflict_message_with_what_changed() {
    let server = dev_server();
    let rita = Client::new(&server, Some(server.token("rita", &[], &[])));
    let (id, _) = create(&rita, "Mail bounces", "support").await;
    let browser = Browser::launch().await;
    let agent = browser
        .tab(&browser.context().await, &server.url("/"))
        .await;
    sign_in(&agent, &server.token("kim", &["AGENT"], &["support"])).await;
    open(&agent, &format!("#/ticket/{id}")).await;
    agent
        .wait_for("document.querySelector('#comment')", "the ticket page")
        .await;
    agent.fill("#comment", "Restarted the mail relay").await;

    let lee = Client::new(&server, Some(server.token("lee", &["AGENT"], &["support"])));
    ok(lee
        .mutate(
            "updateSupportTicketStatus(id: $id, status: IN_PROGRESS)",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await);
    agent
        .wait_for(
            "document.querySelector('dd[data-field=\"status\"]')?.innerText === 'IN_PROGRESS'",
            "the status change, live",
        )
        .await;
    agent
        .eval("document.querySelector('#comment-form').requestSubmit()")
        .await;
    agent
        .wait_for(
            "document.querySelector('#conflict')",
            "the conflict message",
        )
        .await;
    let message = agent.text("#conflict").await;
    assert!(message.contains("status: OPEN -> IN_PROGRESS"), "{message}");
    assert!(message.contains("lee"), "{message}");
    assert!(
        agent
            .eval("document.querySelectorAll('.comment').length")
            .await
            == json!(0),
        "nothing was written"
    );
    agent.screenshot("e-conflict").await;

    // The user decides: apply the comment on the latest version.
    agent.click("#conflict button").await;
    agent
        .wait_for(
            "[...document.querySelectorAll('.comment')].some(c => c.innerText.includes('Restarted the mail relay'))",
            "the comment applied on the latest version",
        )
        .await;
}

/// The board's priority filter narrows the board, live updates included,
/// and a bulk action on the selected cards changes each of those tickets,
/// which the board then shows in their new column.
#[tokio::test]
async fn the_board_filters_by_priority_and_applies_a_bulk_action_to_the_selected_cards() {
    let server = dev_server();
    let rita = Client::new(&server, Some(server.token("rita", &[], &[])));
    let low = |request: &'static str| {
        let rita = &rita;
        async move {
            let result = ok(rita
                .mutate(
                    "createSupportTicket(input: {request: $r, priority: LOW})",
                    "($r: String!)",
                    json!({ "r": request }),
                )
                .await);
            result["ticket"]["reference"].as_str().unwrap().to_string()
        }
    };
    let (_, high) = create(&rita, "Server room too hot", "support").await;
    let high = high["ticket"]["reference"].as_str().unwrap().to_string();
    let first_low = low("Mouse squeaks").await;
    let browser = Browser::launch().await;
    let agent = browser
        .tab(&browser.context().await, &server.url("/"))
        .await;
    sign_in(&agent, &server.token("kim", &["AGENT"], &["support"])).await;
    agent.wait_for(&card(&high), "the HIGH ticket").await;
    agent.wait_for(&card(&first_low), "the LOW ticket").await;

    agent.fill("#f-priority", "LOW").await;
    agent
        .wait_for(&format!("!{}", card(&high)), "the HIGH ticket filtered out")
        .await;
    // Live: a HIGH ticket, then a LOW one; once the LOW one shows, the HIGH
    // one, delivered before it, has been filtered out.
    let (_, later_high) = create(&rita, "Another hot room", "support").await;
    let later_high = later_high["ticket"]["reference"]
        .as_str()
        .unwrap()
        .to_string();
    let later_low = low("Keyboard missing a key").await;
    agent
        .wait_for(&card(&later_low), "the later LOW ticket, live")
        .await;
    assert_eq!(
        agent.eval(&format!("!{}", card(&later_high))).await,
        json!(true)
    );
    assert_eq!(
        agent
            .eval("document.querySelectorAll('.card').length")
            .await,
        json!(2)
    );

    agent.fill("#f-priority", "").await;
    agent
        .wait_for(
            "document.querySelectorAll('.card').length === 4",
            "every ticket again",
        )
        .await;
    for reference in [&first_low, &later_low] {
        agent
            .click(&format!(".card[data-reference=\"{reference}\"] .select"))
            .await;
    }
    agent.wait_for(&shown("#bulk"), "the bulk actions").await;
    agent.fill("#bulk-status", "IN_PROGRESS").await;
    agent.click("#bulk-set-status").await;
    agent
        .wait_for(
            "document.querySelector('#bulk-result').innerText.startsWith('2 changed')",
            "the bulk result",
        )
        .await;
    for reference in [&first_low, &later_low] {
        agent
            .wait_for(
                &format!("document.querySelector('.column[data-status=\"IN_PROGRESS\"] .card[data-reference=\"{reference}\"]')"),
                "the ticket in IN PROGRESS",
            )
            .await;
    }
    agent.screenshot("f-board-bulk").await;
}

/// The demo's data set (`tickets demo`, 2,000 tickets) loads and draws on the
/// board in the browser, as the admin (every ticket) and as an agent, and a
/// change made through the API reaches a card. It prints how long each
/// board took (the page's `board` User Timing measure; figures are for
/// BENCHMARKS.md, never asserted) and saves the screenshots the README uses
/// (`docs/board.png`, `docs/ticket.png` are copies of them); run it alone
/// with `cargo test -p tests --test api -- browser::the_demo --nocapture`.
#[tokio::test]
async fn the_demo_data_set_loads_on_the_board_for_an_admin_and_an_agent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    tests::stdout_ok(&tests::tickets(&url, &["demo"]));
    let server = Server::spawn(url, &[("TICKETS_JWT_SECRET", "")], Some(dir));
    // The read models catch up with the demo's log first: measure the board,
    // not the catching up.
    loop {
        let ready = reqwest::get(server.url("/readyz")).await.unwrap().status();
        if ready == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let browser = Browser::launch().await;
    for (user, shot) in [("demo-admin", "demo-board-admin"), ("", "demo-board-agent")] {
        let tab = browser
            .tab(&browser.context().await, &server.url("/"))
            .await;
        tab.wait_for(
            "document.querySelector('#dev-users button')",
            "the demo's users",
        )
        .await;
        // The admin by id; else the first agent listed (staff come first).
        let pick = if user.is_empty() {
            "[...document.querySelectorAll('#dev-users button')].find(b => b.innerText.includes('· agent'))"
                .to_string()
        } else {
            format!("document.querySelector('button[data-user=\"{user}\"]')")
        };
        tab.eval(&format!("{pick}.click()")).await;
        connected(&tab).await;
        tab.wait_for(
            "performance.getEntriesByName('board').length > 0",
            "the board drawn",
        )
        .await;
        let ms = tab
            .eval("performance.getEntriesByName('board')[0].duration")
            .await;
        let first_page = tab
            .eval("performance.getEntriesByName('board-first-page')[0].duration")
            .await;
        let shown = tab.text("#board-status").await;
        // The same pages fetched again without drawing: the server's share.
        let fetch_ms = tab
            .eval(
                "(async () => { const t0 = performance.now(); let after = null; const token = \
                 localStorage.getItem('tickets.token'); const me = await (await fetch('/graphql', \
                 { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: \
                 'Bearer ' + token }, body: JSON.stringify({ query: '{ me { roles teams } }' }) })).json(); \
                 const f = me.data.me.roles.includes('ADMIN') ? {} : { queues: me.data.me.teams }; \
                 const t1 = performance.now(); for (;;) { const r = await (await fetch('/graphql', \
                 { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: \
                 'Bearer ' + token }, body: JSON.stringify({ query: 'query($f: SupportTicketFilter, \
                 $a: String) { supportTickets(filter: $f, first: 300, after: $a) { pageInfo { \
                 hasNextPage endCursor } edges { node { id reference request status priority queue \
                 tags version updatedDate deleted createdBy { id } assignedTo { id firstName lastName } \
                 } } } }', variables: { f, a: after } }) })).json(); const p = r.data.supportTickets.pageInfo; \
                 if (!p.hasNextPage) break; after = p.endCursor; } return performance.now() - t1; })()",
            )
            .await;
        println!(
            "{shot}: {shown} loaded and drawn in {ms} ms (the first page in {first_page} ms), \
             of which fetching the pages {fetch_ms} ms"
        );
        tab.screenshot(shot).await;
        if user.is_empty() {
            // From a mutation's response to its event on the screen: the
            // page changes an OPEN ticket's priority and watches its card.
            let latencies = tab
                .eval(
                    "(async () => { const token = localStorage.getItem('tickets.token'); const out = []; \
                     const priorities = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']; \
                     for (let i = 0; i < 20; i++) { \
                       const card = document.querySelector('.column[data-status=\"OPEN\"] .card'); \
                       const id = card.dataset.id; const want = priorities[i % 4]; \
                       const seen = new Promise((resolve) => { const check = () => { \
                         const now = document.querySelector(`.card[data-id=\"${id}\"] .p-${want}`); \
                         if (now) { observer.disconnect(); resolve(performance.now()); } }; \
                         const observer = new MutationObserver(check); \
                         observer.observe(document.getElementById('board'), { childList: true, subtree: true }); }); \
                       const before = card.querySelector('.pill').innerText; \
                       if (before === want) continue; \
                       await fetch('/graphql', { method: 'POST', headers: { 'Content-Type': 'application/json', \
                         Authorization: 'Bearer ' + token }, body: JSON.stringify({ query: \
                         'mutation($id: String!, $p: TicketPriority!) { updateSupportTicketPriority(id: $id, priority: $p) { success } }', \
                         variables: { id, p: want } }) }).then((r) => r.json()); \
                       const answered = performance.now(); \
                       out.push(Math.max(0, (await seen) - answered)); } \
                     return out.sort((a, b) => a - b); })()",
                )
                .await;
            let samples: Vec<f64> = latencies
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_f64())
                .collect();
            println!(
                "live update, mutation answered -> card redrawn: {} samples, median {:.1} ms, max {:.1} ms",
                samples.len(),
                samples.get(samples.len() / 2).copied().unwrap_or_default(),
                samples.last().copied().unwrap_or_default()
            );
            tab.click(".column[data-status=\"IN_PROGRESS\"] .card a")
                .await;
            tab.wait_for("document.querySelector('#history li')", "a ticket page")
                .await;
            tab.screenshot("demo-ticket").await;
        }
    }
}
