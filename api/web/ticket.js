// One ticket: details, comments (internal notes marked; the server never
// sends them to a requester), the full history with each FieldChange, live
// through `ticketUpdated` resumed with `after`, and actions sent with
// `expectedVersion`: a CONFLICT answer shows what changed meanwhile.
import { change, fill, h, name, toast, when } from "./dom.js";
import { PRIORITIES, STATUSES } from "./board.js";

const PERSON = "id firstName lastName";
const TICKET = `id reference request description status priority queue tags version deleted
  createdDate updatedDate createdBy { ${PERSON} } assignedTo { ${PERSON} } watchers { id }
  comments { id comment internal createdDate author { ${PERSON} } }`;
const EVENT = `id position version eventType timestamp triggeredBy { ${PERSON} }
  changes { field oldValue newValue } comment { id internal }`;
const RESULT = `success errorCode error currentVersion ticket { ${TICKET} }
  changesSince { version eventType triggeredBy { ${PERSON} } changes { field oldValue newValue } }`;

export function ticketPage(main, id, { api, me, staff }) {
  let ticket = null;
  const history = [];
  const seen = new Set();
  // The version the user's edit is based on: pinned when they start an
  // action (focus or typing), so a change by someone else meanwhile is a
  // CONFLICT for them to see, never silently overwritten.
  let base = null;
  const heading = h("h1", {});
  const facts = h("dl", { class: "facts" });
  const description = h("p", {});
  const comments = h("ol", { class: "comments", id: "comments", "aria-label": "Comments" });
  const events = h("ol", { class: "history", id: "history", "aria-label": "History" });
  const notice = h("div", { id: "notice", role: "alert" });
  const actions = h("section", { "aria-label": "Actions", id: "actions" });
  fill(main, h("p", {}, h("a", { href: staff ? "#/board" : "#/mine" }, staff ? "← Board" : "← My tickets")),
    h("div", { class: "ticket" },
      h("article", {}, heading, facts, description, notice,
        h("h2", {}, "Comments"), comments, actions),
      h("aside", {}, h("h2", {}, "History"), events)));

  const pin = () => { if (base === null && ticket) base = ticket.version; };

  function render() {
    if (!ticket) return;
    heading.textContent = `${ticket.reference} · ${ticket.request}`;
    fill(facts, [
      ["Status", ticket.status], ["Priority", ticket.priority], ["Queue", ticket.queue],
      ["Assignee", ticket.assignedTo ? name(ticket.assignedTo) : "unassigned"],
      ["Requester", name(ticket.createdBy)], ["Tags", ticket.tags.join(", ") || "none"],
      ["Version", String(ticket.version)], ["Updated", when(ticket.updatedDate)],
    ].flatMap(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { field: k.toLowerCase() } }, v)]));
    description.textContent = ticket.description ?? "";
    fill(comments, ticket.comments.map((c) =>
      h("li", { class: c.internal ? "comment internal" : "comment", dataset: { internal: String(c.internal) } },
        c.internal ? h("span", { class: "internal-mark" }, "Internal note · ") : null,
        h("b", {}, name(c.author)), " · ", h("span", { class: "ref" }, when(c.createdDate)),
        h("p", {}, c.comment))));
    fill(events, history.map((e) =>
      h("li", { dataset: { type: e.eventType } },
        h("b", {}, `v${e.version} ${e.eventType}`), " by ", name(e.triggeredBy), " · ", when(e.timestamp),
        changeLines(e))));
  }

  // A creation sets every field from nothing: folded away, one click open.
  function changeLines(e) {
    const lines = (e.changes ?? []).filter((c) => c.field !== "comments").map((c) =>
      h("div", { class: "change" }, change(c)));
    if (e.eventType !== "CREATED" || lines.length === 0) return lines;
    return h("details", { class: "created" }, h("summary", {}, `${lines.length} fields set`), lines);
  }

  function addEvent(e) {
    if (seen.has(e.id)) return false;
    seen.add(e.id);
    history.push(e);
    return true;
  }

  function showConflict(result, retry) {
    const lines = (result.changesSince ?? []).map((c) =>
      h("li", {}, `${name(c.triggeredBy)} made v${c.version} (${c.eventType})`,
        (c.changes ?? []).filter((x) => x.field !== "comments").map((x) => h("div", { class: "change" }, change(x)))));
    fill(notice, h("div", { class: "conflict", id: "conflict" },
      h("b", {}, "Not applied: this ticket changed while you were working on it "),
      `(you started from version ${base}, it is now at version ${result.currentVersion}).`,
      h("ul", {}, lines),
      h("div", { class: "row" },
        h("button", { type: "button", onclick: () => { base = result.currentVersion; fill(notice); retry(); } },
          "Apply my change to the latest version"),
        h("button", { type: "button", onclick: () => { base = null; fill(notice); } }, "Discard my change"))));
  }

  async function act(field, args, variables, done = () => {}) {
    pin();
    const expectedVersion = base;
    let result;
    try {
      const data = await api.query(`mutation($id: String!, $v: Int ${args.decl}) {
        r: ${field}(id: $id, expectedVersion: $v ${args.call}) { ${RESULT} } }`, { id, v: expectedVersion, ...variables });
      result = data.r;
    } catch (e) {
      fill(notice, h("p", { class: "error" }, `Not applied: ${e.message}`));
      return;
    }
    if (result.success) {
      base = null;
      fill(notice);
      if (result.ticket && result.ticket.version > ticket.version) { ticket = result.ticket; render(); }
      done();
    } else if (result.errorCode === "CONFLICT") {
      showConflict(result, () => act(field, args, variables, done));
    } else {
      base = null;
      fill(notice, h("p", { class: "error" }, `Not applied (${result.errorCode}): ${result.error}`));
    }
  }

  function renderActions() {
    const text = h("textarea", { id: "comment", rows: 3, onfocus: pin, oninput: pin, required: true });
    const internal = h("input", { type: "checkbox", id: "internal" });
    const parts = [
      h("form", { class: "form", id: "comment-form", onsubmit: (e) => {
        e.preventDefault();
        if (!text.value.trim()) return;
        act("commentOnSupportTicket", { decl: ", $c: String!, $i: Boolean", call: ", comment: $c, internal: $i" },
          { c: text.value, i: staff && internal.checked }, () => { text.value = ""; });
      } },
      h("label", { for: "comment" }, "Comment"), text,
      h("div", { class: "row" },
        staff ? h("label", { for: "internal", class: "inline" }, internal, " Internal note (agents only)") : null,
        h("button", { type: "submit", class: "primary" }, "Send")))];
    if (staff) {
      const status = h("select", { id: "status", onfocus: pin }, STATUSES.map((s) =>
        h("option", { value: s, selected: ticket.status === s }, s)));
      const priority = h("select", { id: "priority", onfocus: pin }, PRIORITIES.map((p) =>
        h("option", { value: p, selected: ticket.priority === p }, p)));
      const assignee = h("input", { id: "assignee", size: 14, onfocus: pin, value: ticket.assignedTo?.id ?? "" });
      const tag = h("input", { id: "tag", size: 10, onfocus: pin });
      parts.push(h("form", { class: "form", onsubmit: (e) => e.preventDefault() },
        h("div", { class: "row" },
          h("label", { for: "status" }, "Status", status),
          h("button", { type: "button", id: "set-status", onclick: () =>
            act("updateSupportTicketStatus", { decl: ", $s: TicketStatus!", call: ", status: $s" }, { s: status.value }) }, "Set status"),
          h("label", { for: "priority" }, "Priority", priority),
          h("button", { type: "button", id: "set-priority", onclick: () =>
            act("updateSupportTicketPriority", { decl: ", $p: TicketPriority!", call: ", priority: $p" }, { p: priority.value }) }, "Set priority")),
        h("div", { class: "row" },
          h("label", { for: "assignee" }, "Assignee (user id)", assignee),
          h("button", { type: "button", id: "assign", onclick: () =>
            act("assignSupportTicket", { decl: ", $a: String!", call: ", assigneeId: $a" }, { a: assignee.value.trim() }) }, "Assign"),
          h("button", { type: "button", id: "assign-me", onclick: () =>
            act("assignSupportTicket", { decl: ", $a: String!", call: ", assigneeId: $a" }, { a: me.id }) }, "Assign to me")),
        h("div", { class: "row" },
          h("label", { for: "tag" }, "Tag", tag),
          h("button", { type: "button", id: "add-tag", onclick: () => tag.value.trim() &&
            act("addSupportTicketTag", { decl: ", $t: String!", call: ", tag: $t" }, { t: tag.value.trim() }, () => { tag.value = ""; }) }, "Add tag"))));
    }
    fill(actions, h("h2", {}, "Act"), parts);
  }

  let stop = () => {};
  (async () => {
    try {
      const data = await api.query(`query($id: String!) { supportTicket(id: $id) { ${TICKET} }
        supportTicketHistory(id: $id) { ${EVENT} } }`, { id });
      if (!data.supportTicket) {
        fill(main, h("p", { role: "alert" }, "No such ticket (or not one you may see). "), h("a", { href: "#/" }, "Back"));
        return;
      }
      ticket = data.supportTicket;
      data.supportTicketHistory.forEach(addEvent);
    } catch (e) {
      fill(notice, h("p", { class: "error" }, `Could not load the ticket: ${e.message}`));
      return;
    }
    render();
    renderActions();
    const last = history.length ? history[history.length - 1].position : null;
    stop = api.stream(`subscription($id: String!, $after: String) { ticketUpdated(ticketId: $id, after: $after) {
        ${EVENT} ticket { ${TICKET} } } }`, { id, after: last }, "ticketUpdated", {
      next: (event) => {
        if (!addEvent(event)) return;
        if (event.ticket.version > ticket.version) ticket = event.ticket;
        render();
        if (event.triggeredBy.id !== me.id) {
          toast(`${ticket.reference}: ${event.eventType.replace("_", " ").toLowerCase()} by ${name(event.triggeredBy)}`);
        }
      },
    });
  })();
  return () => stop();
}
