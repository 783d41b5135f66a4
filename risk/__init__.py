"""Shared parts of the Dynamic Risk Assessment System.

Each module is small and focused: config, contract, files, ledger, registry, drift, cli.
Importing this package does no work: no file reads, no folders made, no logging set up.
"""
