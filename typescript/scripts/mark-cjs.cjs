// The package is "type": "module"; this marks the CommonJS build's directory as CommonJS so
// Node loads its .js files with require().
const fs = require('node:fs');
const path = require('node:path');
fs.writeFileSync(path.join(process.argv[2], 'package.json'), '{ "type": "commonjs" }\n');
