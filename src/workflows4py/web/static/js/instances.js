// The instances table: every filter, the sort and the page live in the query string.
import {h, fill, statusBadge, when} from './dom.js';
import {api} from './api.js';
import {navigate} from './app.js';

const enc = encodeURIComponent;
const STATUSES = ['running', 'awaiting', 'finished', 'failed', 'terminated', 'parked'];
const RANGES = [['created_from', 'Created from'], ['created_to', 'Created to'],
  ['updated_from', 'Updated from'], ['updated_to', 'Updated to']];
const PAGE_SIZES = [10, 25, 50, 100];
/** Left out of the URL: the list's defaults. */
const DEFAULTS = {sort: 'updated', order: 'desc', limit: '25'};

/** datetime-local text (local time) from an ISO instant, and back. */
function toLocalInput(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 16);
}

function fromLocalInput(text) {
  return text ? new Date(text).toISOString() : '';
}

function select(name, options, value, label) {
  return h('label', {class: 'filter'}, h('span', {class: 'field-label'}, label),
    h('select', {name}, options.map(([optionValue, text]) =>
      h('option', {value: optionValue, selected: String(optionValue) === String(value)}, text))));
}

function filterForm(query, workflows) {
  const form = h('form', {class: 'filters', role: 'search', onsubmit: (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const key of ['workflow', 'status', 'sort', 'order', 'limit']) {
      if (data.get(key) && data.get(key) !== DEFAULTS[key]) next.set(key, data.get(key));
    }
    if (data.get('failing')) next.set('failing', 'true');
    for (const tag of String(data.get('tag') || '').split(/[\s,]+/).filter(Boolean)) next.append('tag', tag);
    for (const [key] of RANGES) {
      const value = fromLocalInput(String(data.get(key) || ''));
      if (value) next.set(key, value);
    }
    navigate(`instances${next.toString() ? `?${next}` : ''}`);
  }},
  select('workflow', [['', 'All workflows'], ...workflows.map((wf) => [wf.id, wf.name || wf.id])], query.get('workflow') || '', 'Workflow'),
  select('status', [['', 'Any status'], ...STATUSES.map((s) => [s, s])], query.get('status') || '', 'Status'),
  h('label', {class: 'filter'}, h('span', {class: 'field-label'}, 'Tags'),
    h('input', {name: 'tag', type: 'text', placeholder: 'key=value', value: query.getAll('tag').join(' ')})),
  ['created', 'updated'].map((kind) => h('div', {class: 'filter'},
    h('span', {class: 'field-label'}, `${kind[0].toUpperCase()}${kind.slice(1)} between`),
    h('span', {class: 'range'}, ['from', 'to'].map((end) => {
      const key = `${kind}_${end}`;
      return h('input', {name: key, type: 'datetime-local', 'aria-label': RANGES.find(([k]) => k === key)[1],
        value: query.get(key) ? toLocalInput(query.get(key)) : ''});
    })))),
  h('label', {class: 'filter filter-check'}, h('input', {type: 'checkbox', name: 'failing', checked: query.get('failing') === 'true'}),
    ' Failing or parked only'),
  select('sort', [['updated', 'Updated'], ['created', 'Created']], query.get('sort') || 'updated', 'Sort by'),
  select('order', [['desc', 'Newest first'], ['asc', 'Oldest first']], query.get('order') || 'desc', 'Order'),
  select('limit', PAGE_SIZES.map((n) => [n, `${n} a page`]), query.get('limit') || 25, 'Page size'),
  h('div', {class: 'filter-actions'},
    h('button', {type: 'submit', class: 'primary'}, 'Apply'),
    h('a', {href: 'instances', dataset: {link: ''}, class: 'button'}, 'Clear')));
  return form;
}

function pageLink(query, offset, text, enabled) {
  const next = new URLSearchParams(query);
  if (offset > 0) next.set('offset', String(offset)); else next.delete('offset');
  return enabled
    ? h('a', {class: 'button small', href: `instances?${next}`, dataset: {link: ''}}, text)
    : h('span', {class: 'button small disabled', 'aria-disabled': 'true'}, text);
}

function withDefaults(query) {
  const params = new URLSearchParams(query);
  if (!params.has('limit')) params.set('limit', '25');
  // counting every match costs more than the page at millions of rows: count past the
  // page's offset up to 10,000 more, and say "+" when there are more
  if (!params.has('count_limit')) params.set('count_limit', String(Number(params.get('offset') || 0) + 10000));
  return params;
}

export async function instancesPage(main, _params, query, signal) {
  const [{workflows}, page] = await Promise.all([
    api('workflows', {signal}),
    api(`instances?${withDefaults(query)}`, {signal}),
  ]);
  const limit = page.limit || 25;
  const offset = page.offset || 0;
  const more = page.exact === false ? '+' : '';
  const pages = Math.max(1, Math.ceil(page.total / limit));
  const rows = page.items.map((row) => h('tr', {'data-instance': row.id},
    h('td', {}, h('a', {href: `instances/${enc(row.workflow)}/${enc(row.id)}`, dataset: {link: ''}}, h('code', {}, row.id))),
    h('td', {}, row.workflow),
    h('td', {}, statusBadge(row.status)),
    h('td', {}, when(row.updated_at)),
    h('td', {}, when(row.created_at)),
    h('td', {}, when(row.next_wakeup)),
    h('td', {}, Object.entries(row.tags || {}).map(([k, v]) => h('code', {class: 'chip'}, `${k}=${v}`))),
    h('td', {class: row.last_error ? 'error-text' : 'muted'}, row.last_error
      ? `${row.failures ? `${row.failures}× ` : ''}${row.last_error}` : '—')));
  fill(main,
    h('div', {class: 'page-head'}, h('h1', {}, 'Instances'), h('span', {class: 'muted'}, `${page.total}${more} found`)),
    filterForm(query, workflows),
    page.errors && page.errors.length ? h('div', {class: 'error-box'}, `${page.errors.length} rows could not be read: `, page.errors.join('; ')) : null,
    h('div', {class: 'table-wrap'}, h('table', {class: 'instances'},
      h('thead', {}, h('tr', {}, ['Instance', 'Workflow', 'Status', 'Updated', 'Created', 'Next wakeup', 'Tags', 'Last error']
        .map((title) => h('th', {scope: 'col'}, title)))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', {colspan: 8, class: 'muted empty'}, 'No instance matches these filters.'))))),
    h('nav', {class: 'pager', 'aria-label': 'Pages'},
      pageLink(query, Math.max(0, offset - limit), '‹ Previous', offset > 0),
      h('span', {class: 'muted'}, `page ${Math.floor(offset / limit) + 1} of ${pages}${more}`),
      pageLink(query, offset + limit, 'Next ›', offset + limit < page.total || (more && page.items.length === limit))));
}
