// Sign-in: paste a token; in development mode (the server answers
// /dev/users), or pick one of the recorded users and let the server mint it.
import { fill, h, name } from "./dom.js";

export function signIn(main, { message, onToken }) {
  const field = h("textarea", { id: "token", rows: 3, cols: 60, required: true, spellcheck: "false",
    autocomplete: "off" });
  const form = h("form", { class: "form", onsubmit: (e) => {
    e.preventDefault();
    if (field.value.trim()) onToken(field.value.trim());
  } },
  h("label", { for: "token" }, "Token (from `tickets token --sub alice --role AGENT --team support`)"),
  field,
  h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Sign in")));
  const dev = h("section", { id: "dev-users", "aria-label": "Development sign-in" });
  fill(main, h("div", { class: "signin" },
    h("h1", {}, "Sign in"),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
    form, dev));
  field.focus();
  loadDevUsers(dev, onToken);
}

async function loadDevUsers(section, onToken) {
  let response;
  try {
    response = await fetch("/dev/users");
  } catch {
    return;
  }
  // Production mode: the route does not exist, and nothing is offered.
  if (!response.ok) return;
  const { users } = await response.json();
  const pick = async (user) => {
    const minted = await fetch("/dev/token", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: user.id }),
    });
    if (minted.ok) onToken((await minted.json()).token);
  };
  fill(section,
    h("h2", {}, "Development mode: sign in as"),
    users.length === 0
      ? h("p", {}, "No users recorded yet: run `cargo run -- demo` first.")
      : h("ul", { class: "users" }, users.map((user) => h("li", {},
        h("button", { type: "button", dataset: { user: user.id }, onclick: () => pick(user) },
          `${name(user)} · ${user.roles.join(", ").toLowerCase()}${user.teams.length ? ` · ${user.teams.join(", ")}` : ""}`)))));
}
