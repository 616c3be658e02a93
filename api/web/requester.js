// "My tickets": the tickets the user created, live through `myTicketUpdates`
// (resumed with `after`), and a form to create one.
import { fill, h, name, toast } from "./dom.js";
import { CARD, PRIORITIES, card } from "./board.js";

export function requesterView(main, { api, me }) {
  const tickets = new Map();
  const list = h("ol", { class: "column", id: "my-tickets", "aria-label": "My tickets" });
  const status = h("p", { role: "status", class: "ref" });
  const request = h("input", { id: "new-request", required: true, maxlength: 200, size: 40 });
  const details = h("textarea", { id: "new-description", rows: 3 });
  const priority = h("select", { id: "new-priority" }, PRIORITIES.map((p) =>
    h("option", { value: p, selected: p === "MEDIUM" }, p)));
  const form = h("form", { class: "form", id: "new-ticket", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const data = await api.query(`mutation($i: CreateSupportTicketInput!, $k: String) {
        r: createSupportTicket(input: $i, idempotencyKey: $k) { success errorCode error ticket { ${CARD} } } }`,
      { i: { request: request.value, description: details.value || null, priority: priority.value },
        k: crypto.randomUUID() });
      if (!data.r.success) throw new Error(data.r.error);
      upsert(data.r.ticket);
      render();
      status.textContent = `Created ${data.r.ticket.reference}`;
      request.value = ""; details.value = "";
    } catch (err) {
      status.textContent = `Not created: ${err.message}`;
    }
  } },
  h("h2", {}, "New ticket"),
  h("label", { for: "new-request" }, "What is wrong? (one line)", request),
  h("label", { for: "new-description" }, "Details", details),
  h("label", { for: "new-priority" }, "Priority", priority),
  h("div", { class: "row" }, h("button", { type: "submit", class: "primary", id: "create" }, "Create ticket")));
  fill(main, h("h1", {}, "My tickets"), status, list, form);

  function upsert(ticket) {
    const known = tickets.get(ticket.id);
    if (known && known.version >= ticket.version) return false;
    if (ticket.deleted) tickets.delete(ticket.id);
    else tickets.set(ticket.id, ticket);
    return true;
  }
  function render() {
    fill(list, [...tickets.values()]
      .sort((a, b) => (a.updatedDate < b.updatedDate ? 1 : -1))
      .map((t) => card(t)));
  }
  async function reload() {
    try {
      const data = await api.query(`query($f: SupportTicketFilter) { supportTickets(filter: $f, first: 200) {
        edges { node { ${CARD} deleted } } } }`, { f: { createdByUserId: me.id } });
      for (const e of data.supportTickets.edges) upsert(e.node);
      render();
    } catch (e) {
      status.textContent = `Could not load your tickets: ${e.message}`;
    }
  }
  const stop = api.stream(`subscription($after: String) { myTicketUpdates(after: $after) {
      eventType position triggeredBy { id firstName lastName } ticket { ${CARD} deleted } } }`,
  { after: null }, "myTicketUpdates", {
    next: (event) => {
      if (upsert(event.ticket)) render();
      if (event.triggeredBy.id !== me.id && event.eventType === "COMMENTED") {
        toast(`${name(event.triggeredBy)} replied on ${event.ticket.reference}`, { href: `#/ticket/${event.ticket.id}` });
      }
    },
    resync: reload,
  });
  reload();
  return stop;
}
