// The agent board: the agent's queues as columns by status, kept live by
// `teamTicketUpdates` (resumed with `after`), the queues' figures live from
// `queueMetricsUpdated`, and filters by priority, tag, assignee and search.
import { fill, h, name, toast } from "./dom.js";

export const STATUSES = ["OPEN", "IN_PROGRESS", "ON_HOLD", "RESOLVED", "CLOSED"];
export const PRIORITIES = ["LOW", "MEDIUM", "HIGH", "CRITICAL"];
export const CARD = "id reference request status priority queue tags version updatedDate " +
  "createdBy { id } assignedTo { id firstName lastName }";
const PAGE = 300;
// How long a card changed live stays highlighted (ms).
const FRESH_MS = 5000;
const MAX_TICKETS = 5000;
const METRICS = "queue open inProgress onHold resolved closed unassigned slaBreaches createdToday resolvedToday position";

/**
 * One card of a ticket, a link to its page; with `selection` (a Set of ids
 * and a callback), a checkbox to select it for a bulk action.
 */
export function card(ticket, fresh = false, selection = null) {
  const box = selection && h("input", {
    type: "checkbox", class: "select", "aria-label": `Select ${ticket.reference}`,
    checked: selection.ids.has(ticket.id),
    onchange: (e) => selection.toggle(ticket.id, e.target.checked),
  });
  return h("li", { class: fresh && Date.now() - fresh < FRESH_MS ? "card fresh" : "card", dataset: { id: ticket.id, reference: ticket.reference } },
    box,
    h("a", { href: `#/ticket/${ticket.id}` },
      h("span", { class: "ref" }, ticket.reference, " · ", ticket.queue), h("br"),
      ticket.request, h("br"),
      h("span", { class: `pill p-${ticket.priority}` }, ticket.priority),
      ticket.tags.map((tag) => h("span", { class: "pill" }, `#${tag}`)),
      h("span", { class: "ref" }, " ", ticket.assignedTo ? `→ ${name(ticket.assignedTo)}` : "unassigned")));
}

/** The server's filter for the board's form, and the same test for live events. */
function filterOf(form, me) {
  const filter = {};
  if (!me.roles.includes("ADMIN") && me.teams.length) filter.queues = me.teams;
  if (form.priority) filter.priorities = [form.priority];
  if (form.tag) filter.tags = [form.tag.toLowerCase()];
  if (form.assignee === "me") filter.assignedToUserId = me.id;
  else if (form.assignee) filter.assignedToUserId = form.assignee;
  if (form.search) filter.search = form.search;
  return filter;
}

function matches(filter, ticket, form) {
  if (filter.queues && !filter.queues.includes(ticket.queue)) return false;
  if (filter.priorities && !filter.priorities.includes(ticket.priority)) return false;
  if (filter.tags && !filter.tags.every((t) => ticket.tags.includes(t))) return false;
  if (filter.assignedToUserId && ticket.assignedTo?.id !== filter.assignedToUserId) return false;
  if (form.search) {
    const s = form.search.toLowerCase();
    if (!ticket.reference.toLowerCase().includes(s) && !ticket.request.toLowerCase().includes(s)) return false;
  }
  return true;
}

