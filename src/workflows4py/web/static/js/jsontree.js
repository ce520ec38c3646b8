// A JSON value as a collapsible tree (<details> per object and array, open to `depth`).
import {h} from './dom.js';

export function jsonTree(value, depth = 3) {
  return h('div', {class: 'json-tree'}, node(null, value, depth));
}

function node(key, value, depth) {
  const label = key === null ? null : h('span', {class: 'json-key'}, `${key}: `);
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
    if (!entries.length) return h('div', {class: 'json-line'}, label, h('span', {class: 'json-punct'}, open + close));
    const summary = h('summary', {}, label, h('span', {class: 'json-punct'}, open),
      h('span', {class: 'json-count'}, ` ${entries.length} ${Array.isArray(value) ? 'items' : 'keys'} `),
      h('span', {class: 'json-punct json-close-inline'}, close));
    return h('details', {class: 'json-node', open: depth > 0},
      summary,
      h('div', {class: 'json-children'}, entries.map(([k, v]) => node(k, v, depth - 1))),
      h('div', {class: 'json-punct'}, close));
  }
  const kind = value === null ? 'null' : typeof value;
  return h('div', {class: 'json-line'}, label, h('span', {class: `json-${kind}`}, JSON.stringify(value)));
}
