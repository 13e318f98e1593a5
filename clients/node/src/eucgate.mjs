// eucgate client for Node.js: built from proto/ alone (@grpc/grpc-js and
// @grpc/proto-loader load the .proto files at run time, nothing is generated) and
// node:crypto. It signs an EUC as a DSSE envelope, submits it over mutual TLS with a
// request id kept across retries, verifies the service's receipt, its checkpoint and
// its inclusion proof against pinned keys, and records shipments.
//
// Every check follows the integration guide (docs/integration.md): DSSE v1 PAE,
// RFC 9162 Merkle proofs, C2SP signed-note checkpoints.

import {
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  sign as cryptoSign,
  verify,
  X509Certificate,
} from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

export const EUC_JSON_TYPE = "application/vnd.eucgate.euc.v1+json";
export const EUC_PROTO_TYPE = "application/vnd.eucgate.euc.v1+protobuf";
export const RECEIPT_TYPE = "application/vnd.eucgate.receipt.v1+json";
export const X509_CHAIN_KIND = "application/vnd.eucgate.x509-chain.v1";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_PROTO_DIR = path.resolve(HERE, "..", "..", "..", "proto");

const RETRYABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

/** An error with the service's stable reason code (google.rpc.ErrorInfo.reason). */
export class EucgateError extends Error {
  constructor(code, reason, message) {
    super(`${reason || code}: ${message}`);
    this.code = code;
    this.reason = reason;
  }
}

// --- DSSE ------------------------------------------------------------------------

/** DSSE v1 pre-authentication encoding: the bytes every signature is over. */
export function pae(payloadType, payload) {
  const type = Buffer.from(payloadType, "utf8");
  const body = Buffer.from(payload);
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, "ascii"),
    type,
    Buffer.from(` ${body.length} `, "ascii"),
    body,
  ]);
}

/** Lowercase hex SHA-256 of a public key's SubjectPublicKeyInfo (DER): the keyid. */
export function keyidOf(publicKey) {
  const key = publicKey?.type === "public" ? publicKey : createPublicKey(publicKey);
  const spki = key.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("hex");
}

/** The signature over `data` in the encoding eucgate expects for the key's type. */
function signWith(privateKey, data) {
  const type = privateKey.asymmetricKeyType;
  if (type === "ed25519") return cryptoSign(null, data, privateKey);
  if (type === "ec") {
    const curve = privateKey.asymmetricKeyDetails.namedCurve;
    const hash = curve === "secp384r1" ? "sha384" : "sha256";
    return cryptoSign(hash, data, { key: privateKey, dsaEncoding: "der" }); // DER, never r||s
  }
  if (type === "rsa") {
    return cryptoSign("sha256", data, {
      key: privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
      mgf1HashAlgorithm: "sha256",
    });
  }
  throw new Error(`unsupported signer key type ${type}`);
}

