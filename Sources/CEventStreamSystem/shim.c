// Intentionally empty: a C target needs one source file.
