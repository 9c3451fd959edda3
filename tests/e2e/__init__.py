"""End to end: the app as a process, signed requests over HTTP, the emulators, both databases."""