function pemBlocks(pem) {
  return String(pem).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * Sign EUC payload bytes (protobuf JSON mapping, UTF-8, as is) for one or more signers.
 * `signers` are { key: PEM private key, chain: PEM of the signer certificate first, then
 * its intermediates (never the root) }. Returns the envelope as the proto message
 * (`payload`, `payload_type`, `signatures[]` with the X.509 chain extension).
 */
export function signEnvelope(payload, signers, payloadType = EUC_JSON_TYPE) {
  const bytes = Buffer.from(payload);
  const signed = pae(payloadType, bytes);
  return {
    payload: bytes,
    payload_type: payloadType,
    signatures: signers.map(({ key, chain }) => {
      const certificates = pemBlocks(chain).map((pem) => new X509Certificate(pem));
      if (certificates.length === 0) throw new Error("a signer needs its certificate chain");
      const privateKey = typeof key === "object" && key.asymmetricKeyType ? key : createPrivateKey(key);
      return {
        sig: signWith(privateKey, signed),
        keyid: keyidOf(certificates[0].publicKey),
        extension: { kind: X509_CHAIN_KIND, ext: { certificates: certificates.map((c) => c.raw) } },
      };
    }),
  };
}

/** The DSSE JSON form of an envelope (what `eucgate sign` writes). */
export function envelopeToJson(envelope) {
  return {
    payload: Buffer.from(envelope.payload).toString("base64"),
    payloadType: envelope.payload_type,
    signatures: envelope.signatures.map((s) => ({
      keyid: s.keyid,
      sig: Buffer.from(s.sig).toString("base64"),
      ...(s.extension
        ? {
            extension: {
              kind: s.extension.kind,
              ext: { certificates: s.extension.ext.certificates.map((c) => Buffer.from(c).toString("base64")) },
            },
          }
        : {}),
    })),
  };
}

/** The default request id: "env-" and the SHA-256 of the envelope's deterministic
 * protobuf encoding (eucgate.v1.Envelope), so sending the same envelope again returns the
 * first decision, whichever client sends it: the Python client and `eucgate submit`
 * derive the same id (tests/vectors/request-ids.json). */
export function envelopeRequestId(envelope) {
  return `env-${createHash("sha256").update(encodeEnvelope(envelope)).digest("hex")}`;
}

// Deterministic protobuf, as far as Envelope needs it: fields in number order, empty
// strings, bytes and unset messages left out; every field here is length-delimited.
function varint(n) {
  const out = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

function field(number, bytes, { always = false } = {}) {
  if (bytes.length === 0 && !always) return Buffer.alloc(0);
  return Buffer.concat([varint((number << 3) | 2), varint(bytes.length), bytes]);
}

const utf8 = (text) => Buffer.from(text ?? "", "utf8");

/** eucgate.v1.Envelope as deterministic protobuf bytes, as the Python client encodes
 * the same DSSE envelope: a signature's extension is there only when it carries
 * certificates, and then names the X.509 chain kind. */
export function encodeEnvelope(envelope) {
  const signatures = (envelope.signatures ?? []).map((s) => {
    const certificates = s.extension?.ext?.certificates ?? [];
    const chain = Buffer.concat(certificates.map((c) => field(1, Buffer.from(c), { always: true })));
    const extension = certificates.length
      ? field(3, Buffer.concat([field(1, utf8(X509_CHAIN_KIND)), field(2, chain)]), { always: true })
      : Buffer.alloc(0);
    const body = Buffer.concat([field(1, Buffer.from(s.sig ?? [])), field(2, utf8(s.keyid)), extension]);
    return field(3, body, { always: true });
  });
  return Buffer.concat([
    field(1, Buffer.from(envelope.payload ?? [])),
    field(2, utf8(envelope.payload_type)),
    ...signatures,
  ]);
}

// --- the connection --------------------------------------------------------------

/**
 * Open the services over mutual TLS. `ca`, `cert`, `key` are PEM (Buffers or strings):
 * the CA that issued the server's certificate, this client's certificate and key.
 */
export function connect({ address, ca, cert, key, protoDir = DEFAULT_PROTO_DIR, serverName }) {
  const definition = protoLoader.loadSync(
    [
      "eucgate/v1/certificate_service.proto",
      "eucgate/v1/audit_service.proto",
      "eucgate/v1/licence_service.proto",
      "eucgate/v1/policy_service.proto",
    ],
    { includeDirs: [protoDir], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
  );
  const v1 = grpc.loadPackageDefinition(definition).eucgate.v1;
  const credentials = grpc.credentials.createSsl(Buffer.from(ca), Buffer.from(key), Buffer.from(cert));
  const options = serverName ? { "grpc.ssl_target_name_override": serverName } : {};
  return {
    certificates: new v1.CertificateService(address, credentials, options),
    audit: new v1.AuditService(address, credentials, options),
    licences: new v1.LicenceService(address, credentials, options),
    policy: new v1.PolicyService(address, credentials, options),
    close() {
      for (const c of [this.certificates, this.audit, this.licences, this.policy]) c.close();
    },
  };
}

function reasonOf(err) {
  // google.rpc.Status travels in the grpc-status-details-bin trailer; ErrorInfo's
  // reason is its first length-delimited string field. The message says it too.
  const match = /^([A-Z][A-Z0-9_]+):/.exec(err.details ?? "");
  return match ? match[1] : "";
}

function unary(stub, method, request, timeoutMs) {
  return new Promise((resolve, reject) => {
    stub[method](request, { deadline: Date.now() + timeoutMs }, (err, response) => {
      if (err) reject(Object.assign(new EucgateError(err.code, reasonOf(err), err.details), { grpcCode: err.code }));
      else resolve(response);
    });
  });
}

/**
 * Submit one signed EUC. The request id (default: `envelopeRequestId`) stays the same
 * across the retries this makes after UNAVAILABLE or DEADLINE_EXCEEDED, so a decision
 * the service recorded before the answer was lost comes back (`replayed`), never twice.
 */
export async function submit(conn, envelope, { requestId, attempts = 3, timeoutMs = 20000, backoffMs = 250 } = {}) {
  const request = { request_id: requestId ?? envelopeRequestId(envelope), envelope };
  for (let attempt = 1; ; attempt++) {
    try {
      return await unary(conn.certificates, "SubmitCertificate", request, timeoutMs);
    } catch (err) {
      if (!RETRYABLE.has(err.grpcCode) || attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, backoffMs * 2 ** (attempt - 1)));
    }
  }
}

/** Debit a shipment under an approval (gateway role); retry with the same reference. */
export function recordShipment(conn, { reference, decisionId, controlCode, quantity, unit }, timeoutMs = 20000) {
  return unary(
    conn.licences,
    "RecordShipment",
    { gateway_reference: reference, decision_id: decisionId, control_code: controlCode, quantity: { value: String(quantity), unit } },
    timeoutMs,
  );
}

/** A licence's quotas: approved, shipped and remaining per control code. */
export function licenceBalance(conn, licenceNumber, timeoutMs = 20000) {
  return unary(conn.licences, "GetLicenceBalance", { licence_number: licenceNumber }, timeoutMs);
}

// --- receipts, checkpoints and proofs ---------------------------------------------

/**
 * Verify a receipt's DSSE signature with the service's published Ed25519 key (PEM) and
 * return its statement. Throws when it does not verify.
 */
export function verifyReceipt(receipt, servicePublicKeyPem) {
  const envelope = receipt.envelope;
  if (!envelope || envelope.payload_type !== RECEIPT_TYPE) throw new Error("not an eucgate receipt");
  if (envelope.signatures.length !== 1) throw new Error("a receipt has exactly one signature");
  const key = createPublicKey(servicePublicKeyPem);
  if (key.asymmetricKeyType !== "ed25519") throw new Error("the service key is Ed25519");
  const [signature] = envelope.signatures;
  if (signature.keyid !== keyidOf(key)) throw new Error("the receipt was signed by another key");
  if (!verify(null, pae(envelope.payload_type, envelope.payload), key, Buffer.from(signature.sig))) {
    throw new Error("the receipt signature does not verify");
  }
  const statement = JSON.parse(Buffer.from(envelope.payload).toString("utf8"));
  if (statement.version !== 1) throw new Error("unknown receipt statement version");
  return statement;
}

const sha256 = (...parts) => createHash("sha256").update(Buffer.concat(parts)).digest();
export const leafHash = (entry) => sha256(Buffer.from([0]), Buffer.from(entry));
const nodeHash = (left, right) => sha256(Buffer.from([1]), left, right);

/** RFC 9162 section 2.1.3.2: the root an inclusion proof leads to. */
export function rootFromInclusionProof(index, size, leaf, proof) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn < 0n || fn > sn) throw new Error(`leaf index ${index} is not below tree size ${size}`);
  let r = Buffer.from(leaf);
  for (const p of proof) {
    if (p.length !== 32) throw new Error("a proof hash is 32 bytes");
    if (sn === 0n) throw new Error("inclusion proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(Buffer.from(p), r);
      if ((fn & 1n) === 0n) {
        while (!((fn & 1n) === 1n || fn === 0n)) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, Buffer.from(p));
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Error("inclusion proof is too short");
  return r;
}

// "name+hex(keyid)+base64(type || key)", key id = SHA-256(name || "\n" || type || key)[:4].
function parseVerifierKey(text, type, what) {
  // The base64 key may itself hold "+": split at the first two only.
  const match = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text.trim());
  if (!match) throw new Error("expected name+keyid+key");
  const [, name, hexId, encoded] = match;
  const raw = Buffer.from(encoded, "base64");
  if (raw.length !== 33 || raw[0] !== type) throw new Error(`not an Ed25519 ${what} key`);
  const id = sha256(Buffer.from(`${name}\n`, "utf8"), raw).subarray(0, 4);
  if (id.toString("hex") !== hexId) throw new Error("key id does not match the key");
  const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw.subarray(1)]);
  return { name, id, key: createPublicKey({ key: spki, format: "der", type: "spki" }) };
}

