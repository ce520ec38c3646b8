// Shared by the checkers: stdin in, JSON out. stdout carries the JSON answer only, so
// anything a library logs goes to stderr.

for (const level of ['log', 'info', 'debug', 'warn']) {
  console[level] = (...args) => console.error(...args);
}

/** Reads all of stdin and parses it as a JSON array of strings. */
export async function readStdinJson() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  const value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new TypeError('expected a JSON array of strings on stdin');
  }
  return value;
}

/** Writes the answer as JSON on stdout. */
export function writeJson(value) {
  process.stdout.write(JSON.stringify(value));
}
