// Every npm script must run on the pinned Node 24 LTS (the `node` devDependency), not on
// the machine's Node: miniflare, vitest and wrangler need Node 22+, and we test on one runtime.
const major = Number(process.versions.node.split('.')[0]);
if (major !== 24) {
  console.error(
    `✘ NODE_VERSION: this script runs on Node ${process.version}, but Cairn pins Node 24 LTS.\n` +
      '  Run it through npm (npm test, npm start) so the pinned node in node_modules/.bin is used.',
  );
  process.exit(1);
}
console.log(`node ${process.version} (pinned Node 24 LTS)`);
