"""eucgate: end-user certificate validation service.

The path of one submission is the package layout:
`api/` (gRPC edge) -> `core/` (envelope, pki, model, bundle, rules, decide: pure) ->
`store/` (durable record) -> receipt. `cli/` drives all of it.
"""

__version__ = "0.1.0"
