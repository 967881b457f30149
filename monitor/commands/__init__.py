"""Commands beside `run`, each a module: `best` (a running monitor's answer for one model) and
`maintenance` (maintenance windows in the database)."""
