"""graphdsl's built-in passes, one per module, and the standard rule library (`std/*.gds`)."""
