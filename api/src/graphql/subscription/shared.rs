//! [`SharedEvent`]: a ticket subscription's item, rendered once per kind of
//! subscriber instead of once per subscriber.
//!
//! Thousands of sockets may receive one event, most with the same selection
//! set. What a subscriber gets is its selection set resolved on the event as
//! its viewer may see it, and for most fields that depends on two things
//! only: the fields selected and the viewer's redaction class
//! ([`domain::redact`] hides internal comments from non-staff, nothing else).
//! Such a selection (a *pure* one: see [`shape`]) is resolved by the first
//! subscriber that needs it and kept on the delivery
//! ([`Views`]) for the others of the same kind. Any
//! other selection (users looked up, related tickets "as they stand now",
//! fragments, arguments, directives) is resolved for each subscriber on its
//! own.
//!
//! To GraphQL it is a `SupportTicketEvent`: same type, same schema.

use std::borrow::Cow;
use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};
use domain::Actor;
use fanout::Delivery;

use super::views::Views;
use crate::graphql::types::SupportTicketEvent;

/// One delivery for one subscriber.
pub(crate) struct SharedEvent {
    pub delivery: Arc<Delivery>,
    pub actor: Arc<Actor>,
    /// The subscription's view key, worked out at its first item (the
    /// selection set is the same for every item): `None` when the selection
    /// is not pure.
    pub shape: Arc<OnceLock<Option<Arc<str>>>>,
}

impl SharedEvent {
    /// The event as this subscriber's viewer may see it.
    fn for_viewer(&self) -> SupportTicketEvent {
        let d = &*self.delivery;
        let step = domain::Step {
            version: d.after.version,
            before: d.before.clone(),
            after: d.after.clone(),
            changes: Vec::new(),
        };
        SupportTicketEvent::for_viewer(&self.actor, d.recorded.clone(), d.event.clone(), step)
    }
}

impl OutputType for SharedEvent {
    fn type_name() -> Cow<'static, str> {
        <SupportTicketEvent as OutputType>::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <SupportTicketEvent as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let key = self
            .shape
            .get_or_init(|| view_key(&self.actor, &field.node.selection_set.node));
        let views = Views::of(&self.delivery);
        if let (Some(key), Some(views)) = (key, views) {
            if let Some(value) = views.get::<Value>(key) {
                return Ok((*value).clone());
            }
        }
        let value = OutputType::resolve(&self.for_viewer(), ctx, field).await?;
        if let (Some(key), Some(views)) = (key, views) {
            views.keep(key.clone(), Arc::new(value.clone()));
        }
        Ok(value)
    }
}

/// The key of a pure selection for `viewer`: its redaction class and the
/// selection's shape.
fn view_key(viewer: &Actor, selection: &SelectionSet) -> Option<Arc<str>> {
    // domain::redact depends on is_staff() alone.
    let class = if viewer.is_staff() {
        "staff"
    } else {
        "requester"
    };
    let mut key = format!("{class}|");
    shape(Type::Event, selection, &mut key)?;
    Some(key.into())
}

/// The object types a pure selection may walk through.
#[derive(Clone, Copy)]
enum Type {
    Event,
    Ticket,
    Comment,
    Attachment,
    Change,
}

impl Type {
    /// Whether field `name` of this type is pure (depends only on the event
    /// and the redaction class, and cannot fail), and the type of its
    /// objects if it has any. Anything that looks users up or reads current
    /// state is not.
    fn field(self, name: &str) -> Option<Option<Type>> {
        if name == "__typename" {
            return Some(None);
        }
        let leaf = Some(None);
        match (self, name) {
            (
                Type::Event,
                "id" | "position" | "version" | "eventType" | "previousState" | "timestamp"
                | "metadata",
            ) => leaf,
            (Type::Event, "ticket") => Some(Some(Type::Ticket)),
            (Type::Event, "comment") => Some(Some(Type::Comment)),
            (Type::Event, "changes") => Some(Some(Type::Change)),
            (
                Type::Ticket,
                "id" | "reference" | "request" | "description" | "status" | "priority" | "queue"
                | "tags" | "createdDate" | "updatedDate" | "firstResponseDate" | "resolvedDate"
                | "deleted" | "version",
            ) => leaf,
            (Type::Ticket, "comments") => Some(Some(Type::Comment)),
            (Type::Ticket, "attachments") => Some(Some(Type::Attachment)),
            (Type::Comment, "id" | "comment" | "internal" | "createdDate") => leaf,
            (Type::Attachment, "id" | "name" | "url" | "mimeType" | "size" | "addedDate") => leaf,
            (Type::Change, "field" | "oldValue" | "newValue") => leaf,
            _ => None,
        }
    }
}