/** A pinned C2SP signed-note verifier key: "name+hex(keyid)+base64(0x01 || key)". */
export const parseLogKey = (text) => parseVerifierKey(text, 0x01, "verifier");

/** A witness's C2SP tlog-cosignature key: "name+hex(keyid)+base64(0x04 || key)". */
export const parseWitnessKey = (text) => parseVerifierKey(text, 0x04, "cosigner");

// A signed note's text (through its last newline) and its signature lines.
function splitNote(note) {
  const cut = note.lastIndexOf("\n\n");
  if (cut < 0 || !note.endsWith("\n")) throw new Error("malformed signed note");
  const lines = note.slice(cut + 2).split("\n").slice(0, -1);
  const signatures = lines.map((line) => {
    const match = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!match) throw new Error(`bad signature line ${JSON.stringify(line)}`);
    return { name: match[1], blob: Buffer.from(match[2], "base64") };
  });
  return { text: note.slice(0, cut + 1), signatures };
}

/**
 * Open a checkpoint (C2SP tlog-checkpoint in a C2SP signed note) with the pinned log
 * key; returns { origin, size, root } taken only from the verified text.
 */
export function openCheckpoint(note, logKey) {
  const verifier = typeof logKey === "string" ? parseLogKey(logKey) : logKey;
  const { text, signatures } = splitNote(note);
  for (const { name, blob } of signatures) {
    if (name !== verifier.name || !blob.subarray(0, 4).equals(verifier.id)) continue;
    if (!verify(null, Buffer.from(text, "utf8"), verifier.key, blob.subarray(4))) {
      throw new Error("checkpoint signature does not verify");
    }
    const [origin, size, root] = text.split("\n");
    if (!/^(0|[1-9][0-9]*)$/.test(size)) throw new Error("bad tree size");
    const rootBytes = Buffer.from(root, "base64");
    if (rootBytes.length !== 32) throw new Error("bad root hash");
    return { origin, size: BigInt(size), root: rootBytes, note };
  }
  throw new Error(`no signature by ${verifier.name}`);
}

