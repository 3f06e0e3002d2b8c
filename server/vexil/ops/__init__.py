"""Operations: backups, exports, verification, the DR drill, health and the operator checklists.

The functions here are the logic behind `vexil status`, `vexil backup ...`, `vexil dr drill`
and `vexil ops check ...` (`vexil.cli.ops` only parses arguments and renders results):
- `backups`: DynamoDB on-demand backups and point-in-time recovery, waiting with progress;
- `items`, `exportfile`, `tables`: a table's contents as items, the checksummed export file,
  whole-table reads and writes;
- `verify`: item-by-item comparison naming what is missing, extra or different;
- `drill`: backup -> restore -> verify -> serve, timed against RTO / RPO;
- `scrape`, `health`: a server's /metrics read back into the guide's health table;
- `gather`, `checks`, `keys`: the daily / weekly / monthly checklists;
- `connection`: how all of these reach a server (TLS, credential, its HTTP side).
"""
