// Checks BPMN 2.0 files under node with the pinned bpmn.io tools (package-lock.json).
//
// usage:  node check_bpmn.mjs [LINT_CONFIG]   (default: .bpmnlintrc next to this script)
// stdin:  a JSON array of BPMN XML strings
// stdout: a JSON array, one report per file, in order:
//   error           null, or why the file could not be read at all (not well-formed XML)
//   warnings        bpmn-moddle's import warnings (unknown elements or attributes,
//                   unresolved references, ...), as messages
//   lint            bpmnlint's problems under LINT_CONFIG: {rule, id, category, message}
//   missing_shapes  ids of flow nodes (tasks, events, gateways, subprocesses) and text
//                   annotations without a BPMNShape
//   missing_edges   ids of sequence flows and associations without a BPMNEdge (or with one
//                   of fewer than two waypoints)
//   overlaps        [id, id] pairs of shapes of the same parent (process or subprocess)
//                   whose boxes intersect (touching is fine; a boundary event and its host
//                   are exempt)
//
// LINT_CONFIG is a .bpmnlintrc (plain JSON, so the bpmnlint command reads it too). JSON has
// no comments, so a rule is turned off with its reason as the rule's configuration:
//   "rules": { "superfluous-gateway": ["off", "why this rule does not fit our diagrams"] }
// A rule turned off without a reason is refused: the whole run fails.
//
// One process checks a whole batch. Used by check_bpmn() in tests/diagram_tools.py.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import { BpmnModdle } from 'bpmn-moddle';

import { readStdinJson, writeJson } from './io.mjs';

const require = createRequire(import.meta.url);
const { Linter } = require('bpmnlint');
const NodeResolver = require('bpmnlint/lib/resolver/node-resolver');

const configPath = process.argv[2] ?? fileURLToPath(new URL('.bpmnlintrc', import.meta.url));
const config = JSON.parse(await readFile(configPath, 'utf8'));
for (const [rule, value] of Object.entries(config.rules ?? {})) {
  const category = Array.isArray(value) ? value[0] : value;
  const reason = Array.isArray(value) ? value[1] : undefined;
  const off = String(category).toLowerCase() === 'off' || String(category) === '0';
  if (off && !(typeof reason === 'string' && reason.trim())) {
    throw new Error(
      `${configPath}: rule ${rule} is turned off without a reason; ` +
        `write it as ["off", "why it does not apply"]`,
    );
  }
}
const resolver = new NodeResolver({ require });

function isAny(element, types) {
  return types.some((type) => element.$instanceOf(type));
}

/** The processes and subprocesses of a definitions element, outermost first. */
function containers(definitions) {
  const found = [];
  const visit = (container) => {
    found.push(container);
    for (const element of container.flowElements ?? []) {
      if (element.$instanceOf('bpmn:SubProcess')) {
        visit(element);
      }
    }
  };
  for (const root of definitions.rootElements ?? []) {
    if (root.$instanceOf('bpmn:Process')) {
      visit(root);
    }
  }
  return found;
}

function overlapping(a, b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

function checkDiagramInterchange(definitions) {
  const shapes = new Map();
  const edges = new Map();
  for (const diagram of definitions.diagrams ?? []) {
    for (const di of diagram.plane?.planeElement ?? []) {
      if (!di.bpmnElement) {
        continue;
      }
      (di.$instanceOf('bpmndi:BPMNShape') ? shapes : edges).set(di.bpmnElement, di);
    }
  }
  const missingShapes = [];
  const missingEdges = [];
  const overlaps = [];
  for (const container of containers(definitions)) {
    const placed = [];
    for (const element of [...(container.flowElements ?? []), ...(container.artifacts ?? [])]) {
      if (isAny(element, ['bpmn:FlowNode', 'bpmn:TextAnnotation'])) {
        const bounds = shapes.get(element)?.bounds;
        if (bounds) {
          placed.push({ element, bounds });
        } else {
          missingShapes.push(element.id);
        }
      } else if (isAny(element, ['bpmn:SequenceFlow', 'bpmn:Association'])) {
        if ((edges.get(element)?.waypoint ?? []).length < 2) {
          missingEdges.push(element.id);
        }
      }
    }
    placed.forEach((a, i) => {
      for (const b of placed.slice(i + 1)) {
        const attached = a.element.attachedToRef === b.element || b.element.attachedToRef === a.element;
        if (!attached && overlapping(a.bounds, b.bounds)) {
          overlaps.push([a.element.id, b.element.id]);
        }
      }
    });
  }
  return { missing_shapes: missingShapes, missing_edges: missingEdges, overlaps };
}

async function check(xml) {
  const moddle = new BpmnModdle();
  let parsed;
  try {
    parsed = await moddle.fromXML(xml, 'bpmn:Definitions');
  } catch (error) {
    const nothing = { warnings: [], lint: [], missing_shapes: [], missing_edges: [], overlaps: [] };
    return { error: String(error?.message ?? error), ...nothing };
  }
  const { rootElement: definitions, warnings } = parsed;
  // a fresh linter per file: some rules (no-duplicate-sequence-flows) keep state between runs
  const results = await new Linter({ config, resolver }).lint(definitions);
  const lint = Object.entries(results).flatMap(([rule, reports]) =>
    reports.map((report) => ({
      rule,
      id: report.id ?? null,
      category: report.category,
      message: report.message,
    })),
  );
  return {
    error: null,
    warnings: warnings.map((warning) => warning.message),
    lint,
    ...checkDiagramInterchange(definitions),
  };
}

const reports = [];
for (const xml of await readStdinJson()) {
  reports.push(await check(xml));
}
writeJson(reports);