/**
 * The time (seconds, a BigInt) of `witness`'s cosignature/v1 on a checkpoint note, or
 * null when it holds none. A line of that name and key id that does not verify over
 * "cosignature/v1\ntime <t>\n" + the note's text throws (C2SP tlog-cosignature).
 */
export function cosignedAt(note, witness) {
  const verifier = typeof witness === "string" ? parseWitnessKey(witness) : witness;
  const { text, signatures } = splitNote(note);
  for (const { name, blob } of signatures) {
    if (name !== verifier.name || !blob.subarray(0, 4).equals(verifier.id)) continue;
    if (blob.length !== 4 + 8 + 64) throw new Error(`cosignature by ${name} is malformed`);
    const time = blob.readBigUInt64BE(4);
    if (time >= 1n << 63n) throw new Error("cosignature time is out of range");
    const message = Buffer.from(`cosignature/v1\ntime ${time}\n${text}`, "utf8");
    if (!verify(null, message, verifier.key, blob.subarray(12))) {
      throw new Error(`cosignature by ${name} does not verify`);
    }
    return time;
  }
  return null;
}

/**
 * Check that at least `threshold` of the pinned `witnesses` (one vote per name)
 * cosigned a checkpoint note; returns the names of those that did. Throws
 * CHECKPOINT_NOT_WITNESSED when too few did: the log may be showing you a tree no
 * witness saw.
 */
export function verifyCosignatures(note, witnesses, threshold) {
  const verifiers = witnesses.map((w) => (typeof w === "string" ? parseWitnessKey(w) : w));
  if (new Set(verifiers.map((v) => v.name)).size !== verifiers.length) {
    throw new Error("two witness keys share a name");
  }
  if (!(threshold >= 1 && threshold <= verifiers.length)) {
    throw new Error(`need 1 <= threshold <= ${verifiers.length} witnesses, got ${threshold}`);
  }
  const names = verifiers.filter((v) => cosignedAt(note, v) !== null).map((v) => v.name);
  if (names.length < threshold) {
    throw new EucgateError(
      "CHECKPOINT_NOT_WITNESSED",
      "CHECKPOINT_NOT_WITNESSED",
      `${names.length} of the ${threshold} witness cosignatures required`,
    );
  }
  return names;
}

/**
 * Verify all of a receipt offline: the service's signature, the checkpoint's signature
 * by the pinned log key, with `witnesses` and `threshold` at least that many of those
 * witnesses' cosignatures on it, and that the statement's log leaf is at `leaf_index`
 * under the checkpoint's root. Returns { statement, leafIndex, checkpoint, witnessedBy }.
 */
export function verifyLoggedReceipt(receipt, servicePublicKeyPem, logKey, { witnesses = [], threshold = 0 } = {}) {
  const statement = verifyReceipt(receipt, servicePublicKeyPem);
  if (!statement.log_leaf_hash || !receipt.checkpoint) throw new Error("the receipt carries no log position");
  const checkpoint = openCheckpoint(receipt.checkpoint, logKey);
  const witnessedBy = threshold || witnesses.length ? verifyCosignatures(receipt.checkpoint, witnesses, threshold) : [];
  const leafIndex = BigInt(receipt.leaf_index);
  const root = rootFromInclusionProof(leafIndex, checkpoint.size, Buffer.from(statement.log_leaf_hash, "hex"), receipt.inclusion_proof);
  if (!root.equals(checkpoint.root)) throw new Error(`leaf ${leafIndex} is not in the checkpoint's tree`);
  return { statement, leafIndex, checkpoint, witnessedBy };
}
