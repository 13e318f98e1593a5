"""The pure decision core: no clock, file, database or environment is read here.

Importing the package imports the rule catalogue, so the check registry
(`core.checks`) is full before any bundle is validated.
"""

from eucgate.core import rules as rules
