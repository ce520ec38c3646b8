// The HTTP API client: every URL relative to <base href>, the bearer token from
// sessionStorage (asked for on a 401), the event stream read with fetch so the token header
// can be sent (EventSource cannot send headers).
import {h} from './dom.js';

const TOKEN_KEY = 'workflows4py.token';

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.type = error.type || null;
    this.body = body;
  }
}

/** The absolute URL of an API path such as 'workflows' (relative to the mount root). */
export function apiUrl(path) {
  return new URL(`api/v1/${path}`, document.baseURI).href;
}

function headers(json) {
  const result = {Accept: 'application/json'};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) result.Authorization = `Bearer ${token}`;
  if (json) result['Content-Type'] = 'application/json';
  return result;
}

/** Calls the API; JSON (or text with {text: true}) back, an ApiError for any non-2xx. */
export async function api(path, options = {}) {
  const {method = 'GET', body, signal, text = false} = options;
  const response = await fetch(apiUrl(path), {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (response.status === 401) {
    await askToken(sessionStorage.getItem(TOKEN_KEY) !== null);
    return api(path, options);
  }
  if (text && response.ok) return response.text();
  const payload = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

let pendingToken = null;

/** Shows the token dialog (once, however many requests are waiting); resolves when entered. */
export function askToken(wasWrong = false) {
  if (pendingToken) return pendingToken;
  pendingToken = new Promise((resolve) => {
    const input = h('input', {type: 'password', name: 'token', autocomplete: 'current-password',
      required: true, 'aria-label': 'API token'});
    const dialog = h('dialog', {class: 'dialog', id: 'token-dialog'},
      h('form', {method: 'dialog', onsubmit: (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value);
        dialog.close();
        dialog.remove();
        pendingToken = null;
        resolve();
      }},
      h('h2', {}, 'API token'),
      h('p', {}, wasWrong ? 'That token was refused. Enter the token again.'
        : 'This server asks for a bearer token. It is kept for this browser tab only.'),
      input,
      h('div', {class: 'dialog-actions'}, h('button', {class: 'primary', type: 'submit'}, 'Use token'))));
    dialog.addEventListener('cancel', (event) => event.preventDefault());
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
  return pendingToken;
}

/**
 * Follows a server-sent-events stream until `signal` aborts, reconnecting after a drop;
 * calls onEvent(name, data) for each event (data parsed as JSON when it is JSON).
 */
export async function follow(path, onEvent, signal) {
  while (!signal.aborted) {
    try {
      const response = await fetch(apiUrl(path), {headers: {...headers(false), Accept: 'text/event-stream'}, signal});
      if (response.status === 401) {
        await askToken(true);
        continue;
      }
      if (!response.ok || !response.body) throw new ApiError(response.status, null);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          dispatch(buffer.slice(0, end), onEvent);
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function dispatch(block, onEvent) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return;
  const text = data.join('\n');
  let parsed = text;
  try { parsed = JSON.parse(text); } catch { /* plain text data */ }
  onEvent(name, parsed);
}
