"""Listener accounts: users and passwords, bearer tokens, OAuth scopes, user admin."""
