"""Commands beside `run`, each a module: `best` (a running monitor's answer for one model),
`maintenance` (maintenance windows in the database) and `certs` (certificates seen and pinned);
`parsers` makes their parsers."""
