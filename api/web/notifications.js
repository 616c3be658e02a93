// The notification centre: a bell with the unread count, the list, mark read,
// mark all read, delete where the server serves `deleteNotifications`; a
// toast (and, once allowed, a browser notification) per `notificationAdded`.
// Other tabs of this origin hear of every change over a BroadcastChannel;
// where the server serves `notificationsChanged`, every device does.
import { fill, h, toast, when } from "./dom.js";

const NOTIFICATION = "id eventType title body ticketId url tag requireInteraction read createdDate";

/** The client's route for a notification's `url` (`/support/tickets/<id>`). */
function route(n) {
  return `#/ticket/${n.ticketId}`;
}

export class Inbox {
  constructor(api, served) {
    this.api = api;
    this.canDelete = served.mutations.has("deleteNotifications");
    this.bell = document.getElementById("bell");
    this.badge = document.getElementById("badge");
    this.panel = document.getElementById("inbox");
    this.items = [];
    this.unread = 0;
    this.bell.hidden = false;
    this.onBell = () => this.toggle();
    this.bell.addEventListener("click", this.onBell);
    this.onKey = (e) => { if (e.key === "Escape" && !this.panel.hidden) { this.toggle(false); this.bell.focus(); } };
    document.addEventListener("keydown", this.onKey);
    this.channel = "BroadcastChannel" in window ? new BroadcastChannel("tickets-inbox") : null;
    if (this.channel) this.channel.onmessage = () => this.reload();
    this.stops = [api.stream(`subscription { notificationAdded { ${NOTIFICATION} } }`, {}, "notificationAdded", {
      next: (n) => this.added(n),
      resync: () => this.reload(),
    })];
    if (served.subscriptions.has("notificationsChanged")) {
      this.stops.push(api.stream("subscription { notificationsChanged { kind ids unreadCount } }", {},
        "notificationsChanged", {
          next: (change) => { if (change.kind !== "ADDED") this.reload(); },
          resync: () => this.reload(),
        }));
    }
    this.reload();
  }

  close() {
    for (const stop of this.stops) stop();
    this.channel?.close();
    this.bell.removeEventListener("click", this.onBell);
    document.removeEventListener("keydown", this.onKey);
    this.bell.hidden = true;
    this.panel.hidden = true;
  }

  async reload() {
    try {
      const data = await this.api.query(`{ notifications(first: 30) { unreadCount edges { node { ${NOTIFICATION} } } } }`);
      this.items = data.notifications.edges.map((e) => e.node);
      this.unread = data.notifications.unreadCount;
      this.render();
    } catch { /* the badge keeps its last figure until the next change */ }
  }

  added(n) {
    if (this.items.some((x) => x.id === n.id)) return;
    this.items.unshift(n);
    if (!n.read) this.unread += 1;
    this.render();
    toast(`${n.title}: ${n.body}`, { href: route(n) });
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      const shown = new Notification(n.title, { body: n.body, tag: n.tag, requireInteraction: n.requireInteraction });
      shown.onclick = () => { window.focus(); location.hash = route(n); };
    }
  }

  changed() {
    this.channel?.postMessage("changed");
  }

  async markRead(ids) {
    await this.api.query("mutation($ids: [String!]!) { markNotificationsRead(ids: $ids) }", { ids });
    await this.reload();
    this.changed();
  }

  async markAll() {
    await this.api.query("mutation { markAllNotificationsRead }");
    await this.reload();
    this.changed();
  }

  async remove(ids) {
    try {
      await this.api.query("mutation($ids: [String!]!) { deleteNotifications(ids: $ids) }", { ids });
    } catch (e) {
      // An older server: hide the button from now on.
      if (e.code === "GRAPHQL_VALIDATION_FAILED" || /Unknown field/.test(e.message)) this.canDelete = false;
    }
    await this.reload();
    this.changed();
  }

  toggle(open = this.panel.hidden) {
    this.panel.hidden = !open;
    this.bell.setAttribute("aria-expanded", String(open));
    if (open) {
      this.render();
      // Keyboard users land in the list; Escape brings them back to the bell.
      this.panel.querySelector("button, a")?.focus();
    }
  }

  render() {
    this.badge.hidden = this.unread === 0;
    this.badge.textContent = String(this.unread);
    this.bell.setAttribute("aria-label", `Notifications, ${this.unread} unread`);
    if (this.panel.hidden) return;
    const allow = "Notification" in window && Notification.permission === "default"
      ? h("button", { type: "button", onclick: () => Notification.requestPermission() }, "Allow browser notifications")
      : null;
    fill(this.panel,
      h("div", { class: "row" },
        h("b", {}, `Notifications (${this.unread} unread)`), " ",
        h("button", { type: "button", id: "mark-all-read", onclick: () => this.markAll() }, "Mark all read"), " ", allow),
      this.items.length === 0 ? h("p", {}, "Nothing yet.") : h("ul", {}, this.items.map((n) =>
        h("li", { class: n.read ? "read" : "unread", dataset: { id: n.id } },
          h("a", { href: route(n), onclick: () => { if (!n.read) this.markRead([n.id]); this.toggle(false); } },
            h("b", {}, n.title)), h("br"), n.body, h("br"),
          h("span", { class: "ref" }, when(n.createdDate)),
          h("div", { class: "actions" },
            n.read ? null : h("button", { type: "button", class: "mark-read", onclick: () => this.markRead([n.id]) }, "Mark read"),
            this.canDelete ? h("button", { type: "button", onclick: () => this.remove([n.id]) }, "Delete") : null)))));
  }
}
