// The reference client's shell: the session (a token in localStorage, shared
// by every tab of this origin), the connection indicator, the notification
// centre and a hash router over the views.
import { Api, whoIs } from "./api.js";
import { fill, h, name } from "./dom.js";
import { signIn } from "./signin.js";
import { board } from "./board.js";
import { ticketPage } from "./ticket.js";
import { requesterView } from "./requester.js";
import { Inbox } from "./notifications.js";

const TOKEN = "tickets.token";
const main = document.getElementById("main");
const connection = document.getElementById("connection");
const LABELS = {
  connecting: "connecting…", connected: "connected", reconnecting: "reconnecting…", offline: "offline",
};

let session = null;   // { api, me, served, inbox }
let leaveView = null; // what the current view runs when it is left

function setConnection(state) {
  connection.dataset.state = state;
  connection.textContent = LABELS[state] ?? state;
}

function staff(me) {
  return me.roles.includes("AGENT") || me.roles.includes("ADMIN");
}

async function start(token) {
  let me;
  try {
    me = await whoIs(token);
  } catch (e) {
    localStorage.removeItem(TOKEN);
    return showSignIn(`That token was refused: ${e.message}`);
  }
  localStorage.setItem(TOKEN, token);
  const api = new Api(token, {
    onConnection: setConnection,
    onResumed: () => session?.inbox.reload(),
    onSignedOut: (why) => signOut(why),
  });
  const served = await api.served().catch(() => ({ mutations: new Set(), subscriptions: new Set() }));
  session = { api, me, served };
  session.inbox = new Inbox(api, served);
  document.getElementById("who").textContent = `${name(me)} (${me.roles.join(", ").toLowerCase()})`;
  document.getElementById("nav").hidden = false;
  document.getElementById("nav-board").hidden = !staff(me);
  document.getElementById("sign-out").hidden = false;
  if (!location.hash || location.hash === "#/" || location.hash === "#/signin") {
    // The hashchange this causes routes to the view.
    location.hash = staff(me) ? "#/board" : "#/mine";
  } else {
    route();
  }
}

function signOut(message) {
  localStorage.removeItem(TOKEN);
  if (session) {
    session.inbox.close();
    session.api.close();
  }
  session = null;
  setConnection("offline");
  document.getElementById("who").textContent = "";
  for (const id of ["nav", "bell", "sign-out"]) document.getElementById(id).hidden = true;
  showSignIn(message);
}

function showSignIn(message) {
  leave();
  location.hash = "#/signin";
  signIn(main, { message, onToken: (token) => start(token) });
}

function leave() {
  if (leaveView) leaveView();
  leaveView = null;
}

function route() {
  if (!session) return;
  leave();
  const [, view, id] = location.hash.split("/");
  const context = { api: session.api, me: session.me, served: session.served, staff: staff(session.me) };
  if (view === "ticket" && id) leaveView = ticketPage(main, decodeURIComponent(id), context);
  else if (view === "board" && context.staff) leaveView = board(main, context);
  else if (view === "mine") leaveView = requesterView(main, context);
  else fill(main, h("p", {}, "Nothing here. ", h("a", { href: "#/mine" }, "My tickets")));
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
// The hash is the router's: the skip link moves the focus instead.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
document.getElementById("sign-out").addEventListener("click", () => signOut());
// Another tab signed out (or in as somebody else): follow it.
window.addEventListener("storage", (event) => {
  if (event.key !== TOKEN) return;
  if (!event.newValue) signOut();
  else if (!session || session.api.token !== event.newValue) {
    if (session) { session.inbox.close(); session.api.close(); session = null; }
    start(event.newValue);
  }
});

const saved = localStorage.getItem(TOKEN);
if (saved) start(saved);
else showSignIn();
