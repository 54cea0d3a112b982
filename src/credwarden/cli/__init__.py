"""The command line: thin adapters that parse, call the facade and render."""
