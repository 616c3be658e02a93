// Small DOM helpers: elements built from data, never from HTML strings, so
// text a user typed can never become markup.

/** `h("a", {href: "#/x", class: "card"}, "text", child)`: an element. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Replaces everything inside `element`. */
export function fill(element, ...children) {
  element.replaceChildren();
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) element.append(child);
  }
  return element;
}

/** A person's display name. */
export function name(user) {
  if (!user) return "nobody";
  const full = [user.firstName, user.lastName].filter(Boolean).join(" ");
  return full || user.id;
}

/** A short local date and time. */
export function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

/** A JSON value of a FieldChange, shown compactly. */
export function value(v) {
  if (v === null || v === undefined) return "∅";
  if (typeof v === "string") return v;
  if (typeof v === "object" && v.id) return v.id;
  return JSON.stringify(v);
}

/** "status: OPEN -> IN_PROGRESS" for one FieldChange. */
export function change(c) {
  return `${c.field}: ${value(c.oldValue)} -> ${value(c.newValue)}`;
}

/** A toast in the live region, gone after a while (or when clicked). */
export function toast(content, { href } = {}) {
  const box = document.getElementById("toasts");
  // The container is the live region (role=log): each toast is read once.
  const item = h("div", { class: "toast" },
    href ? h("a", { href }, content) : content);
  box.append(item);
  const remove = () => item.remove();
  item.addEventListener("click", remove);
  setTimeout(remove, 8000);
  return item;
}
