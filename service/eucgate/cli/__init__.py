"""The `eucgate` command line: serve, demo, keygen, sign, submit, decision."""
