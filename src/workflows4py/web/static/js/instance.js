// One instance: status, progress diagram (live through the event stream), what it waits for,
// the history slider (?at=N redraws state and diagram as of event N), state, journal, actions.
import {h, fill, card, statusBadge, when, exactTime, errorBox} from './dom.js';
import {api, follow, ApiError} from './api.js';
import {renderMermaid, zoomTools} from './diagrams.js';
import {jsonTree} from './jsontree.js';
import {schemaForm} from './schemaform.js';
import {confirmDialog} from './dialog.js';
import {navigate, link} from './app.js';

const enc = encodeURIComponent;
const JOURNAL_PAGE = 20;

export async function instancePage(main, [workflow, id], query, signal) {
  const base = `workflows/${enc(workflow)}/instances/${enc(id)}`;
  let view = await api(base, {signal});
  let at = query.has('at') ? Number(query.get('at')) : null;
  let shownMermaid = null;
  let positionToken = 0;
  let wakeupNote = null; // what the last "Wake up now" found, when nothing was due

  const head = h('div', {class: 'instance-head'});
  const diagram = h('div', {class: 'diagram progress-diagram', id: 'progress-diagram'});
  const waiting = h('div', {class: 'waiting'});
  const slider = h('input', {type: 'range', min: 0, id: 'history-slider', 'aria-label': 'History position'});
  const position = h('span', {class: 'position', id: 'history-position', 'aria-live': 'polite'});
  const stateTitle = h('span', {});
  const stateBody = h('div', {id: 'state'});
  const journal = h('div', {id: 'journal'});
  const live = h('span', {class: 'live muted', title: 'Changes arrive through the event stream'}, '○ connecting');

  const latest = () => at === null || at >= view.journal_length;

  function renderHead() {
    const record = view.record || {};
    fill(head,
      h('nav', {class: 'crumbs'}, link('instances', 'Instances'), ' / ',
        link(`instances?workflow=${enc(view.workflow)}`, view.workflow), ' / ', view.id),
      h('div', {class: 'page-head'},
        h('h1', {}, h('code', {}, view.id)),
        statusBadge(view.status),
        link(`workflows/${enc(view.workflow)}`, view.workflow),
        live,
        h('span', {class: 'spacer'}),
        h('div', {class: 'actions'},
          h('button', {type: 'button', class: 'danger', id: 'action-terminate', onclick: terminate}, 'Terminate…'),
          h('button', {type: 'button', id: 'action-resume', onclick: resume}, 'Resume…'),
          h('button', {type: 'button', id: 'action-fork', onclick: fork}, 'Fork…'))),
      h('dl', {class: 'facts'},
        fact('Created', when(record.created_at)), fact('Updated', when(record.updated_at)),
        fact('Events', String(view.journal_length)),
        Object.keys(record.tags || {}).length ? fact('Tags', Object.entries(record.tags).map(([k, v]) => h('code', {class: 'chip'}, `${k}=${v}`))) : null,
        view.origin ? fact('Forked from', link(`instances/${enc(view.origin.workflow)}/${enc(view.origin.instance_id)}`,
          `${view.origin.instance_id} after event ${view.origin.after_sequence}`)) : null),
      record.last_error ? h('div', {class: 'error-box', role: 'alert', id: 'last-error'},
        h('strong', {}, `${view.status === 'parked' ? '⚠ Parked' : '✖ The last operation raised'}${record.failures ? ` (${record.failures} failures)` : ''}: `),
        record.last_error) : null,
      domainError(view));
  }

  function renderWaiting() {
    const signals = view.expected_signals || [];
    fill(waiting,
      signals.length ? h('ul', {class: 'plain'}, signals.map((expected) => h('li', {class: 'expected-signal'},
        h('span', {}, '✉ ', h('code', {}, expected.id)),
        h('button', {type: 'button', class: 'primary small', 'data-signal': expected.id,
          onclick: () => sendSignal(expected)}, 'Send…'))))
        : h('p', {class: 'muted'}, '✉ no signal expected'),
      h('p', {}, '◷ ', view.next_wakeup ? h('span', {}, 'wakes up ', when(view.next_wakeup), ` (${exactTime(view.next_wakeup)}) `,
        h('button', {type: 'button', class: 'small', onclick: wakeup}, 'Wake up now'),
        wakeupNote ? h('span', {class: 'muted', id: 'wakeup-note', role: 'status'}, ' ', wakeupNote) : null)
        : h('span', {class: 'muted'}, 'nothing scheduled')));
  }

  async function showPosition() {
    const token = ++positionToken;
    const length = view.journal_length;
    slider.max = String(length);
    if (at !== null && (at < 0 || at > length || Number.isNaN(at))) at = null;
    slider.value = String(latest() ? length : at);
    let snapshot = view;
    if (!latest()) {
      snapshot = await api(`${base}/history/${at}`, {signal});
      if (token !== positionToken) return;
    }
    const n = latest() ? length : at;
    fill(position, `after event ${n} of ${length}`, latest() ? h('span', {class: 'badge'}, 'latest') : null);
    fill(stateTitle, latest() ? 'State' : `State after event ${n}`);
    fill(stateBody, snapshot.state ? [h('div', {class: 'state-type'}, h('code', {class: 'chip'}, snapshot.state.type)),
      jsonTree(snapshot.state.state, 4)] : h('p', {class: 'muted'}, 'No state.'));
    if (snapshot.mermaid !== shownMermaid) {
      shownMermaid = snapshot.mermaid;
      await renderMermaid(diagram, snapshot.mermaid);
    }
    diagram.dataset.at = String(n);
    const url = new URL(location.href);
    if (latest()) url.searchParams.delete('at'); else url.searchParams.set('at', String(at));
    history.replaceState(null, '', url);
    journal.querySelectorAll('tr[data-sequence]').forEach((row) =>
      row.classList.toggle('current', Number(row.dataset.sequence) === n));
  }

  function moveTo(n) {
    at = n >= view.journal_length ? null : Math.max(0, n);
    showPosition().catch((error) => fill(stateBody, errorBox(error)));
  }

  // The journal, page by page: `afters` holds the `after` of each page seen so far.
  const afters = [0];
  async function loadJournal() {
    const after = afters[afters.length - 1];
    const page = await api(`${base}/journal?after=${after}&limit=${JOURNAL_PAGE}`, {signal});
    const shown = latest() ? view.journal_length : at;
    fill(journal,
      h('table', {class: 'journal'},
        h('thead', {}, h('tr', {}, ['#', 'Event', 'Recorded', 'Data'].map((t) => h('th', {scope: 'col'}, t)))),
        h('tbody', {}, page.entries.length ? page.entries.map((entry) => h('tr', {
          'data-sequence': entry.sequence, class: entry.sequence === shown ? 'current' : '',
          title: 'Show the instance as it was after this event', onclick: (event) => {
            if (!event.target.closest('details')) moveTo(entry.sequence);
          }},
        h('td', {class: 'num'}, String(entry.sequence)),
        h('td', {}, h('code', {}, entry.type)),
        h('td', {}, when(entry.recorded_at)),
        h('td', {}, h('details', {}, h('summary', {}, preview(entry.data)), jsonTree(entry.data, 3)))))
          : h('tr', {}, h('td', {colspan: 4, class: 'muted empty'}, 'No events.')))),
      h('nav', {class: 'pager'},
        h('button', {type: 'button', class: 'small', disabled: afters.length < 2,
          onclick: () => { afters.pop(); loadJournal(); }}, '‹ Earlier'),
        h('span', {class: 'muted'}, page.entries.length
          ? `events ${page.entries[0].sequence}–${page.entries[page.entries.length - 1].sequence} of ${view.journal_length}` : ''),
        h('button', {type: 'button', class: 'small', disabled: page.next_after === null || page.next_after === undefined,
          onclick: () => { afters.push(page.next_after); loadJournal(); }}, 'Later ›')));
  }

  async function apply(newView) {
    const grew = newView.journal_length !== view.journal_length;
    if (grew) wakeupNote = null;
    view = newView;
    renderHead();
    renderWaiting();
    await showPosition();
    if (grew) await loadJournal();
  }

  async function refresh() {
    await apply(await api(base, {signal}));
  }

  function sendSignal(expected) {
    const form = schemaForm(expected.request_schema);
    const outcome = h('div', {class: 'signal-outcome'});
    const send = h('button', {type: 'submit', class: 'primary'}, 'Send');
    const dialog = h('dialog', {class: 'dialog signal-dialog', 'data-signal': expected.id});
    const close = () => { dialog.close(); dialog.remove(); };
    dialog.append(h('form', {novalidate: true, onsubmit: async (event) => {
      event.preventDefault();
      form.clear();
      fill(outcome);
      let payload;
      try {
        payload = form.value();
      } catch (error) {
        fill(outcome, errorBox(error));
        return;
      }
      send.disabled = true;
      try {
        const answer = await api(`${base}/signals/${enc(expected.id)}`, {method: 'POST', body: payload});
        fill(outcome, h('div', {class: 'signal-response'}, h('strong', {}, '✔ Delivered. Response: '),
          answer.response === null || answer.response === undefined ? h('code', {}, 'null') : jsonTree(answer.response, 3)));
        send.hidden = true;
        await apply(answer.instance);
      } catch (error) {
        if (error instanceof ApiError && error.status === 422 && error.body && error.body.errors) {
          form.showErrors(error.body.errors);
        } else {
          fill(outcome, errorBox(error));
        }
      } finally {
        send.disabled = false;
      }
    }},
    h('h2', {}, 'Send ', h('code', {}, expected.id)),
    expected.name && expected.name !== expected.id ? h('p', {class: 'muted'}, expected.name) : null,
    form.element,
    outcome,
    h('div', {class: 'dialog-actions'}, h('button', {type: 'button', onclick: close}, 'Close'), send)));
    dialog.addEventListener('cancel', (event) => { event.preventDefault(); close(); });
    document.body.append(dialog);
    dialog.showModal();
  }

  async function terminate() {
    await confirmDialog({
      title: `Terminate ${view.id}?`, danger: true, confirmLabel: 'Terminate',
      message: 'The instance stops for good: no step, signal or wakeup runs for it again.',
      fields: [{name: 'reason', label: 'Reason', required: true}],
      onConfirm: async ({reason}) => apply((await api(`${base}/terminate`, {method: 'POST', body: {reason}})).instance),
    });
  }

  async function resume() {
    await confirmDialog({
      title: `Resume ${view.id}?`, confirmLabel: 'Resume',
      message: 'A parked or failed instance runs again from where it stopped.',
      onConfirm: async () => {
        try {
          await apply((await api(`${base}/resume`, {method: 'POST', body: {}})).instance);
        } catch (error) {
          await refresh().catch(() => undefined); // it raised again: its new error is shown
          throw error;
        }
      },
    });
  }

  async function fork() {
    let created = null;
    await confirmDialog({
      title: `Fork ${view.id}`, confirmLabel: 'Fork',
      message: 'A new instance starts from this one\'s journal up to the chosen event (the slider\'s position).',
      fields: [
        {name: 'new_id', label: 'New instance id', required: true, value: `${view.id}-fork`},
        {name: 'after_sequence', label: 'After event', type: 'number', min: 0, max: view.journal_length,
          required: true, value: latest() ? view.journal_length : at},
      ],
      onConfirm: async (values) => {
        created = await api(`${base}/fork`, {method: 'POST', body: values});
      },
    });
    if (created) navigate(`instances/${enc(created.workflow)}/${enc(created.id)}`);
  }

  async function wakeup() {
    const before = view.journal_length;
    const woken = await api(`${base}/wakeup`, {method: 'POST', body: {}});
    // the wakeup runs only what is due: say so when the timer is still ahead
    const ahead = woken.next_wakeup && new Date(woken.next_wakeup) > new Date();
    wakeupNote = woken.journal_length === before && ahead
      ? 'not due yet: nothing ran' : null;
    await apply(woken);
  }

  slider.addEventListener('input', () => moveTo(Number(slider.value)));
  // ← and → step through the history anywhere on the page (the slider handles its own keys).
  document.addEventListener('keydown', (event) => {
    if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight') return;
    if (event.target.closest('input, select, textarea, dialog') || document.querySelector('dialog[open]')) return;
    event.preventDefault();
    moveTo((latest() ? view.journal_length : at) + (event.key === 'ArrowLeft' ? -1 : 1));
  }, {signal});
  const step = (delta) => h('button', {type: 'button', class: 'icon', title: delta < 0 ? 'Previous event' : 'Next event',
    onclick: () => moveTo((latest() ? view.journal_length : at) + delta)}, delta < 0 ? '‹' : '›');

  renderHead();
  renderWaiting();
  fill(main, head,
    h('div', {class: 'instance-grid'},
      card('Progress', diagram, {class: 'diagram-card', tools: zoomTools(diagram)}),
      card('Waiting for', waiting, {id: 'waiting-for'})),
    h('section', {class: 'card history'},
      h('div', {class: 'history-row'}, h('strong', {}, 'History'), step(-1), slider, step(1), position,
        h('button', {type: 'button', class: 'small', onclick: () => moveTo(view.journal_length)}, 'Latest'))),
    h('div', {class: 'instance-grid lower'},
      card(stateTitle, stateBody, {id: 'state-card'}),
      card('Journal', journal, {id: 'journal-card'})));
  await showPosition();
  await loadJournal();

  follow(`${base}/events`, (name, data) => {
    live.textContent = '● live';
    live.classList.add('on');
    if (name === 'change' && data && (data.journal_length !== view.journal_length || data.status !== view.status)) {
      refresh().catch(() => undefined);
    }
  }, signal);
}

// A failed instance (its workflow ended with a domain error no handler took): the error, and
// the step that returned it (the deepest failed node of its progress).
function domainError(view) {
  const root = view.progress && view.progress.root;
  if (view.status !== 'failed' || !root || !root.result || !('err' in root.result)) return null;
  let step = root;
  for (let next = step; next;) {
    step = next;
    next = (step.children || []).find((child) => child.status === 'failed');
  }
  return h('div', {class: 'error-box', role: 'alert', id: 'domain-error'},
    h('strong', {}, `✖ Failed${step.name ? ` in ${step.name}` : ''}: `),
    `${root.result.error || root.result.type} `, h('code', {}, JSON.stringify(root.result.err)));
}

function fact(term, value) {
  return h('div', {}, h('dt', {}, term), h('dd', {}, value));
}

function preview(data) {
  const text = JSON.stringify(data);
  return text && text.length > 60 ? `${text.slice(0, 57)}…` : text;
}
