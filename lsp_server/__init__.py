"""semcode's language server: thin pygls handlers over the engine."""
