"""The people who run shows: accounts, organisations, roles, studio sessions (docs/accounts.md)."""
