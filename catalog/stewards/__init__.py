"""The stewards' service: accounts, drafts, review workflow, versions and the audit log.

Plain functions over an embedded SQLite database under TAZA_HOME/stewards (see db.py); the
Flask blueprint in api.py and the `taza users|versions|rollback|withdraw` commands are thin
adapters over them. Roles, workflow and endpoints: docs/stewards.md.
"""
