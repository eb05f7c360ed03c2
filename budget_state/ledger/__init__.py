"""The ledger part: the state's files, its transactions, every change to it and its typed reads."""
