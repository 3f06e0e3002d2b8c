"""Persistence backends behind one interface.

Import what you need from its modules; this package re-exports nothing, so a memory-only process
never loads the AWS SDK:

- `base`: `FlagStore`, the contract every backend meets (the contract tests run it on both);
- `memory`: `MemoryStore`, the embedded default;
- `dynamodb` (with `dynamodb_items`, `dynamodb_client`, `dynamodb_table`): `DynamoStore`, one
  table per deployment;
- `records`, `paging`: what both backends share;
- `keys`, `keys_dynamodb`: API key storage.
"""
