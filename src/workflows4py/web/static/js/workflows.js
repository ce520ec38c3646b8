// The workflows page (each definition drawn, Mermaid or BPMN) and one workflow's page.
import {h, fill, card, statusBadge, errorBox} from './dom.js';
import {api} from './api.js';
import {renderMermaid, renderBpmn, zoomTools} from './diagrams.js';
import {jsonTree} from './jsontree.js';

const enc = encodeURIComponent;

/** A definition diagram with Mermaid / BPMN tabs and a Mermaid Live link. */
export function definitionDiagram(detail) {
  const canvas = h('div', {class: 'diagram', 'data-diagram': detail.id});
  const tabs = {};
  const show = async (kind) => {
    for (const [name, tab] of Object.entries(tabs)) tab.setAttribute('aria-selected', String(name === kind));
    canvas.classList.toggle('bpmn-canvas', kind === 'bpmn');
    zoom.hidden = kind === 'bpmn';  // bpmn-js zooms with the wheel itself
    try {
      if (kind === 'mermaid') await renderMermaid(canvas, detail.mermaid);
      else await renderBpmn(canvas, await api(`workflows/${enc(detail.id)}/bpmn`, {text: true}));
    } catch (error) {
      fill(canvas, errorBox(error));
    }
  };
  tabs.mermaid = h('button', {type: 'button', role: 'tab', class: 'tab', onclick: () => show('mermaid')}, 'Mermaid');
  tabs.bpmn = h('button', {type: 'button', role: 'tab', class: 'tab', onclick: () => show('bpmn')}, 'BPMN');
  const zoom = zoomTools(canvas);
  const tools = h('div', {class: 'tabs', role: 'tablist'}, tabs.mermaid, tabs.bpmn, zoom,
    detail.mermaid_live_url ? h('a', {class: 'button small', href: detail.mermaid_live_url, target: '_blank',
      rel: 'noopener noreferrer', title: 'Opens mermaid.live with this diagram'}, 'Open in Mermaid Live ↗') : null);
  show('mermaid');
  return h('div', {class: 'diagram-box'}, tools, canvas);
}

function counts(counts) {
  const entries = Object.entries(counts || {}).filter(([, n]) => n > 0);
  if (!entries.length) return h('span', {class: 'muted'}, 'no instances');
  return h('span', {class: 'counts'}, entries.map(([status, n]) =>
    h('a', {href: `instances?status=${enc(status)}`, dataset: {link: ''}, class: 'count'}, statusBadge(status), ` ${n}`)));
}

export async function workflowsPage(main, _params, _query, signal) {
  const {workflows} = await api('workflows', {signal});
  const details = await Promise.all(workflows.map((wf) => api(`workflows/${enc(wf.id)}`, {signal})));
  fill(main, h('div', {class: 'page-head'}, h('h1', {}, 'Workflows'),
    h('span', {class: 'muted'}, `${workflows.length} registered`)),
  workflows.length ? null : h('p', {class: 'muted'}, 'The runtime has no workflows.'),
  workflows.map((wf, i) => h('section', {class: 'card workflow-card', 'data-workflow': wf.id},
    h('header', {class: 'card-head'},
      h('h2', {}, h('a', {href: `workflows/${enc(wf.id)}`, dataset: {link: ''}}, wf.name || wf.id)),
      h('code', {class: 'muted'}, wf.id),
      h('span', {class: 'spacer'}),
      counts(wf.counts),
      h('a', {class: 'button small', href: `instances?workflow=${enc(wf.id)}`, dataset: {link: ''}}, 'Instances →')),
    h('div', {class: 'card-body'},
      wf.description ? h('p', {}, wf.description) : null,
      wf.signals && wf.signals.length ? h('p', {class: 'muted'}, 'Signals: ',
        wf.signals.map((s) => h('code', {class: 'chip'}, s))) : null,
      h('details', {class: 'diagram-details', open: true}, h('summary', {}, 'Definition'),
        definitionDiagram(details[i]))))));
}

export async function workflowPage(main, [id], _query, signal) {
  const detail = await api(`workflows/${enc(id)}`, {signal});
  const signals = (detail.schema && detail.schema.signals) || {};
  fill(main,
    h('nav', {class: 'crumbs'}, h('a', {href: './', dataset: {link: ''}}, 'Workflows'), ' / ', detail.id),
    h('div', {class: 'page-head'}, h('h1', {}, detail.name || detail.id),
      h('span', {class: 'spacer'}),
      h('a', {class: 'button', href: `instances?workflow=${enc(detail.id)}`, dataset: {link: ''}}, 'Its instances →')),
    card('Definition', definitionDiagram(detail), {class: 'wide'}),
    card('Signals', Object.keys(signals).length
      ? Object.entries(signals).map(([signalId, schemas]) => h('details', {class: 'signal-schema'},
        h('summary', {}, h('code', {}, signalId), ' request schema'),
        jsonTree(schemas.request ?? schemas, 2)))
      : h('p', {class: 'muted'}, 'This workflow declares no signals.')));
}
