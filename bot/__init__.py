"""The crisis line's own code: everything beside the dialogue itself."""
