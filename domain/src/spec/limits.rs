//! Length and format limits of comments, attachments and user ids.

use super::*;

fn comment(body: &str) -> Command {
    Command::Comment {
        comment_id: COMMENT,
        body: body.into(),
        internal: false,
    }
}

fn attach(name: &str, url: &str, size: Option<i64>) -> Command {
    Command::AddAttachment {
        attachment_id: ATTACHMENT,
        name: name.into(),
        url: url.into(),
        mime_type: Some(" ".into()),
        size,
    }
}

#[test]
fn it_should_require_a_comment_of_1_to_10000_characters() {
    given(vec![created()])
        .when(comment("  "))
        .then_expect_invalid();
    given(vec![created()])
        .when(comment(&"c".repeat(10_001)))
        .then_expect_invalid();
    given(vec![created()])
        .when(comment(&"c".repeat(10_000)))
        .ticket();
}

#[test]
fn it_should_record_a_trimmed_comment_by_its_author() {
    let ticket = given(vec![created()])
        .as_actor(requester())
        .when(comment("  thanks!  "))
        .ticket();
    assert_eq!(ticket.comments.len(), 1);
    assert_eq!(ticket.comments[0].body, "thanks!");
    assert_eq!(ticket.comments[0].author, "alice");
}

#[test]
fn it_should_record_an_attachment_with_a_blank_mime_type_as_none() {
    given(vec![created()])
        .when(attach(" log.txt ", " /files/log.txt ", Some(0)))
        .then_expect(vec![TicketChange::AttachmentAdded {
            attachment_id: ATTACHMENT,
            name: "log.txt".into(),
            url: "/files/log.txt".into(),
            mime_type: None,
            size: Some(0),
        }]);
}

#[test]
fn it_should_require_an_attachment_name_of_1_to_255_characters() {
    given(vec![created()])
        .when(attach(" ", "https://x.example/a", None))
        .then_expect_invalid();
    given(vec![created()])
        .when(attach(&"n".repeat(256), "https://x.example/a", None))
        .then_expect_invalid();
}

#[test]
fn it_should_accept_only_http_https_or_local_attachment_urls() {
    for url in ["javascript:alert(1)", "file:///etc/passwd", "ftp://x", " "] {
        given(vec![created()])
            .when(attach("a", url, None))
            .then_expect_invalid();
    }
    for url in ["http://x.example/a", "https://x.example/a", "/files/a"] {
        given(vec![created()]).when(attach("a", url, None)).ticket();
    }
}

#[test]
fn it_should_reject_an_attachment_url_over_2048_characters() {
    let url = format!("https://x.example/{}", "u".repeat(2048));
    given(vec![created()])
        .when(attach("a", &url, None))
        .then_expect_invalid();
}

#[test]
fn it_should_reject_a_negative_attachment_size() {
    given(vec![created()])
        .when(attach("a", "/a", Some(-1)))
        .then_expect_invalid();
}

#[test]
fn it_should_require_user_ids_of_1_to_128_characters() {
    for user_id in [" ".to_string(), "u".repeat(129)] {
        given(vec![created()])
            .when(Command::Watch {
                user_id: user_id.clone(),
            })
            .then_expect_invalid();
        given(vec![created()])
            .when(Command::Assign {
                assignee_id: user_id,
                assignee_roles: Some(vec![Role::Agent]),
            })
            .then_expect_invalid();
    }
}

#[test]
fn it_should_count_a_comment_in_bytes_not_characters() {
    // "€" is three bytes of UTF-8: 3,334 of them are 10,002 bytes.
    given(vec![created()])
        .when(comment(&"€".repeat(3_334)))
        .then_expect_invalid();
    given(vec![created()])
        .when(comment(&"€".repeat(3_333)))
        .ticket();
}

/// `count` events adding an item of the kind `event(i)` makes, after the
/// creation.
fn history_with(count: usize, event: impl Fn(usize) -> TicketChange) -> Vec<TicketEvent> {
    let mut history = vec![created()];
    history.extend((0..count).map(|i| then(&admin(), event(i))));
    history
}

fn small() -> TicketLimits {
    TicketLimits {
        comments: 3,
        attachments: 2,
        watchers: 2,
        relations: 2,
        tags: 2,
    }
}

#[test]
fn it_should_refuse_a_comment_past_the_tickets_cap_naming_it() {
    let history = history_with(3, |i| TicketChange::Commented {
        comment_id: Uuid::from_u128(100 + i as u128),
        body: "more".into(),
        internal: false,
        first_response: false,
    });
    let refused = given(history.clone())
        .within(small())
        .when(comment("one too many"))
        .then_expect_invalid();
    assert!(refused.contains("at most 3 comments"), "{refused}");
    given(history[..3].to_vec())
        .within(small())
        .when(comment("still room"))
        .ticket();
}

#[test]
fn it_should_cap_attachments_watchers_relations_and_tags() {
    let attachments = history_with(2, |i| TicketChange::AttachmentAdded {
        attachment_id: Uuid::from_u128(200 + i as u128),
        name: "a".into(),
        url: "/a".into(),
        mime_type: None,
        size: None,
    });
    let refused = given(attachments)
        .within(small())
        .when(attach("b", "/b", None))
        .then_expect_invalid();
    assert!(refused.contains("at most 2 attachments"), "{refused}");

    let watchers = history_with(2, |i| TicketChange::WatcherAdded {
        user_id: format!("w{i}"),
    });
    let refused = given(watchers.clone())
        .within(small())
        .when(Command::Watch {
            user_id: "w9".into(),
        })
        .then_expect_invalid();
    assert!(refused.contains("at most 2 watchers"), "{refused}");
    // Watching again what is watched changes nothing, cap or not.
    given(watchers)
        .within(small())
        .when(Command::Watch {
            user_id: "w1".into(),
        })
        .then_expect(vec![]);

    let related = history_with(2, |i| TicketChange::RelatedAdded {
        related_id: Uuid::from_u128(300 + i as u128),
    });
    let refused = given(related)
        .within(small())
        .when(Command::Relate {
            related_id: OTHER_TICKET,
            related: RelatedTicket::Live,
        })
        .then_expect_invalid();
    assert!(refused.contains("at most 2 related tickets"), "{refused}");

    let tags = history_with(2, |i| TicketChange::TagAdded {
        tag: format!("t{i}"),
    });
    let refused = given(tags)
        .within(small())
        .when(Command::AddTag { tag: "t9".into() })
        .then_expect_invalid();
    assert!(refused.contains("at most 2 tags"), "{refused}");
    let refused = given(vec![])
        .within(small())
        .when(Command::Create {
            ticket_id: TICKET,
            reference: "TCK-000001".into(),
            request: "Help".into(),
            description: None,
            priority: TicketPriority::High,
            queue: "support".into(),
            tags: vec!["a".into(), "b".into(), "c".into()],
        })
        .then_expect_invalid();
    assert!(refused.contains("at most 2 tags"), "{refused}");
}
