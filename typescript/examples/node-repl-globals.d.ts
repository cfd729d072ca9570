// The seed's generate-with-media example calls `fs.createReadStream` without importing `fs`, as
// Node's REPL allows (it offers the built-in modules as globals). The examples are kept exactly as
// the seed has them, so their runner offers `fs` the same way: this declares it for the type
// check, node-repl-globals.cjs (loaded with `node --require`) defines it at run time.
declare var fs: typeof import('node:fs');
