// Small DOM helpers: build elements, format instants and statuses.

/** Builds an element: h('a', {href: 'x', class: 'y', onclick: f}, 'text', child, [more]). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const STATUS_ICONS = {
  running: '▶', awaiting: '◷', finished: '✔', failed: '✖', terminated: '■', parked: '⚠',
};

/** A status badge: an icon and the word, so colour is never the only signal. */
export function statusBadge(status) {
  const name = String(status || 'unknown');
  return h('span', {class: `badge status-${name}`}, `${STATUS_ICONS[name] || '•'} ${name}`);
}

/** "3 min ago" / "in 2 h", with the exact instant as a tooltip. */
export function when(iso) {
  if (!iso) return h('span', {class: 'muted'}, '—');
  const date = new Date(iso);
  return h('time', {datetime: iso, title: date.toLocaleString()}, relative(date));
}

export function relative(date) {
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 10) return 'just now';
  const units = [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]];
  const [unit, size] = units.find(([, size]) => abs >= size);
  const text = `${Math.floor(abs / size)} ${unit}`;
  return seconds < 0 ? `${text} ago` : `in ${text}`;
}

export function exactTime(iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

/** A card: a titled section. */
export function card(title, body, extra = {}) {
  return h('section', {class: `card ${extra.class || ''}`, id: extra.id},
    h('header', {class: 'card-head'}, h('h2', {}, title), extra.tools || null),
    h('div', {class: 'card-body'}, body));
}

export function errorBox(error) {
  return h('div', {class: 'error-box', role: 'alert'}, String(error && error.message || error));
}
