// Modal dialogs: a confirmation with optional fields, built on <dialog>.
import {h} from './dom.js';

/**
 * Opens a dialog; `fields` are [{name, label, type, value, required}]. Resolves with the
 * fields' values when confirmed (after `onConfirm(values)` resolves; an error it throws is
 * shown in the dialog, which stays open), or null when cancelled.
 */
export function confirmDialog({title, message, fields = [], confirmLabel = 'Confirm', danger = false, onConfirm}) {
  return new Promise((resolve) => {
    const inputs = fields.map((field) => h('input', {
      name: field.name, type: field.type || 'text', value: field.value ?? '', required: field.required,
      min: field.min, max: field.max, id: `dialog-${field.name}`,
    }));
    const error = h('div', {class: 'error-box', role: 'alert', hidden: true});
    const confirm = h('button', {type: 'submit', class: danger ? 'danger' : 'primary'}, confirmLabel);
    const dialog = h('dialog', {class: 'dialog'});
    const close = (result) => { dialog.close(); dialog.remove(); resolve(result); };
    const form = h('form', {onsubmit: async (event) => {
      event.preventDefault();
      const values = Object.fromEntries(fields.map((field, i) => [field.name,
        field.type === 'number' ? Number(inputs[i].value) : inputs[i].value]));
      confirm.disabled = true;
      try {
        if (onConfirm) await onConfirm(values);
        close(values);
      } catch (failure) {
        error.hidden = false;
        error.textContent = failure.message || String(failure);
        confirm.disabled = false;
      }
    }},
    h('h2', {}, title),
    message ? h('p', {}, message) : null,
    fields.map((field, i) => h('label', {class: 'field', for: `dialog-${field.name}`},
      h('span', {class: 'field-label'}, field.label), inputs[i])),
    error,
    h('div', {class: 'dialog-actions'},
      h('button', {type: 'button', onclick: () => close(null)}, 'Cancel'), confirm));
    dialog.append(form);
    dialog.addEventListener('cancel', (event) => { event.preventDefault(); close(null); });
    document.body.append(dialog);
    dialog.showModal();
    (inputs[0] || confirm).focus();
  });
}
