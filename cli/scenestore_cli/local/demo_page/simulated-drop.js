// The demo page's "Simulate a drop": an XMLHttpRequest for the client that fails like a lost connection.
//
// Only the page's uploads to the bucket go through it (the client uses XMLHttpRequest for those, fetch for the
// API), so while the drop lasts every part PUT fails as a network error: the one in flight is cut, each retry
// fails at once. That is what a train tunnel does to a real upload, and what the client's retries and resume
// are for. Not part of the client: a real page passes nothing, and the browser's own XMLHttpRequest is used.

let down = false;
const live = new Set();

/** Cut the connections now, and fail every storage request until `restore()`. */
export function drop() {
  down = true;
  for (const request of live) request.cut();
}

export function restore() {
  down = false;
}

export function isDown() {
  return down;
}

/** The subset of XMLHttpRequest the client uses, delegating to a real one. */
export class DroppableXhr {
  constructor() {
    this.real = new XMLHttpRequest();
    this.upload = this.real.upload;
    this.onload = this.onerror = this.onabort = null;
    this.cutOff = false;
    const settle = (handler) => () => {
      live.delete(this);
      handler();
    };
    this.real.onload = settle(() => this.onload?.());
    this.real.onerror = settle(() => this.onerror?.());
    // A cut looks like a network error to the client, never like an abort (which would abort the upload).
    this.real.onabort = settle(() => (this.cutOff ? this.onerror?.() : this.onabort?.()));
  }

  open(method, url) {
    this.real.open(method, url);
  }

  setRequestHeader(name, value) {
    this.real.setRequestHeader(name, value);
  }

  send(body) {
    if (down) {
      this.cutOff = true;
      setTimeout(() => this.onerror?.(), 0);
      return;
    }
    live.add(this);
    this.real.send(body);
  }

  abort() {
    this.real.abort();
  }

  cut() {
    this.cutOff = true;
    this.real.abort();
  }

  getResponseHeader(name) {
    return this.real.getResponseHeader(name);
  }

  get status() {
    return this.cutOff ? 0 : this.real.status;
  }

  get responseText() {
    return this.real.responseText;
  }
}
