// An importer ERP's call, written from proto/ alone with the standard Node.js gRPC
// toolchain: submit a DSSE envelope, then verify the service's receipt independently
// (DSSE PAE and Ed25519 with node:crypto, no eucgate code).
//
//   node submit.mjs PROTO_DIR HOST:PORT ENVELOPE_JSON_FILE SERVICE_PUBLIC_KEY_PEM
import { readFileSync } from "node:fs";
import { createPublicKey, verify, createHash } from "node:crypto";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const [protoDir, address, envelopeFile, publicKeyFile] = process.argv.slice(2);

const definition = protoLoader.loadSync("eucgate/v1/certificate_service.proto", {
  includeDirs: [protoDir],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
});
const v1 = grpc.loadPackageDefinition(definition).eucgate.v1;
const client = new v1.CertificateService(address, grpc.credentials.createInsecure());

function pae(payloadType, payload) {
  const type = Buffer.from(payloadType, "utf8");
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `),
    type,
    Buffer.from(` ${payload.length} `),
    payload,
  ]);
}

const request = {
  request_id: `node-${Date.now()}`,
  envelope_json: readFileSync(envelopeFile),
};
client.SubmitCertificate(request, { deadline: Date.now() + 20000 }, (err, response) => {
  if (err) {
    console.log(JSON.stringify({ error: err.code, details: err.details }));
    process.exit(1);
  }
  const receipt = response.receipt.envelope;
  const key = createPublicKey(readFileSync(publicKeyFile));
  const spki = key.export({ type: "spki", format: "der" });
  const signature = receipt.signatures[0];
  const verified =
    receipt.signatures.length === 1 &&
    signature.keyid === createHash("sha256").update(spki).digest("hex") &&
    verify(null, pae(receipt.payload_type, receipt.payload), key, signature.sig);
  const statement = JSON.parse(receipt.payload.toString("utf8"));
  console.log(
    JSON.stringify({
      outcome: response.decision.outcome,
      decision_id: response.decision.decision_id,
      reasons: response.decision.reasons.map((r) => r.rule_id),
      receipt_verified: verified,
      statement_decision_id: statement.decision_id,
    }),
  );
  client.close();
});
