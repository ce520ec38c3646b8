// Parses Mermaid texts with the real Mermaid parser (npm `mermaid`, pinned in
// package-lock.json) under node.
//
// stdin:  a JSON array of Mermaid texts
// stdout: a JSON array, one {ok, error} per text, in order: ok is true when mermaid.parse
//         accepts the text, else error is the parser's message
//
// One process checks a whole batch (loading mermaid takes about a second). Used by
// check_mermaid() in tests/diagram_tools.py.

import { JSDOM } from 'jsdom';

import { readStdinJson, writeJson } from './io.mjs';

// mermaid sanitizes labels with DOMPurify, which needs a window when it is loaded: give it
// jsdom's before importing mermaid.
const { window } = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

const texts = await readStdinJson();
const results = [];
for (const text of texts) {
  try {
    await mermaid.parse(text);
    results.push({ ok: true, error: null });
  } catch (error) {
    results.push({ ok: false, error: String(error?.message ?? error) });
  }
}
writeJson(results);
