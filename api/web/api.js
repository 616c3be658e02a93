// The API as a client should use it: queries and mutations over HTTP, every
// live stream over one graphql-transport-ws socket (the vendored graphql-ws
// client), resumed with `after` on reconnect so nothing is lost or doubled.
import { createClient } from "./graphql-ws/client.js";

/** An error the server answered, with its `extensions.code`. */
export class ApiError extends Error {
  constructor(message, code, extensions = {}) {
    super(message);
    this.code = code;
    this.extensions = extensions;
  }
}

/** Checks a token with `me` over HTTP; resolves to the user. */
export async function whoIs(token) {
  const data = await post(token, "query { me { id firstName lastName roles teams } }", {});
  return data.me;
}

async function post(token, query, variables) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch (e) {
    throw new ApiError("the server cannot be reached", "OFFLINE");
  }
  const body = await response.json().catch(() => ({}));
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    throw new ApiError(first.message, first.extensions?.code ?? "ERROR", first.extensions ?? {});
  }
  if (!response.ok) throw new ApiError(`HTTP ${response.status}`, "HTTP");
  return body.data;
}

/** Waits `ms`. */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Api {
  /**
   * `onConnection(state)` hears "connecting", "connected", "reconnecting"
   * and "offline"; `onResumed()` runs after each reconnection, for what has
   * no `after` to resume with (figures, the inbox).
   */
  constructor(token, { onConnection, onResumed, onSignedOut }) {
    this.token = token;
    this.streams = new Set();
    this.closed = false;
    const url = new URL("/graphql", location.href);
    url.protocol = url.protocol.replace("http", "ws");
    let everConnected = false;
    this.client = createClient({
      url: url.href,
      lazy: false,
      connectionParams: () => ({ Authorization: `Bearer ${this.token}` }),
      // A server restarting, a proxy cutting idle sockets, a laptop waking up:
      // try again for ever, backing off to 5 s between attempts.
      retryAttempts: Infinity,
      shouldRetry: () => true,
      retryWait: (retries) => sleep(Math.min(250 * 2 ** retries, 5000)),
      onNonLazyError: () => {},
      on: {
        connecting: (retrying) => {
          if (!this.closed) onConnection(retrying ? "reconnecting" : "connecting");
        },
        connected: (_socket, _payload, retrying) => {
          if (this.closed) return;
          onConnection("connected");
          if (everConnected || retrying) {
            for (const stream of this.streams) stream.resumed();
            onResumed();
          }
          everConnected = true;
        },
        closed: (event) => {
          if (this.closed) return;
          // 4401 "token expired" (or unauthorized): the session is over.
          if (event && event.code === 4401) onSignedOut("Your session has expired; sign in again.");
          else onConnection(navigator.onLine === false ? "offline" : "reconnecting");
        },
      },
    });
  }

  query(query, variables = {}) {
    return post(this.token, query, variables);
  }

  /**
   * A live stream of `field`. `variables.after` is kept at the position of
   * the last event received (when the events carry one), and graphql-ws
   * sends this same payload again when it re-subscribes after a reconnect:
   * the server replays exactly what was missed. A stream that has seen no
   * event yet calls `resync()` after a reconnect instead, so the view can
   * reload what it shows. `LAGGED` resumes from the position it names.
   */
  stream(query, variables, field, { next, resync = () => {}, error = () => {} }) {
    const payload = { query, variables: { ...variables } };
    const stream = {
      dispose: () => {},
      resumed: () => {
        if (payload.variables.after === undefined || payload.variables.after === null) resync();
      },
      closed: false,
    };
    const start = () => {
      stream.dispose = this.client.subscribe(payload, {
        next: (result) => {
          if (result.errors && result.errors.length) return fail(result.errors);
          const item = result.data?.[field];
          if (!item) return;
          ended = 0;
          if (item.position !== undefined && "after" in payload.variables) {
            payload.variables.after = item.position;
          }
          next(item);
        },
        error: (errors) => fail(Array.isArray(errors) ? errors : [errors]),
        // These streams have no end: a server that completes one is shutting
        // down (it completes every operation before closing the socket).
        // Subscribe again, from the last position seen, once it is back.
        complete: () => {
          if (stream.closed) return;
          ended += 1;
          setTimeout(() => { if (!stream.closed) start(); }, Math.min(250 * 2 ** ended, 5000));
        },
      });
    };
    let ended = 0;
    const fail = async (errors) => {
      const first = errors[0] ?? {};
      const code = first.extensions?.code;
      if (stream.closed) return;
      if (code === "LAGGED" && first.extensions?.position) {
        payload.variables.after = first.extensions.position;
        start();
      } else if (code === "RATE_LIMITED") {
        await sleep(1000 * (first.extensions?.retryAfterSeconds ?? 1));
        if (!stream.closed) start();
      } else if (code === "REPLAY_TOO_OLD") {
        payload.variables.after = null;
        resync();
        start();
      } else {
        error(new ApiError(first.message ?? String(first), code ?? "ERROR", first.extensions ?? {}));
      }
    };
    start();
    this.streams.add(stream);
    return () => {
      stream.closed = true;
      this.streams.delete(stream);
      stream.dispose();
    };
  }

  /** Which fields of the schema this server serves, from introspection. */
  async served() {
    const data = await this.query(
      "{ __schema { mutationType { fields { name } } subscriptionType { fields { name } } } }");
    const names = (type) => new Set((type?.fields ?? []).map((f) => f.name));
    return {
      mutations: names(data.__schema.mutationType),
      subscriptions: names(data.__schema.subscriptionType),
    };
  }

  close() {
    this.closed = true;
    for (const stream of [...this.streams]) stream.dispose();
    this.client.dispose();
  }
}
