"""The REST API (`credwarden serve`): a thin adapter that authenticates and calls the facade."""
