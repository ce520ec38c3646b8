// A form generated from a JSON Schema (as pydantic writes it): objects as fieldsets, strings,
// integers, numbers, booleans, enums as selects, arrays of simple values as lists; anything
// else is a raw JSON textarea. A toggle edits the whole value as raw JSON. Validation errors
// ({loc, msg}) are shown next to the field their loc names, and all of them above the buttons.
import {h, fill} from './dom.js';

const SIMPLE = new Set(['string', 'integer', 'number', 'boolean']);

function resolve(schema, root, seen = 0) {
  if (schema && schema.$ref && seen < 20) {
    const name = schema.$ref.replace(/^#\/(\$defs|definitions)\//, '');
    const target = (root.$defs || root.definitions || {})[name];
    return target ? resolve({...target, ...without(schema, '$ref')}, root, seen + 1) : schema;
  }
  return schema || {};
}

function without(object, key) {
  const copy = {...object};
  delete copy[key];
  return copy;
}

/** {inner, nullable}: an Optional[X] (anyOf X, null) is X that may be null. */
function unwrapNullable(schema, root) {
  const alternatives = schema.anyOf || schema.oneOf;
  if (alternatives && alternatives.length === 2) {
    const others = alternatives.filter((alt) => alt.type !== 'null');
    if (others.length === 1) return {inner: resolve(others[0], root), nullable: true};
  }
  return {inner: schema, nullable: false};
}

class Fields {
  constructor() { this.byPath = new Map(); }
  register(path, slot) { this.byPath.set(JSON.stringify(path), slot); }
}

function errorSlot() { return h('div', {class: 'field-error', role: 'alert', hidden: true}); }

function build(rawSchema, path, root, fields, required) {
  const schema = resolve(rawSchema, root);
  const {inner, nullable} = unwrapNullable(schema, root);
  const name = path.length ? String(path[path.length - 1]) : 'value';
  const title = inner.title || schema.title || name;
  const slot = errorSlot();
  fields.register(path, slot);
  const id = `field-${path.join('-') || 'root'}`;
  const label = (control) => h('label', {class: 'field', for: id},
    h('span', {class: 'field-label'}, title, required ? h('span', {class: 'required', title: 'required'}, ' *') : null),
    control, inner.description ? h('span', {class: 'hint'}, inner.description) : null, slot);

  if (inner.enum) {
    const select = h('select', {id, name},
      !required || nullable ? h('option', {value: ''}, '—') : null,
      inner.enum.map((option, i) => h('option', {value: String(i), selected: inner.default === option}, String(option))));
    return {el: label(select), get: () => (select.value === '' ? undefined : inner.enum[Number(select.value)])};
  }
  if (inner.type === 'object' && inner.properties) {
    const requiredKeys = new Set(inner.required || []);
    const children = Object.entries(inner.properties).map(([key, sub]) =>
      [key, build(sub, [...path, key], root, fields, requiredKeys.has(key))]);
    const body = children.map(([, child]) => child.el);
    const el = path.length
      ? h('fieldset', {class: 'fieldset'}, h('legend', {}, title), body, slot)
      : h('div', {class: 'fields'}, body, slot);
    return {el, get: () => {
      const value = {};
      for (const [key, child] of children) {
        const got = child.get();
        if (got !== undefined) value[key] = got;
      }
      return value;
    }};
  }
  if (inner.type === 'boolean') {
    const box = h('input', {type: 'checkbox', id, name, checked: inner.default === true});
    return {el: h('label', {class: 'field field-check', for: id}, box,
      h('span', {class: 'field-label'}, title), slot), get: () => box.checked};
  }
  if (SIMPLE.has(inner.type)) {
    const input = simpleInput(inner, id, name);
    return {el: label(input), get: () => readSimple(inner, input.value, required && !nullable)};
  }
  if (inner.type === 'array' && inner.items && SIMPLE.has(resolve(inner.items, root).type)) {
    return arrayField(resolve(inner.items, root), id, label);
  }
  const area = h('textarea', {id, name, rows: 4, class: 'code', placeholder: 'JSON',
    spellcheck: false}, inner.default !== undefined ? JSON.stringify(inner.default) : '');
  return {el: label(area), get: () => (area.value.trim() === '' ? undefined : parseJson(area.value))};
}

function simpleInput(schema, id, name) {
  const attrs = {id, name, value: schema.default ?? ''};
  if (schema.type === 'integer') return h('input', {...attrs, type: 'number', step: '1', inputmode: 'numeric'});
  if (schema.type === 'number') return h('input', {...attrs, type: 'number', step: 'any', inputmode: 'decimal'});
  return h('input', {...attrs, type: 'text', placeholder: schema.format || '', autocomplete: 'off'});
}

/** A typed value; a number that does not parse is sent as typed, for the server to refuse. */
function readSimple(schema, text, required) {
  if (schema.type === 'string') return text === '' && !required ? undefined : text;
  if (text.trim() === '') return undefined;
  const number = Number(text);
  return Number.isFinite(number) ? number : text;
}

function arrayField(items, id, label) {
  const rows = h('div', {class: 'array-rows'});
  const inputs = [];
  const add = (value = '') => {
    const input = simpleInput({...items, default: value}, `${id}-${inputs.length}`, '');
    inputs.push(input);
    const row = h('div', {class: 'array-row'}, input, h('button', {type: 'button', class: 'icon', title: 'Remove',
      onclick: () => { inputs.splice(inputs.indexOf(input), 1); row.remove(); }}, '×'));
    rows.append(row);
  };
  const control = h('div', {id}, rows, h('button', {type: 'button', class: 'small', onclick: () => add()}, '+ Add'));
  return {el: label(control), get: () => inputs.map((input) => (items.type === 'boolean'
    ? input.value === 'true' : readSimple(items, input.value, true)))};
}

function parseJson(text) {
  try { return JSON.parse(text); } catch (error) { throw new Error(`not JSON: ${error.message}`); }
}

/** The form for `schema`: {element, value(), showErrors(errors), clear()}. */
export function schemaForm(schema) {
  const root = schema || {};
  const fields = new Fields();
  let generated;
  try {
    generated = build(root, [], root, fields, true);
  } catch {
    generated = null;
  }
  const raw = h('textarea', {class: 'code raw-json', rows: 8, spellcheck: false, 'aria-label': 'Request as JSON', hidden: true});
  const toggle = h('input', {type: 'checkbox', class: 'raw-toggle'});
  const summary = h('ul', {class: 'error-list', role: 'alert', hidden: true});
  const current = () => (toggle.checked || !generated ? parseJson(raw.value || 'null') : generated.get());
  toggle.addEventListener('change', () => {
    if (toggle.checked) {
      try { raw.value = JSON.stringify(generated.get(), null, 2); } catch { /* keep the text */ }
    }
    raw.hidden = !toggle.checked;
    if (generated) generated.el.hidden = toggle.checked;
  });
  if (!generated) { toggle.checked = true; raw.hidden = false; }
  const element = h('div', {class: 'schema-form'},
    generated ? generated.el : null,
    raw,
    h('label', {class: 'field-check raw-switch'}, toggle, ' Edit as raw JSON'),
    summary);

  return {
    element,
    value: current,
    clear() {
      fill(summary);
      summary.hidden = true;
      for (const slot of fields.byPath.values()) { slot.hidden = true; slot.textContent = ''; }
      element.querySelectorAll('.invalid').forEach((el) => el.classList.remove('invalid'));
    },
    showErrors(errors) {
      this.clear();
      for (const error of errors) {
        const loc = (error.loc || []).filter((part, i) => !(i === 0 && part === 'body'));
        const where = loc.length ? loc.join('.') : 'request';
        summary.append(h('li', {}, h('code', {}, where), ` ${error.msg || error.message || ''}`));
        let slot = null;
        for (let start = 0; start <= loc.length && !slot; start++) {
          slot = fields.byPath.get(JSON.stringify(loc.slice(start))) || null;
        }
        if (slot) {
          slot.hidden = false;
          slot.textContent = slot.textContent ? `${slot.textContent}; ${error.msg}` : error.msg;
          slot.parentElement.classList.add('invalid');
        }
      }
      summary.hidden = false;
    },
  };
}
