//! Creating a ticket.

use super::*;

fn create(request: &str, description: Option<&str>, queue: &str, tags: &[&str]) -> Command {
    Command::Create {
        ticket_id: TICKET,
        reference: "TCK-000001".into(),
        request: request.into(),
        description: description.map(Into::into),
        priority: TicketPriority::High,
        queue: queue.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

#[test]
fn it_should_create_a_ticket_with_trimmed_text_and_normalised_tags() {
    given(vec![])
        .as_actor(requester())
        .when(create(
            "  Printer on fire ",
            Some("  smoke everywhere "),
            " support ",
            &["Urgent", "  needs   Triage ", "urgent"],
        ))
        .then_expect(vec![TicketChange::Created {
            ticket_id: TICKET,
            reference: "TCK-000001".into(),
            request: "Printer on fire".into(),
            description: Some("smoke everywhere".into()),
            priority: TicketPriority::High,
            queue: "support".into(),
            tags: vec!["needs-triage".into(), "urgent".into()],
        }]);
}

#[test]
fn it_should_let_any_role_create_a_ticket() {
    for actor in [
        requester(),
        agent(),
        admin(),
        Actor::new("nobody", vec![], vec![]),
    ] {
        given(vec![])
            .as_actor(actor)
            .when(create("Help", None, "support", &[]))
            .ticket();
    }
}

#[test]
fn it_should_open_a_new_ticket_at_version_zero_created_by_the_actor() {
    let ticket = given(vec![])
        .as_actor(requester())
        .when(create("Help", None, "support", &[]))
        .ticket();
    assert_eq!(ticket.status, TicketStatus::Open);
    assert_eq!(ticket.version, 0);
    assert_eq!(ticket.created_by, "alice");
    assert_eq!(ticket.created_at, minutes(60));
}

#[test]
fn it_should_not_create_a_ticket_that_already_exists() {
    given(vec![created()])
        .when(create("Help", None, "support", &[]))
        .then_expect_error(DomainError::AlreadyExists);
}

#[test]
fn it_should_drop_a_blank_description() {
    let ticket = given(vec![])
        .when(create("Help", Some("   "), "support", &[]))
        .ticket();
    assert_eq!(ticket.description, None);
}

#[test]
fn it_should_require_a_request_of_1_to_200_bytes() {
    given(vec![])
        .when(create("   ", None, "support", &[]))
        .then_expect_invalid();
    // "é" is two bytes of UTF-8: 101 of them are 202 bytes.
    given(vec![])
        .when(create(&"é".repeat(101), None, "support", &[]))
        .then_expect_invalid();
    given(vec![])
        .when(create(&"é".repeat(100), None, "support", &[]))
        .ticket();
}

#[test]
fn it_should_reject_a_description_over_20000_characters() {
    given(vec![])
        .when(create("Help", Some(&"x".repeat(20_001)), "support", &[]))
        .then_expect_invalid();
    given(vec![])
        .when(create("Help", Some(&"x".repeat(20_000)), "support", &[]))
        .ticket();
}

#[test]
fn it_should_require_a_queue_of_1_to_64_characters() {
    given(vec![])
        .when(create("Help", None, " ", &[]))
        .then_expect_invalid();
    given(vec![])
        .when(create("Help", None, &"q".repeat(65), &[]))
        .then_expect_invalid();
}

#[test]
fn it_should_reject_an_invalid_tag_on_creation() {
    given(vec![])
        .when(create("Help", None, "support", &["ok", "no/slash"]))
        .then_expect_invalid();
}

#[test]
fn it_should_reject_more_than_50_tags_on_creation() {
    let tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    given(vec![])
        .when(create("Help", None, "support", &tags))
        .then_expect_invalid();
    given(vec![])
        .when(create("Help", None, "support", &tags[..50]))
        .ticket();
}
