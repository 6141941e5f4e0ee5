// The refusal on a Node older than 22: build.mjs imports it (run by itself
// on an old Node it would half-work), and so does with-node.mjs when
// SESSION_VALIDATOR_NODE_FETCH=0 says not to fetch Node 24. One line that says
// which Node and how to get it. Plain syntax: it must parse on old Nodes too.
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  const pkg = `node-${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`
  process.stderr.write(`session-validator needs Node.js >= 22 (24 LTS is the target) and this is ${process.version}: ` +
    `install Node 24 from https://nodejs.org, or from the npm registry with \`npm install --prefix ~/.cache/node24 ${pkg}@24\` ` +
    `and put ~/.cache/node24/node_modules/${pkg}/bin first on PATH\n`)
  process.exit(1)
}
