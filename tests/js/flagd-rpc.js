// The JavaScript flagd provider in RPC mode (with its default LRU cache) against a vexil server.
// usage: node flagd-rpc.js PORT SELECTOR FLAG_KEY
// Prints {"ready": true} once the provider is ready, then for each line read from standard input
// one JSON line: the string details of FLAG_KEY and how many configuration changes it heard.
// A line "quit" (or the end of input) ends it.
'use strict';
const readline = require('readline');
const { OpenFeature, ProviderEvents } = require('@openfeature/server-sdk');
const { FlagdProvider } = require('@openfeature/flagd-provider');

const [port, selector, flagKey] = process.argv.slice(2);

async function main() {
  let changes = 0;
  OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, () => {
    changes += 1;
  });
  const provider = new FlagdProvider({
    host: '127.0.0.1',
    port: Number(port),
    resolverType: 'rpc',
    selector: selector || undefined,
    cache: 'lru',
  });
  await OpenFeature.setProviderAndWait(provider);
  const client = OpenFeature.getClient();
  console.log(JSON.stringify({ ready: true }));
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() === 'quit') break;
    const details = await client.getStringDetails(flagKey, 'DEFAULT', {});
    console.log(JSON.stringify({ value: details.value, reason: details.reason, changes }));
  }
  await OpenFeature.close();
  process.exit(0);
}

main().catch((error) => {
  console.log(JSON.stringify({ error: String(error) }));
  process.exit(1);
});
