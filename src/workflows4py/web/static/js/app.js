// The router: history API, paths relative to <base href> so the UI works under any prefix.
import {h, fill, errorBox} from './dom.js';
import {workflowsPage, workflowPage} from './workflows.js';
import {instancesPage} from './instances.js';
import {instancePage} from './instance.js';
import {api} from './api.js';

const main = document.getElementById('main');
let cleanup = null;

const ROUTES = [
  [/^$/, 'workflows', () => workflowsPage],
  [/^workflows\/([^/]+)$/, 'workflows', () => workflowPage],
  [/^instances$/, 'instances', () => instancesPage],
  [/^instances\/([^/]+)\/([^/]+)$/, 'instances', () => instancePage],
];

/** The path after the mount root, without a leading slash. */
function routePath() {
  const base = new URL(document.baseURI).pathname;
  const path = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : location.pathname;
  return path.replace(/\/+$/, '');
}

async function render() {
  if (cleanup) cleanup();
  cleanup = null;
  const path = routePath();
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  document.querySelectorAll('[data-nav]').forEach((link) =>
    link.classList.toggle('active', Boolean(route) && link.dataset.nav === route[1]));
  if (!route) {
    fill(main, h('h1', {}, 'Not found'), h('p', {}, 'No page here. ', h('a', {href: './', dataset: {link: ''}}, 'Workflows')));
    return;
  }
  const params = path.match(route[0]).slice(1).map(decodeURIComponent);
  const controller = new AbortController();
  cleanup = () => controller.abort();
  fill(main, h('p', {class: 'muted'}, 'Loading…'));
  try {
    await route[2]()(main, params, new URLSearchParams(location.search), controller.signal);
  } catch (error) {
    if (!controller.signal.aborted) fill(main, errorBox(error));
  }
}

/** Goes to a URL relative to the base (pushState), or replaces the current entry. */
export function navigate(href, {replace = false} = {}) {
  const url = new URL(href, document.baseURI);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
  window.scrollTo(0, 0);
}

/** A link handled by the router. */
export function link(href, ...children) {
  return h('a', {href, dataset: {link: ''}}, ...children);
}

document.addEventListener('click', (event) => {
  const anchor = event.target.closest('a[data-link]');
  if (!anchor || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(anchor.getAttribute('href'));
});
window.addEventListener('popstate', render);

// The header's box opens an instance by id: the first workflow that has one of that id.
document.getElementById('find-instance').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = event.target.elements.id;
  const id = input.value.trim();
  if (!id) return;
  const {workflows} = await api('workflows');
  const found = await Promise.all(workflows.map((wf) =>
    api(`workflows/${encodeURIComponent(wf.id)}/instances/${encodeURIComponent(id)}`).then(() => wf.id, () => null)));
  const workflow = found.find(Boolean);
  input.setCustomValidity(workflow ? '' : `No instance ${id}`);
  input.reportValidity();
  if (workflow) {
    input.value = '';
    navigate(`instances/${encodeURIComponent(workflow)}/${encodeURIComponent(id)}`);
  }
});
document.getElementById('find-instance').elements.id.addEventListener('input', (event) => event.target.setCustomValidity(''));
render();
