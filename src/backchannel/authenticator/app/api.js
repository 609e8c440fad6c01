// The device API (docs/authenticator-api.md). URLs are relative to the app, so the app works
// under any issuer path.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.error_description || body.error)) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

export async function call(path, { method = "GET", body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`api/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

const POLL_SECONDS = 5;

// Keeps the inbox fresh: an event stream read with fetch (so the bearer header can be sent);
// when it drops, the inbox is polled every 5 s while a new stream is tried.
export class Listener {
  constructor(token, { onChange, onState, onRevoked }) {
    this.token = token;
    this.onChange = onChange;
    this.onState = onState;
    this.onRevoked = onRevoked;
    this.controller = null;
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.loop();
  }

  stop() {
    this.running = false;
    if (this.controller) this.controller.abort();
  }

  async loop() {
    while (this.running) {
      try {
        await this.stream();
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          this.running = false;
          this.onRevoked();
          return;
        }
      }
      if (!this.running) return;
      this.onState("polling");
      await this.safeChange();
      await new Promise((resolve) => setTimeout(resolve, POLL_SECONDS * 1000));
    }
  }

  async safeChange() {
    try {
      await this.onChange();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        this.running = false;
        this.onRevoked();
      }
    }
  }

  async stream() {
    this.controller = new AbortController();
    const response = await fetch("api/events", {
      headers: { Accept: "text/event-stream", Authorization: `Bearer ${this.token}` },
      cache: "no-store",
      credentials: "omit",
      signal: this.controller.signal,
    });
    if (!response.ok || !response.body) throw new ApiError(response.status, null);
    this.onState("live");
    await this.safeChange();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (parseEvent(block)) await this.safeChange();
      }
    }
  }
}

// True when the block is a `request` or `resolved` event (comments are keep-alives).
function parseEvent(block) {
  let type = "message";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) type = line.slice(6).trim();
  }
  return type === "request" || type === "resolved";
}
