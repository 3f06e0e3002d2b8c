// Resolves flags with the JavaScript flagd core (@openfeature/flagd-core), for the engine tests.
//
// stdin: {"cases": [{"flags": <flagd flag-set document>, "evaluations": [{"key": k, "context": {...}}]}]}
// stdout: one array per case, one result per evaluation:
//   {"value": ..., "variant": ..., "reason": ..., "errorCode": ...}
// The caller's default is the marker string below, so "the caller's default" is told apart.
//
// stdin: {"rules": [{"rule": <targeting object>, "context": {...}, "key": k}]}
// stdout: one result per rule, the raw value the core's targeting gives (not a variant):
//   {"value": <typed>} or {"error": message}
// A typed value keeps what JSON cannot: {"number": "NaN" | "Infinity" | "-0" | "1.5"},
// {"string": s}, {"boolean": b}, {"null": null}, {"array": [typed...]}, {"object": {k: typed}},
// {"undefined": null}.  The rule runs through the core's own `Targeting` (the JSONLogic engine with
// flagd's operators), reached through a `FeatureFlag` built from a one-variant flag.
'use strict';

const { FeatureFlag, FlagdCore } = require('@openfeature/flagd-core');

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

function typed(value) {
  if (value === null) return { null: null };
  if (value === undefined) return { undefined: null };
  if (Array.isArray(value)) return { array: value.map(typed) };
  switch (typeof value) {
    case 'number':
      return { number: Object.is(value, -0) ? '-0' : String(value) };
    case 'string':
      return { string: value };
    case 'boolean':
      return { boolean: value };
    case 'object':
      return { object: Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typed(v)])) };
    default:
      return { other: String(value) };
  }
}

function ruleValue({ rule, context, key }) {
  const flag = new FeatureFlag(key, { state: 'ENABLED', variants: { x: 'x' }, defaultVariant: 'x', targeting: rule }, silent);
  if (!flag._targeting) return { error: 'invalid targeting' };
  try {
    return { value: typed(flag._targeting.evaluate(key, context, silent)) };
  } catch (err) {
    return { error: String(err && err.message) };
  }
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  input += chunk;
});
process.stdin.on('end', () => {
  const { cases, rules } = JSON.parse(input);
  if (rules) {
    process.stdout.write(JSON.stringify(rules.map(ruleValue)));
    return;
  }
  const out = cases.map(({ flags, evaluations }) => {
    const core = new FlagdCore(undefined, silent);
    core.setConfigurations(JSON.stringify(flags));
    return evaluations.map(({ key, context }) => resolve(core, key, context));
  });
  process.stdout.write(JSON.stringify(out));
});
