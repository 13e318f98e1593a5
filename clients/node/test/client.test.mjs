// Tests of the Node.js client. The pure ones run anywhere; the live ones run against a
// real eucgate server over mutual TLS, which tests/integration/test_node_client_lib.py
// starts and describes in EUCGATE_TEST_* variables (they are skipped without it, and
// that driver fails on any skip).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  connect,
  cosignedAt,
  envelopeRequestId,
  envelopeToJson,
  leafHash,
  openCheckpoint,
  pae,
  parseLogKey,
  parseWitnessKey,
  recordShipment,
  rootFromInclusionProof,
  signEnvelope,
  submit,
  verifyCosignatures,
  verifyLoggedReceipt,
  verifyReceipt,
  X509_CHAIN_KIND,
} from "../src/eucgate.mjs";

test("PAE is the DSSE v1 encoding", () => {
  // The DSSE specification's example.
  assert.equal(
    pae("http://example.com/HelloWorld", Buffer.from("hello world")).toString(),
    "DSSEv1 29 http://example.com/HelloWorld 11 hello world",
  );
});

test("default request ids are the Python client's (tests/vectors/request-ids.json)", () => {
  const vectors = JSON.parse(
    readFileSync(new URL("../../../tests/vectors/request-ids.json", import.meta.url), "utf8"),
  );
  const b64 = (text) => Buffer.from(text, "base64");
  for (const c of vectors.cases) {
    const envelope = {
      payload: b64(c.payload),
      payload_type: c.payload_type,
      signatures: c.signatures.map((s) => ({
        sig: b64(s.sig),
        keyid: s.keyid,
        ...(s.certificates.length
          ? { extension: { kind: X509_CHAIN_KIND, ext: { certificates: s.certificates.map(b64) } } }
          : {}),
      })),
    };
    assert.equal(envelopeRequestId(envelope), c.request_id, c.name);
  }
});

test("a log key whose base64 holds '+' parses", () => {
  // A real verifier key: its key bytes encode with "+" in them.
  const key = "eucgate.example/log+34e8e80a+AcEBkYDnj0M9/B+rJtZfyi2nX07b1EwaSHNZYXaPO7pp";
  const parsed = parseLogKey(key);
  assert.equal(parsed.name, "eucgate.example/log");
  assert.equal(parsed.id.toString("hex"), "34e8e80a");
  assert.throws(() => parseLogKey(key.replace("+34e8e80a+", "+34e8e80b+")), /key id does not match/);
  assert.throws(() => parseLogKey("name+nothex+AQ=="), /expected name\+keyid\+key/);
});

test("an inclusion proof leads to the root of RFC 9162", () => {
  const leaves = [0, 1, 2].map((i) => leafHash(Buffer.from(`entry ${i}`)));
  const node = (l, r) => createHash("sha256").update(Buffer.concat([Buffer.from([1]), l, r])).digest();
  const root = node(node(leaves[0], leaves[1]), leaves[2]);
  assert.deepEqual(rootFromInclusionProof(2, 3, leaves[2], [node(leaves[0], leaves[1])]), root);
  assert.deepEqual(rootFromInclusionProof(0, 3, leaves[0], [leaves[1], leaves[2]]), root);
  assert.notDeepEqual(rootFromInclusionProof(1, 3, leaves[0], [leaves[1], leaves[2]]), root);
  assert.throws(() => rootFromInclusionProof(0, 3, leaves[0], [leaves[1]]), /too short/);
});

test("witness keys parse as the Go implementation computed them", () => {
  // transparency-dev/formats note_cosigv1_test.go: a cosigner key (type 0x04) and a
  // plain signed-note key (type 0x01) that is not one.
  const witness = parseWitnessKey("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2");
  assert.equal(witness.name, "remora.n621.de");
  assert.equal(witness.id.toString("hex"), "da77ade7");
  assert.throws(() => parseWitnessKey("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"), /not an Ed25519 cosigner key/);
});

test("public witnesses' cosignatures on a published checkpoint verify here", () => {
  // tests/vectors/cosigned-checkpoint-witnesses.json: a real log's checkpoint with the
  // cosignatures of four public witnesses, none of them eucgate (its "source" says whence).
  const vector = JSON.parse(
    readFileSync(new URL("../../../tests/vectors/cosigned-checkpoint-witnesses.json", import.meta.url), "utf8"),
  );
  const { note, witness_verifier_keys: witnesses } = vector;
  assert.equal(openCheckpoint(note, vector.log_verifier_key).size, BigInt(vector.tree_size));
  for (const witness of witnesses) {
    assert.equal(cosignedAt(note, witness), BigInt(vector.cosignature_timestamp));
  }
  assert.deepEqual(verifyCosignatures(note, witnesses, 4), witnesses.map((w) => parseWitnessKey(w).name));
  const grown = note.replace(`\n${vector.tree_size}\n`, `\n${vector.tree_size + 1}\n`);
  assert.throws(() => openCheckpoint(grown, vector.log_verifier_key), /does not verify/);
  for (const witness of witnesses) assert.throws(() => cosignedAt(grown, witness), /does not verify/);
});

const cosigned = process.env.EUCGATE_TEST_COSIGNED_NOTE;
const skipCosigned = cosigned ? false : "needs the cosigned checkpoint tests/integration/test_node_client_lib.py writes";

