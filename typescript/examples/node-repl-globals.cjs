// See node-repl-globals.d.ts: `fs` as a global, as in Node's REPL, for the seed's examples.
globalThis.fs = require('node:fs');
