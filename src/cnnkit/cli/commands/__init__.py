"""Sub-commands of the `cnnkit` CLI, one module each (see `cnnkit.cli.main`)."""