test("cosignatures made by eucgate's witness verify here, k of n", { skip: skipCosigned }, () => {
  const note = readFileSync(env("EUCGATE_TEST_COSIGNED_NOTE"), "utf8");
  const witness = env("EUCGATE_TEST_WITNESS_KEY");
  const stranger = env("EUCGATE_TEST_STRANGER_WITNESS_KEY");
  const checkpoint = openCheckpoint(note, env("EUCGATE_TEST_COSIGNED_LOG_KEY"));
  assert.equal(checkpoint.size, 5n);
  assert.equal(cosignedAt(note, witness), BigInt(env("EUCGATE_TEST_COSIGNATURE_TIME")));
  assert.equal(cosignedAt(note, stranger), null);
  assert.deepEqual(verifyCosignatures(note, [witness, stranger], 1), [parseWitnessKey(witness).name]);
  assert.throws(() => verifyCosignatures(note, [witness, stranger], 2), /CHECKPOINT_NOT_WITNESSED/);
  // One changed byte of the signature, or of the checkpoint it covers, fails.
  const line = note.trimEnd().split("\n").at(-1);
  const blob = Buffer.from(line.split(" ").at(-1), "base64");
  blob[20] ^= 1;
  const forged = note.replace(line, `${line.split(" ").slice(0, -1).join(" ")} ${blob.toString("base64")}`);
  assert.throws(() => cosignedAt(forged, witness), /does not verify/);
  const grown = note.replace(/\n5\n/, "\n6\n");
  assert.throws(() => cosignedAt(grown, witness), /does not verify/);
});

const live = process.env.EUCGATE_TEST_ADDRESS;
const skip = live ? false : "needs the server tests/integration/test_node_client_lib.py starts";

function env(name) {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
}

function as(role) {
  return connect({
    address: env("EUCGATE_TEST_ADDRESS"),
    ca: readFileSync(env("EUCGATE_TEST_CA")),
    cert: readFileSync(env(`EUCGATE_TEST_${role}_CERT`)),
    key: readFileSync(env(`EUCGATE_TEST_${role}_KEY`)),
  });
}

function signed() {
  return signEnvelope(readFileSync(env("EUCGATE_TEST_EUC")), [
    { key: readFileSync(env("EUCGATE_TEST_SIGNER_KEY")), chain: readFileSync(env("EUCGATE_TEST_SIGNER_CHAIN")) },
  ]);
}

test("sign, submit over mTLS, verify the receipt and its inclusion, ship", { skip }, async () => {
  const importer = as("IMPORTER");
  const gateway = as("GATEWAY");
  try {
    const envelope = signed();
    assert.equal(envelope.signatures[0].keyid.length, 64);
    const answer = await submit(importer, envelope);
    assert.equal(answer.decision.outcome, "OUTCOME_APPROVED", JSON.stringify(answer.decision.reasons));
    assert.equal(answer.replayed, false);
    assert.equal(answer.decision.request_id, envelopeRequestId(envelope));

    const servicePem = readFileSync(env("EUCGATE_TEST_SERVICE_KEY"));
    const logKey = env("EUCGATE_TEST_LOG_KEY");
    const logged = verifyLoggedReceipt(answer.receipt, servicePem, logKey);
    assert.equal(logged.statement.decision_id, answer.decision.decision_id);
    assert.equal(logged.statement.outcome, "APPROVED");
    assert.equal(logged.checkpoint.origin, logKey.split("+")[0]);
    // Pinned witnesses that never cosigned this server's checkpoint: not witnessed.
    const witnesses = [env("EUCGATE_TEST_WITNESS_KEY")];
    assert.throws(() => verifyLoggedReceipt(answer.receipt, servicePem, logKey, { witnesses, threshold: 1 }), /CHECKPOINT_NOT_WITNESSED/);
    // A receipt moved to another leaf, or a checkpoint under another key, fails.
    const moved = { ...answer.receipt, leaf_index: String(BigInt(answer.receipt.leaf_index) + 1n) };
    assert.throws(() => verifyLoggedReceipt(moved, servicePem, logKey));
    const forged = answer.receipt.checkpoint.replace(/\n(\d+)\n/, (_, n) => `\n${BigInt(n) + 1n}\n`);
    assert.throws(() => openCheckpoint(forged, logKey), /does not verify/);
    const tampered = { ...answer.receipt, envelope: { ...answer.receipt.envelope, payload: Buffer.from("{}") } };
    assert.throws(() => verifyReceipt(tampered, servicePem), /does not verify/);

    // The same envelope again: the first decision, not a second approval.
    const again = await submit(importer, envelope);
    assert.equal(again.replayed, true);
    assert.equal(again.decision.decision_id, answer.decision.decision_id);

    // The DSSE JSON form of the same envelope is what `eucgate sign` writes.
    const json = envelopeToJson(envelope);
    assert.equal(Buffer.from(json.payload, "base64").toString(), readFileSync(env("EUCGATE_TEST_EUC")).toString());

    // The customs gateway debits what shipped; a retry with the same reference is a replay.
    const [item] = answer.decision.approved_items;
    const code = logged.statement.licence_balances[0].control_code;
    const shipment = {
      reference: `BOE-NODE-${answer.decision.decision_id.slice(-8)}`,
      decisionId: answer.decision.decision_id,
      controlCode: code,
      quantity: "100",
      unit: item.quantity.unit,
    };
    const shipped = await recordShipment(gateway, shipment);
    assert.equal(shipped.replayed, false);
    assert.equal(shipped.shipment.control_code, code);
    assert.equal(shipped.shipment.decision_id, answer.decision.decision_id);
    assert.equal((await recordShipment(gateway, shipment)).replayed, true);
    // An importer may not record shipments.
    await assert.rejects(recordShipment(importer, { ...shipment, reference: "BOE-NODE-X" }), (err) => {
      assert.equal(err.code, 7); // PERMISSION_DENIED
      return true;
    });
  } finally {
    importer.close();
    gateway.close();
  }
});
