"""semcode: the command line and the MCP server over the engine."""
