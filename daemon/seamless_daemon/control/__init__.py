"""Control plane: protocol, command table, event bus, UNIX-socket server, client and seamlessctl."""