export function board(main, { api, me, served }) {
  const tickets = new Map();
  const form = { priority: "", tag: "", assignee: "", search: "" };
  let filter = filterOf(form, me);
  let loading = 0;
  const metricsBox = h("section", { class: "metrics", "aria-label": "Queue figures", id: "metrics" });
  const columns = Object.fromEntries(STATUSES.map((s) => [s, h("ol", { "aria-label": s })]));
  const counts = Object.fromEntries(STATUSES.map((s) => [s, h("span", {})]));
  const status = h("p", { role: "status", class: "ref", id: "board-status" });
  const input = (label, key, attrs = {}) => {
    const element = h("input", { id: `f-${key}`, ...attrs, oninput: debounce(() => {
      form[key] = element.value.trim();
      reload();
    }) });
    return h("label", { for: `f-${key}` }, label, element);
  };
  const select = (label, key, options) => {
    const element = h("select", { id: `f-${key}`, onchange: () => { form[key] = element.value; reload(); } },
      options.map(([v, text]) => h("option", { value: v }, text)));
    return h("label", { for: `f-${key}` }, label, element);
  };
  // Bulk actions, where the server serves bulkUpdateSupportTickets.
  const bulkBar = h("section", { class: "bulk", id: "bulk", "aria-label": "Bulk actions", hidden: true });
  const selection = served.mutations.has("bulkUpdateSupportTickets") ? {
    ids: new Set(),
    toggle(id, on) {
      if (on) this.ids.add(id); else this.ids.delete(id);
      renderBulk();
    },
  } : null;
  const bulkStatus = h("select", { id: "bulk-status", "aria-label": "Status for the selected tickets" },
    STATUSES.map((s) => h("option", { value: s }, s)));
  const bulkPriority = h("select", { id: "bulk-priority", "aria-label": "Priority for the selected tickets" },
    PRIORITIES.map((p) => h("option", { value: p }, p)));
  const bulkCount = h("b", {});
  const bulkResult = h("span", { role: "status", id: "bulk-result" });
  fill(bulkBar, bulkCount, " ",
    h("button", { type: "button", id: "bulk-assign-me", onclick: () => bulk({ assigneeId: me.id }) }, "Assign to me"), " ",
    bulkStatus, h("button", { type: "button", id: "bulk-set-status", onclick: () => bulk({ status: bulkStatus.value }) }, "Set status"), " ",
    bulkPriority, h("button", { type: "button", id: "bulk-set-priority", onclick: () => bulk({ priority: bulkPriority.value }) }, "Set priority"), " ",
    h("button", { type: "button", onclick: () => { selection.ids.clear(); renderBulk(); render(); } }, "Clear"), " ",
    bulkResult);
  function renderBulk() {
    bulkBar.hidden = !selection || selection.ids.size === 0;
    if (selection) bulkCount.textContent = `${selection.ids.size} selected:`;
  }
  async function bulk(action) {
    const ids = [...selection.ids];
    try {
      const data = await api.query(`mutation($ids: [String!]!, $a: BulkTicketAction!, $k: String) {
        r: bulkUpdateSupportTickets(ids: $ids, action: $a, idempotencyKey: $k) {
          succeeded failed results { success errorCode error ticket { reference } } } }`,
      { ids, a: action, k: crypto.randomUUID() });
      const r = data.r;
      const failures = r.results.filter((x) => !x.success).map((x) => `${x.ticket?.reference ?? "?"}: ${x.errorCode}`);
      bulkResult.textContent = `${r.succeeded} changed, ${r.failed} not${failures.length ? ` (${failures.join(", ")})` : ""}`;
      selection.ids.clear();
      renderBulk();
      render();
    } catch (e) {
      bulkResult.textContent = `Not applied: ${e.message}`;
    }
  }
  fill(main,
    h("h1", { class: "visually-hidden" }, "Board"),
    metricsBox,
    h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
      select("Priority", "priority", [["", "any"], ...PRIORITIES.map((p) => [p, p])]),
      input("Tag", "tag", { size: 10 }),
      select("Assignee", "assignee", [["", "anyone"], ["me", "me"]]),
      input("Search", "search", { type: "search", size: 18 })),
    status, bulkBar,
    h("div", { class: "board", id: "board" }, STATUSES.map((s) =>
      h("section", { class: "column", "aria-label": s, dataset: { status: s } },
        h("h2", {}, s.replace("_", " "), " ", counts[s]), columns[s]))));

  const count = () => `${tickets.size} ticket${tickets.size === 1 ? "" : "s"}`;

  function render() {
    const by = Object.fromEntries(STATUSES.map((s) => [s, []]));
    for (const t of tickets.values()) if (by[t.status]) by[t.status].push(t);
    for (const s of STATUSES) {
      by[s].sort((a, b) => (a.updatedDate < b.updatedDate ? 1 : -1));
      fill(columns[s], by[s].map((t) => card(t, t.fresh, selection)));
      counts[s].textContent = `(${by[s].length})`;
    }
  }

  // The live stream starts first; what the list query answers is merged by
  // version with what the stream delivered meanwhile, so neither a missed nor
  // a doubled update is possible.
  function upsert(ticket, fresh) {
    const known = tickets.get(ticket.id);
    if (known && known.version >= ticket.version) return false;
    if (ticket.deleted || !matches(filter, ticket, form)) {
      tickets.delete(ticket.id);
      return known !== undefined;
    }
    tickets.set(ticket.id, { ...ticket, fresh: fresh ? Date.now() : 0 });
    return true;
  }

  async function reload() {
    const mine = ++loading;
    // User Timing marks (visible in the browser's performance panel): how
    // long the first page and the whole board take to load and draw.
    performance.mark("board-load");
    filter = filterOf(form, me);
    status.textContent = "Loading…";
    let after = null;
    let loaded = 0;
    try {
      for (;;) {
        const data = await api.query(
          `query($f: SupportTicketFilter, $n: Int, $a: String) { supportTickets(filter: $f, first: $n, after: $a) {
             totalCount pageInfo { hasNextPage endCursor } edges { node { ${CARD} deleted } } } }`,
          { f: filter, n: PAGE, a: after });
        if (mine !== loading) return;
        const page = data.supportTickets;
        if (loaded === 0) {
          // The first page replaces what was shown; what the live stream
          // delivered meanwhile is merged back by version.
          const shown = [...tickets.values()];
          tickets.clear();
          for (const t of page.edges) upsert(t.node, false);
          for (const t of shown) {
            upsert(t, false);
            const kept = tickets.get(t.id);
            if (kept) kept.fresh = t.fresh;
          }
        } else {
          for (const t of page.edges) upsert(t.node, false);
        }
        const firstPage = loaded === 0;
        loaded += page.edges.length;
        const last = !page.pageInfo.hasNextPage || loaded >= MAX_TICKETS;
        // The first page is drawn at once, to be on the screen while the
        // rest load; the others are drawn together at the end (drawing every
        // page would redraw the early ones again and again).
        if (firstPage || last) {
          status.textContent = last ? count() : `${count()}, loading ${page.totalCount}…`;
          render();
          // Reading a size lays the page out now, so the measures include layout.
          void main.offsetHeight;
        }
        if (firstPage) performance.measure("board-first-page", "board-load");
        if (last) break;
        after = page.pageInfo.endCursor;
      }
    } catch (e) {
      status.textContent = `Could not load the board: ${e.message}`;
      return;
    }
    status.textContent = count();
    performance.measure("board", "board-load");
  }

  const stopTickets = api.stream(
    `subscription($after: String) { teamTicketUpdates(after: $after) {
       eventType position triggeredBy { id firstName lastName } ticket { ${CARD} deleted } } }`,
    { after: null }, "teamTicketUpdates", {
      next: (event) => {
        if (upsert(event.ticket, true)) {
          render();
          // The highlight goes once it is no longer news.
          setTimeout(render, FRESH_MS + 100);
        }
        if (event.eventType === "CREATED" && event.triggeredBy.id !== me.id) {
          toast(`New ticket ${event.ticket.reference}: ${event.ticket.request}`, { href: `#/ticket/${event.ticket.id}` });
        }
        status.textContent = count();
      },
      resync: reload,
      error: (e) => { status.textContent = `Live updates stopped: ${e.message}`; },
    });

  const metrics = new Map();
  function renderMetrics() {
    fill(metricsBox, [...metrics.values()].sort((a, b) => a.queue.localeCompare(b.queue)).map((m) =>
      h("div", { class: "metric", dataset: { queue: m.queue } },
        h("b", {}, m.queue), " ",
        `open ${m.open} · in progress ${m.inProgress} · on hold ${m.onHold} · unassigned ${m.unassigned}` +
        ` · SLA breaches ${m.slaBreaches} · today +${m.createdToday} / resolved ${m.resolvedToday}`)));
  }
  async function loadMetrics() {
    try {
      const data = await api.query(`{ queueMetrics { ${METRICS} } }`);
      for (const m of data.queueMetrics) if (!filter.queues || filter.queues.includes(m.queue)) metrics.set(m.queue, m);
      renderMetrics();
    } catch { /* figures are a nicety: the board works without them */ }
  }
  const stopMetrics = api.stream(`subscription { queueMetricsUpdated { ${METRICS} } }`, {},
    "queueMetricsUpdated", {
      next: (m) => {
        if (filter.queues && !filter.queues.includes(m.queue)) return;
        metrics.set(m.queue, m);
        renderMetrics();
      },
      resync: loadMetrics,
    });

  reload();
  loadMetrics();
  return () => { stopTickets(); stopMetrics(); };
}

function debounce(f, ms = 250) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => f(...args), ms); };
}
