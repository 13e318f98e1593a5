"""Replay of the audit log: recompute every recorded decision from its log entry.

`engine` replays one entry (exact, or under a candidate bundle); `run` drives a range
of entries across processes in log order; `summary` folds the results into what an
auditor reads; `report` renders that as one self-contained HTML page.
"""
