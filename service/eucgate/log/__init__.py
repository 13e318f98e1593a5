"""The audit log: RFC 9162 tree and proofs, C2SP checkpoints, canonical log entries.

Verification lives in the client library (`eucgate_client.tlog`) so that verifiers need
no server code; this package produces what they verify and imports their hashing.
"""