/// Writes the shape of `selection` on `ty` into `key` (aliases and names, in
/// order, nested in braces): two selections with one shape resolve to the
/// same value on one event for one class. `None` when the selection is not
/// pure: an impure field, arguments, directives or fragments.
fn shape(ty: Type, selection: &SelectionSet, key: &mut String) -> Option<()> {
    key.push('{');
    for item in &selection.items {
        let Selection::Field(field) = &item.node else {
            return None;
        };
        let field = &field.node;
        if !field.arguments.is_empty() || !field.directives.is_empty() {
            return None;
        }
        let child = ty.field(&field.name.node)?;
        if let Some(alias) = &field.alias {
            let _ = write!(key, "{}:", alias.node);
        }
        key.push_str(&field.name.node);
        match child {
            Some(child) => shape(child, &field.selection_set.node, key)?,
            None if field.selection_set.node.items.is_empty() => {}
            None => return None,
        }
        key.push(',');
    }
    key.push('}');
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;
    use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
    use domain::Role;

    fn key(viewer: &Actor, query: &str) -> Option<Arc<str>> {
        let doc: ExecutableDocument = parse_query(query).expect("parses");
        let DocumentOperations::Single(op) = doc.operations else {
            panic!("one operation")
        };
        let Selection::Field(root) = &op.node.selection_set.node.items[0].node else {
            panic!("a field")
        };
        view_key(viewer, &root.node.selection_set.node)
    }

    /// Subscribers share a rendering only when their selections have one
    /// shape and their viewers one redaction class.
    #[test]
    fn a_view_key_names_the_shape_and_the_redaction_class() {
        let sam = Actor::new("sam", vec![Role::Agent], vec!["support".into()]);
        let kim = Actor::new("kim", vec![Role::Admin], vec![]);
        let alice = Actor::new("alice", vec![Role::Requester], vec![]);
        let q = "subscription { e: myTicketUpdates { id ticket { id queue } changes { field } } }";
        let staff = key(&sam, q).expect("pure");
        assert_eq!(Some(staff.clone()), key(&kim, q));
        assert_ne!(Some(staff.clone()), key(&alice, q));
        let aliased =
            "subscription { e: myTicketUpdates { id t: ticket { id queue } changes { field } } }";
        assert_ne!(Some(staff), key(&sam, aliased));
    }

    /// A selection that looks users up, takes arguments or directives, or
    /// uses fragments is rendered per subscriber.
    #[test]
    fn impure_selections_have_no_view_key() {
        let sam = Actor::new("sam", vec![Role::Agent], vec![]);
        for q in [
            "subscription { e: myTicketUpdates { id triggeredBy { id } } }",
            "subscription { e: myTicketUpdates { ticket { createdBy { id } } } }",
            "subscription { e: myTicketUpdates { ticket { relatedTickets { id } } } }",
            "subscription { e: myTicketUpdates { comment { author { id } } } }",
            "subscription { e: myTicketUpdates { id @include(if: true) } }",
            "subscription { e: myTicketUpdates { ...F } } fragment F on SupportTicketEvent { id }",
            "subscription { e: myTicketUpdates { ... on SupportTicketEvent { id } } }",
            "subscription { e: myTicketUpdates { id { x } } }",
        ] {
            assert_eq!(key(&sam, q), None, "{q}");
        }
    }

    /// The redaction class stands for the viewer: two viewers of one class
    /// get the same redacted ticket (what sharing a rendering relies on).
    #[test]
    fn redaction_depends_only_on_the_class() {
        let root = Actor::new("root", vec![Role::Admin], vec![]);
        let alice = Actor::new("alice", vec![Role::Requester], vec![]);
        let create = domain::Command::Create {
            ticket_id: uuid::Uuid::new_v4(),
            reference: "TCK-000001".into(),
            request: "Printer".into(),
            description: None,
            priority: domain::TicketPriority::High,
            queue: "support".into(),
            tags: vec![],
        };
        let mut ticket = None;
        for (actor, command) in [
            (&alice, create),
            (
                &root,
                domain::Command::Comment {
                    comment_id: uuid::Uuid::new_v4(),
                    body: "public".into(),
                    internal: false,
                },
            ),
            (
                &root,
                domain::Command::Comment {
                    comment_id: uuid::Uuid::new_v4(),
                    body: "internal".into(),
                    internal: true,
                },
            ),
        ] {
            for event in
                domain::decide(ticket.as_ref(), &command, actor, chrono::Utc::now()).unwrap()
            {
                ticket = domain::evolve(ticket, &event);
            }
        }
        let ticket = ticket.expect("a ticket");
        let r = |a: &Actor| domain::redact(a, &ticket);
        let agent = Actor::new("sam", vec![Role::Agent], vec!["support".into()]);
        let bob = Actor::new("bob", vec![Role::Requester], vec![]);
        assert_eq!(r(&agent), r(&root));
        assert_eq!(r(&alice), r(&bob));
        assert_ne!(r(&agent), r(&alice));
    }
}
