// Diagrams: Mermaid (strict security level, nothing fetched) and the bpmn-js viewer, both
// vendored under static/vendor and loaded on first use.
import {h, fill} from './dom.js';

const scripts = new Map();

function loadScript(path) {
  if (!scripts.has(path)) {
    scripts.set(path, new Promise((resolve, reject) => {
      const script = h('script', {src: new URL(path, document.baseURI).href});
      script.addEventListener('load', resolve);
      script.addEventListener('error', () => reject(new Error(`could not load ${path}`)));
      document.head.append(script);
    }));
  }
  return scripts.get(path);
}

const dark = window.matchMedia('(prefers-color-scheme: dark)');
let mermaidReady = null;
let queue = Promise.resolve();
let counter = 0;

async function mermaidApi() {
  if (!mermaidReady) {
    mermaidReady = loadScript('static/vendor/mermaid/mermaid.min.js').then(() => {
      window.mermaid.initialize({
        startOnLoad: false,
        securityLevel: 'strict',
        theme: dark.matches ? 'dark' : 'default',
        fontFamily: 'system-ui, -apple-system, "Segoe UI", sans-serif',
        flowchart: {useMaxWidth: false},
      });
      return window.mermaid;
    });
  }
  return mermaidReady;
}

/** Draws Mermaid text into `container` (renders run one at a time: Mermaid is not reentrant). */
export function renderMermaid(container, text) {
  const job = queue.then(async () => {
    const mermaid = await mermaidApi();
    const id = `mermaid-${++counter}`;
    try {
      const {svg} = await mermaid.render(id, text);
      container.innerHTML = svg;
      container.dataset.rendered = 'mermaid';
    } catch (error) {
      document.getElementById(id)?.remove();
      fill(container, h('div', {class: 'error-box'}, `Mermaid could not draw this diagram: ${error.message || error}`),
        h('pre', {class: 'code'}, text));
    }
  });
  queue = job.catch(() => undefined);
  return job;
}

/** Draws BPMN XML with the bpmn-js navigated viewer (pan by dragging, zoom with the wheel). */
export async function renderBpmn(container, xml) {
  await loadScript('static/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js');
  fill(container);
  const viewer = new window.BpmnJS({container});
  await viewer.importXML(xml);
  viewer.get('canvas').zoom('fit-viewport', 'auto');
  container.dataset.rendered = 'bpmn';
  return viewer;
}

/** Zoom buttons for the SVG a container holds (scaled from its drawn size; scroll to pan). */
export function zoomTools(container) {
  let scale = 1;
  const apply = (next) => {
    const svg = container.querySelector(':scope > svg');
    if (!svg) return;
    if (!svg.dataset.width) svg.dataset.width = String(svg.getBoundingClientRect().width / scale);
    scale = next;
    svg.style.width = `${Number(svg.dataset.width) * scale}px`;
    svg.style.maxWidth = 'none';
  };
  const button = (label, title, next) => h('button', {type: 'button', class: 'icon small', title,
    'aria-label': title, onclick: () => apply(next())}, label);
  return h('span', {class: 'zoom-tools'},
    button('−', 'Zoom out', () => Math.max(0.25, scale / 1.25)),
    button('1:1', 'Actual size', () => 1),
    button('+', 'Zoom in', () => Math.min(4, scale * 1.25)));
}
