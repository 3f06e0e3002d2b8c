// Resolves flags with the JavaScript flagd core (@openfeature/flagd-core), for the engine tests.
//
// stdin: {"cases": [{"flags": <flagd flag-set document>, "evaluations": [{"key": k, "context": {...}}]}]}
// stdout: one array per case, one result per evaluation:
//   {"value": ..., "variant": ..., "reason": ..., "errorCode": ...}
// The caller's default is the marker string below, so "the caller's default" is told apart.
'use strict';

const { FlagdCore } = require('@openfeature/flagd-core');

const CALLER_DEFAULT = '\u0000caller-default';
const silent = { error() {}, warn() {}, info() {}, debug() {} };

function resolve(core, key, context) {
  try {
    const details = core.resolveStringEvaluation(key, CALLER_DEFAULT, context, silent);
    return {
      value: details.value === CALLER_DEFAULT ? null : details.value,
      variant: details.variant ?? null,
      reason: details.reason ?? null,
      errorCode: details.errorCode ?? null,
    };
  } catch (err) {
    return { value: null, variant: null, reason: 'ERROR', errorCode: err.code ?? 'GENERAL' };
  }
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  input += chunk;
});
process.stdin.on('end', () => {
  const { cases } = JSON.parse(input);
  const out = cases.map(({ flags, evaluations }) => {
    const core = new FlagdCore(undefined, silent);
    core.setConfigurations(JSON.stringify(flags));
    return evaluations.map(({ key, context }) => resolve(core, key, context));
  });
  process.stdout.write(JSON.stringify(out));
});
