// Calling vexil from Node with nothing but the repository's protos (proto/vexil/v1), loaded at
// run time by @grpc/proto-loader: no generated code to keep in step.
//
//   node example.js [target] [flag_key]        (defaults: localhost:50051, new-checkout)
//
// It evaluates a flag, opens a Watch on it and reads the next change, then makes two failing
// calls and reads their error details from the `grpc-status-details-bin` trailer (a
// google.rpc.Status with ErrorInfo, BadRequest, RetryInfo or PreconditionFailure; see the
// README's "Errors" section). Each step prints one JSON line. VEXIL_API_KEY, when set, is sent as
// `authorization: Bearer <key>` (a server with authentication also needs TLS: use
// grpc.credentials.createSsl() instead of createInsecure()).
"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const PROTO_ROOT = path.resolve(__dirname, "..", "..", "proto");
const WATCH_SECONDS = 30;

const definition = protoLoader.loadSync(["vexil/v1/evaluation.proto", "vexil/v1/admin.proto"], {
  includeDirs: [PROTO_ROOT],
  keepCase: true,
  longs: String, // uint64 versions as decimal strings: exact beyond 2^53
  enums: String,
  defaults: true,
  oneofs: true,
});
const vexil = grpc.loadPackageDefinition(definition).vexil.v1;

// The richer error model's messages (google/rpc/status.proto and error_details.proto of
// googleapis, the fields this example reads).
const RPC_PROTO = `
syntax = "proto3";
package google.rpc;
import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
message Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
message BadRequest {
  message FieldViolation { string field = 1; string description = 2; }
  repeated FieldViolation field_violations = 1;
}
message RetryInfo { google.protobuf.Duration retry_delay = 1; }
message PreconditionFailure {
  message Violation { string type = 1; string subject = 2; string description = 3; }
  repeated Violation violations = 1;
}
`;
const rpcTypes = new protobuf.Root();
for (const file of ["google/protobuf/any.proto", "google/protobuf/duration.proto"]) {
  rpcTypes.addJSON(protobuf.common.get(file).nested);
}
protobuf.parse(RPC_PROTO, rpcTypes, { keepCase: true });
const Status = rpcTypes.lookupType("google.rpc.Status");

/** A failed call's google.rpc.Status, its details unpacked by type name (null if none sent). */
function richStatus(error) {
  const [raw] = error.metadata ? error.metadata.get("grpc-status-details-bin") : [];
  if (!raw) {
    return null;
  }
  const status = Status.toObject(Status.decode(raw), { longs: Number });
  const details = {};
  for (const any of status.details || []) {
    const name = any.type_url.slice(any.type_url.lastIndexOf("/") + 1);
    const type = rpcTypes.lookupType(name);
    details[name.replace("google.rpc.", "")] = type.toObject(type.decode(any.value), { longs: Number });
  }
  return { code: status.code, message: status.message, details };
}

/** JSON -> google.protobuf.Struct as proto-loader takes it (the evaluation context). */
function struct(object) {
  const value = (v) => {
    if (v === null) return { nullValue: "NULL_VALUE" };
    if (typeof v === "boolean") return { boolValue: v };
    if (typeof v === "number") return { numberValue: v };
    if (typeof v === "string") return { stringValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    return { structValue: struct(v) };
  };
  return { fields: Object.fromEntries(Object.entries(object).map(([k, v]) => [k, value(v)])) };
}

function print(step, fields) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + "\n");
}

function unary(client, method, request, metadata) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

/** Open a Watch on `flagKey`: resolves with the first change after the opening snapshot. */
function nextChange(evaluation, flagKey, metadata) {
  return new Promise((resolve, reject) => {
    const stream = evaluation.Watch({ flag_keys: [flagKey] }, metadata);
    const timer = setTimeout(() => {
      stream.cancel();
      reject(new Error(`no change within ${WATCH_SECONDS} s`));
    }, WATCH_SECONDS * 1000);
    stream.on("data", (event) => {
      if (event.type === "TYPE_SNAPSHOT") {
        print("watching", { config_version: event.config_version, flags: event.flags.map((f) => f.key) });
      } else if (event.type !== "TYPE_HEARTBEAT") {
        clearTimeout(timer);
        stream.cancel();
        resolve(event);
      }
    });
    stream.on("error", (error) => {
      if (error.code !== grpc.status.CANCELLED) {
        clearTimeout(timer);
        reject(error);
      }
    });
  });
}

async function failing(step, call) {
  try {
    await call();
    throw new Error(`${step}: the call succeeded`);
  } catch (error) {
    if (error.code === undefined) throw error;
    const rich = richStatus(error);
    print(step, {
      code: grpc.status[error.code],
      message: error.details,
      reason: rich && rich.details.ErrorInfo ? rich.details.ErrorInfo.reason : null,
      details: rich ? rich.details : null,
    });
  }
}

async function main() {
  const target = process.argv[2] || "localhost:50051";
  const flagKey = process.argv[3] || "new-checkout";
  const metadata = new grpc.Metadata();
  if (process.env.VEXIL_API_KEY) {
    metadata.set("authorization", `Bearer ${process.env.VEXIL_API_KEY}`);
  }
  const credentials = grpc.credentials.createInsecure();
  const evaluation = new vexil.EvaluationService(target, credentials);
  const admin = new vexil.AdminService(target, credentials);

  const answer = await unary(
    evaluation,
    "Evaluate",
    { flag_key: flagKey, context: struct({ targetingKey: "user-1", country: "JP" }) },
    metadata,
  );
  print("evaluate", {
    flag_key: answer.flag_key,
    value: answer[answer.value],
    variant: answer.variant,
    reason: answer.reason,
    flag_version: answer.flag_version,
  });

  const change = await nextChange(evaluation, flagKey, metadata);
  print("change", {
    type: change.type,
    flag_key: change.flag ? change.flag.key : change.flag_key,
    flag_version: change.flag ? change.flag.version : null,
    config_version: change.config_version,
  });

  await failing("error-not-found", () => unary(admin, "GetFlag", { key: `${flagKey}-missing` }, metadata));
  await failing("error-invalid-argument", () => unary(evaluation, "Evaluate", { flag_key: "" }, metadata));
  evaluation.close();
  admin.close();
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
