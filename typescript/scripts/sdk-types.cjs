// Prints the SDK's exported request and response types as JSON, in the plain form of
// tests/openapi_contract.py: { TypeName: { field: { type, optional } } }, types written as
// string, number, boolean, file, enum:a|b, array<...> or ref:<TypeName>. The contract test
// compares this with openapi.json. It reads the sources with the TypeScript compiler's own type
// checker, so what it reports is what users' code is checked against.
//
// Usage: node scripts/sdk-types.cjs TypeName... (from the package directory)
const path = require('node:path');
const ts = require('typescript');

const root = path.resolve(__dirname, '..');
const config = ts.getParsedCommandLineOfConfigFile(path.join(root, 'tsconfig.json'), {}, {
  ...ts.sys,
  onUnRecoverableConfigFileDiagnostic: (d) => {
    throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  },
});
const program = ts.createProgram([path.join(root, 'src/index.ts')], config.options);
const checker = program.getTypeChecker();
const entry = checker.getSymbolAtLocation(program.getSourceFile(path.join(root, 'src/index.ts')));

/** Exported interfaces by name, including those inside exported namespaces (`X.Input`). */
function exportedInterfaces() {
  const found = new Map();
  const visit = (symbol) => {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    if (target.flags & ts.SymbolFlags.Interface) found.set(target.name, target);
    if (target.flags & ts.SymbolFlags.Namespace) checker.getExportsOfModule(target).forEach(visit);
  };
  checker.getExportsOfModule(entry).forEach(visit);
  return found;
}

const interfaces = exportedInterfaces();

function plain(type) {
  if (type.aliasSymbol?.name === 'Uploadable') return 'file';
  if (type.isUnion()) {
    const members = type.types.filter((t) => !(t.flags & ts.TypeFlags.Undefined));
    if (members.every((t) => t.flags & ts.TypeFlags.BooleanLiteral)) return 'boolean';
    if (members.every((t) => t.isStringLiteral())) {
      return 'enum:' + members.map((t) => t.value).sort().join('|');
    }
    if (members.length === 1) return plain(members[0]);
    return 'union:' + members.map(plain).sort().join('|');
  }
  if (type.isStringLiteral()) return `enum:${type.value}`;
  if (type.flags & ts.TypeFlags.String) return 'string';
  if (type.flags & ts.TypeFlags.Number) return 'number';
  if (type.flags & ts.TypeFlags.BooleanLiteral) return `enum:${checker.typeToString(type)}`;
  if (type.flags & ts.TypeFlags.Boolean) return 'boolean';
  if (checker.isArrayType(type)) return `array<${plain(checker.getTypeArguments(type)[0])}>`;
  const symbol = type.getSymbol();
  if (symbol && interfaces.get(symbol.name) === symbol) return `ref:${symbol.name}`;
  throw new Error(`no plain form for the type ${checker.typeToString(type)}`);
}

const out = {};
for (const name of process.argv.slice(2)) {
  const symbol = interfaces.get(name);
  if (!symbol) {
    out[name] = null;
    continue;
  }
  const fields = {};
  for (const property of checker.getDeclaredTypeOfSymbol(symbol).getProperties()) {
    const declaration = property.valueDeclaration ?? property.declarations[0];
    fields[property.name] = {
      type: plain(checker.getTypeOfSymbolAtLocation(property, declaration)),
      optional: Boolean(property.flags & ts.SymbolFlags.Optional),
    };
  }
  out[name] = fields;
}
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
