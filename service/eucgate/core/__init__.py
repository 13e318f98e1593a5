"""The pure decision core: no clock, file, database or environment is read here."""
